import pytest
from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command
from django.core.management.base import SystemCheckError

from accesscontrol.rbac.checks import check_every_view_declares_access
from accesscontrol.rbac.gate import requires
from tests.factories import persona_statuses

pytestmark = pytest.mark.urls("tests.gate_urls")

DATASET_URL = "/o/acme/w/production/datasets/new/"


def test_public_view_needs_nobody(client, db):
    assert client.get("/open/").content == b"open"


def test_undeclared_view_is_refused_at_runtime_even_for_org_admins(client, world):
    client.force_login(world.org_admin)
    for url in ("/forgotten/", "/deep/forgotten/"):
        response = client.get(url)
        assert response.status_code == 403
        assert b"should never be reached" not in response.content
        assert b"declares no permission" in response.content


def test_anonymous_is_sent_to_login(client, db):
    response = client.get(DATASET_URL)
    assert response.status_code == 302
    assert response["Location"].startswith("/login/?next=")
    assert client.get("/me/").status_code == 302


def test_authenticated_view_takes_any_signed_in_user(client, world):
    client.force_login(world.outsider)
    assert client.get("/me/").content == b"signed in"


@pytest.mark.parametrize(
    ("persona", "status"), persona_statuses("org_admin", "workspace_admin", "editor")
)
def test_declared_permission_is_checked_for_each_persona(client, world, persona, status):
    client.force_login(world.persona(persona))
    response = client.get(DATASET_URL)
    assert response.status_code == status
    if status == 200:
        assert response.content == b"created in production"


def test_denial_explains_what_was_needed_and_what_you_have(client, world):
    client.force_login(world.viewer)
    response = client.get(DATASET_URL)
    body = response.content.decode()
    assert response.status_code == 403
    assert "datasets:create" in body
    assert "Viewer" in body
    assert "production" in body


def test_post_is_gated_like_get(client, world):
    client.force_login(world.viewer)
    assert client.post(DATASET_URL).status_code == 403


def test_other_tenants_and_unknown_slugs_are_404(client, world):
    client.force_login(world.org_admin)
    assert client.get("/o/globex/w/default/datasets/new/").status_code == 404
    assert client.get("/o/acme/w/nope/datasets/new/").status_code == 404
    assert client.get("/o/nope/settings/").status_code == 404
    assert client.get("/o/globex/settings/").status_code == 404


def test_org_level_permission(client, world):
    client.force_login(world.org_admin)
    assert client.get("/o/acme/settings/").status_code == 200
    client.force_login(world.editor)
    assert client.get("/o/acme/settings/").status_code == 403


def test_permission_view_without_tenant_in_url_fails_closed(client, world):
    client.force_login(world.org_admin)
    assert client.get("/no-context/").status_code == 403


def test_gate_costs_constant_queries(client, world, django_assert_num_queries):
    client.force_login(world.editor)
    # session + user (authentication), workspace + org, one resolver query.
    with django_assert_num_queries(4):
        assert client.get(DATASET_URL).status_code == 200


def test_system_check_names_every_undeclared_route():
    errors = check_every_view_declares_access()
    assert {e.id for e in errors} == {"rbac.E001"}
    messages = sorted(e.msg for e in errors)
    assert len(messages) == 2
    assert "'deep/forgotten/'" in messages[0]
    assert "'forgotten/'" in messages[1]
    assert all("forgotten_view" in m for m in messages)


def test_system_check_fails_manage_py_check(db):
    with pytest.raises(SystemCheckError, match=r"rbac\.E001"):
        call_command("check")


def test_requires_refuses_unknown_codes_at_import_time():
    with pytest.raises(ImproperlyConfigured, match="datasets:explode"):
        requires("datasets:explode")
    with pytest.raises(ImproperlyConfigured):
        requires()
