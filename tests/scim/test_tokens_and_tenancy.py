"""Who may call /scim/v2/: only an organization's live SCIM token, and only about its own
organization. Sessions, API keys, revoked, rotated, mistyped and other organizations' tokens are
refused; another organization's users and groups are not found and stay as they are."""

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse

from accesscontrol.accounts.models import User
from accesscontrol.audit.models import AuditEvent
from accesscontrol.organizations.models import OrganizationMembership
from accesscontrol.rbac.actor import Actor
from accesscontrol.scim import services
from accesscontrol.scim.auth import TOKEN
from accesscontrol.scim.models import ScimToken
from tests.factories import PASSWORD, pat_for, service_key_for
from tests.scim.conftest import Scim, group_body, patch_body, snapshot, user_body

pytestmark = pytest.mark.django_db

SCIM_PATHS = [
    "",
    "ServiceProviderConfig",
    "ResourceTypes",
    "ResourceTypes/User",
    "Schemas",
    "Schemas/urn:ietf:params:scim:schemas:core:2.0:User",
    "Users",
    "Users/8c1b7f9e-0000-4000-8000-000000000000",
    "Groups",
    "Groups/8c1b7f9e-0000-4000-8000-000000000000",
]


def test_every_scim_route_is_in_the_list_above():
    from django.urls import get_resolver

    from tests.support.urls import walk

    routes = {r for r, _, _ in walk(get_resolver().url_patterns) if r.startswith("scim/v2/")}
    assert len(routes) == len(SCIM_PATHS)


def refused(response):
    assert response.status_code == 401, response.content
    assert response["WWW-Authenticate"] == 'Bearer realm="SCIM"'
    assert response.json()["status"] == "401"


@pytest.mark.parametrize("path", SCIM_PATHS)
def test_without_a_token_every_route_is_401(client, world, path):
    for method in ("GET", "POST", "PUT", "PATCH", "DELETE"):
        refused(Scim(client, None)(method, path, user_body("x@example.com")))


def test_a_signed_in_session_is_refused(client, world, scim_token):
    assert client.login(username=world.org_admin.email, password=PASSWORD)
    before = snapshot()
    refused(Scim(client, None)("GET", "Users"))
    refused(Scim(client, None)("POST", "Users", user_body("x@example.com")))
    assert snapshot() == before


def test_api_keys_are_not_scim_tokens(client, world):
    for key in (
        pat_for(world.org_admin, world.org),
        service_key_for(world.workspace, "Admin", org_scoped=True),
    ):
        refused(Scim(client, key)("GET", "Users"))


@pytest.mark.parametrize(
    "token",
    [
        "lsv2_scim_" + "0" * 32 + "_00000000",  # wrong checksum
        "lsv2_scim_short",
        "Basic dXNlcjpwYXNz",
        "",
    ],
)
def test_made_up_tokens_are_refused(client, world, token):
    refused(Scim(client, token)("GET", "Users"))


def test_a_well_formed_unknown_token_is_refused(client, world):
    import zlib

    body = "lsv2_scim_" + "a" * 32
    refused(Scim(client, f"{body}_{zlib.crc32(body.encode()):08x}")("GET", "Users"))


def test_a_revoked_token_is_refused_from_the_next_request(client, world, scim_token):
    scim = Scim(client, scim_token)
    assert scim("GET", "Users").status_code == 200
    services.revoke_token(actor=world.org_admin, organization=world.org)
    refused(scim("GET", "Users"))


def test_rotation_ends_the_old_token_at_once(client, world, scim_token):
    _, new, _ = services.rotate_token(actor=world.org_admin, organization=world.org)
    refused(Scim(client, scim_token)("GET", "Users"))
    assert Scim(client, new)("GET", "Users").status_code == 200
    assert TOKEN.match(new)


def test_the_token_is_stored_as_a_digest_only(world, scim_token):
    token = ScimToken.objects.get()
    assert scim_token not in repr(list(ScimToken.objects.values_list()))
    assert token.hint == f"lsv2_scim_…{scim_token[-4:]}"
    labels = AuditEvent.objects.values_list("changes", "target_label")
    assert scim_token not in repr(list(labels))


