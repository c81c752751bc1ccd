"""Workspaces and workspace membership: atomic, audited, and held in shape by the database."""

from functools import partial
from types import SimpleNamespace

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import ProtectedError

from accesscontrol.audit.models import AuditEvent
from accesscontrol.organizations.models import Organization, OrganizationMembership
from accesscontrol.rbac.models import Role
from accesscontrol.workspaces.models import Workspace, WorkspaceMembership
from accesscontrol.workspaces.services import (
    add_workspace_member,
    change_workspace_role,
    create_workspace,
    remove_workspace_member,
)
from tests.factories import (
    OrganizationFactory,
    OrganizationMembershipFactory,
    RoleFactory,
    UserFactory,
    WorkspaceFactory,
    add_member,
    system_role,
)
from tests.support.db import row_counts

# Everything these services may write, counted.
snapshot = partial(row_counts, Workspace, WorkspaceMembership, OrganizationMembership, AuditEvent)


def membership_in(workspace, user):
    return WorkspaceMembership.objects.get(workspace=workspace, org_membership__user=user)


def role_in(workspace, user):
    return membership_in(workspace, user).role.name


# create_workspace


def test_create_workspace_creates_it_and_records_the_event(world):
    workspace = create_workspace(
        actor=world.org_admin, organization=world.org, name="  Research  ", slug="research"
    )

    workspace.refresh_from_db()
    assert (workspace.organization, workspace.name, workspace.slug) == (
        world.org,
        "Research",
        "research",
    )
    assert not workspace.archived
    (event,) = AuditEvent.objects.all()
    assert event.action == "workspace.created"
    assert event.organization_id == world.org.pk
    assert event.workspace_id == workspace.pk
    assert (event.actor_kind, event.actor_label, event.actor_user_id) == (
        "user",
        world.org_admin.email,
        world.org_admin.pk,
    )
    assert (event.target_type, event.target_id, event.target_label) == (
        "workspace",
        str(workspace.pk),
        "Research",
    )
    assert event.changes == {"after": {"name": "Research", "slug": "research"}}


def test_create_workspace_picks_a_slug_free_in_this_organization(world):
    ours = create_workspace(actor=world.org_admin, organization=world.org, name="Production")
    theirs = create_workspace(actor=world.outsider, organization=world.other_org, name="Production")

    assert ours.slug == "production-2"  # Acme already has "production"
    assert theirs.slug == "production"  # Globex does not


def test_the_same_slug_is_allowed_in_another_organization(world):
    workspace = create_workspace(
        actor=world.outsider, organization=world.other_org, name="Prod", slug="production"
    )

    assert workspace.slug == "production"
    assert Workspace.objects.filter(slug="production").count() == 2


def test_create_workspace_rejects_a_slug_taken_in_the_organization_and_writes_nothing(world):
    before = snapshot()

    with pytest.raises(ValidationError) as exc:
        create_workspace(
            actor=world.org_admin, organization=world.org, name="Prod 2", slug="production"
        )

    assert "slug" in exc.value.message_dict
    assert snapshot() == before


@pytest.mark.parametrize(
    ("name", "slug", "field"),
    [
        ("", None, "name"),
        ("   ", "fine", "name"),
        ("x" * 101, None, "name"),
        ("Research", "not a slug", "slug"),
        ("Research", "ré", "slug"),
        ("Research", "r" * 61, "slug"),
    ],
    ids=["empty-name", "blank-name", "long-name", "space-slug", "non-ascii-slug", "long-slug"],
)
def test_create_workspace_rejects_bad_input_and_writes_nothing(world, name, slug, field):
    before = snapshot()

    with pytest.raises(ValidationError) as exc:
        create_workspace(actor=world.org_admin, organization=world.org, name=name, slug=slug)

    assert field in exc.value.message_dict
    assert snapshot() == before


def the_member_event(world, membership, user):
    """The one audit row the org admin's change to `user`'s membership wrote: who, where, what."""
    (event,) = AuditEvent.objects.all()
    assert (event.organization_id, event.workspace_id) == (world.org.pk, membership.workspace_id)
    assert event.actor_label == world.org_admin.email
    target = (event.target_type, event.target_id, event.target_label)
    assert target == ("workspacemembership", str(membership.pk), user.email)
    return event


# add_workspace_member


def test_add_workspace_member_adds_an_org_member_and_records_it(world):
    newcomer = world.member_without_workspace
    membership = add_workspace_member(
        actor=world.org_admin, workspace=world.workspace, user=newcomer, role=system_role("Editor")
    )

    assert membership_in(world.workspace, newcomer) == membership
    assert membership.role.name == "Editor"
    event = the_member_event(world, membership, newcomer)
    assert (event.action, event.changes) == (
        "workspace_member.added",
        {"after": {"role": "Editor"}},
    )


