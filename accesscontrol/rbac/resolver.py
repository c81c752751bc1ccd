"""Who may do what where: the one place that turns memberships and roles into permission codes."""

import datetime
from dataclasses import dataclass, field

from django.db.models import FilteredRelation, Q

from accesscontrol.organizations.models import OrganizationMembership, Plan
from accesscontrol.rbac import versions
from accesscontrol.rbac.models import role_permissions
from accesscontrol.rbac.permissions import (
    ADMIN,
    ORG_ROLE_PERMISSIONS,
    READ_PERMISSIONS,
    WORKSPACE_PERMISSIONS,
)
from accesscontrol.rbac.permissions import org_role as org_role_spec
from accesscontrol.workspaces.models import grant_expired


@dataclass(frozen=True)
class Access:
    """A principal's standing in one organization (and, if given, one of its workspaces)."""

    permissions: frozenset[str] = frozenset()
    org_role: str | None = None
    role: str | None = None  # the workspace role in effect, by name
    reason: str = "none"  # org_admin | membership | plan | not_workspace_member | none
    # What this principal may hand out (roles, keys, invitations): what its own role holds,
    # without the lower plans' "every member is Admin". A plan switched down and back up must
    # leave no role or key stronger than its grantor's own role behind it.
    grantable: frozenset[str] | None = field(default=None, compare=False)
    # A narrowed personal access token (apikeys/limits.py): what its user holds here but the
    # token's limits refuse, and the limits in words, so a 403 can say which of the two refused.
    withheld: frozenset[str] = field(default=frozenset(), compare=False)
    limit: str | None = field(default=None, compare=False)
    # A time-bound workspace grant in effect: this access is computed for before that instant
    # only. Every cache of access (rbac/versions.Results) treats an entry as stale from then.
    expires_at: datetime.datetime | None = field(default=None, compare=False)

    def __post_init__(self):
        if self.grantable is None:
            object.__setattr__(self, "grantable", self.permissions)

    @property
    def is_org_member(self) -> bool:
        return self.org_role is not None

    def allows(self, *codes: str) -> bool:
        return all(code in self.permissions for code in codes)

    def missing(self, codes) -> list[str]:
        return [code for code in codes if code not in self.permissions]


NO_ACCESS = Access()

# Why a principal holds its workspace role, in words for pages and 403 bodies.
REASONS = {
    "org_admin": "organization admins are Admin in every workspace",
    "membership": "workspace membership",
    "key_role": "the role given to this key",
    "plan": "on the {plan} plan every workspace member is Admin",
    "not_workspace_member": "not a member of this workspace",
    "none": "not a member of this organization",
    "no_workspace_selected": "no workspace selected (send X-Tenant-Id)",
    "org": "organization role",
}


def resolve_access(user, organization_id, workspace=None) -> Access:
    """One query: the org membership, the plan and the workspace role together."""
    if user is None or not user.is_authenticated or not user.is_active:
        return NO_ACCESS
    memberships = OrganizationMembership.objects.filter(
        user_id=user.pk, organization_id=organization_id
    )
    fields = ["org_role", "organization__plan"]
    if workspace is not None:
        memberships = memberships.annotate(
            ws=FilteredRelation(
                "workspace_memberships",
                condition=Q(workspace_memberships__workspace_id=workspace.pk),
            )
        )
        fields += [
            "ws__role__name",
            "ws__role__organization_id",
            "ws__role__permissions",
            "ws__expires_at",
            "ws__role_after_expiry__name",
            "ws__role_after_expiry__organization_id",
            "ws__role_after_expiry__permissions",
        ]
    rows = list(memberships.values(*fields)[:1])
    if not rows:
        return NO_ACCESS
    row = rows[0]
    if workspace is None:
        return Access(ORG_ROLE_PERMISSIONS[row["org_role"]], row["org_role"], None, "org")
    return compute_access(
        org_role=row["org_role"],
        plan=row["organization__plan"],
        archived=workspace.archived,
        role_name=row["ws__role__name"],
        role_org_id=row["ws__role__organization_id"],
        role_codes=row["ws__role__permissions"],
        grant_expires_at=row["ws__expires_at"],
        after_expiry=(
            row["ws__role_after_expiry__name"],
            row["ws__role_after_expiry__organization_id"],
            row["ws__role_after_expiry__permissions"],
        ),
    )