def test_token_management_needs_an_org_manager(world, scim_token):
    for person in (world.workspace_admin, world.editor, world.outsider):
        with pytest.raises(ValidationError):
            services.rotate_token(actor=person, organization=world.org)
        with pytest.raises(ValidationError):
            services.revoke_token(actor=person, organization=world.org)
    with pytest.raises(ValidationError):
        services.issue_token(actor=world.org_admin, organization=world.org)  # one at a time
    token = ScimToken.objects.get()
    with pytest.raises(ValidationError):
        services.rotate_token(actor=Actor.for_scim_token(token), organization=world.org)


# --- tenancy -----------------------------------------------------------------------------------


def test_another_organizations_token_cannot_see_or_change_this_organizations_people(
    client, world, scim_token, globex_token
):
    acme, globex = Scim(client, scim_token), Scim(client, globex_token)
    user = acme("POST", "Users", user_body("grace@example.com")).json()
    group = acme("POST", "Groups", group_body("Engineers", user["id"])).json()
    before = snapshot()
    for path in (f"Users/{user['id']}", f"Groups/{group['id']}"):
        assert globex("GET", path).status_code == 404
        assert globex("PUT", path, user_body("x@example.com")).status_code == 404
        deactivate = patch_body({"op": "replace", "value": {"active": False}})
        assert globex("PATCH", path, deactivate).status_code == 404
        assert globex("DELETE", path).status_code == 404
    assert globex("GET", "Users").json()["totalResults"] == 0
    assert globex("GET", 'Users?filter=userName eq "grace@example.com"').json()["Resources"] == []
    assert globex("GET", "Groups").json()["totalResults"] == 0
    # Naming acme's user as a member of a globex group: no such user (there).
    response = globex("POST", "Groups", group_body("Stolen", user["id"]))
    assert response.status_code == 400
    assert snapshot() == before


def test_the_same_person_in_two_organizations_is_deprovisioned_from_one(
    client, world, scim_token, globex_token
):
    acme, globex = Scim(client, scim_token), Scim(client, globex_token)
    in_acme = acme("POST", "Users", user_body("grace@example.com")).json()
    # Acme's account now: Globex's IdP may not take it (organizations.identity_provider_may_
    # adopt) until she joins Globex by hand; then its provisioning manages her there too.
    assert globex("POST", "Users", user_body("grace@example.com")).status_code == 409
    grace = User.objects.get(email="grace@example.com")
    OrganizationMembership.objects.create(user=grace, organization=world.other_org)
    assert globex("POST", "Users", user_body("grace@example.com")).status_code == 201
    deactivate = patch_body({"op": "replace", "path": "active", "value": False})
    assert acme("PATCH", f"Users/{in_acme['id']}", deactivate).status_code == 200
    memberships = world.org.memberships.filter(user__email="grace@example.com")
    assert not memberships.exists()
    assert world.other_org.memberships.filter(user__email="grace@example.com").exists()


def test_scim_urls_are_not_console_pages(client, world):
    assert reverse("scim-users") == "/scim/v2/Users"


def test_failed_authentications_are_throttled_per_address(
    client, world, scim_token, settings, clock
):
    settings.THROTTLES = {**settings.THROTTLES, "key-ip": (3, 60)}
    guess = Scim(client, "lsv2_scim_" + "0" * 32 + "_00000000")
    for _ in range(3):
        refused(guess("GET", "Users"))
    throttled = guess("GET", "Users")
    assert throttled.status_code == 429 and int(throttled["Retry-After"]) > 0
    assert throttled.json()["status"] == "429"
    # The right token still works from elsewhere; successes are not counted.
    elsewhere = client.get(
        "/scim/v2/Users",
        headers={"Authorization": f"Bearer {scim_token}"},
        REMOTE_ADDR="198.51.100.9",
    )
    assert elsewhere.status_code == 200
