import pytest

from accesscontrol.rbac.permissions import (
    ORGANIZATION_PERMISSIONS,
    READ_PERMISSIONS,
    SYSTEM_ROLE_PERMISSIONS,
    WORKSPACE_PERMISSIONS,
)
from accesscontrol.rbac.resolver import effective_permissions, resolve_access
from tests.factories import ANNOTATOR_CODES, RoleFactory, add_member, system_role

MEMBER_ORG = frozenset({"organization:read", "organization:pats:create"})

EXPECTED = {
    "org_admin": (WORKSPACE_PERMISSIONS | ORGANIZATION_PERMISSIONS, "Admin", "org_admin"),
    "workspace_admin": (SYSTEM_ROLE_PERMISSIONS["Admin"] | MEMBER_ORG, "Admin", "membership"),
    "editor": (SYSTEM_ROLE_PERMISSIONS["Editor"] | MEMBER_ORG, "Editor", "membership"),
    "viewer": (SYSTEM_ROLE_PERMISSIONS["Viewer"] | MEMBER_ORG, "Viewer", "membership"),
    "annotator": (frozenset(ANNOTATOR_CODES) | MEMBER_ORG, "Annotator", "membership"),
    "member_without_workspace": (MEMBER_ORG, None, "not_workspace_member"),
    # An org viewer is read-only even where a workspace role says Editor.
    "org_viewer": (READ_PERMISSIONS | {"organization:read"}, "Editor", "membership"),
    "outsider": (frozenset(), None, "none"),
}


@pytest.mark.parametrize("persona", EXPECTED)
def test_each_persona_gets_exactly_its_permissions(world, persona, django_assert_num_queries):
    expected_codes, expected_role, expected_reason = EXPECTED[persona]
    user = world.persona(persona)
    with django_assert_num_queries(1):
        access = resolve_access(user, world.org.pk, world.workspace)
    assert access.permissions == expected_codes
    assert access.role == expected_role
    assert access.reason == expected_reason


def test_effective_permissions_is_a_frozenset_within_two_queries(
    world, django_assert_max_num_queries
):
    with django_assert_max_num_queries(2):
        codes = effective_permissions(world.editor, world.workspace)
    assert isinstance(codes, frozenset)
    assert "datasets:create" in codes
    assert "workspaces:manage" not in codes


def test_editor_has_different_roles_per_workspace(world):
    add = world.editor.org_memberships.get()
    from tests.factories import WorkspaceMembershipFactory

    WorkspaceMembershipFactory(
        org_membership=add, workspace=world.other_workspace, role=system_role("Viewer")
    )
    assert "datasets:create" in effective_permissions(world.editor, world.workspace)
    assert "datasets:create" not in effective_permissions(world.editor, world.other_workspace)
    assert "datasets:read" in effective_permissions(world.editor, world.other_workspace)


def test_org_admin_is_admin_in_every_workspace_even_without_membership(world):
    assert effective_permissions(world.org_admin, world.other_workspace) >= WORKSPACE_PERMISSIONS


def test_outsider_admin_of_other_org_gets_nothing_here(world):
    assert effective_permissions(world.outsider, world.workspace) == frozenset()
    assert effective_permissions(world.outsider, world.other_workspace) == frozenset()


def test_members_of_this_org_get_nothing_in_another_org(world):
    other = world.other_workspace_of_other_org
    for persona in ("org_admin", "workspace_admin", "editor", "viewer"):
        assert effective_permissions(world.persona(persona), other) == frozenset()


@pytest.mark.parametrize("plan", ["developer", "plus"])
def test_below_enterprise_every_workspace_member_is_admin(world, plan):
    world.org.plan = plan
    world.org.save()
    for persona in ("viewer", "annotator", "editor"):
        access = resolve_access(world.persona(persona), world.org.pk, world.workspace)
        assert access.permissions >= WORKSPACE_PERMISSIONS, persona
        assert access.role == "Admin"
        assert access.reason == "plan"
    # ...but still nothing for someone who is not a workspace member.
    no_ws = resolve_access(world.member_without_workspace, world.org.pk, world.workspace)
    assert not no_ws.permissions & WORKSPACE_PERMISSIONS


def test_custom_role_edit_takes_effect_on_next_resolution(world):
    role = world.annotator.org_memberships.get().workspace_memberships.get().role
    role.permissions = ["datasets:read"]
    role.save()
    assert effective_permissions(world.annotator, world.workspace) == MEMBER_ORG | {"datasets:read"}


def test_codes_dropped_from_catalog_grant_nothing(world):
    role = RoleFactory(organization=world.org, permissions=["datasets:read", "nukes:launch"])
    user = add_member(world.org, world.workspace, role)
    codes = effective_permissions(user, world.workspace)
    assert "nukes:launch" not in codes
    assert "datasets:read" in codes


def test_archived_workspace_is_read_only(world):
    world.workspace.archived = True
    world.workspace.save()
    editor = effective_permissions(world.editor, world.workspace)
    assert editor & WORKSPACE_PERMISSIONS == SYSTEM_ROLE_PERMISSIONS["Viewer"]
    admin = effective_permissions(world.org_admin, world.workspace)
    assert "workspaces:manage" in admin
    assert "datasets:create" not in admin


def test_inactive_and_anonymous_users_get_nothing(world):
    from django.contrib.auth.models import AnonymousUser

    world.editor.is_active = False
    world.editor.save()
    assert effective_permissions(world.editor, world.workspace) == frozenset()
    assert effective_permissions(AnonymousUser(), world.workspace) == frozenset()


def test_org_level_access_without_workspace(world, django_assert_num_queries):
    with django_assert_num_queries(1):
        admin = resolve_access(world.org_admin, world.org.pk)
    assert admin.permissions == ORGANIZATION_PERMISSIONS
    assert resolve_access(world.org_viewer, world.org.pk).permissions == {"organization:read"}
    assert resolve_access(world.outsider, world.org.pk).permissions == frozenset()


def test_query_count_does_not_grow_with_members(world, django_assert_num_queries):
    for _ in range(30):
        add_member(world.org, world.workspace, system_role("Editor"))
    with django_assert_num_queries(1):
        resolve_access(world.viewer, world.org.pk, world.workspace)
