"""Groups grant workspace roles through the mappings an org admin edits: the strongest mapped
role per workspace, applied and taken back through the workspace services, never touching a
membership made by hand."""

import datetime

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from accesscontrol.scim import services
from accesscontrol.scim.models import ScimGroup
from accesscontrol.workspaces.models import WorkspaceMembership
from tests.factories import OrganizationFactory, WorkspaceFactory, system_role
from tests.scim.conftest import group_body, patch_body, user_body

pytestmark = pytest.mark.django_db


def provision(scim, email):
    response = scim("POST", "Users", user_body(email))
    assert response.status_code == 201, response.content
    return response.json()["id"]


def new_group(scim, name):
    """A group the IdP pushed, mapped to nothing yet."""
    response = scim("POST", "Groups", group_body(name))
    return ScimGroup.objects.get(pk=response.json()["id"])


def map_group(actor, group, workspace, role):
    return services.add_group_mapping(
        actor=actor, group=group, workspace=workspace, role=system_role(role)
    )


def group(scim, name, workspace, role, admin):
    found = new_group(scim, name)
    map_group(admin, found, workspace, role)
    return found


def join(scim, group, user_id):
    body = patch_body({"op": "add", "path": "members", "value": [{"value": user_id}]})
    assert scim("PATCH", f"Groups/{group.pk}", body).status_code == 200


def leave(scim, group, user_id):
    body = patch_body({"op": "remove", "path": f'members[value eq "{user_id}"]'})
    assert scim("PATCH", f"Groups/{group.pk}", body).status_code == 200


def roles_of(email):
    return {
        (m.workspace.slug, m.role.name, m.source)
        for m in WorkspaceMembership.objects.filter(org_membership__user__email=email)
    }


def test_two_groups_on_one_workspace_give_the_stronger_role(scim, world):
    grace = provision(scim, "grace@example.com")
    viewers = group(scim, "Viewers", world.workspace, "Viewer", world.org_admin)
    editors = group(scim, "Editors", world.workspace, "Editor", world.org_admin)
    join(scim, viewers, grace)
    assert roles_of("grace@example.com") == {("production", "Viewer", "scim")}
    join(scim, editors, grace)
    assert roles_of("grace@example.com") == {("production", "Editor", "scim")}
    leave(scim, editors, grace)
    assert roles_of("grace@example.com") == {("production", "Viewer", "scim")}
    leave(scim, viewers, grace)
    assert roles_of("grace@example.com") == set()


def test_a_hand_made_membership_is_never_changed_or_removed(scim, world):
    editor = provision(scim, world.editor.email)  # Editor of production, added by an admin
    admins = group(scim, "Admins", world.workspace, "Admin", world.org_admin)
    stagers = group(scim, "Stagers", world.other_workspace, "Viewer", world.org_admin)
    join(scim, admins, editor)
    join(scim, stagers, editor)
    assert roles_of(world.editor.email) == {
        ("production", "Editor", "manual"),
        ("staging", "Viewer", "scim"),
    }
    leave(scim, admins, editor)
    leave(scim, stagers, editor)
    assert roles_of(world.editor.email) == {("production", "Editor", "manual")}


def test_changing_and_removing_a_mapping_applies_to_the_members(scim, world):
    grace = provision(scim, "grace@example.com")
    editors = group(scim, "Editors", world.workspace, "Editor", world.org_admin)
    join(scim, editors, grace)
    mapping = editors.mappings.get()
    services.change_group_mapping(
        actor=world.org_admin, mapping=mapping, role=system_role("Viewer")
    )
    assert roles_of("grace@example.com") == {("production", "Viewer", "scim")}
    services.remove_group_mapping(actor=world.org_admin, mapping=mapping)
    assert roles_of("grace@example.com") == set()


def test_deleting_a_group_takes_back_what_it_gave(scim, world):
    grace = provision(scim, "grace@example.com")
    editors = group(scim, "Editors", world.workspace, "Editor", world.org_admin)
    join(scim, editors, grace)
    assert scim("DELETE", f"Groups/{editors.pk}").status_code == 204
    assert roles_of("grace@example.com") == set()