def test_add_workspace_member_accepts_a_custom_role_of_the_organization(world):
    annotator = Role.objects.get(organization=world.org, name="Annotator")

    add_workspace_member(
        actor=world.org_admin, workspace=world.other_workspace, user=world.editor, role=annotator
    )

    assert role_in(world.other_workspace, world.editor) == "Annotator"
    assert role_in(world.workspace, world.editor) == "Editor"  # untouched
    (event,) = AuditEvent.objects.all()
    assert event.changes == {"after": {"role": "Annotator"}}


def refused_to_add(world, user, role) -> ValidationError:
    """The org admin adds `user` to 'production': refused, and nothing is written."""
    before = snapshot()
    with pytest.raises(ValidationError) as exc:
        add_workspace_member(actor=world.org_admin, workspace=world.workspace, user=user, role=role)
    assert snapshot() == before
    return exc.value


@pytest.mark.parametrize("persona", ["outsider", "someone_new"])
def test_add_workspace_member_requires_organization_membership(world, persona):
    user = UserFactory() if persona == "someone_new" else world.outsider
    error = refused_to_add(world, user, system_role("Viewer"))

    assert error.messages[0].startswith("No member of Acme has this email")


def test_add_workspace_member_twice_is_a_validation_error_and_writes_nothing(world):
    error = refused_to_add(world, world.viewer, system_role("Admin"))

    assert "already a member" in error.messages[0]
    assert role_in(world.workspace, world.viewer) == "Viewer"


def test_add_workspace_member_rejects_a_role_of_another_organization(world):
    theirs = RoleFactory(organization=world.other_org, name="Globex reviewer")
    error = refused_to_add(world, world.member_without_workspace, theirs)

    assert "role" in error.message_dict


@pytest.fixture(params=["developer", "plus"])
def small_org(request, db):
    """A non-enterprise organization: one admin, one member in no workspace, one workspace."""
    org = OrganizationFactory(plan=request.param)
    workspace = WorkspaceFactory(organization=org, slug="default")
    admin = add_member(org, org_role="admin")
    member = add_member(org)
    custom = RoleFactory(organization=org, name="Leftover from enterprise")
    return SimpleNamespace(
        org=org, workspace=workspace, admin=admin, member=member, custom_role=custom
    )


@pytest.mark.parametrize("role_name", ["Editor", "Viewer", "custom"])
def test_below_enterprise_only_admin_is_assignable(small_org, role_name):
    role = small_org.custom_role if role_name == "custom" else system_role(role_name)
    before = snapshot()

    with pytest.raises(ValidationError) as exc:
        add_workspace_member(
            actor=small_org.admin, workspace=small_org.workspace, user=small_org.member, role=role
        )

    assert "Enterprise" in exc.value.message_dict["role"][0]
    assert snapshot() == before


def test_below_enterprise_the_admin_role_is_assignable(small_org):

    add_workspace_member(
        actor=small_org.admin,
        workspace=small_org.workspace,
        user=small_org.member,
        role=system_role("Admin"),
    )

    assert role_in(small_org.workspace, small_org.member) == "Admin"
    assert list(AuditEvent.objects.values_list("action", flat=True)) == ["workspace_member.added"]


# change_workspace_role


def test_change_workspace_role_changes_it_and_records_before_and_after(world):
    membership = membership_in(world.workspace, world.editor)

    changed = change_workspace_role(
        actor=world.org_admin, membership=membership, role=system_role("Viewer")
    )

    assert changed.role.name == "Viewer"
    assert role_in(world.workspace, world.editor) == "Viewer"
    event = the_member_event(world, membership, world.editor)
    assert (event.action, event.changes) == (
        "workspace_member.role_changed",
        {"before": {"role": "Editor"}, "after": {"role": "Viewer"}},
    )


def test_change_workspace_role_to_the_same_role_records_nothing(world):
    before = snapshot()

    change_workspace_role(
        actor=world.org_admin,
        membership=membership_in(world.workspace, world.viewer),
        role=system_role("Viewer"),
    )

    assert snapshot() == before


def test_change_workspace_role_rejects_a_role_of_another_organization(world):
    theirs = RoleFactory(organization=world.other_org)
    membership = membership_in(world.workspace, world.editor)
    before = snapshot()

    with pytest.raises(ValidationError) as exc:
        change_workspace_role(actor=world.org_admin, membership=membership, role=theirs)

    assert "role" in exc.value.message_dict
    assert snapshot() == before
    assert role_in(world.workspace, world.editor) == "Editor"


