"""Escalation: nobody takes, hands out or keeps more access than the rules allow.

One section per rule, each rule tried through every door that leads to it: the console (a
logged-in person posting a form, plain or htmx), the REST API (personal access tokens and
service keys) and, where it says something more, the service function itself. Every refusal is
checked twice: the answer explains itself (status and message), and nothing changed (the rows
that carry access, and no audit event of the change).

1. nobody changes their own role (organization or workspace);
2. nobody grants a role, or builds a key, holding a permission they do not hold;
3. a key never lists or creates keys beyond its own permissions; a PAT never exceeds its user;
4. editors manage neither members nor keys;
5. organization members who are not admins create (or archive, or delete) no workspaces;
6. custom roles hold workspace permissions only, and a key's role is not edited upwards;
7. an organization always keeps an admin: one request at a time, and two at the same time
   (threads with their own PostgreSQL connections, repeated);
8. a personal access token dies with its user's membership.

Console requests sign in with `force_login`, which counts as a fresh sign-in for the pages
that ask for the password again before sensitive actions.
"""

import datetime
import html
import json
import threading
import time
import uuid

import pytest
from django.contrib.messages import get_messages
from django.core.exceptions import ValidationError
from django.db import connection
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from accesscontrol.apikeys import keys
from accesscontrol.apikeys.models import PersonalAccessToken, ServiceKey
from accesscontrol.apikeys.services import create_service_key
from accesscontrol.audit import services as audit_services
from accesscontrol.audit.models import AuditEvent
from accesscontrol.organizations import services as org_services
from accesscontrol.organizations.models import Invitation, OrganizationMembership
from accesscontrol.organizations.services import change_org_role, remove_org_member
from accesscontrol.rbac.models import Role
from accesscontrol.rbac.permissions import WORKSPACE_PERMISSIONS
from accesscontrol.rbac.services import create_role, update_role
from accesscontrol.reviews import services as reviews
from accesscontrol.reviews.models import Item
from accesscontrol.workspaces.models import Workspace, WorkspaceMembership
from accesscontrol.workspaces.services import add_workspace_member, change_workspace_role
from tests.factories import (
    ORG_ADMIN_CODES,
    ORG_MANAGE,
    ORG_PATS,
    PERSONAS,
    SYSTEM,
    OrganizationFactory,
    OrganizationMembershipFactory,
    RoleFactory,
    WorkspaceFactory,
    actor_of_key,
    actor_with,
    add_member,
    pat_for,
    service_key_for,
    system_role,
)
from tests.support.api import api_call, api_set_member_role

HX = {"HX-Request": "true"}
MANAGE, MANAGE_MEMBERS = "workspaces:manage", "workspaces:manage-members"
READ_CODES = frozenset(c for c in WORKSPACE_PERMISSIONS if c.endswith(":read"))
# A strong custom role: everything in the workspace, members and keys included, except one
# permission. Whoever holds it may hand out nothing that holds datasets:delete.
ALMOST_ADMIN_CODES = sorted(WORKSPACE_PERMISSIONS - {"datasets:delete"})
MISSING = "datasets:delete"

SELF_ORG = "You cannot change your own organization role."
SELF_WORKSPACE = "You cannot change your own role."
LAST_ADMIN = "An organization must keep at least one admin. Make someone else an admin first."
ORG_KEYS_ONLY_FOR_ADMINS = "Only organization admins can create organization-scoped keys."


def beyond(role_name):
    return f"The role {role_name!r} holds permissions you do not: {MISSING}"


# --- what may change, and how we look at it --------------------------------------------------


def state():
    """Every row that carries access, and the audit log: compared before and after a refusal."""

    def rows(queryset, *fields):
        return sorted(tuple(str(v) for v in row) for row in queryset.values_list(*fields))

    return {
        "org_members": rows(OrganizationMembership.objects, "id", "user_id", "org_role"),
        "workspace_members": rows(WorkspaceMembership.objects, "id", "workspace_id", "role_id"),
        "workspaces": rows(Workspace.objects, "id", "name", "slug", "archived"),
        "roles": rows(Role.objects, "id", "name", "permissions"),
        "service_keys": rows(ServiceKey.objects, "id", "workspace_id", "role_id", "revoked_at"),
        "tokens": rows(PersonalAccessToken.objects, "id", "revoked_at"),
        "invitations": rows(Invitation.objects, "id", "cancelled_at", "accepted_at"),
        "audit": list(AuditEvent.objects.order_by("id").values_list("action", flat=True)),
    }


def org_url(name, **kwargs):
    return reverse(name, kwargs={"org_slug": "acme", **kwargs})


def ws_url(name, **kwargs):
    return reverse(name, kwargs={"org_slug": "acme", "workspace_slug": "production", **kwargs})


def text(response):
    return html.unescape(response.content.decode())


def flashes(response):
    """The messages this console action flashed before redirecting, as (level, text).

    Only the ones added by this request: earlier unread ones are still in the storage too.
    """
    added = get_messages(response.wsgi_request)._queued_messages
    return [(m.level_tag, m.message) for m in added]


def toast(response):
    return json.loads(response["HX-Trigger"])["toast"]


def assert_console_refused(response, htmx, message, *, back_to):
    """A refused console form: re-rendered with the message in a toast (htmx), or the message
    flashed on the way back to `back_to`."""
    if htmx:
        assert response.status_code == 422
        assert message in text(response)
        assert toast(response) == {"message": message, "level": "error"}
    else:
        assert response.status_code == 302
        assert response["Location"] == back_to
        assert flashes(response) == [("error", message)]


def post_role(client, membership, role, htmx):
    """The members page's role form, sent for `membership`."""
    url = ws_url("workspace-member-role", member_id=membership.pk)
    return client.post(url, {"role": role.pk}, headers=HX if htmx else {})


def assert_page_refused(response, code):
    """The console's 403: it names the permission that was missing."""
    assert response.status_code == 403, text(response)[:400]
    assert "You don't have access to this" in text(response)
    assert f"<code>{code}</code>" in text(response)
    assert code in response["X-Required-Permission"]


def assert_api_refused(response, status, error, detail=None, **fields):
    assert response.status_code == status, response.content
    body = response.json()
    assert body["error"] == error, body
    if detail is not None:
        assert detail in body["detail"], body
    for name, value in fields.items():
        assert body[name] == value, body
    return body


def org_membership(user, org):
    return OrganizationMembership.objects.get(user=user, organization=org)


def workspace_membership(world, user, workspace=None):
    return WorkspaceMembership.objects.get(
        org_membership__user=user, workspace=workspace or world.workspace
    )


def key_row(raw):
    """The stored key (service key or token) for a raw key, found by its digest."""
    digest = keys.digest(raw)
    return (
        ServiceKey.objects.filter(digest=digest).first()
        or PersonalAccessToken.objects.filter(digest=digest).first()
    )


def pat_of_org_viewer(world):
    """A token the org viewer made while still a member; org viewers cannot make new ones."""
    membership = org_membership(world.org_viewer, world.org)
    OrganizationMembership.objects.filter(pk=membership.pk).update(org_role="member")
    raw = pat_for(world.org_viewer, world.org)
    OrganizationMembership.objects.filter(pk=membership.pk).update(org_role="viewer")
    return raw


@pytest.fixture
def almost_admin_role(world):
    return RoleFactory(organization=world.org, name="Almost admin", permissions=ALMOST_ADMIN_CODES)


@pytest.fixture
def almost_admin(world, almost_admin_role):
    """Manages members and keys of production, but cannot delete datasets."""
    return add_member(world.org, world.workspace, almost_admin_role)


@pytest.fixture
def deleter_role(world):
    """A small custom role that holds the one permission the almost-admin lacks."""
    return RoleFactory(
        organization=world.org, name="Deleter", permissions=["datasets:read", MISSING]
    )


@pytest.fixture
def second_admin(world):
    """A second org admin, so that only the rule under test can refuse (not the last-admin one)."""
    return add_member(world.org, org_role="admin")