def test_replacing_members_with_put(scim, world):
    ada, bob = provision(scim, "ada@example.com"), provision(scim, "bob@example.com")
    editors = group(scim, "Editors", world.workspace, "Editor", world.org_admin)
    body = group_body("Editors", ada)
    assert scim("PUT", f"Groups/{editors.pk}", body).status_code == 200
    assert roles_of("ada@example.com") == {("production", "Editor", "scim")}
    body = group_body("Editors", bob)
    assert scim("PUT", f"Groups/{editors.pk}", body).status_code == 200
    assert roles_of("ada@example.com") == set()
    assert roles_of("bob@example.com") == {("production", "Editor", "scim")}


def test_mappings_are_the_org_managers_to_edit(scim, world):
    editors = new_group(scim, "Editors")
    for person in (world.workspace_admin, world.editor, world.outsider):
        with pytest.raises(ValidationError):
            map_group(person, editors, world.workspace, "Admin")
    elsewhere = WorkspaceFactory(organization=OrganizationFactory())
    with pytest.raises(ValidationError):
        map_group(world.org_admin, editors, elsewhere, "Admin")
    map_group(world.org_admin, editors, world.workspace, "Admin")
    with pytest.raises(ValidationError):  # one mapping per group and workspace
        map_group(world.org_admin, editors, world.workspace, "Viewer")


def test_below_enterprise_only_admin_can_be_mapped(scim, world):
    world.org.plan = "plus"
    world.org.save()
    editors = new_group(scim, "Editors")
    with pytest.raises(ValidationError):
        map_group(world.org_admin, editors, world.workspace, "Editor")


def test_a_deactivated_member_gets_nothing_until_reactivated(scim, world):
    grace = provision(scim, "grace@example.com")
    editors = group(scim, "Editors", world.workspace, "Editor", world.org_admin)
    off = patch_body({"op": "replace", "path": "active", "value": False})
    scim("PATCH", f"Users/{grace}", off)
    join(scim, editors, grace)
    assert roles_of("grace@example.com") == set()
    on = patch_body({"op": "replace", "path": "active", "value": True})
    scim("PATCH", f"Users/{grace}", on)
    assert roles_of("grace@example.com") == {("production", "Editor", "scim")}


def test_an_ended_hand_made_grant_makes_way_for_a_mapping(scim, world):
    # The editor's time-bound grant on production ended (not cleaned up yet): it gives nothing,
    # so a group mapped to production must give its role, as an invitation or an admin would.
    WorkspaceMembership.objects.filter(
        org_membership__user=world.editor, workspace=world.workspace
    ).update(expires_at=timezone.now() - datetime.timedelta(minutes=1))
    editor = provision(scim, world.editor.email)
    join(scim, group(scim, "Viewers", world.workspace, "Viewer", world.org_admin), editor)
    assert roles_of(world.editor.email) == {("production", "Viewer", "scim")}


def test_a_mapping_reads_an_ended_upgrade_as_its_fallback(scim, world):
    # A SCIM-made Viewer upgraded to Admin until a minute ago is a Viewer again: a mapping to
    # Admin must make them Admin, not leave the row that merely looks like one.
    grace = provision(scim, "grace@example.com")
    viewers = group(scim, "Viewers", world.workspace, "Viewer", world.org_admin)
    join(scim, viewers, grace)
    WorkspaceMembership.objects.filter(org_membership__user__email="grace@example.com").update(
        role=system_role("Admin"),
        role_after_expiry=system_role("Viewer"),
        expires_at=timezone.now() - datetime.timedelta(minutes=1),
    )
    admins = group(scim, "Admins", world.workspace, "Admin", world.org_admin)
    join(scim, admins, grace)
    membership = WorkspaceMembership.objects.get(org_membership__user__email="grace@example.com")
    assert (membership.role_in_effect().name, membership.expires_at) == ("Admin", None)


def test_an_archived_workspace_takes_nobody_in_through_a_mapping(scim, world):
    # As an invitation and SSO's default workspaces refuse it: archived is read-only, its
    # memberships included. Someone mapped before it was archived keeps what they had.
    grace = provision(scim, "grace@example.com")
    hopper = provision(scim, "hopper@example.com")
    viewers = group(scim, "Viewers", world.workspace, "Viewer", world.org_admin)
    join(scim, viewers, grace)
    world.workspace.archived = True
    world.workspace.save()
    join(scim, viewers, hopper)
    assert roles_of("hopper@example.com") == set()
    leave(scim, viewers, grace)
    assert roles_of("grace@example.com") == {("production", "Viewer", "scim")}
    with pytest.raises(ValidationError) as refused:
        map_group(world.org_admin, new_group(scim, "Late"), world.workspace, "Viewer")
    assert "workspace" in refused.value.message_dict
