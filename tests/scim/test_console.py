"""Settings → Provisioning: the org admin's page for the SCIM token (shown once), the group
mappings and the last sync events."""

import pytest
from django.urls import reverse

from accesscontrol.scim import services
from accesscontrol.scim.models import GroupMapping, ScimGroup, ScimToken
from tests.factories import system_role
from tests.scim.conftest import Scim, group_body, user_body

pytestmark = pytest.mark.django_db


def url(world, name="org-provisioning", *args):
    return reverse(name, args=[world.org.slug, *args])


@pytest.fixture
def admin(client, world):
    client.force_login(world.org_admin)
    return client


@pytest.mark.parametrize(
    ("persona", "status"),
    [("org_admin", 200), ("workspace_admin", 403), ("editor", 403), ("outsider", 404)],
)
def test_only_org_managers_see_the_page(client, world, persona, status):
    client.force_login(world.persona(persona))
    assert client.get(url(world)).status_code == status


def test_the_token_is_shown_once_then_only_its_hint(admin, world):
    page = admin.get(url(world)).content.decode()
    assert "http://testserver/scim/v2/" in page and "Create SCIM token" in page
    response = admin.post(url(world, "org-provisioning-token"))
    assert response.status_code == 302
    shown = admin.get(url(world)).content.decode()
    token = ScimToken.objects.get()
    raw = shown.split('id="new-key" class="code-box" type="text" value="')[1].split('"')[0]
    assert raw.startswith("lsv2_scim_") and token.hint in shown
    assert Scim(admin, raw)("GET", "Users").status_code == 200
    again = admin.get(url(world)).content.decode()
    assert raw not in again and token.hint in again


def test_rotate_and_revoke_ask_first(admin, world):
    services.issue_token(actor=world.org_admin, organization=world.org)
    ask = admin.get(url(world, "org-provisioning-token-rotate"))
    assert ask.status_code == 200 and b"Keep the current token" in ask.content
    assert ScimToken.objects.active().count() == 1
    assert admin.post(url(world, "org-provisioning-token-rotate")).status_code == 302
    assert ScimToken.objects.count() == 2 and ScimToken.objects.active().count() == 1
    assert b"was rotated" in admin.get(url(world)).content
    ask = admin.get(url(world, "org-provisioning-token-revoke"))
    assert ask.status_code == 200 and b"Keep the token" in ask.content
    assert admin.post(url(world, "org-provisioning-token-revoke")).status_code == 302
    assert not ScimToken.objects.active().exists()


def test_mappings_are_added_changed_and_removed(admin, world, scim):
    grace = scim("POST", "Users", user_body("grace@example.com")).json()["id"]
    scim("POST", "Groups", group_body("Engineers", grace))
    group = ScimGroup.objects.get()
    form = admin.get(url(world, "org-provisioning-mapping-add"))
    assert form.status_code == 200 and b"Engineers" in form.content
    response = admin.post(
        url(world, "org-provisioning-mapping-add"),
        {
            "group": group.pk,
            "workspace": world.workspace.pk,
            "role": system_role("Editor").pk,
        },
    )
    assert response.status_code == 302, response.content
    mapping = GroupMapping.objects.get()
    assert mapping.role.name == "Editor"
    page = admin.get(url(world)).content.decode()
    assert "Engineers" in page and "production" in page
    assert "SCIM" in page  # the last sync events name SCIM as the actor
    edit = url(world, "org-provisioning-mapping", mapping.pk)
    assert admin.post(edit, {"role": system_role("Viewer").pk}).status_code == 302
    assert GroupMapping.objects.get().role.name == "Viewer"
    remove = url(world, "org-provisioning-mapping-remove", mapping.pk)
    assert admin.get(remove).status_code == 200
    assert admin.post(remove).status_code == 302
    assert not GroupMapping.objects.exists()


def test_a_bad_mapping_is_refused_on_the_form(admin, world, scim):
    scim("POST", "Groups", group_body("Engineers"))
    group = ScimGroup.objects.get()
    response = admin.post(
        url(world, "org-provisioning-mapping-add"),
        {"group": group.pk, "workspace": world.workspace.pk, "role": "not-a-role"},
    )
    assert response.status_code == 422
    assert not GroupMapping.objects.exists()


def test_another_organizations_mapping_is_not_found(admin, world, globex_token, client):
    from tests.factories import UserFactory  # noqa: F401

    globex = Scim(client, globex_token)
    globex("POST", "Groups", group_body("Theirs"))
    group = ScimGroup.objects.get(organization=world.other_org)
    mapping = services.add_group_mapping(
        actor=world.outsider,
        group=group,
        workspace=world.other_workspace_of_other_org,
        role=system_role("Admin"),
    )
    assert admin.get(url(world, "org-provisioning-mapping", mapping.pk)).status_code == 404
    assert admin.post(url(world, "org-provisioning-mapping-remove", mapping.pk)).status_code == 404
    assert GroupMapping.objects.filter(pk=mapping.pk).exists()


def test_the_audit_log_says_scim_did_it(admin, world, scim):
    scim("POST", "Users", user_body("grace@example.com"))
    response = admin.get(reverse("audit-log", args=[world.org.slug]))
    assert response.status_code == 200, response
    body = response.content.decode()
    hint = ScimToken.objects.get().hint
    assert f"SCIM (token {hint}) provisioned Grace Hopper." in body
    assert f"SCIM (token {hint}) added Grace Hopper to the organization." in body


def test_pages_show_how_a_membership_came(admin, world, scim):
    grace = scim("POST", "Users", user_body("grace@example.com")).json()["id"]
    scim("POST", "Groups", group_body("Engineers", grace))
    services.add_group_mapping(
        actor=world.org_admin,
        group=ScimGroup.objects.get(),
        workspace=world.workspace,
        role=system_role("Editor"),
    )
    members = admin.get(reverse("org-members", args=[world.org.slug])).content.decode()
    assert "SCIM provisioning" in members and "Added by an admin" in members
    membership = world.org.memberships.get(user__email="grace@example.com")
    page = admin.get(reverse("member-access", args=[world.org.slug, membership.pk]))
    assert page.content.decode().count("SCIM provisioning") == 2  # org and workspace
    access = admin.get(reverse("workspace-access", args=[world.org.slug, world.workspace.slug]))
    assert "SCIM provisioning" in access.content.decode()


def test_the_default_org_role_of_provisioned_people(admin, world, scim):
    form = url(world, "org-provisioning-default-role")
    assert admin.post(form, {"default_org_role": "admin"}).status_code == 422  # never admin
    assert admin.post(form, {"default_org_role": "viewer"}).status_code == 302
    scim("POST", "Users", user_body("grace@example.com"))
    joined = world.org.memberships.get(user__email="grace@example.com")
    assert (joined.org_role, joined.source) == ("viewer", "scim")
    assert 'value="viewer" selected' in admin.get(url(world)).content.decode()
