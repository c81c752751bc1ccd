"""Findings 4, 5, 8, 9 and 10 of the outside review (issue #12), each with the class it belongs to.

4. Nobody adds, changes or removes-and-adds themself back, through any key in their chain.
5. Every action that widens access asks for sudo (tests/accounts/test_sudo_actions.py lists them); a
   plan switched down and up leaves no key stronger than its grantor's own role.
8. Remove >= change: whoever may not change someone may not remove them.
9. An invitation hands out only what its sender may still hand out when it is accepted.
10. Adding a workspace member answers alike for an unknown address and another org's account.
Also: archived workspaces refuse new keys and renames; every CSV export escapes formulas.
"""

import csv
import io

import pytest
from django.core.exceptions import ValidationError

from accesscontrol.apikeys.models import ServiceKey
from accesscontrol.apikeys.services import create_service_key, revoke_service_key
from accesscontrol.organizations.models import OrganizationMembership
from accesscontrol.organizations.services import (
    accept_invitation,
    change_org_role,
    find_invitation,
    invite_member,
    remove_org_member,
    update_organization_settings,
)
from accesscontrol.rbac.permissions import ALL_PERMISSIONS
from accesscontrol.rbac.resolver import resolve_access
from accesscontrol.workspaces.models import WorkspaceMembership
from accesscontrol.workspaces.services import (
    change_workspace_role,
    remove_workspace_member,
    update_workspace,
)
from tests.factories import (
    RoleFactory,
    UserFactory,
    actor_with,
    add_member,
    pat_for,
    service_key_for,
    system_role,
)
from tests.support.api import api_call, api_set_member_role


def ws_membership(user, workspace):
    return WorkspaceMembership.objects.get(org_membership__user=user, workspace=workspace)


def org_membership(user, org):
    return OrganizationMembership.objects.get(user=user, organization=org)


def key_made_by(user, workspace, role="Admin", *, org_scoped=False):
    """A service key its user made in the console (they held the power then)."""
    held = resolve_access(user, workspace.organization_id, workspace).grantable
    _key, raw = create_service_key(
        actor=actor_with(held, user),
        organization=workspace.organization,
        workspace=None if org_scoped else workspace,
        name=f"{user.email}'s key",
        role=system_role(role),
    )
    return raw


def demote(world, user, role="Viewer"):
    change_workspace_role(
        actor=actor_with(ALL_PERMISSIONS, world.org_admin),
        membership=ws_membership(user, world.workspace),
        role=system_role(role),
    )


# --- 4. nobody lifts themself back -------------------------------------------------------------


def test_a_demoted_admins_old_key_cannot_remove_and_add_its_owner_back_as_admin(client, world):
    raw = key_made_by(world.workspace_admin, world.workspace)
    demote(world, world.workspace_admin)
    member = ws_membership(world.workspace_admin, world.workspace)

    # Leaving is allowed (it only narrows) ...
    assert (
        api_call(client, "DELETE", f"/workspaces/current/members/{member.pk}", raw).status_code
        == 204
    )
    # ... coming back as Admin through one's own key is not.
    response = api_call(
        client,
        "POST",
        "/workspaces/current/members",
        raw,
        json={"email": world.workspace_admin.email, "role_id": str(system_role("Admin").pk)},
    )
    assert response.status_code in (403, 422), response.content
    assert "yourself" in response.json()["detail"]
    assert not WorkspaceMembership.objects.filter(
        org_membership__user=world.workspace_admin, workspace=world.workspace
    ).exists()


def test_a_key_minted_by_a_key_keeps_the_creator_so_it_cannot_promote_them(client, world):
    raw = key_made_by(world.workspace_admin, world.workspace)
    demote(world, world.workspace_admin)
    minted = api_call(client, "POST", "/api-key", raw, json={"name": "child"})
    assert minted.status_code == 201, minted.content
    child = ServiceKey.objects.get(name="child")
    assert child.created_by_id == world.workspace_admin.pk
    grandchild = api_call(client, "POST", "/api-key", minted.json()["key"], json={"name": "gc"})
    assert ServiceKey.objects.get(name="gc").created_by_id == world.workspace_admin.pk

    member = ws_membership(world.workspace_admin, world.workspace)
    for key in (minted.json()["key"], grandchild.json()["key"]):
        response = api_set_member_role(client, key, member, "Admin")
        assert response.status_code in (403, 422), response.content
    assert ws_membership(world.workspace_admin, world.workspace).role.name == "Viewer"