def role_named(world, name):
    return Role.objects.usable_in(world.org).get(name=name)


# =============================================================================================
# 1. Nobody changes their own role.


@pytest.mark.parametrize("new_role", ["member", "viewer"])
@pytest.mark.parametrize("htmx", [False, True], ids=["form", "htmx"])
def test_nobody_changes_their_own_org_role_in_the_console(
    client, world, second_admin, new_role, htmx
):
    own = org_membership(world.org_admin, world.org)
    client.force_login(world.org_admin)
    before = state()

    response = client.post(
        org_url("org-member-role", member_id=own.pk),
        {"org_role": new_role},
        headers=HX if htmx else {},
    )

    assert_console_refused(response, htmx, SELF_ORG, back_to=org_url("org-members"))
    assert state() == before
    assert org_membership(world.org_admin, world.org).org_role == "admin"


@pytest.mark.parametrize("new_role", ["member", "viewer"])
def test_nobody_changes_their_own_org_role_over_the_api(client, world, second_admin, new_role):
    key = pat_for(world.org_admin, world.org)
    own = org_membership(world.org_admin, world.org)
    before = state()

    response = api_call(
        client, "PATCH", f"/orgs/current/members/{own.pk}", key, json={"org_role": new_role}
    )

    assert_api_refused(response, 403, "permission_denied", SELF_ORG)
    assert state() == before


@pytest.mark.parametrize("actor", ["user", "their token"])
def test_nobody_changes_their_own_org_role_through_the_service(world, second_admin, actor):
    raw = pat_for(world.org_admin, world.org)
    acting = world.org_admin if actor == "user" else actor_of_key(key_row(raw))
    before = state()

    with pytest.raises(ValidationError) as exc:
        change_org_role(
            actor=acting, membership=org_membership(world.org_admin, world.org), org_role="member"
        )

    assert exc.value.code == "permission"
    assert exc.value.messages == [SELF_ORG]
    assert state() == before


@pytest.mark.parametrize(
    "persona,new_role",
    [
        ("workspace_admin", "Viewer"),  # stepping down is still a change of one's own role
        ("workspace_admin", "Editor"),
        ("almost_admin", "Admin"),  # stepping up: refused as a self-change before anything else
        ("almost_admin", "Almost admin"),  # the same role: still refused, nothing recorded
    ],
)
@pytest.mark.parametrize("htmx", [False, True], ids=["form", "htmx"])
def test_nobody_changes_their_own_workspace_role_in_the_console(
    client, world, almost_admin, persona, new_role, htmx
):
    user = almost_admin if persona == "almost_admin" else world.persona(persona)
    own = workspace_membership(world, user)
    client.force_login(user)
    before = state()

    response = post_role(client, own, role_named(world, new_role), htmx)

    assert_console_refused(response, htmx, SELF_WORKSPACE, back_to=ws_url("workspace-members"))
    assert state() == before


@pytest.mark.parametrize("persona", ["workspace_admin", "almost_admin"])
def test_nobody_changes_their_own_workspace_role_in_a_bulk_change(
    client, world, almost_admin, persona
):
    """Selecting oneself among others (a forged form: the page offers no box for oneself)."""
    user = almost_admin if persona == "almost_admin" else world.persona(persona)
    selected = [workspace_membership(world, world.annotator), workspace_membership(world, user)]
    client.force_login(user)
    before = state()

    # Viewer: a role both may grant, so only the self-change rule can refuse.
    response = client.post(
        ws_url("workspace-members-bulk-role"),
        {"members": [m.pk for m in selected], "role": system_role("Viewer").pk},
    )

    assert response.status_code == 302
    assert response["Location"] == ws_url("workspace-members")
    assert flashes(response) == [("error", f"Nothing was changed: {SELF_WORKSPACE}")]
    assert state() == before  # all or none: the annotator keeps their role too


@pytest.mark.parametrize(
    "persona,new_role",
    [("workspace_admin", "Viewer"), ("almost_admin", "Admin")],
)
def test_nobody_changes_their_own_workspace_role_over_the_api(
    client, world, almost_admin, persona, new_role
):
    user = almost_admin if persona == "almost_admin" else world.persona(persona)
    key = pat_for(user, world.org)
    own = workspace_membership(world, user)
    before = state()

    response = api_set_member_role(client, key, own, role_named(world, new_role).pk)

    assert_api_refused(response, 403, "permission_denied", SELF_WORKSPACE)
    assert state() == before


@pytest.mark.parametrize("actor", ["user", "their token"])
def test_nobody_changes_their_own_workspace_role_through_the_service(world, actor):
    raw = pat_for(world.workspace_admin, world.org)
    acting = world.workspace_admin if actor == "user" else key_row(raw)
    before = state()

    with pytest.raises(ValidationError) as exc:
        change_workspace_role(
            actor=actor_with(WORKSPACE_PERMISSIONS, acting),
            membership=workspace_membership(world, world.workspace_admin),
            role=system_role("Viewer"),
        )

    assert exc.value.code == "permission"
    assert state() == before


# =============================================================================================
# 2. Nobody grants a role, or builds a key, with a permission they do not hold.


@pytest.mark.parametrize("role_name", ["Admin", "Editor", "Deleter"])
@pytest.mark.parametrize("htmx", [False, True], ids=["form", "htmx"])
def test_a_role_beyond_the_grantors_own_is_not_granted_in_the_console(
    client, world, almost_admin, deleter_role, role_name, htmx
):
    target = workspace_membership(world, world.viewer)
    client.force_login(almost_admin)
    before = state()

    response = post_role(client, target, role_named(world, role_name), htmx)

    assert_console_refused(response, htmx, beyond(role_name), back_to=ws_url("workspace-members"))
    assert state() == before
    assert workspace_membership(world, world.viewer).role.name == "Viewer"


@pytest.mark.parametrize("role_name", ["Admin", "Editor", "Deleter"])
def test_a_bulk_change_to_a_role_beyond_the_grantors_own_changes_nobody(
    client, world, almost_admin, deleter_role, role_name
):
    selected = [workspace_membership(world, u) for u in (world.viewer, world.annotator)]
    client.force_login(almost_admin)
    before = state()

    response = client.post(
        ws_url("workspace-members-bulk-role"),
        {"members": [m.pk for m in selected], "role": role_named(world, role_name).pk},
    )

    assert response.status_code == 302
    assert flashes(response) == [("error", f"Nothing was changed: {beyond(role_name)}")]
    assert state() == before


@pytest.mark.parametrize("role_name", ["Admin", "Editor", "Deleter"])
def test_a_member_is_not_added_with_a_role_beyond_the_grantors_own_in_the_console(
    client, world, almost_admin, deleter_role, role_name
):
    client.force_login(almost_admin)
    newcomer = org_membership(world.member_without_workspace, world.org)
    before = state()

    response = client.post(
        ws_url("workspace-member-add"),
        {"email": newcomer.user.email, "role": role_named(world, role_name).pk},
    )

    # The form offers only grantable roles, so a forged choice is refused before the service.
    assert response.status_code == 422
    assert "Select a valid choice" in text(response)
    assert state() == before


@pytest.fixture
def almost_admin_keys(world, almost_admin):
    return {
        "their PAT": pat_for(almost_admin, world.org),
        "service key": service_key_for(world.workspace, "Almost admin"),
    }


@pytest.mark.parametrize("principal", ["their PAT", "service key"])
@pytest.mark.parametrize("role_name", ["Admin", "Editor", "Deleter"])
def test_a_role_beyond_the_grantors_own_is_not_granted_over_the_api(
    client, world, almost_admin_keys, deleter_role, principal, role_name
):
    key = almost_admin_keys[principal]
    target = workspace_membership(world, world.viewer)
    role_id = str(role_named(world, role_name).pk)
    before = state()

    changed = api_call(
        client, "PATCH", f"/workspaces/current/members/{target.pk}", key, json={"role_id": role_id}
    )
    added = api_call(
        client,
        "POST",
        "/workspaces/current/members",
        key,
        json={"email": world.member_without_workspace.email, "role_id": role_id},
    )

    for response in (changed, added):
        body = assert_api_refused(response, 403, "escalation", beyond(role_name))
        assert body["fields"] == {"role": [beyond(role_name)]}
    assert state() == before

    # The same principal may hand out what it holds: the refusal is about the role, not them.
    allowed = api_call(
        client,
        "PATCH",
        f"/workspaces/current/members/{target.pk}",
        key,
        json={"role_id": str(role_named(world, "Almost admin").pk)},
    )
    assert allowed.status_code == 200, allowed.content


