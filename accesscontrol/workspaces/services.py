"""Workspaces and workspace membership. Every change is atomic and audited."""

import datetime

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Case, Q, Value, When
from django.utils import timezone

from accesscontrol import writes
from accesscontrol.accounts.models import User, normalize_email
from accesscontrol.apikeys.limits import TokenLimits
from accesscontrol.audit import services as audit
from accesscontrol.organizations.models import MembershipSource, OrganizationMembership
from accesscontrol.organizations.services import clean_name, clean_slug, unique_slug
from accesscontrol.rbac.actor import SERVICE_KEY, Actor, as_actor
from accesscontrol.rbac.models import Role
from accesscontrol.rbac.permissions import (
    ADMIN_EVERYWHERE_ROLES,
    ORG_MANAGE,
    SYSTEM_ROLES_WEAKEST_FIRST,
)
from accesscontrol.rbac.services import (
    check_can_grant,
    check_holds_all,
    check_not_self,
    check_role_assignable,
    people_behind,
    roles_assignable_in,
)
from accesscontrol.workspaces.models import (
    Workspace,
    WorkspaceMembership,
    acted_in,
    in_effect,
    workspaces_acted_in,
)

# One answer whether the address is unknown or belongs to another organization's member:
# the answer must not tell accounts elsewhere apart from no account at all.
NOT_AN_ORG_MEMBER = (
    "No member of {organization} has this email; invite them to the organization first."
)


# Time-bound grants: the durations a person picks from (requests, the members page); the API
# also takes any future `expires_at`. None: permanent.
EXPIRY_CHOICES = {
    "1h": ("1 hour", datetime.timedelta(hours=1)),
    "1d": ("1 day", datetime.timedelta(days=1)),
    "1w": ("1 week", datetime.timedelta(weeks=1)),
    "permanent": ("Permanent", None),
}


def expiry_from_choice(choice, now=None):
    """The expiry instant for one of EXPIRY_CHOICES (None: permanent); unknown: refused."""
    if choice not in EXPIRY_CHOICES:
        names = ", ".join(EXPIRY_CHOICES)
        raise ValidationError({"expiry": f"Choose an expiry: one of {names}."})
    delta = EXPIRY_CHOICES[choice][1]
    return None if delta is None else (now or timezone.now()) + delta


def clean_expiry(expires_at):
    """A grant's expiry as given: None (permanent) or an aware instant in the future."""
    if expires_at is None:
        return None
    if timezone.is_naive(expires_at):
        raise ValidationError({"expires_at": "Give the expiry with a time zone (e.g. ...Z)."})
    if expires_at <= timezone.now():
        raise ValidationError({"expires_at": "The expiry must be in the future."})
    if expires_at.year >= 9999:
        raise ValidationError({"expires_at": "The expiry is too far in the future."})
    return expires_at


def _iso(expires_at):
    return expires_at.isoformat() if expires_at else None


KEEP = object()  # change_workspace_role: leave the grant's expiry as it is


def enterable_workspaces(actor) -> list[Workspace]:
    """The workspaces of the actor's organization it can enter (the switcher, the overview,
    the home redirect): the active ones of those it can act in."""
    return list(acted_in(actor).filter(archived=False))


def workspaces_of(actor) -> list[Workspace]:
    """The workspaces an API principal can act in (GET /workspaces), archived ones with their
    flag: a workspace's service key, that one; an org-scoped key, every one; a personal access
    token, those its user can act in (workspaces_acted_in) within the token's workspace limit."""
    key = actor.key
    if actor.kind == SERVICE_KEY:
        workspaces = Workspace.objects.filter(organization=actor.organization).order_by("name")
        return list(workspaces if key.is_org_scoped else workspaces.filter(pk=key.workspace_id))
    membership = key.org_membership
    workspaces = workspaces_acted_in(
        organization_id=membership.organization_id,
        user_id=membership.user_id,
        org_role_name=membership.org_role,
    )
    limit = TokenLimits.of(key).workspace_ids
    return list(workspaces if limit is None else workspaces.filter(pk__in=limit))


def create_workspace(*, actor, organization, name, slug=None) -> Workspace:
    actor = as_actor(actor, organization)
    actor.require(ORG_MANAGE)
    name = clean_name(name)
    slug = clean_slug(slug) if slug else unique_slug(Workspace, name, organization=organization)
    with writes.unique_or(
        ValidationError({"slug": f"A workspace with slug {slug!r} already exists."})
    ):
        workspace = Workspace.objects.create(organization=organization, name=name, slug=slug)
        audit.record(
            actor,
            "workspace.created",
            workspace,
            workspace=workspace,
            after={"name": name, "slug": slug},
        )
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


