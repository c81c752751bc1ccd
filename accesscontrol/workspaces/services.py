"""Workspaces and workspace membership. Every change is atomic and audited."""

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from accesscontrol.audit import services as audit
from accesscontrol.organizations.models import OrganizationMembership
from accesscontrol.organizations.services import clean_name, clean_slug, unique_slug
from accesscontrol.rbac.models import Role
from accesscontrol.rbac.permissions import ADMIN
from accesscontrol.workspaces.models import Workspace, WorkspaceMembership


def create_workspace(*, actor, organization, name, slug=None) -> Workspace:
    name = clean_name(name)
    slug = clean_slug(slug) if slug else unique_slug(Workspace, name, organization=organization)
    try:
        with transaction.atomic():
            workspace = Workspace.objects.create(organization=organization, name=name, slug=slug)
            audit.record(
                actor,
                "workspace.created",
                workspace,
                workspace=workspace,
                after={"name": name, "slug": slug},
            )
    except IntegrityError:
        raise ValidationError({"slug": f"A workspace with slug {slug!r} already exists."}) from None
    return workspace


def check_role_assignable(role, organization) -> None:
    """The role must exist for this organization; below enterprise only Admin is assignable."""
    if role.organization_id not in (None, organization.pk):
        raise ValidationError({"role": "No such role in this organization."})
    if not organization.has_workspace_rbac and not (role.is_system and role.name == ADMIN):
        raise ValidationError(
            {"role": "Workspace roles other than Admin need the Enterprise plan."}
        )


def add_workspace_member(*, actor, workspace, user, role) -> WorkspaceMembership:
    organization = workspace.organization
    check_role_assignable(role, organization)
    org_membership = OrganizationMembership.objects.filter(
        organization=organization, user=user
    ).first()
    if org_membership is None:
        raise ValidationError(
            f"{user.email} is not a member of {organization}; "
            "invite them to the organization first."
        )
    try:
        with transaction.atomic():
            membership = WorkspaceMembership.objects.create(
                org_membership=org_membership, workspace=workspace, role=role
            )
            audit.record(
                actor,
                "workspace_member.added",
                membership,
                workspace=workspace,
                target_label=user.email,
                after={"role": role.name},
            )
    except IntegrityError:
        raise ValidationError(f"{user.email} is already a member of {workspace}.") from None
    return membership


def _lock_workspace_membership(membership) -> WorkspaceMembership:
    locked = (
        WorkspaceMembership.objects.select_for_update()
        .select_related("role", "org_membership__user")
        .filter(pk=membership.pk)
        .first()
    )
    if locked is None:
        raise ValidationError("This person is no longer a member of the workspace.")
    return locked


def change_workspace_role(*, actor, membership, role) -> WorkspaceMembership:
    workspace = membership.workspace
    check_role_assignable(role, workspace.organization)
    with transaction.atomic():
        membership = _lock_workspace_membership(membership)
        before = membership.role
        if before.pk == role.pk:
            return membership
        membership.role = role
        membership.save(update_fields=["role"])
        audit.record(
            actor,
            "workspace_member.role_changed",
            membership,
            workspace=workspace,
            target_label=membership.user.email,
            before={"role": before.name},
            after={"role": role.name},
        )
    return membership


def remove_workspace_member(*, actor, membership) -> None:
    workspace = membership.workspace
    with transaction.atomic():
        membership = _lock_workspace_membership(membership)
        audit.record(
            actor,
            "workspace_member.removed",
            membership,
            workspace=workspace,
            target_label=membership.user.email,
            before={"role": membership.role.name},
        )
        membership.delete()


def assignable_roles(organization):
    return Role.objects.usable_in(organization).order_by("organization_id", "name")