@pytest.mark.parametrize("operation", ["add", "change"])
def test_the_services_refuse_a_role_beyond_the_grantors_permissions(world, almost_admin, operation):
    before = state()
    with pytest.raises(ValidationError) as exc:
        if operation == "add":
            add_workspace_member(
                actor=actor_with(frozenset(ALMOST_ADMIN_CODES), almost_admin),
                workspace=world.workspace,
                user=world.member_without_workspace,
                role=system_role("Admin"),
            )
        else:
            change_workspace_role(
                actor=actor_with(frozenset(ALMOST_ADMIN_CODES), almost_admin),
                membership=workspace_membership(world, world.viewer),
                role=system_role("Admin"),
            )
    (error,) = exc.value.error_dict["role"]
    assert error.code == "escalation"
    assert error.messages == [beyond("Admin")]
    assert state() == before


def key_form(role, **overrides):
    return {"name": "CI pipeline", "role": role.pk, "expires_in": "30", **overrides}


@pytest.mark.parametrize("role_name", ["Admin", "Editor", "Deleter"])
def test_a_key_stronger_than_its_maker_is_not_built_in_the_console(
    client, world, almost_admin, deleter_role, role_name
):
    client.force_login(almost_admin)
    before = state()

    response = client.post(ws_url("service-keys"), key_form(role_named(world, role_name)))

    assert response.status_code == 422
    assert beyond(role_name) in text(response)
    assert "lsv2_sk_" not in text(response)
    assert state() == before


@pytest.mark.parametrize("principal", ["their PAT", "service key"])
@pytest.mark.parametrize("role_name", ["Admin", "Editor", "Deleter", None])
def test_a_key_stronger_than_its_maker_is_not_built_over_the_api(
    client, world, almost_admin_keys, deleter_role, principal, role_name
):
    body = {"name": "stronger"}
    if role_name is not None:
        body["role_id"] = str(role_named(world, role_name).pk)
    before = state()

    response = api_call(client, "POST", "/api-key", almost_admin_keys[principal], json=body)

    assert_api_refused(response, 403, "escalation", beyond(role_name or "Admin"))
    assert "key" not in response.json()
    assert state() == before


def test_a_key_may_build_a_key_no_stronger_than_itself(client, world, almost_admin_keys):
    """The control for the refusals above: the same key makes a key of its own role."""
    for principal, maker in almost_admin_keys.items():
        body = {
            "name": f"peer of {principal}",
            "role_id": str(role_named(world, "Almost admin").pk),
        }
        response = api_call(client, "POST", "/api-key", maker, json=body)
        assert response.status_code == 201, response.content
        assert response.json()["role"] == "Almost admin"


def test_an_org_scoped_key_without_org_admin_builds_nothing_beyond_its_role(
    client, world, almost_admin_role
):
    key = service_key_for(world.workspace, "Almost admin", org_scoped=True)
    before = state()

    def ask_for(name, role_name, **more):
        body = {"name": name, "role_id": str(system_role(role_name).pk), **more}
        return api_call(client, "POST", "/api-key", key, tenant=world.workspace.pk, json=body)

    stronger = ask_for("stronger", "Admin")
    org_wide = ask_for("org-wide", "Viewer", scope="organization")

    assert_api_refused(stronger, 403, "escalation", beyond("Admin"))
    assert_api_refused(org_wide, 403, "permission_denied", ORG_KEYS_ONLY_FOR_ADMINS)
    assert state() == before


WORKSPACE_ADMIN_CREDENTIALS = ["workspace Admin key", "workspace admin's PAT"]


def workspace_admin_credential(world, kind):
    """A workspace Admin service key of 'production', or its workspace admin's PAT."""
    if kind == "workspace Admin key":
        return service_key_for(world.workspace, "Admin")
    return pat_for(world.workspace_admin, world.org)


@pytest.mark.parametrize("maker", WORKSPACE_ADMIN_CREDENTIALS)
def test_only_org_admins_build_organization_scoped_keys(client, world, maker):
    key = workspace_admin_credential(world, maker)
    before = state()

    response = api_call(
        client, "POST", "/api-key", key, json={"name": "org-wide", "scope": "organization"}
    )

    assert_api_refused(response, 403, "permission_denied", ORG_KEYS_ONLY_FOR_ADMINS)
    assert state() == before


def test_the_key_service_refuses_a_grantor_weaker_than_the_role(world, almost_admin):
    before = state()
    with pytest.raises(ValidationError) as exc:
        create_service_key(
            actor=actor_with(frozenset(ALMOST_ADMIN_CODES), almost_admin),
            organization=world.org,
            workspace=world.workspace,
            name="stronger",
            role=None,  # the default: Admin
        )
    (error,) = exc.value.error_dict["role"]
    assert error.code == "escalation"
    assert state() == before


# =============================================================================================
# 3. A key never lists or creates keys beyond its own permissions; a PAT never exceeds its user.


@pytest.mark.parametrize("role_name", ["Viewer", "Editor", "Annotator"])
@pytest.mark.parametrize("attempt", ["list", "create-default", "create-viewer", "revoke"])
def test_a_key_without_workspaces_manage_neither_lists_nor_creates_nor_revokes_keys(
    client, world, role_name, attempt
):
    key = service_key_for(world.workspace, role_name)
    victim = key_row(service_key_for(world.workspace, "Admin"))
    method, path, body = {
        "list": ("GET", "/api-key", None),
        "create-default": ("POST", "/api-key", {"name": "mine"}),  # the default role: Admin
        "create-viewer": (  # not even a weaker key
            "POST",
            "/api-key",
            {"name": "mine", "role_id": str(system_role("Viewer").pk)},
        ),
        "revoke": ("DELETE", f"/api-key/{victim.pk}", None),
    }[attempt]
    before = state()

    response = api_call(client, method, path, key, json=body)

    assert_api_refused(
        response,
        403,
        "permission_denied",
        f"service key '{role_name} key' needs {MANAGE} in workspace 'production'; "
        f"its role is {role_name}.",
        required=MANAGE,
        role=role_name,
        principal=f"service key '{role_name} key'",
        workspace=str(world.workspace.pk),
    )
    assert victim.hint not in response.content.decode()
    assert state() == before


def test_a_workspace_admin_key_lists_only_the_keys_of_its_own_workspace(client, world):
    mine = key_row(service_key_for(world.workspace, "Viewer"))
    sibling = key_row(service_key_for(world.other_workspace, "Admin"))
    org_wide = key_row(service_key_for(world.workspace, "Admin", org_scoped=True))
    key = service_key_for(world.workspace, "Admin")
    before = state()

    listed = api_call(client, "GET", "/api-key", key)

    assert listed.status_code == 200
    ids = {row["id"] for row in listed.json()}
    assert str(mine.pk) in ids
    assert str(sibling.pk) not in ids
    assert str(org_wide.pk) not in ids
    for hidden in (sibling, org_wide):
        revoked = api_call(client, "DELETE", f"/api-key/{hidden.pk}", key)
        assert_api_refused(revoked, 404, "not_found")
    assert state() == before