# Suggestions for the add dialog's email input: a page of names, never the whole organization.
MEMBERS_SUGGESTED = 20


def members_to_add(actor, workspace, text, limit=MEMBERS_SUGGESTED) -> list[User]:
    """Up to `limit` people the actor may add to `workspace` whose email or name contains
    `text` (the add dialog's suggestions): members of its organization not in it already
    (in_effect: someone whose grant ended is a member no more; adding them ends the old row),
    nor organization admins, who need no membership. For whoever may add members there."""
    _member_manager(actor, workspace)
    if not text:
        return []
    rows = (
        workspace.organization.memberships.exclude(
            pk__in=workspace.memberships.filter(in_effect()).values("org_membership")
        )
        .exclude(org_role__in=ADMIN_EVERYWHERE_ROLES)
        .filter(Q(user__email__icontains=text) | Q(user__full_name__icontains=text))
        .select_related("user")
        .order_by("user__email")
    )
    return [m.user for m in rows[:limit]]


def org_member_by_email(organization, email) -> User:
    """The member of `organization` with this address (the console's add dialog and the API);
    NOT_AN_ORG_MEMBER whether no account has it or only another organization's member does."""
    user = User.objects.filter(
        email=normalize_email(email), org_memberships__organization=organization
    ).first()
    if user is None:
        raise ValidationError({"email": NOT_AN_ORG_MEMBER.format(organization=organization)})
    return user


def add_workspace_member(
    *, actor, workspace, user, role, expires_at=None, source=MembershipSource.MANUAL
) -> WorkspaceMembership:
    """Add an org member with `role`, for good or until `expires_at` (a time-bound grant).
    `source`: how they came (SSO and SCIM provisioning name themselves)."""
    organization = workspace.organization
    actor, held = _member_manager(actor, workspace)
    check_role_assignable(role, organization)
    check_not_self(actor, user, "You cannot add yourself to a workspace.")
    check_can_grant(role, held)
    expires_at = clean_expiry(expires_at)
    org_membership = OrganizationMembership.objects.filter(
        organization=organization, user=user
    ).first()
    if org_membership is None:
        raise ValidationError({"email": NOT_AN_ORG_MEMBER.format(organization=organization)})
    with writes.unique_or(ValidationError(f"{user.email} is already a member of {workspace}.")):
        end_expired_grants(org_membership, workspace)
        membership = WorkspaceMembership.objects.create(
            org_membership=org_membership,
            workspace=workspace,
            role=role,
            expires_at=expires_at,
            source=source,
        )
        audit.record(
            actor,
            "workspace_member.added",
            membership,
            workspace=workspace,
            target_label=user.email,
            after={
                "role": role.name,
                **({"expires_at": _iso(expires_at)} if expires_at else {}),
                **({} if source == MembershipSource.MANUAL else {"via": source}),
            },
        )
    return membership


def _lock_workspace_membership(membership) -> WorkspaceMembership:
    locked = (
        WorkspaceMembership.objects.select_for_update(of=("self",))
        .select_related("role", "role_after_expiry", "org_membership__user", "workspace")
        .filter(pk=membership.pk)
        .first()
    )
    if locked is None:
        raise ValidationError(
            "This person is no longer a member of the workspace.", code="not_found"
        )
    return locked