def test_change_workspace_role_below_enterprise_refuses_anything_but_admin(small_org):
    membership = add_workspace_member(
        actor=small_org.admin,
        workspace=small_org.workspace,
        user=small_org.member,
        role=system_role("Admin"),
    )
    before = snapshot()

    with pytest.raises(ValidationError) as exc:
        change_workspace_role(
            actor=small_org.admin, membership=membership, role=system_role("Viewer")
        )

    assert "Enterprise" in exc.value.message_dict["role"][0]
    assert snapshot() == before
    assert role_in(small_org.workspace, small_org.member) == "Admin"


# remove_workspace_member


def test_remove_workspace_member_removes_only_that_membership_and_records_it(world):
    membership = membership_in(world.workspace, world.editor)

    remove_workspace_member(actor=world.org_admin, membership=membership)

    assert not WorkspaceMembership.objects.filter(pk=membership.pk).exists()
    assert OrganizationMembership.objects.filter(user=world.editor, organization=world.org).exists()
    assert role_in(world.workspace, world.viewer) == "Viewer"
    event = the_member_event(world, membership, world.editor)
    assert (event.action, event.changes) == (
        "workspace_member.removed",
        {"before": {"role": "Editor"}},
    )


def test_removing_a_workspace_member_twice_records_one_event(world):
    membership = membership_in(world.workspace, world.editor)
    remove_workspace_member(actor=world.org_admin, membership=membership)
    before = snapshot()

    with pytest.raises((ValidationError, WorkspaceMembership.DoesNotExist)):
        remove_workspace_member(actor=world.org_admin, membership=membership)

    assert snapshot() == before


# Database constraints: the invariants hold even for writes that skip the services.


def test_one_organization_membership_per_user_and_org(world):
    with pytest.raises(IntegrityError), transaction.atomic():
        OrganizationMembership.objects.create(user=world.editor, organization=world.org)


def test_an_unknown_org_role_is_refused_by_the_database(world):
    with pytest.raises(IntegrityError), transaction.atomic():
        OrganizationMembership.objects.create(
            user=UserFactory(), organization=world.org, org_role="owner"
        )


def test_one_workspace_membership_per_user_and_workspace(world):
    org_membership = OrganizationMembership.objects.get(user=world.editor, organization=world.org)
    with pytest.raises(IntegrityError), transaction.atomic():
        WorkspaceMembership.objects.create(
            org_membership=org_membership, workspace=world.workspace, role=system_role("Admin")
        )


def test_organization_slugs_are_globally_unique(world):
    with pytest.raises(IntegrityError), transaction.atomic():
        Organization.objects.create(name="Acme again", slug="acme")


def test_workspace_slugs_are_unique_in_an_organization(world):
    with pytest.raises(IntegrityError), transaction.atomic():
        Workspace.objects.create(organization=world.org, name="Other", slug="production")


def test_workspace_slugs_repeat_across_organizations(world):
    Workspace.objects.create(organization=world.other_org, name="Production", slug="production")
    assert Workspace.objects.filter(slug="production").count() == 2


def test_custom_role_names_are_unique_in_an_organization(world):
    with pytest.raises(IntegrityError), transaction.atomic():
        Role.objects.create(organization=world.org, name="Annotator")


def test_custom_role_names_repeat_across_organizations(world):
    Role.objects.create(organization=world.other_org, name="Annotator")
    assert Role.objects.filter(name="Annotator").count() == 2


def test_system_role_names_are_unique(db):
    Role.objects.system("Admin")  # a transactional test before this one may have flushed it
    with pytest.raises(IntegrityError), transaction.atomic():
        Role.objects.create(organization=None, name="Admin")


def test_a_role_in_use_cannot_be_deleted_behind_the_services_back(world):
    annotator = Role.objects.get(organization=world.org, name="Annotator")
    with pytest.raises(ProtectedError), transaction.atomic():
        annotator.delete()
    assert Role.objects.filter(pk=annotator.pk).exists()


def test_deleting_an_org_membership_deletes_its_workspace_memberships(world):
    org_membership = OrganizationMembershipFactory(organization=world.org)
    WorkspaceMembership.objects.create(
        org_membership=org_membership, workspace=world.workspace, role=system_role("Viewer")
    )
    org_membership.delete()
    assert not WorkspaceMembership.objects.filter(org_membership_id=org_membership.pk).exists()