def test_a_workspace_admin_cannot_revoke_an_organization_scoped_key_anywhere(client, world):
    org_wide = key_row(service_key_for(world.workspace, "Admin", org_scoped=True))
    api_key = pat_for(world.workspace_admin, world.org)
    before = state()

    over_api = api_call(client, "DELETE", f"/api-key/{org_wide.pk}", api_key)
    assert_api_refused(over_api, 404, "not_found")
    assert state() == before

    client.force_login(world.workspace_admin)
    in_console = client.post(ws_url("service-key-revoke", key_id=org_wide.pk))
    assert in_console.status_code == 404, (in_console.status_code, flashes(in_console))
    assert state() == before
    listing = client.get(ws_url("service-keys"))
    assert listing.status_code == 200
    assert org_wide.hint not in text(listing)


def test_a_service_key_creates_no_personal_access_token(client, world):
    key = service_key_for(world.workspace, "Admin")
    before = state()

    response = api_call(
        client, "POST", "/orgs/current/personal-access-tokens", key, json={"name": "mine"}
    )

    assert_api_refused(response, 403, "permission_denied", required=ORG_PATS)
    assert state() == before


@pytest.mark.parametrize(
    "persona,tenant,role",
    [
        ("editor", None, "Editor"),
        ("viewer", None, "Viewer"),
        ("annotator", None, "Annotator"),
        # a workspace admin of production is nobody in staging
        ("workspace_admin", "staging", None),
        # an org viewer is read-only whatever their workspace role (Editor here)
        ("org_viewer", None, "Editor"),
    ],
)
def test_a_personal_access_token_creates_no_key_its_user_could_not(
    client, world, persona, tenant, role
):
    raw = (
        pat_of_org_viewer(world)
        if persona == "org_viewer"
        else pat_for(world.persona(persona), world.org)
    )
    tenant_id = world.other_workspace.pk if tenant == "staging" else None
    before = state()

    response = api_call(
        client,
        "POST",
        "/api-key",
        raw,
        tenant=tenant_id,
        json={"name": "k", "role_id": str(system_role("Viewer").pk)},
    )

    assert_api_refused(response, 403, "permission_denied", required=MANAGE, role=role)
    assert state() == before


def test_a_personal_access_token_loses_what_its_user_loses(client, world):
    """The token acts with the user's current permissions: a demotion reaches it at once."""
    raw = pat_for(world.workspace_admin, world.org)
    viewer = str(system_role("Viewer").pk)
    made = api_call(client, "POST", "/api-key", raw, json={"name": "before", "role_id": viewer})
    assert made.status_code == 201, made.content

    change_workspace_role(
        actor=world.org_admin,
        membership=workspace_membership(world, world.workspace_admin),
        role=system_role("Editor"),
    )
    before = state()
    as_editor = api_call(client, "POST", "/api-key", raw, json={"name": "after", "role_id": viewer})
    assert_api_refused(as_editor, 403, "permission_denied", required=MANAGE, role="Editor")
    assert state() == before

    change_org_role(
        actor=world.org_admin,
        membership=org_membership(world.workspace_admin, world.org),
        org_role="viewer",
    )
    before = state()
    as_org_viewer = api_call(
        client, "POST", "/orgs/current/personal-access-tokens", raw, json={"name": "more"}
    )
    assert_api_refused(as_org_viewer, 403, "permission_denied", required=ORG_PATS)
    whoami = api_call(client, "GET", "/auth/whoami", raw).json()
    assert set(whoami["permissions"]) == READ_CODES | {"organization:read"}
    assert state() == before


# =============================================================================================
# 4. Editors manage neither members nor keys.


@pytest.fixture
def targets(world):
    """What an editor might act on (a member, a newcomer, a key) and the roles to hand out."""
    return {
        "member": workspace_membership(world, world.viewer).pk,
        "newcomer": org_membership(world.member_without_workspace, world.org).pk,
        "newcomer_email": world.member_without_workspace.email,
        "org_member": org_membership(world.viewer, world.org).pk,
        "key": key_row(service_key_for(world.workspace, "Viewer")).pk,
        "Viewer": system_role("Viewer").pk,
        "Admin": system_role("Admin").pk,
    }


CONSOLE_MANAGEMENT = [
    (
        "workspace-member-add",
        {},
        {"email": "{newcomer_email}", "role": "{Viewer}"},
        MANAGE_MEMBERS,
    ),
    ("workspace-member-role", {"member_id": "member"}, {"role": "{Admin}"}, MANAGE_MEMBERS),
    ("workspace-members-bulk-role", {}, {"members": "{member}", "role": "{Admin}"}, MANAGE_MEMBERS),
    ("workspace-member-remove", {"member_id": "member"}, {}, MANAGE_MEMBERS),
    ("service-keys", {}, {"name": "ci", "role": "{Viewer}", "expires_in": "30"}, MANAGE),
    ("service-key-revoke", {"key_id": "key"}, {}, MANAGE),
    ("org-invite", {}, {"email": "new@example.test", "org_role": "admin"}, ORG_MANAGE),
    ("org-member-role", {"member_id": "org_member"}, {"org_role": "admin"}, ORG_MANAGE),
    ("org-member-remove", {"member_id": "org_member"}, {}, ORG_MANAGE),
]


def fill(data, targets):
    """The form or JSON body with each "{name}" placeholder replaced by that target."""
    if data is None:
        return None
    return {
        field: str(targets[value[1:-1]]) if value.startswith("{") else value
        for field, value in data.items()
    }


@pytest.mark.parametrize("persona", ["editor", "org_viewer"])
@pytest.mark.parametrize(
    "name,kwargs,data,required", CONSOLE_MANAGEMENT, ids=[c[0] for c in CONSOLE_MANAGEMENT]
)
def test_editors_manage_no_members_and_no_keys_in_the_console(
    client, world, targets, persona, name, kwargs, data, required
):
    url_kwargs = {param: targets[target] for param, target in kwargs.items()}
    path = org_url(name, **url_kwargs) if name.startswith("org-") else ws_url(name, **url_kwargs)
    client.force_login(world.persona(persona))
    before = state()

    response = client.post(path, fill(data, targets))

    assert_page_refused(response, required)
    assert "lsv2_sk_" not in text(response)
    assert state() == before


API_MANAGEMENT = [
    (
        "POST",
        "/workspaces/current/members",
        {"email": "{newcomer_email}", "role_id": "{Viewer}"},
        MANAGE_MEMBERS,
    ),
    ("PATCH", "/workspaces/current/members/{member}", {"role_id": "{Admin}"}, MANAGE_MEMBERS),
    ("DELETE", "/workspaces/current/members/{member}", None, MANAGE_MEMBERS),
    ("GET", "/api-key", None, MANAGE),
    ("POST", "/api-key", {"name": "ci", "role_id": "{Viewer}"}, MANAGE),
    ("DELETE", "/api-key/{key}", None, MANAGE),
    (
        "POST",
        "/orgs/current/members",
        {"email": "new@example.test", "org_role": "admin"},
        ORG_MANAGE,
    ),
    ("PATCH", "/orgs/current/members/{org_member}", {"org_role": "admin"}, ORG_MANAGE),
    ("DELETE", "/orgs/current/members/{org_member}", None, ORG_MANAGE),
]


@pytest.mark.parametrize("principal", ["editor's PAT", "Editor service key"])
@pytest.mark.parametrize(
    "method,path,body,required", API_MANAGEMENT, ids=[f"{m} {p}" for m, p, *_ in API_MANAGEMENT]
)
def test_editors_manage_no_members_and_no_keys_over_the_api(
    client, world, targets, principal, method, path, body, required
):
    key = (
        pat_for(world.editor, world.org)
        if principal == "editor's PAT"
        else service_key_for(world.workspace, "Editor")
    )
    before = state()

    response = api_call(client, method, path.format(**targets), key, json=fill(body, targets))

    assert_api_refused(response, 403, "permission_denied", required=required, role="Editor")
    assert state() == before


