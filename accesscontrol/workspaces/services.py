"""Workspaces and workspace membership. Every change is atomic and audited."""

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Case, Value, When

from accesscontrol.audit import services as audit
from accesscontrol.organizations.models import OrganizationMembership
from accesscontrol.organizations.services import clean_name, clean_slug, unique_slug
from accesscontrol.rbac.actor import as_actor
from accesscontrol.rbac.models import Role
from accesscontrol.rbac.permissions import ORG_MANAGE, SYSTEM_ROLES_WEAKEST_FIRST, org_role
from accesscontrol.rbac.services import (
    check_can_grant,
    check_holds_all,
    check_not_self,
    check_role_assignable,
    people_behind,
)
from accesscontrol.workspaces.models import Workspace, WorkspaceMembership

# One answer whether the address is unknown or belongs to another organization's member:
# the answer must not tell accounts elsewhere apart from no account at all.
NOT_AN_ORG_MEMBER = (
    "No member of {organization} has this email; invite them to the organization first."
)


def enterable_workspaces(actor) -> list[Workspace]:
    """The workspaces of the actor's organization it can enter (the switcher, the overview,
    the home redirect): every active one for org admins, else those it is a member of."""
    workspaces = Workspace.objects.filter(organization=actor.organization, archived=False)
    spec = org_role(actor.access.org_role)
    if spec is None or not spec.admin_everywhere:
        workspaces = workspaces.filter(memberships__org_membership__user=actor.user)
    return list(workspaces.order_by("name"))


def create_workspace(*, actor, organization, name, slug=None) -> Workspace:
    actor = as_actor(actor, organization)
    actor.require(ORG_MANAGE)
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


def update_workspace(*, actor, workspace, name=None, archived=None) -> Workspace:
    """Rename, archive (read-only for everyone) or restore a workspace.

    Renaming needs workspaces:manage; archiving and restoring are the organization's decision.
    """
    actor = as_actor(actor, workspace.organization, workspace)
    actor.require("workspaces:manage", workspace=workspace)
    with transaction.atomic():
        locked = (
            Workspace.objects.select_for_update()
            .select_related("organization")
            .get(pk=workspace.pk)
        )
        before = {"name": locked.name, "archived": locked.archived}
        if name is not None:
            locked.name = clean_name(name)
        if archived is not None:
            locked.archived = bool(archived)
        if before["archived"] and locked.archived and locked.name != before["name"]:
            raise ValidationError(
                {"name": "This workspace is archived (read-only); restore it before renaming."}
            )
        after = {"name": locked.name, "archived": locked.archived}
        if after == before:
            return locked
        if before["archived"] != after["archived"]:
            actor.require(ORG_MANAGE, workspace=workspace)
            action = "workspace.archived" if locked.archived else "workspace.restored"
        else:
            action = "workspace.renamed"
        locked.save(update_fields=["name", "archived"])
        audit.record(actor, action, locked, workspace=locked, before=before, after=after)
    return locked


def _member_manager(actor, workspace):
    """The actor, if it may manage this workspace's members; what it may hand out there."""
    actor = as_actor(actor, workspace.organization, workspace)
    actor.require("workspaces:manage-members", workspace=workspace)
    return actor, actor.access_in(workspace).grantable


def add_workspace_member(*, actor, workspace, user, role) -> WorkspaceMembership:
    organization = workspace.organization
    actor, held = _member_manager(actor, workspace)
    check_role_assignable(role, organization)
    check_not_self(actor, user, "You cannot add yourself to a workspace.")
    check_can_grant(role, held)
    org_membership = OrganizationMembership.objects.filter(
        organization=organization, user=user
    ).first()
    if org_membership is None:
        raise ValidationError({"email": NOT_AN_ORG_MEMBER.format(organization=organization)})
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
        raise ValidationError(
            "This person is no longer a member of the workspace.", code="not_found"
        )
    return locked


def change_workspace_role(*, actor, membership, role) -> WorkspaceMembership:
    workspace = membership.workspace
    actor, held = _member_manager(actor, workspace)
    check_role_assignable(role, workspace.organization)
    check_not_self(actor, membership.org_membership.user)
    check_can_grant(role, held)
    with transaction.atomic():
        membership = _lock_workspace_membership(membership)
        before = membership.role
        if before.pk == role.pk:
            return membership
        check_holds_all(before.permission_set, held, f"{membership.user.email} is {before.name}")
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


def change_workspace_roles(*, actor, memberships, role) -> int:
    """Several members to one role: all of them or, if any one is refused, none."""
    changed = 0
    with transaction.atomic():
        for membership in memberships:
            before = membership.role_id
            change_workspace_role(actor=actor, membership=membership, role=role)
            changed += before != role.pk
    return changed


def delete_workspace(*, actor, workspace, confirmation: str) -> None:
    """Delete a workspace and everything in it, once its name is typed back."""
    actor = as_actor(actor, workspace.organization, workspace)
    actor.require("workspaces:manage", ORG_MANAGE, workspace=workspace)
    if confirmation.strip() != workspace.name:
        raise ValidationError(
            {"confirmation": f"Type the workspace's name, {workspace.name}, to confirm."}
        )
    with transaction.atomic():
        audit.record(
            actor,
            "workspace.deleted",
            workspace,
            workspace=workspace,
            target_label=workspace.name,
            before={"name": workspace.name, "slug": workspace.slug},
        )
        workspace.delete()


def remove_workspace_member(*, actor, membership) -> None:
    """Whoever may not change someone's role may not remove them either; anyone may leave."""
    workspace = membership.workspace
    actor = as_actor(actor, workspace.organization, workspace)
    with transaction.atomic():
        membership = _lock_workspace_membership(membership)
        if membership.org_membership.user_id not in people_behind(actor):
            actor, held = _member_manager(actor, workspace)
            check_holds_all(
                membership.role.permission_set,
                held,
                f"{membership.user.email} is {membership.role.name}",
            )
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
    """The roles a picker offers: system roles weakest first, then custom roles by name (so
    the first choice, and any default taken from it, is never a custom or the strongest role)."""
    rank = Case(
        *(
            When(organization__isnull=True, name=name, then=Value(i))
            for i, name in enumerate(SYSTEM_ROLES_WEAKEST_FIRST)
        ),
        When(organization__isnull=True, then=Value(len(SYSTEM_ROLES_WEAKEST_FIRST))),
        default=Value(len(SYSTEM_ROLES_WEAKEST_FIRST) + 1),
    )
    return Role.objects.usable_in(organization).order_by(rank, "name")


def grantable_roles(actor, workspace) -> list[Role]:
    """The roles the actor may hand out in this workspace: those its organization may assign,
    none holding a permission the actor lacks there."""
    held = actor.access_in(workspace).grantable
    return [r for r in assignable_roles(workspace.organization) if r.permission_set <= held]


def workspace_members(actor, workspace):
    """A workspace's members, for whoever may read the workspace (console and API alike)."""
    if not actor.access_in(workspace).allows("workspaces:read"):
        return WorkspaceMembership.objects.none()
    return workspace.memberships.select_related(
        "org_membership__user", "role", "workspace"
    ).order_by("org_membership__user__email")