def _actors_of(world, user, client):
    """Every way `user` can act over the API: their PAT, their key, a key their key minted."""
    pat = pat_for(user, world.org)
    key = key_made_by(user, world.workspace)
    minted = api_call(client, "POST", "/api-key", key, json={"name": "minted"}).json()["key"]
    return {"pat": pat, "key": key, "minted key": minted}


MEMBERSHIP_CHANGES = {
    "add": lambda w, m: (
        "POST",
        "/workspaces/current/members",
        {"email": w.workspace_admin.email, "role_id": str(system_role("Admin").pk)},
    ),
    "change": lambda w, m: (
        "PATCH",
        f"/workspaces/current/members/{m.pk}",
        {"role_id": str(system_role("Admin").pk)},
    ),
}


@pytest.mark.parametrize("change", list(MEMBERSHIP_CHANGES))
def test_no_way_of_acting_lets_a_user_change_their_own_workspace_membership(client, world, change):
    actors = _actors_of(world, world.workspace_admin, client)
    member = ws_membership(world.workspace_admin, world.workspace)
    if change == "add":
        member.delete()
    for name, raw in actors.items():
        method, path, body = MEMBERSHIP_CHANGES[change](world, member)
        response = api_call(client, method, path, raw, json=body)
        assert response.status_code in (403, 422), (name, response.content)


def test_no_way_of_acting_lets_an_org_admin_change_their_own_org_role(client, world):
    raw_pat = pat_for(world.org_admin, world.org)
    raw_key = key_made_by(world.org_admin, world.workspace, org_scoped=True)
    own = org_membership(world.org_admin, world.org)
    add_member(world.org, org_role="admin")  # not the last admin: only the self rule refuses
    for raw in (raw_pat, raw_key):
        response = api_call(
            client,
            "PATCH",
            f"/orgs/current/members/{own.pk}",
            raw,
            tenant=world.workspace.pk,
            json={"org_role": "member"},
        )
        assert response.status_code in (403, 422), response.content
    assert org_membership(world.org_admin, world.org).org_role == "admin"


# --- 8. remove >= change ---------------------------------------------------------------------


def test_a_custom_member_manager_can_neither_demote_nor_remove_a_workspace_admin(client, world):
    managers = RoleFactory(
        organization=world.org,
        name="Member managers",
        permissions=["workspaces:read", "workspaces:manage-members"],
    )
    manager = add_member(world.org, world.workspace, managers)
    client.force_login(manager)
    target = ws_membership(world.workspace_admin, world.workspace)
    base = f"/o/acme/w/production/members/{target.pk}"

    client.post(f"{base}/role/", {"role": system_role("Viewer").pk})
    client.post(f"{base}/remove/")

    assert ws_membership(world.workspace_admin, world.workspace).role.name == "Admin"


def test_an_org_scoped_admin_key_can_neither_demote_nor_remove_an_org_admin(client, world):
    raw = service_key_for(world.workspace, "Admin", org_scoped=True)
    second = add_member(world.org, org_role="admin")
    target = org_membership(second, world.org)
    path = f"/orgs/current/members/{target.pk}"

    demoted = api_call(client, "PATCH", path, raw, json={"org_role": "member"})
    removed = api_call(client, "DELETE", path, raw)

    assert demoted.status_code == 403, demoted.content
    assert removed.status_code == 403, removed.content
    assert "organization:pats:create" in removed.json()["detail"]
    assert org_membership(second, world.org).org_role == "admin"
    # Members hold nothing the key could not grant: those it may still remove.
    member = org_membership(world.member_without_workspace, world.org)
    assert api_call(client, "DELETE", f"/orgs/current/members/{member.pk}", raw).status_code == 204


ROLE_NAMES = ["Admin", "Editor", "Viewer", "Annotator", "Managers"]


def _role(world, name):
    if name == "Managers":
        return RoleFactory(
            organization=world.org,
            name="Managers",
            permissions=["workspaces:read", "workspaces:manage-members", "runs:read"],
        )
    if name == "Annotator":
        return world.org.roles.get(name="Annotator")
    return system_role(name)


