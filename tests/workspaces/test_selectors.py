"""What an actor may see of a workspace's members and which roles it may hand out there."""

from accesscontrol.rbac.actor import Actor
from accesscontrol.rbac.permissions import WORKSPACE_PERMISSIONS
from accesscontrol.workspaces.models import WorkspaceMembership
from accesscontrol.workspaces.services import grantable_roles, workspace_members
from tests.factories import RoleFactory, actor_with, pat_for
from tests.support.api import api_call


def actor_in(world, persona, workspace=None):
    workspace = workspace or world.workspace
    return Actor.for_user(world.persona(persona), world.org, workspace)


def test_workspace_members_are_that_workspaces_ordered_by_email(world):
    members = list(workspace_members(actor_in(world, "viewer"), world.workspace))
    emails = [m.org_membership.user.email for m in members]
    assert emails == sorted(emails)
    assert {m.workspace_id for m in members} == {world.workspace.pk}
    assert world.member_without_workspace.email not in emails


def test_workspace_members_need_workspaces_read_there(world):
    outsider = Actor.for_user(world.outsider, world.other_org, world.other_workspace_of_other_org)
    assert not workspace_members(outsider, world.workspace).exists()
    assert not workspace_members(actor_with(set(), world.viewer), world.workspace).exists()


def test_a_member_of_another_workspace_is_not_found_through_the_api(client, world):
    theirs = WorkspaceMembership.objects.filter(workspace=world.other_workspace_of_other_org).get()
    key = pat_for(world.org_admin, world.org)
    response = api_call(
        client, "DELETE", f"/workspaces/current/members/{theirs.pk}", key, tenant=world.workspace.pk
    )
    assert response.status_code == 404
    assert WorkspaceMembership.objects.filter(pk=theirs.pk).exists()


def test_grantable_roles_hold_nothing_the_actor_lacks_there(world):
    narrow = RoleFactory(organization=world.org, name="Narrow", permissions=["runs:read"])
    admin_roles = {
        r.name for r in grantable_roles(actor_in(world, "workspace_admin"), world.workspace)
    }
    assert {"Admin", "Editor", "Viewer", "Narrow", "Annotator"} <= admin_roles
    reader = actor_with({"runs:read", "workspaces:manage-members"}, world.viewer)
    assert grantable_roles(reader, world.workspace) == [narrow]
    everything = actor_with(WORKSPACE_PERMISSIONS, world.viewer)
    assert len(grantable_roles(everything, world.workspace)) == len(admin_roles)