def test_an_org_viewer_with_a_workspace_admin_role_manages_nothing(client, world):
    """Org viewers are read-only everywhere, even where their workspace role is Admin."""
    WorkspaceMembership.objects.filter(
        org_membership__user=world.org_viewer, workspace=world.workspace
    ).update(role=system_role("Admin"))
    raw = pat_of_org_viewer(world)
    target = workspace_membership(world, world.viewer)
    client.force_login(world.org_viewer)
    before = state()

    page = client.post(
        ws_url("workspace-member-role", member_id=target.pk), {"role": system_role("Admin").pk}
    )
    keys_page = client.post(ws_url("service-keys"), key_form(system_role("Viewer")))
    api = api_set_member_role(client, raw, target, "Admin")
    api_key = api_call(client, "POST", "/api-key", raw, json={"name": "k"})

    assert_page_refused(page, MANAGE_MEMBERS)
    assert_page_refused(keys_page, MANAGE)
    assert_api_refused(api, 403, "permission_denied", required=MANAGE_MEMBERS, role="Admin")
    assert_api_refused(api_key, 403, "permission_denied", required=MANAGE, role="Admin")
    assert state() == before


# =============================================================================================
# 5. Organization members who are not admins create no workspaces.

NOT_ORG_ADMINS = [p for p in PERSONAS if p not in ("org_admin", "outsider")]


@pytest.mark.parametrize("persona", NOT_ORG_ADMINS)
def test_only_org_admins_create_workspaces_in_the_console(client, world, persona):
    client.force_login(world.persona(persona))
    before = state()

    response = client.post(org_url("org-workspace-create"), {"name": "Shadow", "slug": "shadow"})

    assert_page_refused(response, ORG_MANAGE)
    assert state() == before
    assert not Workspace.objects.filter(slug="shadow").exists()


@pytest.mark.parametrize(
    "principal",
    [
        *(f"PAT:{p}" for p in NOT_ORG_ADMINS),
        "workspace Admin key",
        "org-scoped Editor key",
        "org-scoped key with every workspace permission",
    ],
)
def test_only_org_admins_create_workspaces_over_the_api(client, world, principal):
    tenant = None
    if principal == "PAT:org_viewer":
        key = pat_of_org_viewer(world)
    elif principal.startswith("PAT:"):
        key = pat_for(world.persona(principal[4:]), world.org)
    elif principal == "workspace Admin key":
        key = service_key_for(world.workspace, "Admin")
    elif principal == "org-scoped Editor key":
        key, tenant = (
            service_key_for(world.workspace, "Editor", org_scoped=True),
            world.workspace.pk,
        )
    else:
        RoleFactory(
            organization=world.org, name="Everything", permissions=sorted(WORKSPACE_PERMISSIONS)
        )
        key, tenant = (
            service_key_for(world.workspace, "Everything", org_scoped=True),
            world.workspace.pk,
        )
    before = state()

    response = api_call(
        client, "POST", "/workspaces", key, tenant=tenant, json={"name": "Shadow", "slug": "shadow"}
    )

    assert_api_refused(response, 403, "permission_denied", required=ORG_MANAGE)
    assert state() == before


def test_org_admins_do_create_workspaces(client, world):
    """The control: the same request from an org admin (console) and an org-admin key (API)."""
    client.force_login(world.org_admin)
    page = client.post(org_url("org-workspace-create"), {"name": "Shadow", "slug": "shadow"})
    assert page.status_code == 302
    api = api_call(
        client,
        "POST",
        "/workspaces",
        service_key_for(world.workspace, "Admin", org_scoped=True),
        json={"name": "Lights", "slug": "lights"},
    )
    assert api.status_code == 201, api.content
    assert AuditEvent.objects.filter(action="workspace.created").count() == 2


@pytest.mark.parametrize("persona", ["workspace_admin", "editor"])
def test_only_org_admins_delete_workspaces(client, world, persona):
    client.force_login(world.persona(persona))
    before = state()

    response = client.post(ws_url("workspace-delete"), {"confirmation": "production"})

    assert_page_refused(response, ORG_MANAGE)
    assert state() == before


def test_archiving_a_workspace_is_for_org_admins_in_the_console_and_by_delete(client, world):
    client.force_login(world.workspace_admin)
    key = service_key_for(world.workspace, "Admin")
    before = state()

    page = client.post(ws_url("workspace-archive"))
    deleted = api_call(client, "DELETE", f"/workspaces/{world.workspace.pk}", key)

    assert_page_refused(page, ORG_MANAGE)
    assert_api_refused(deleted, 403, "permission_denied", required=ORG_MANAGE, role="Admin")
    assert state() == before


@pytest.mark.parametrize("principal", WORKSPACE_ADMIN_CREDENTIALS)
def test_a_workspace_admin_cannot_archive_by_patching_either(client, world, principal):
    key = workspace_admin_credential(world, principal)
    before = state()

    response = api_call(
        client, "PATCH", f"/workspaces/{world.workspace.pk}", key, json={"archived": True}
    )

    assert_api_refused(response, 403, "permission_denied", required=ORG_MANAGE)
    assert state() == before


# =============================================================================================
# 6. Custom roles hold workspace permissions only; a key's role is not edited upwards.

ORG_LEVEL_CODES = [*sorted(ORG_ADMIN_CODES), "organization:*"]  # every org code, and a wildcard


@pytest.mark.parametrize("code", ORG_LEVEL_CODES)
def test_a_custom_role_with_an_org_permission_is_refused_in_the_console(client, world, code):
    annotator = Role.objects.get(organization=world.org, name="Annotator")
    client.force_login(world.org_admin)
    before = state()

    created = client.post(
        org_url("role-create"), {"name": "Org boss", "permissions": ["datasets:read", code]}
    )
    edited = client.post(
        org_url("role-edit", role_id=annotator.pk),
        {"name": "Annotator", "permissions": [*annotator.permissions, code]},
    )

    for response in (created, edited):
        assert response.status_code == 422
        assert f"Select a valid choice. {code} is not one of the available choices." in text(
            response
        )
    assert state() == before


@pytest.mark.parametrize("code", ORG_LEVEL_CODES)
def test_a_custom_role_with_an_org_permission_is_refused_over_the_api(client, world, code):
    annotator = Role.objects.get(organization=world.org, name="Annotator")
    key = service_key_for(world.workspace, "Admin", org_scoped=True)
    before = state()

    new_role = {"name": "Org boss", "permissions": ["datasets:read", code]}
    created = api_call(client, "POST", "/orgs/current/roles", key, json=new_role)
    wider = {"permissions": [*annotator.permissions, code]}
    edited = api_call(client, "PATCH", f"/orgs/current/roles/{annotator.pk}", key, json=wider)

    expected = f"Custom roles hold only workspace permissions; not allowed: {code}"
    for response in (created, edited):
        body = assert_api_refused(response, 422, "invalid", expected)
        assert body["fields"] == {"permissions": [expected]}
    assert state() == before


@pytest.mark.parametrize("code", ORG_LEVEL_CODES)
def test_the_role_services_refuse_org_permissions(world, code):
    annotator = Role.objects.get(organization=world.org, name="Annotator")
    before = state()
    with pytest.raises(ValidationError) as created:
        create_role(
            actor=world.org_admin, organization=world.org, name="Org boss", permissions=[code]
        )
    with pytest.raises(ValidationError) as updated:
        update_role(
            actor=world.org_admin, role=annotator, permissions=[*annotator.permissions, code]
        )
    for exc in (created, updated):
        assert code in exc.value.message_dict["permissions"][0]
    assert state() == before


def test_only_org_admins_create_or_edit_roles(client, world, almost_admin_role):
    """Neither a workspace admin nor a workspace key may define what a role (or key) holds."""
    raw = pat_for(world.workspace_admin, world.org)
    client.force_login(world.workspace_admin)
    before = state()

    page_create = client.post(
        org_url("role-create"), {"name": "Mine", "permissions": sorted(WORKSPACE_PERMISSIONS)}
    )
    page_edit = client.post(
        org_url("role-edit", role_id=almost_admin_role.pk),
        {"name": "Almost admin", "permissions": sorted(WORKSPACE_PERMISSIONS)},
    )
    api_create = api_call(
        client,
        "POST",
        "/orgs/current/roles",
        raw,
        json={"name": "Mine", "permissions": sorted(WORKSPACE_PERMISSIONS)},
    )

    assert_page_refused(page_create, ORG_MANAGE)
    assert_page_refused(page_edit, ORG_MANAGE)
    assert_api_refused(api_create, 403, "permission_denied", required=ORG_MANAGE)
    assert state() == before