@pytest.mark.parametrize("actor_role", ROLE_NAMES)
@pytest.mark.parametrize("target_role", ROLE_NAMES)
def test_whoever_may_not_change_someone_may_not_remove_them(world, actor_role, target_role):
    """The class: over every pair of roles, a refused change means a refused removal."""
    roles = {name: _role(world, name) for name in {actor_role, target_role}}
    actor = add_member(world.org, world.workspace, roles[actor_role])
    target_user = add_member(world.org, world.workspace, roles[target_role])
    held = resolve_access(actor, world.org.pk, world.workspace).grantable
    target = ws_membership(target_user, world.workspace)

    def refused(call):
        try:
            call()
        except ValidationError:
            return True
        return False

    other_role = system_role("Viewer" if target_role != "Viewer" else "Editor")
    change_refused = refused(
        lambda: change_workspace_role(
            actor=actor_with(held, actor), membership=target, role=other_role
        )
    )
    target = ws_membership(target_user, world.workspace)
    remove_refused = refused(
        lambda: remove_workspace_member(actor=actor_with(held, actor), membership=target)
    )
    held_by_target = roles[target_role].permission_set
    if not held_by_target <= held:
        assert change_refused and remove_refused
    if change_refused and other_role.permission_set <= held:
        assert remove_refused


def test_org_level_remove_follows_change(world):
    """An org manager that lacks what an org admin holds may neither demote nor remove one."""
    second = add_member(world.org, org_role="admin")
    weaker = frozenset({"organization:read", "organization:manage"})
    for call in (
        lambda m: change_org_role(actor=actor_with(weaker), membership=m, org_role="member"),
        lambda m: remove_org_member(actor=actor_with(weaker), membership=m),
    ):
        with pytest.raises(ValidationError) as exc:
            call(org_membership(second, world.org))
        assert exc.value.code == "permission"
    assert org_membership(second, world.org).org_role == "admin"


# --- 5. the plan is no ladder ----------------------------------------------------------------


def test_a_viewer_key_cannot_mint_an_admin_key_while_the_plan_makes_everyone_admin(client, world):
    raw = service_key_for(world.workspace, "Viewer")
    update_organization_settings(actor=world.org_admin, organization=world.org, plan="developer")

    response = api_call(client, "POST", "/api-key", raw, json={"name": "ladder"})

    assert response.status_code in (403, 422), response.content
    assert not ServiceKey.objects.filter(name="ladder").exists()
    update_organization_settings(actor=world.org_admin, organization=world.org, plan="enterprise")
    # A member whose own role is Admin still hands out keys on any plan.
    admin_key = key_made_by(world.workspace_admin, world.workspace)
    update_organization_settings(actor=world.org_admin, organization=world.org, plan="developer")
    assert api_call(client, "POST", "/api-key", admin_key, json={"name": "ok"}).status_code == 201


def test_a_member_with_a_viewer_role_cannot_add_admins_on_a_lower_plan(client, world):
    update_organization_settings(actor=world.org_admin, organization=world.org, plan="plus")
    client.force_login(world.viewer)
    newcomer = add_member(world.org)
    client.post(
        "/o/acme/w/production/members/add/",
        {"email": newcomer.email, "role": system_role("Admin").pk},
    )
    assert not WorkspaceMembership.objects.filter(org_membership__user=newcomer).exists()


# --- 9. invitations are re-checked when accepted ---------------------------------------------


def _invite_second_self(world, inviter, **kwargs):
    invitation, raw = invite_member(
        actor=actor_with(resolve_access(inviter, world.org.pk).grantable, inviter),
        organization=world.org,
        email="second.self@example.test",
        org_role="admin",
        **kwargs,
    )
    return invitation, raw


@pytest.mark.parametrize("loss", ["demoted", "removed"])
def test_an_invitation_dies_with_its_inviters_power(world, loss):
    inviter = add_member(world.org, org_role="admin")
    _, raw = _invite_second_self(world, inviter)
    membership = org_membership(inviter, world.org)
    if loss == "demoted":
        change_org_role(actor=world.org_admin, membership=membership, org_role="member")
    else:
        remove_org_member(actor=world.org_admin, membership=membership)
    second_self = UserFactory(email="second.self@example.test")

    with pytest.raises(ValidationError) as exc:
        accept_invitation(invitation=find_invitation(raw), user=second_self)

    assert "no longer grant" in exc.value.messages[0]
    assert not OrganizationMembership.objects.filter(user=second_self).exists()


