"""The identity provider's whole round trip, through a real SCIM client (scim2-client) against
a live server: provision, map a group to a workspace role, deprovision.

Done when (issue 15): a SCIM client creates a user, adds them to a group mapped to Editor in
production (they can now create datasets with a personal access token), then deactivates
them: the very next request with that token is 401 and the audit log shows each step.
"""

import httpx2
import pytest
from django.contrib.sessions.models import Session
from scim2_models import Email, Group, GroupMember, Name, PatchOp, PatchOperation, User

from accesscontrol.accounts.models import SignedInSession
from accesscontrol.apikeys.models import PersonalAccessToken
from accesscontrol.audit.models import AuditEvent
from accesscontrol.organizations.models import OrganizationMembership
from accesscontrol.scim import services
from accesscontrol.scim.models import ScimGroup
from accesscontrol.workspaces.models import WorkspaceMembership
from tests.factories import PASSWORD, pat_for, system_role

pytestmark = pytest.mark.django_db(transaction=True)


def create_dataset(live_server, key, workspace, name):
    return httpx2.post(
        f"{live_server.url}/api/v1/datasets",
        headers={"X-API-Key": key, "X-Tenant-Id": str(workspace.pk)},
        json={"name": name},
        timeout=15,
    )


def test_create_map_deactivate_the_very_next_pat_request_is_401(
    world, live_server, scim_client, client
):
    # 1. The identity provider creates the person: an org member (source SCIM), no workspace.
    created = scim_client.create(
        User(
            user_name="grace@example.com",
            name=Name(given_name="Grace", family_name="Hopper"),
            emails=[Email(value="grace@example.com", primary=True, type="work")],
            active=True,
        )
    )
    assert created.id and created.active is True
    membership = OrganizationMembership.objects.get(
        organization=world.org, user__email="grace@example.com"
    )
    assert (membership.org_role, membership.source) == ("member", "scim")
    grace = membership.user

    # 2. It pushes a group, which the org admin maps to Editor in production.
    engineers = scim_client.create(Group(display_name="Engineers"))
    services.add_group_mapping(
        actor=world.org_admin,
        group=ScimGroup.objects.get(pk=engineers.id),
        workspace=world.workspace,
        role=system_role("Editor"),
    )

    # 3. Grace joins the group (the way Okta sends it): Editor in production, source SCIM.
    scim_client.modify(
        Group,
        engineers.id,
        PatchOp[Group](
            operations=[PatchOperation(op="add", path="members", value=[{"value": created.id}])]
        ),
    )
    ws_membership = WorkspaceMembership.objects.get(org_membership=membership)
    assert (ws_membership.workspace, ws_membership.role.name, ws_membership.source) == (
        world.workspace,
        "Editor",
        "scim",
    )
    token = pat_for(grace, world.org)
    made = create_dataset(live_server, token, world.workspace, "grace-data")
    assert made.status_code == 201, made.text
    # ... and she has a console session.
    grace.set_password(PASSWORD)
    grace.save()
    assert client.post("/login/", {"login": grace.email, "password": PASSWORD}).status_code == 302
    assert SignedInSession.objects.filter(user=grace).count() == 1

    # 4. The identity provider deactivates her.
    deactivated = scim_client.modify(
        User,
        created.id,
        PatchOp[User](operations=[PatchOperation(op="replace", value={"active": False})]),
    )
    assert deactivated.active is False

    # The very next request with her token is refused; she is out of the organization, her
    # tokens and sessions are gone.
    refused = create_dataset(live_server, token, world.workspace, "after")
    assert refused.status_code == 401, refused.text
    assert not OrganizationMembership.objects.filter(user=grace, organization=world.org).exists()
    assert not PersonalAccessToken.objects.filter(org_membership__user=grace).exists()
    assert not SignedInSession.objects.filter(user=grace).exists()
    assert Session.objects.count() == 0
    assert client.get(f"/o/{world.org.slug}/").status_code == 302  # signed out

    # The audit log shows each step, with the SCIM token as the actor.
    steps = list(
        AuditEvent.objects.filter(organization=world.org, actor_kind="scim_token")
        .order_by("id")
        .values_list("action", "target_label")
    )
    assert steps == [
        ("scim_user.created", "grace@example.com"),
        ("org_member.added", "grace@example.com"),
        ("scim_group.created", "Engineers"),
        ("scim_group.member_added", "Engineers"),
        ("workspace_member.added", "grace@example.com"),
        (
            "personal_access_token.deleted",
            "personal access token 'test token' of grace@example.com",
        ),
        ("org_member.removed", "grace@example.com"),
        ("scim_user.deactivated", "grace@example.com"),
    ]
    labels = set(
        AuditEvent.objects.filter(actor_kind="scim_token").values_list("actor_label", flat=True)
    )
    assert labels == {f"SCIM token lsv2_scim_…{scim_client.client.headers['Authorization'][-4:]}"}

    # 5. Reactivated, she is a member again, with what her group maps to.
    scim_client.modify(
        User,
        created.id,
        PatchOp[User](operations=[PatchOperation(op="replace", path="active", value=True)]),
    )
    again = OrganizationMembership.objects.get(user=grace, organization=world.org)
    assert WorkspaceMembership.objects.get(org_membership=again).role.name == "Editor"


def test_a_real_client_reads_lists_filters_and_replaces(world, scim_client):
    for n in range(3):
        scim_client.create(User(user_name=f"user{n}@example.com", display_name=f"User {n}"))
    page = scim_client.query(User, query_parameters={"start_index": 2, "count": 1})
    assert (page.total_results, page.start_index, len(page.resources)) == (3, 2, 1)
    found = scim_client.query(User, query_parameters={"filter": 'userName eq "USER1@example.com"'})
    assert [u.user_name for u in found.resources] == ["user1@example.com"]
    one = found.resources[0]
    one.display_name = "Renamed"
    replaced = scim_client.replace(one)
    assert replaced.display_name == "Renamed"
    group = scim_client.create(Group(display_name="Ops", members=[GroupMember(value=one.id)]))
    read = scim_client.query(Group, group.id)
    assert [m.value for m in read.members] == [one.id]
    scim_client.delete(Group, group.id)
    scim_client.delete(User, one.id)
    assert scim_client.query(User).total_results == 2