def change_workspace_role(
    *, actor, membership, role, expires_at=KEEP, then_role=KEEP
) -> WorkspaceMembership:
    """Change a member's role and, if given, the grant's expiry (None: make it permanent).

    `then_role`: the role a temporary upgrade falls back to at its expiry (an approved access
    request sets it to the member's permanent role). Left as KEEP (the members page and the
    API), the rule for a member on a temporary upgrade is: the role an admin picks is theirs
    for good (the upgrade and its fallback end) unless the same change sets a new expiry, which
    keeps the fallback; an expiry set to None, or picking the fallback role, ends the upgrade.
    """
    workspace = membership.workspace
    actor, held = _member_manager(actor, workspace)
    check_role_assignable(role, workspace.organization)
    check_not_self(actor, membership.org_membership.user)
    check_can_grant(role, held)
    if expires_at is not KEEP:
        expires_at = clean_expiry(expires_at)
    with transaction.atomic():
        membership = _lock_workspace_membership(membership)
        _settle_expired_upgrade(membership)
        before, old_then = membership.role, membership.role_after_expiry
        old_expiry = membership.expires_at
        new_expiry = old_expiry if expires_at is KEEP else expires_at
        new_then = old_then if then_role is KEEP else then_role
        upgraded = then_role is KEEP and old_then is not None and expires_at is KEEP
        if upgraded and role.pk != before.pk:
            new_expiry = None  # a role picked for an upgraded member: theirs for good
        if new_then is not None and new_then.pk == role.pk:
            new_expiry = None  # "upgraded" to the role they fall back to: simply that role
        if new_expiry is None:
            new_then = None  # no expiry, nothing to fall back to
        same_then = (old_then and old_then.pk) == (new_then and new_then.pk)
        if before.pk == role.pk and new_expiry == old_expiry and same_then:
            return membership
        check_holds_all(before.permission_set, held, f"{membership.user.email} is {before.name}")
        membership.role, membership.expires_at = role, new_expiry
        membership.role_after_expiry = new_then
        membership.save(update_fields=["role", "expires_at", "role_after_expiry"])
        changes_before, changes_after = {"role": before.name}, {"role": role.name}
        if new_expiry != old_expiry:
            changes_before["expires_at"], changes_after["expires_at"] = (
                _iso(old_expiry),
                _iso(new_expiry),
            )
        if not same_then:
            changes_before["role_after_expiry"] = old_then.name if old_then else None
            changes_after["role_after_expiry"] = new_then.name if new_then else None
        audit.record(
            actor,
            "workspace_member.role_changed",
            membership,
            workspace=workspace,
            target_label=membership.user.email,
            before=changes_before,
            after=changes_after,
        )
    return membership


def end_expired_grants(org_membership, workspace) -> None:
    """An expired grant still in the table (not yet cleaned up) makes way for a new one (an
    expired upgrade is a membership still: it falls back to its role_after_expiry). Its own
    transaction (a savepoint inside the caller's): the row lock and the audit row go together."""
    with transaction.atomic():
        for expired in WorkspaceMembership.objects.select_for_update().filter(
            org_membership=org_membership,
            workspace=workspace,
            expires_at__lte=timezone.now(),
            role_after_expiry__isnull=True,
        ):
            _record_expiry(expired, workspace)
            expired.delete()


def _record_expiry(membership, workspace) -> None:
    """Audit a grant's end: gone, or (a temporary upgrade) from its role back to the fallback."""
    fallback = membership.role_after_expiry
    audit.record(
        Actor.system("grant_expiry", workspace.organization, workspace),
        "workspace_member.grant_expired",
        membership,
        workspace=workspace,
        target_label=membership.org_membership.user.email,
        before={"role": membership.role.name, "expires_at": _iso(membership.expires_at)},
        after={"role": fallback.name, "expires_at": None} if fallback else None,
    )


def _settle_expired_upgrade(membership, now=None) -> bool:
    """A temporary upgrade past its expiry becomes the permanent membership it falls back to
    (what the resolver already reads), audited as the grant's expiry. The row is locked."""
    if membership.role_after_expiry_id is None or not membership.is_expired(now):
        return False
    _record_expiry(membership, membership.workspace)
    membership.role, membership.expires_at = membership.role_after_expiry, None
    membership.role_after_expiry = None
    membership.save(update_fields=["role", "expires_at", "role_after_expiry"])
    return True


def remove_expired_grants(now=None) -> int:
    """Delete every expired time-bound grant, and turn every expired temporary upgrade into
    the permanent membership it falls back to, each audited (the periodic cleanup). Access does
    not wait for this: the resolver reads an expired grant as such from its expiry on."""
    now = now or timezone.now()
    removed = 0
    with transaction.atomic():
        expired = (
            WorkspaceMembership.objects.select_for_update(of=("self",))
            .select_related(
                "workspace__organization", "role", "role_after_expiry", "org_membership__user"
            )
            .filter(expires_at__lte=now)
        )
        for membership in expired:
            if not _settle_expired_upgrade(membership, now):
                _record_expiry(membership, membership.workspace)
                membership.delete()
            removed += 1
    return removed


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
    return roles_assignable_in(organization).order_by(rank, "name")


def grantable_roles(actor, workspace) -> list[Role]:
    """The roles the actor may hand out in this workspace: those its organization may assign,
    none holding a permission the actor lacks there."""
    held = actor.access_in(workspace).grantable
    return [r for r in assignable_roles(workspace.organization) if r.permission_set <= held]


def workspace_members(actor, workspace):
    """A workspace's members, for whoever may read the workspace (console and API alike)."""
    if not actor.access_in(workspace).allows("workspaces:read"):
        return WorkspaceMembership.objects.none()
    return (
        workspace.memberships.filter(in_effect())
        .select_related("org_membership__user", "role", "role_after_expiry", "workspace")
        .order_by("org_membership__user__email")
    )