def test_an_invitation_from_an_inviter_who_kept_their_power_is_accepted(world):
    _, raw = _invite_second_self(world, world.org_admin)
    second_self = UserFactory(email="second.self@example.test")
    membership = accept_invitation(invitation=find_invitation(raw), user=second_self)
    assert membership.org_role == "admin"


def test_an_invitation_sent_by_a_key_dies_when_the_key_is_revoked(client, world):
    raw_key = service_key_for(world.workspace, "Admin", org_scoped=True)
    response = api_call(
        client,
        "POST",
        "/orgs/current/members",
        raw_key,
        json={
            "email": "new@example.test",
            "workspace_ids": [str(world.workspace.pk)],
            "workspace_role_id": str(system_role("Editor").pk),
        },
    )
    assert response.status_code == 201, response.content
    key = ServiceKey.objects.get(workspace__isnull=True)
    invitation = world.org.invitations.get(email="new@example.test")
    assert invitation.created_by_service_key_id == key.pk
    revoke_service_key(actor=world.org_admin, key=key)
    invitation.refresh_from_db()

    with pytest.raises(ValidationError):
        accept_invitation(invitation=invitation, user=UserFactory(email="new@example.test"))


# --- 10. no account enumeration across organizations -----------------------------------------


def test_adding_a_member_answers_alike_for_another_orgs_account_and_an_unknown_address(
    client, world
):
    raw = service_key_for(world.workspace, "Admin")
    answers = [
        api_call(
            client,
            "POST",
            "/workspaces/current/members",
            raw,
            json={"email": email, "role_id": str(system_role("Viewer").pk)},
        )
        for email in (world.outsider.email, "nobody@nowhere.test")
    ]
    assert answers[0].status_code == answers[1].status_code == 422
    assert answers[0].json() == answers[1].json()


# --- archived workspaces are read-only, keys and names included ------------------------------


def test_an_archived_workspace_refuses_new_keys_and_renames(client, world):
    raw = service_key_for(world.workspace, "Admin")
    update_workspace(actor=world.org_admin, workspace=world.workspace, archived=True)

    created = api_call(client, "POST", "/api-key", raw, json={"name": "late"})
    renamed = api_call(
        client, "PATCH", f"/workspaces/{world.workspace.pk}", raw, json={"name": "x"}
    )
    client.force_login(world.workspace_admin)
    client.post(
        "/o/acme/w/production/keys/",
        {"name": "late2", "role": system_role("Viewer").pk, "expires_in": "30"},
    )
    client.post("/o/acme/w/production/settings/", {"name": "y"})

    assert created.status_code in (403, 409, 422), created.content
    assert renamed.status_code == 422, renamed.content
    world.workspace.refresh_from_db()
    assert world.workspace.name == "production"
    assert not ServiceKey.objects.filter(name__in=["late", "late2"]).exists()
    # Restoring and renaming at once is fine.
    restored = update_workspace(
        actor=world.org_admin, workspace=world.workspace, name="prod", archived=False
    )
    assert (restored.name, restored.archived) == ("prod", False)


# --- CSV exports escape formulas -------------------------------------------------------------


@pytest.mark.parametrize(
    "url", ["/o/acme/w/production/access/export.csv", "/o/acme/audit/export.csv"]
)
def test_every_csv_export_escapes_formula_cells(client, world, url):
    create_service_key(
        actor=actor_with(ALL_PERMISSIONS, world.org_admin),
        organization=world.org,
        workspace=world.workspace,
        name='=HYPERLINK("http://evil.test","x")',
        role=system_role("Viewer"),
    )
    client.force_login(world.org_admin)
    response = client.get(url)
    assert response.status_code == 200
    cells = [
        c
        for row in csv.reader(io.StringIO(b"".join(response.streaming_content).decode()))
        for c in row
    ]
    assert any("HYPERLINK" in c for c in cells)
    assert not any(c.startswith(("=", "+", "-", "@")) for c in cells), [
        c for c in cells if c.startswith(("=", "+", "-", "@"))
    ]
