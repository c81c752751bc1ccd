"""Who has access: every principal that can act in a workspace, what it may do, and why.

Permissions come from the same rules as the request gate (`compute_access`), so this page and
the gate cannot disagree. It costs four queries whatever the size of the organization.
"""

import datetime
from dataclasses import dataclass, field

from django.db.models import Count, Max, Q
from django.utils import timezone

from accesscontrol.apikeys.authentication import service_key_access
from accesscontrol.apikeys.models import PersonalAccessToken, ServiceKey
from accesscontrol.organizations.models import OrganizationMembership
from accesscontrol.rbac.permissions import (
    ADMIN_EVERYWHERE_ROLES,
    READ_PERMISSIONS,
    WORKSPACE_PERMISSIONS,
)
from accesscontrol.rbac.resolver import REASONS, compute_access

STALE_AFTER = datetime.timedelta(days=90)  # no activity for this long: marked stale


@dataclass
class Principal:
    kind: str  # member | org_admin | service_key
    label: str
    role: str | None
    reason: str
    permissions: frozenset[str]
    last_active: datetime.datetime | None
    stale: bool
    object_id: str
    user_id: int | None = None
    tokens: int = 0
    tokens_narrowed: int = 0  # of those, narrowed to fewer workspaces or permissions
    tokens_last_used: datetime.datetime | None = None
    details: dict = field(default_factory=dict)

    @property
    def workspace_permissions(self):
        return sorted(self.permissions & WORKSPACE_PERMISSIONS)

    @property
    def summary(self) -> str | None:
        """A short name for a well-known set, else None (then the codes are listed)."""
        held = self.permissions & WORKSPACE_PERMISSIONS
        if held == WORKSPACE_PERMISSIONS:
            return "everything in the workspace"
        if held == READ_PERMISSIONS:
            return "read everything"
        return None


def latest_of(*moments):
    present = [m for m in moments if m is not None]
    return max(present) if present else None


def is_stale(last_active, since, now) -> bool:
    """The one staleness rule (this page and access reviews): no activity since `STALE_AFTER`
    before `now`; never active counts from `since` (when the access was given)."""
    return (last_active or since) < now - STALE_AFTER


def tokens_in_use(organization) -> dict:
    """Per organization membership: how many active personal access tokens (how many of them
    narrowed: apikeys/limits.py), last used when."""
    return {
        row["org_membership_id"]: row
        for row in PersonalAccessToken.objects.active()
        .filter(org_membership__organization=organization)
        .values("org_membership_id")
        .annotate(
            count=Count("id"),
            narrowed=Count(
                "id",
                filter=Q(permission_limit__isnull=False) | Q(workspace_limit__isnull=False),
            ),
            last=Max("last_used_at"),
        )
    }


def person_last_active(membership, tokens):
    """A person is active when they sign in or when one of their tokens is used."""
    return latest_of(membership.user.last_login, tokens.get(membership.pk, {}).get("last"))


def workspace_access(workspace, now=None) -> list[Principal]:
    now = now or timezone.now()
    org = workspace.organization
    tokens = tokens_in_use(org)
    principals = []
    admins = (
        OrganizationMembership.objects.filter(organization=org, org_role__in=ADMIN_EVERYWHERE_ROLES)
        .select_related("user")
        .order_by("user__email")
    )
    for m in admins:
        principals.append(_person(m, "org_admin", None, None, None, workspace, tokens, now))
    members = (
        workspace.memberships.exclude(org_membership__org_role__in=ADMIN_EVERYWHERE_ROLES)
        .select_related("org_membership__user", "role")
        .order_by("org_membership__user__email")
    )
    for wm in members:
        principals.append(
            _person(
                wm.org_membership,
                "member",
                wm.role.name,
                wm.role.organization_id,
                wm.role.permissions,
                workspace,
                tokens,
                now,
                since=wm.created_at,
            )
        )
    keys = (
        ServiceKey.objects.active()
        .filter(organization=org)
        .filter(Q(workspace=workspace) | Q(workspace__isnull=True))
        .select_related("role", "organization")
        .order_by("name")
    )
    for key in keys:
        if key.role is None:
            continue
        access = service_key_access(key, workspace)
        principals.append(
            Principal(
                kind="service_key",
                label=key.audit_label,
                role=access.role,
                reason=("organization-wide key: " if key.is_org_scoped else "")
                + REASONS[access.reason],
                permissions=access.permissions,
                last_active=key.last_used_at,
                stale=is_stale(key.last_used_at, key.created_at, now),
                object_id=str(key.pk),
                details={
                    "hint": key.hint,
                    "created_by": key.created_by_label,
                    "expires_at": key.expires_at,
                    "legacy": key.legacy,
                },
            )
        )
    return principals


def _person(
    membership, kind, role_name, role_org_id, role_codes, workspace, tokens, now, since=None
):
    access = compute_access(
        org_role=membership.org_role,
        plan=workspace.organization.plan,
        archived=workspace.archived,
        role_name=role_name,
        role_org_id=role_org_id,
        role_codes=role_codes,
    )
    token_row = tokens.get(membership.pk, {})
    user = membership.user
    last_active = person_last_active(membership, tokens)
    return Principal(
        kind=kind,
        label=user.email,
        role=access.role,
        reason=REASONS[access.reason].format(plan=workspace.organization.plan),
        permissions=access.permissions,
        last_active=last_active,
        stale=is_stale(last_active, since or membership.created_at, now),
        object_id=str(membership.pk),
        user_id=user.pk,
        tokens=token_row.get("count", 0),
        tokens_narrowed=token_row.get("narrowed", 0),
        tokens_last_used=token_row.get("last"),
    )


def who_can(principals, code):
    return [r for r in principals if code in r.permissions]


def user_access(membership, now=None):
    """Every workspace of the organization and what this member may do in each."""
    now = now or timezone.now()
    org = membership.organization
    roles = {
        wm.workspace_id: wm.role for wm in membership.workspace_memberships.select_related("role")
    }
    rows = []
    for workspace in org.workspaces.order_by("name"):
        role = roles.get(workspace.pk)
        workspace.organization = org
        access = compute_access(
            org_role=membership.org_role,
            plan=org.plan,
            archived=workspace.archived,
            role_name=role.name if role else None,
            role_org_id=role.organization_id if role else None,
            role_codes=role.permissions if role else None,
        )
        if access.permissions & WORKSPACE_PERMISSIONS:
            rows.append((workspace, access))
    return rows