def test_a_key_cannot_edit_its_own_role_upwards(client, world, almost_admin_role):
    key = service_key_for(world.workspace, "Almost admin")
    before = state()

    response = api_call(
        client,
        "PATCH",
        f"/orgs/current/roles/{almost_admin_role.pk}",
        key,
        json={"permissions": sorted(WORKSPACE_PERMISSIONS)},
    )

    assert_api_refused(response, 403, "permission_denied", required=ORG_MANAGE, role="Almost admin")
    assert state() == before
    whoami = api_call(client, "GET", "/auth/whoami", key).json()
    assert MISSING not in whoami["permissions"]


def test_no_endpoint_changes_the_role_of_an_existing_key(client, world):
    """A key's role is fixed at creation: there is no way to move an existing key upwards."""
    viewer_key = key_row(service_key_for(world.workspace, "Viewer"))
    admin_key = service_key_for(world.workspace, "Admin", org_scoped=True)
    before = state()

    for method in ("PATCH", "PUT"):
        response = api_call(
            client,
            method,
            f"/api-key/{viewer_key.pk}",
            admin_key,
            tenant=world.workspace.pk,
            json={"role_id": str(system_role("Admin").pk)},
        )
        assert response.status_code == 405, response.content
    # and the Viewer role itself (a system role) is not editable, not even by an org admin key
    system = api_call(
        client,
        "PATCH",
        f"/orgs/current/roles/{system_role('Viewer').pk}",
        admin_key,
        json={"permissions": sorted(WORKSPACE_PERMISSIONS)},
    )
    assert_api_refused(system, 409, "system_role", "Built-in roles cannot be changed.")
    assert state() == before


# =============================================================================================
# 7. An organization always keeps an admin: one request at a time.


def test_the_last_admin_cannot_be_demoted_or_removed_through_the_service(world):
    membership = org_membership(world.org_admin, world.org)
    before = state()
    for attempt in (
        lambda: change_org_role(actor=SYSTEM, membership=membership, org_role="member"),
        lambda: change_org_role(actor=SYSTEM, membership=membership, org_role="viewer"),
        lambda: remove_org_member(actor=world.org_admin, membership=membership),
        lambda: remove_org_member(actor=SYSTEM, membership=membership),
    ):
        with pytest.raises(ValidationError) as exc:
            attempt()
        assert exc.value.code == "last_admin"
        assert exc.value.messages == [LAST_ADMIN]
    assert state() == before


@pytest.mark.parametrize("htmx", [False, True], ids=["form", "htmx"])
def test_the_last_admin_cannot_leave_in_the_console(client, world, htmx):
    own = org_membership(world.org_admin, world.org)
    client.force_login(world.org_admin)
    before = state()

    response = client.post(
        org_url("org-member-remove", member_id=own.pk), headers=HX if htmx else {}
    )

    if htmx:
        assert response.status_code == 204
        assert response["HX-Redirect"] == org_url("org-members")
    else:
        assert response.status_code == 302
    assert flashes(response) == [("error", LAST_ADMIN)]
    assert state() == before


@pytest.mark.parametrize("method,body", [("PATCH", {"org_role": "member"}), ("DELETE", None)])
@pytest.mark.parametrize("principal", ["org-scoped Admin key", "the admin's own PAT"])
def test_the_last_admin_cannot_be_demoted_or_removed_over_the_api(
    client, world, method, body, principal
):
    own = org_membership(world.org_admin, world.org)
    key = (
        service_key_for(world.workspace, "Admin", org_scoped=True)
        if principal == "org-scoped Admin key"
        else pat_for(world.org_admin, world.org)
    )
    before = state()

    response = api_call(client, method, f"/orgs/current/members/{own.pk}", key, json=body)

    if principal == "the admin's own PAT" and method == "PATCH":
        assert_api_refused(response, 403, "permission_denied", SELF_ORG)  # checked first
    else:
        assert_api_refused(response, 409, "last_admin", LAST_ADMIN)
    assert state() == before


def test_of_two_admins_one_may_go_and_then_the_other_must_stay(client, world, second_admin):
    client.force_login(world.org_admin)
    demoted = client.post(
        org_url("org-member-role", member_id=org_membership(second_admin, world.org).pk),
        {"org_role": "member"},
    )
    assert flashes(demoted) == [("success", f"{second_admin.email} is now member.")]

    key = service_key_for(world.workspace, "Admin", org_scoped=True)
    last = org_membership(world.org_admin, world.org)
    before = state()
    for method, body in (("PATCH", {"org_role": "viewer"}), ("DELETE", None)):
        response = api_call(client, method, f"/orgs/current/members/{last.pk}", key, json=body)
        assert_api_refused(response, 409, "last_admin", LAST_ADMIN)
    left = client.post(org_url("org-member-remove", member_id=last.pk))
    assert flashes(left) == [("error", LAST_ADMIN)]
    assert state() == before


def test_an_access_review_that_revokes_every_admin_applies_nothing(client, world, second_admin):
    """A recertification campaign is another door to removing people: all or nothing."""
    campaign = reviews.start_campaign(
        actor=world.org_admin,
        organization=world.org,
        name="Q3 review",
        deadline=timezone.now() + datetime.timedelta(days=7),
    )
    admin_memberships = {org_membership(u, world.org).pk for u in (world.org_admin, second_admin)}
    items = campaign.items.all()
    revoke = [i.pk for i in items if i.subject_id in admin_memberships]
    assert len(revoke) == 2
    reviews.decide(actor=world.org_admin, campaign=campaign, item_ids=revoke, decision=Item.REVOKE)
    keep = [i.pk for i in items if i.pk not in revoke]
    reviews.decide(actor=world.org_admin, campaign=campaign, item_ids=keep, decision=Item.KEEP)
    client.force_login(world.org_admin)
    before = state()

    response = client.post(org_url("campaign-complete", campaign_id=campaign.pk))

    assert response.status_code == 302
    ((level, message),) = flashes(response)
    assert level == "error"
    assert LAST_ADMIN in message
    assert message.endswith("Nothing was applied.")
    assert state() == before
    campaign.refresh_from_db()
    assert campaign.completed_at is None


# =============================================================================================
# 7 (continued). Two requests at the same time, on PostgreSQL.
#
# Each race: a fresh organization with exactly two admins; two threads, each with its own
# database connection, released together by a barrier; each takes away one admin (demotes or
# removes one, or removes itself). Without the organization row lock both would read "there is
# another admin" and both would commit. To make that window real rather than lucky, the
# audit record (written inside the service's transaction, after the check) holds the
# transaction open until the other request is waiting for a lock, is holding its own
# transaction open after its own check, or has finished: so every repetition is a real
# collision, whatever the scheduler does. Exactly one must succeed, and one admin remain.

REPEATS = 10
HOLD_LIMIT = 10  # seconds a transaction waits at most for the other racer (the lock_timeout)
DEMOTE, REMOVE = "demote", "remove"
CHANGE_EVENTS = ("org_member.role_changed", "org_member.removed")


class Racers:
    """The threads of the race under way: each one's database backend, and where it stands."""

    def __init__(self):
        self.backends = {}  # thread -> its connection's backend pid
        self.holding = set()  # threads holding their transaction open after their check
        self.done = set()

    def hold_open(self):
        """Keep this thread's transaction open until each other racer is blocked on a lock
        (ours, most likely), holds its own transaction open too, or has finished."""
        me = threading.get_ident()
        self.holding.add(me)
        deadline = time.monotonic() + HOLD_LIMIT
        with connection.cursor() as cursor:
            while time.monotonic() < deadline:
                others = [
                    pid
                    for thread, pid in self.backends.items()
                    if thread != me and thread not in self.holding and thread not in self.done
                ]
                if not others:
                    return
                cursor.execute(
                    "SELECT bool_and(cardinality(pg_blocking_pids(pid)) > 0) "
                    "FROM unnest(%s::int[]) AS pid",
                    [others],
                )
                if cursor.fetchone()[0]:
                    return
                time.sleep(0.002)