# The signed-in user's access on console pages: (user, organization, workspace) -> Access,
# kept in this process under the organization's authorization version, exactly as API
# principals are (rbac/versions.Results). Any change to memberships, roles, the plan or the
# workspace moves the version, and Redis pushes that to every process before the change's
# response leaves, so the next console request anywhere reads the database again.
_console_access = versions.Results(size=10_000, seconds=300)


def console_access(user, organization_id, workspace=None) -> Access:
    """resolve_access for a console request: no query, and no round trip, while this process
    can tell that nothing about access in the organization changed since it was resolved."""
    if user is None or not user.is_authenticated or not user.is_active:
        return NO_ACCESS  # the user row is read on every request: a deactivation counts at once
    here = None if workspace is None else (workspace.pk, workspace.archived)
    key = (user.pk, organization_id, here)
    entry = _console_access.entry(key)
    access = _console_access.trusted(entry)
    if access is not None:
        return access
    version = versions.before_read(organization_id)
    if entry is not None:
        access = _console_access.under(entry, version)
        if access is not None:
            return access
    access = resolve_access(user, organization_id, workspace)
    _console_access.remember(key, organization_id, version, access, until=access.expires_at)
    return access


def role_fields(role) -> dict:
    """compute_access's three arguments for a role held in a workspace (a Role, or None: none)."""
    if role is None:
        return {"role_name": None, "role_org_id": None, "role_codes": None}
    return {
        "role_name": role.name,
        "role_org_id": role.organization_id,
        "role_codes": role.permissions,
    }


def compute_access(
    *,
    org_role,
    plan,
    archived,
    role_name,
    role_org_id=None,
    role_codes=None,
    org_permissions=None,
    grant_expires_at=None,
    after_expiry=None,
    now=None,
) -> Access:
    """The rules, without the database: every principal kind goes through here.

    `org_role` is None for service keys, which then pass their own `org_permissions`.
    `grant_expires_at` is the workspace membership's expiry: an expired grant counts as none,
    unless it was a temporary upgrade: then `after_expiry` (name, organization id, codes of its
    role_after_expiry) is the role from that instant on, for good.
    """
    if org_permissions is None:
        org_permissions = ORG_ROLE_PERMISSIONS.get(org_role, frozenset())
    spec = org_role_spec(org_role)
    if grant_expired(grant_expires_at, now):
        role_name = grant_expires_at = None
        if after_expiry is not None and after_expiry[0] is not None:
            role_name, role_org_id, role_codes = after_expiry
    if spec is not None and spec.admin_everywhere:
        grant_expires_at = None  # an org admin is Admin everywhere, grant or no grant
        role, reason, granted = ADMIN, "org_admin", WORKSPACE_PERMISSIONS
    elif role_name is None:
        return Access(org_permissions, org_role, None, "not_workspace_member")
    elif plan != Plan.ENTERPRISE:
        role, reason, granted = ADMIN, "plan", WORKSPACE_PERMISSIONS
    else:
        role, reason = role_name, "membership" if org_role is not None else "key_role"
        granted = role_permissions(role_name, role_org_id, role_codes)
    by_role = granted if reason != "plan" else role_permissions(role_name, role_org_id, role_codes)

    caps = []
    if spec is not None and spec.read_only:
        # Read-only org roles are read-only everywhere, whatever a workspace role says.
        caps.append(READ_PERMISSIONS)
    if archived:
        # An archived workspace is read-only; its admins keep the right to restore it.
        caps.append(READ_PERMISSIONS | {"workspaces:manage"})
    for cap in caps:
        granted, by_role = granted & cap, by_role & cap
    return Access(
        frozenset(granted | org_permissions),
        org_role,
        role,
        reason,
        grantable=frozenset(by_role | org_permissions),
        expires_at=grant_expires_at,
    )


def effective_permissions(principal, workspace) -> frozenset[str]:
    return resolve_access(principal, workspace.organization_id, workspace).permissions