RACERS = Racers()


@pytest.fixture
def slow_commit(monkeypatch):
    """Hold each audited change's transaction open, after the service's checks, until the other
    racer has collided with it (Racers.hold_open)."""
    record = audit_services.record

    def record_then_wait(*args, **kwargs):
        event = record(*args, **kwargs)
        if args[1] in CHANGE_EVENTS:
            RACERS.hold_open()
        return event

    monkeypatch.setattr(audit_services, "record", record_then_wait)


def two_admin_org():
    org = OrganizationFactory(plan="enterprise")
    WorkspaceFactory(organization=org)
    a = OrganizationMembershipFactory(organization=org, org_role="admin")
    b = OrganizationMembershipFactory(organization=org, org_role="admin")
    return org, a, b


def race(*calls):
    """Run the calls at the same moment, each in its own thread and connection; their outcomes.

    An outcome is what the call returned ("ok", a status...), the code of a ValidationError, or
    the repr of any other exception (which no assertion below accepts).
    """
    global RACERS
    RACERS = racers = Racers()
    barrier = threading.Barrier(len(calls), timeout=20)
    outcomes = [None] * len(calls)

    def run(index, call):
        try:
            with connection.cursor() as cursor:
                cursor.execute("SET lock_timeout = '10s'")  # fail rather than hang
                cursor.execute("SELECT pg_backend_pid()")
                racers.backends[threading.get_ident()] = cursor.fetchone()[0]
            barrier.wait()
            outcomes[index] = call()
        except ValidationError as exc:
            outcomes[index] = exc.code or " ".join(exc.messages)
        except Exception as exc:  # any other failure is reported as the outcome
            outcomes[index] = f"error: {exc!r}"
        finally:
            racers.done.add(threading.get_ident())
            connection.close()

    threads = [threading.Thread(target=run, args=(i, c)) for i, c in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not any(thread.is_alive() for thread in threads), "a racing request hung"
    return outcomes


def admins(org):
    return list(
        OrganizationMembership.objects.filter(organization=org, org_role="admin").values_list(
            "pk", flat=True
        )
    )


def change_events(org):
    return list(
        AuditEvent.objects.filter(organization=org, action__in=CHANGE_EVENTS).values_list(
            "action", flat=True
        )
    )


def assert_one_won(org, outcomes, winner_values=("ok",)):
    """Exactly one request changed anything; the organization still has exactly one admin."""
    assert sum(o in winner_values for o in outcomes) == 1, outcomes
    assert len(admins(org)) == 1, (outcomes, admins(org))
    assert len(change_events(org)) == 1, (outcomes, change_events(org))


def service_call(operation, membership, actor):
    def call():
        if operation == DEMOTE:
            change_org_role(actor=actor, membership=membership, org_role="member")
        else:
            remove_org_member(actor=actor, membership=membership)
        return "ok"

    return call


RACES = {
    # (what thread 1 does, to whom, by whom), (what thread 2 does ...)
    "each demotes the other": ((DEMOTE, "a", "b"), (DEMOTE, "b", "a")),
    "each removes the other": ((REMOVE, "a", "b"), (REMOVE, "b", "a")),
    "one demotes, one removes": ((DEMOTE, "a", "b"), (REMOVE, "b", "a")),
    "both leave": ((REMOVE, "a", "a"), (REMOVE, "b", "b")),
}


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("race_name", list(RACES))
def test_concurrent_service_calls_keep_exactly_one_admin(on_postgres, slow_commit, race_name):
    for _ in range(REPEATS):
        org, a, b = two_admin_org()
        who = {"a": a, "b": b}
        outcomes = race(
            *(
                service_call(operation, who[target], who[actor].user)
                for operation, target, actor in RACES[race_name]
            )
        )
        # The loser always reaches the rule here (no gate in front of a service call).
        assert sorted(outcomes) == ["last_admin", "ok"], outcomes
        assert_one_won(org, outcomes)


@pytest.mark.django_db(transaction=True)
def test_the_race_is_real_without_the_lock_both_would_win(on_postgres, slow_commit, monkeypatch):
    """A check on the harness: with the organization lock taken out, the same race loses
    the last admin. So the races above pass because of the lock, not because of timing."""

    def read_without_lock(membership):
        return OrganizationMembership.objects.select_related("user", "organization").get(
            pk=membership.pk
        )

    monkeypatch.setattr(org_services, "_lock_membership", read_without_lock)
    for _ in range(3):
        org, a, b = two_admin_org()
        outcomes = race(service_call(DEMOTE, a, b.user), service_call(DEMOTE, b, a.user))
        if outcomes == ["ok", "ok"]:
            assert admins(org) == []
            return
    pytest.fail(f"the unlocked race never lost the last admin: {outcomes}")


def console_call(user, action, membership, org_role="member", after=None):
    """A console POST by `user` (own client, fresh session) taking one admin away.

    `after`: a threading.Event to wait for before posting (to order two racing requests).
    """
    client = Client()
    client.force_login(user)
    org_slug = membership.organization.slug
    if action == DEMOTE:
        path = reverse("org-member-role", args=[org_slug, membership.pk])
        data = {"org_role": org_role}
    else:
        path = reverse("org-member-remove", args=[org_slug, membership.pk])
        data = {}

    def call():
        if after is not None:
            assert after.wait(timeout=10)
        response = client.post(path, data)
        if response.status_code != 302:
            return str(response.status_code)
        (level, message), *_ = flashes(response) or [("none", "")]
        if level == "success":
            return "ok"
        return "last_admin" if message == LAST_ADMIN else message

    return call


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("race_name", list(RACES))
def test_concurrent_console_requests_keep_exactly_one_admin(on_postgres, slow_commit, race_name):
    """Two admins in two browsers press the button at the same moment."""
    locked_out = 0
    for _ in range(REPEATS):
        org, a, b = two_admin_org()
        who = {"a": a, "b": b}
        outcomes = race(
            *(
                console_call(who[actor].user, operation, who[target])
                for operation, target, actor in RACES[race_name]
            )
        )
        # The loser is refused by the rule (last_admin) or, if the winner committed before the
        # loser's request was even authorized, by the gate (403: no longer an org admin; 404:
        # no longer a member).
        assert all(o in ("ok", "last_admin", "403", "404") for o in outcomes), outcomes
        assert_one_won(org, outcomes)
        locked_out += "last_admin" in outcomes
    assert locked_out >= 1, "no repetition reached the lock; the race was not a race"


def api_call_in_thread(raw, method, membership, body=None):
    client = Client()

    def call():
        response = api_call(
            client, method, f"/orgs/current/members/{membership.pk}", raw, json=body
        )
        if response.status_code in (200, 204):
            return "ok"
        try:
            return response.json()["error"]
        except ValueError:
            return str(response.status_code)

    return call


API_RACES = {
    "each demotes the other": (("a", "PATCH", "b"), ("b", "PATCH", "a")),
    "each removes the other": (("a", "DELETE", "b"), ("b", "DELETE", "a")),
    "both leave": (("a", "DELETE", "a"), ("b", "DELETE", "b")),
}
# An org-scoped Admin key demoting both admins is no race any more: it may demote neither
# (it lacks organization:pats:create, so it holds less than an org admin; see
# tests/rbac/test_security_rules.py).


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("race_name", list(API_RACES))
def test_concurrent_api_requests_keep_exactly_one_admin(on_postgres, slow_commit, race_name):
    """Two SDK clients (each admin's PAT, or one org-scoped Admin key twice) at the same moment."""
    locked_out = 0
    for _ in range(REPEATS):
        org, a, b = two_admin_org()
        workspace = org.workspaces.get()
        system_role("Admin")  # a flush between transactional tests empties the roles table
        raw_keys = {
            "a": pat_for(a.user, org),
            "b": pat_for(b.user, org),
            "key": service_key_for(workspace, "Admin", org_scoped=True),
        }
        who = {"a": a, "b": b}
        outcomes = race(
            *(
                api_call_in_thread(
                    raw_keys[actor],
                    method,
                    who[target],
                    {"org_role": "member"} if method == "PATCH" else None,
                )
                for actor, method, target in API_RACES[race_name]
            )
        )
        # The loser: 409 last_admin, or, when the winner committed first, refused at the door
        # (403 permission_denied after a demotion, 401 after its own removal took its token).
        assert all(
            o in ("ok", "last_admin", "permission_denied", "invalid_api_key") for o in outcomes
        ), outcomes
        assert_one_won(org, outcomes)
        locked_out += "last_admin" in outcomes
    assert locked_out >= 1, "no repetition reached the lock; the race was not a race"


@pytest.mark.django_db(transaction=True)
def test_changing_a_member_who_is_being_removed_is_refused_not_a_500(on_postgres, monkeypatch):
    """Admin A removes a member; admin B changes that member's role while A's removal is open.

    B's request finds the member (A has not committed), then waits for the organization lock;
    when it gets it, the member is gone. B must be told so (or get a 404), not a server error.
    """
    record, removing = audit_services.record, threading.Event()

    def record_then_hold(*args, **kwargs):
        event = record(*args, **kwargs)
        if args[1] == "org_member.removed":
            removing.set()  # A holds the lock, its removal not yet committed
            RACERS.hold_open()  # until B waits for it (or has given up)
        return event

    monkeypatch.setattr(audit_services, "record", record_then_hold)
    org, a, b = two_admin_org()
    target = OrganizationMembershipFactory(organization=org, org_role="viewer")

    outcomes = race(
        console_call(a.user, REMOVE, target),
        console_call(b.user, DEMOTE, target, org_role="member", after=removing),
    )

    assert outcomes[0] == "ok", outcomes
    assert outcomes[1] in ("This person is no longer a member of the organization.", "404"), (
        outcomes
    )
    assert len(admins(org)) == 2
    assert not OrganizationMembership.objects.filter(pk=target.pk).exists()


# =============================================================================================
# 8. A personal access token dies with its user's membership.


@pytest.mark.parametrize("remover", ["console", "API", "service"])
def test_a_pat_dies_with_its_users_membership(client, world, remover):
    raw = pat_for(world.workspace_admin, world.org)
    token = key_row(raw)
    for _ in range(2):  # a cached principal must not outlive the membership either
        assert api_call(client, "GET", "/auth/whoami", raw).status_code == 200
    membership = org_membership(world.workspace_admin, world.org)

    if remover == "console":
        admin_client = Client()
        admin_client.force_login(world.org_admin)
        response = admin_client.post(org_url("org-member-remove", member_id=membership.pk))
        assert flashes(response) == [
            ("success", f"{world.workspace_admin.email} was removed from Acme.")
        ]
    elif remover == "API":
        key = service_key_for(world.workspace, "Admin", org_scoped=True)
        response = api_call(client, "DELETE", f"/orgs/current/members/{membership.pk}", key)
        assert response.status_code == 204, response.content
    else:
        remove_org_member(actor=world.org_admin, membership=membership)

    assert_api_refused(api_call(client, "GET", "/auth/whoami", raw), 401, "invalid_api_key")
    made = api_call(client, "POST", "/api-key", raw, json={"name": "parting gift"})
    assert_api_refused(made, 401, "invalid_api_key")
    assert not PersonalAccessToken.objects.filter(pk=token.pk).exists()
    (deleted,) = AuditEvent.objects.filter(action="personal_access_token.deleted")
    assert deleted.target_id == str(token.pk)
    assert deleted.changes["after"] == {"reason": "user removed from the organization"}

    # Coming back does not bring the token back, and the console is closed to them meanwhile.
    client.force_login(world.workspace_admin)
    assert client.get(ws_url("workspace-home")).status_code == 404
    OrganizationMembershipFactory(user=world.workspace_admin, organization=world.org)
    assert_api_refused(api_call(client, "GET", "/auth/whoami", raw), 401, "invalid_api_key")


def test_a_pat_of_one_org_is_nothing_in_another(client, world):
    """Membership is per organization: the outsider's Globex token reaches nothing in Acme."""
    raw = pat_for(world.outsider, world.other_org)
    before = state()
    response = api_call(
        client, "POST", "/api-key", raw, tenant=world.workspace.pk, json={"name": "x"}
    )
    assert_api_refused(response, 403, "workspace_not_accessible")
    assert state() == before


def test_unknown_ids_never_turn_into_a_grant(client, world):
    """A role id that is not this organization's is refused, not silently replaced by a default."""
    foreign = RoleFactory(
        organization=world.other_org, name="Globex root", permissions=sorted(WORKSPACE_PERMISSIONS)
    )
    key = service_key_for(world.workspace, "Admin")
    target = workspace_membership(world, world.viewer)
    before = state()
    for role_id in (foreign.pk, uuid.uuid4()):
        made = api_call(
            client, "POST", "/api-key", key, json={"name": "x", "role_id": str(role_id)}
        )
        assert_api_refused(made, 422, "invalid", "No such role in this organization.")
        changed = api_set_member_role(client, key, target, role_id)
        assert_api_refused(changed, 422, "invalid", "No such role in this organization.")
    assert state() == before


# --- Round-abouts: a person's own key, a stronger member, a key minting admins -----------------


def test_a_service_key_its_owner_made_cannot_change_its_owners_role(client, world):
    """A workspace admin makes an Admin key, is demoted, and tries to climb back with the key."""
    admin_key, _row = create_service_key(
        actor=actor_with(WORKSPACE_PERMISSIONS, world.workspace_admin),
        organization=world.org,
        workspace=world.workspace,
        name="mine",
        role=system_role("Admin"),
    )[::-1]
    own = workspace_membership(world, world.workspace_admin)
    change_workspace_role(actor=world.org_admin, membership=own, role=system_role("Viewer"))
    before = state()

    response = api_set_member_role(client, admin_key, own, "Admin")

    assert response.status_code == 403, response.content
    assert "your own role" in response.json()["detail"]
    assert state() == before


def test_a_member_manager_cannot_change_someone_who_holds_more(world):
    """Holding workspaces:manage-members is not enough to demote an Admin."""
    manager_role = create_role(
        actor=world.org_admin,
        organization=world.org,
        name="Member manager",
        permissions=["workspaces:read", "workspaces:manage-members"],
    )
    manager_codes = frozenset(manager_role.permission_set)
    admin = workspace_membership(world, world.workspace_admin)
    before = state()

    with pytest.raises(ValidationError, match="holds permissions you do not"):
        change_workspace_role(
            actor=actor_with(manager_codes, world.editor),
            membership=admin,
            role=manager_role,
        )

    assert state() == before


def test_an_org_scoped_admin_key_cannot_make_anyone_an_org_admin(client, world):
    """An org admin holds every org permission; an org-scoped Admin key does not (PATs)."""
    raw = service_key_for(world.workspace, "Admin", org_scoped=True)
    target = org_membership(world.editor, world.org)
    before = state()

    promoted = api_call(
        client, "PATCH", f"/orgs/current/members/{target.pk}", raw, json={"org_role": "admin"}
    )
    invite = {"email": "new-admin@acme.test", "org_role": "admin"}
    invited = api_call(client, "POST", "/orgs/current/members", raw, json=invite)

    for response in (promoted, invited):
        assert response.status_code == 403, response.content
        assert response.json()["error"] == "escalation"
        assert "organization:pats:create" in response.json()["detail"]
    assert state() == before
    # Members it may still make.
    demoted = api_call(
        client, "PATCH", f"/orgs/current/members/{target.pk}", raw, json={"org_role": "viewer"}
    )
    assert demoted.status_code == 200, demoted.content
