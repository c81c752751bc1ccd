"""Who has access: every principal that can act in a workspace, what it may do, and why.

Permissions come from the same rules as the request gate (`compute_access`), so this page and
the gate cannot disagree. A page of it costs the page: access is computed per combination of
roles, and SQL filters, counts and slices (`Review`).
"""

import datetime
from dataclasses import dataclass, field

from django.db.models import (
    CharField,
    Count,
    F,
    JSONField,
    Max,
    OuterRef,
    Q,
    Subquery,
    UUIDField,
    Value,
)
from django.db.models.functions import Cast, Coalesce
from django.utils import timezone

from accesscontrol.apikeys.authentication import service_key_access
from accesscontrol.apikeys.models import PersonalAccessToken, ServiceKey
from accesscontrol.organizations.models import OrganizationMembership
from accesscontrol.rbac.models import Role
from accesscontrol.rbac.permissions import (
    ADMIN_EVERYWHERE_ROLES,
    WORKSPACE_PERMISSIONS,
    describe_permissions,
)
from accesscontrol.rbac.resolver import REASONS, compute_access, role_fields
from accesscontrol.workspaces.models import WorkspaceMembership, in_effect, role_in_effect_field

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
    # How the membership behind it came ("SCIM provisioning", "Invitation"...): shown, not
    # part of what a principal may do.
    source: str = field(default="", compare=False)

    @property
    def workspace_permissions(self):
        return sorted(self.permissions & WORKSPACE_PERMISSIONS)

    @property
    def summary(self) -> str:
        """What it may do here in words, against the closest system role."""
        return describe_permissions(self.permissions)


def latest_of(*moments):
    present = [m for m in moments if m is not None]
    return max(present) if present else None


def is_stale(last_active, since, now) -> bool:
    """The one staleness rule (this page and access reviews): no activity since `STALE_AFTER`
    before `now`; never active counts from `since` (when the access was given)."""
    return (last_active or since) < now - STALE_AFTER


# A token narrowed to fewer workspaces or permissions (apikeys/limits.py).
NARROWED = Q(permission_limit__isnull=False) | Q(workspace_limit__isnull=False)


def tokens_in_use(organization) -> dict:
    """Per organization membership: how many active personal access tokens, last used when."""
    return {
        row["org_membership_id"]: row
        for row in PersonalAccessToken.objects.active()
        .filter(org_membership__organization=organization)
        .values("org_membership_id")
        .annotate(
            count=Count("id"),
            last=Max("last_used_at"),
        )
    }


def person_last_active(membership, tokens):
    """A person is active when they sign in or when one of their tokens is used."""
    return latest_of(membership.user.last_login, tokens.get(membership.pk, {}).get("last"))


def workspace_access(workspace, now=None) -> list[Principal]:
    """Every principal that can act in the workspace, in the review's order."""
    return list(Review(workspace, now=now))


ADMINS, MEMBERS, KEYS = 0, 1, 2  # the review's sections, in its order


class Review:
    """Who can act in a workspace (and, given a permission `code`, who can do that), in order:
    organization admins by email, the workspace's other members by email, then live service
    keys by name.

    A sequence as Django's Paginator takes one: counting and slicing cost queries for the page,
    not for every principal. What a principal may do depends only on a few columns (org role
    and workspace role for people; role and scope for keys), so access is computed once per
    distinct combination present (`compute_access` is pure, the same rules as the gate) and
    the filter becomes a condition on those columns: SQL counts and slices. One query counts
    the combinations, one per section the page reaches reads its rows.
    """

    def __init__(self, workspace, code="", now=None):
        self.workspace, self.code = workspace, code
        self.now = now or timezone.now()
        self._sections = None

    def count(self) -> int:
        return sum(count for _, count in self.sections())

    __len__ = count

    def __getitem__(self, index):
        if not isinstance(index, slice) or index.step not in (None, 1):
            raise TypeError("a review is read by slices")
        start, stop, _ = index.indices(self.count())
        principals = []
        for rows, count in self.sections():
            if start < count and stop > 0:
                principals += [self._principal(r) for r in rows[max(start, 0) : min(stop, count)]]
            start, stop = start - count, stop - count
        return principals

    def __iter__(self):
        for rows, count in self.sections():
            if count:
                yield from (self._principal(r) for r in rows.iterator(chunk_size=500))

    def sections(self):
        """[(rows, how many)] per section: querysets filtered to the principals listed."""
        if self._sections is None:
            self._sections = self._filtered(_combinations(self.workspace, self.now))
        return self._sections

    def _filtered(self, combinations):
        workspace, org = self.workspace, self.workspace.organization
        listed = {ADMINS: [], MEMBERS: {}, KEYS: {}}
        counts = dict.fromkeys(listed, 0)
        for row in combinations:
            section = row["section"]
            access = _combination_access(workspace, row)
            if self.code and self.code not in access.permissions:
                continue
            counts[section] += row["n"]
            if section == ADMINS:
                listed[ADMINS].append(row["held_org_role"])
            else:
                by = row["held_org_role"] if section == MEMBERS else row["org_wide"]
                listed[section].setdefault(by, []).append(row["held_role"])
        admins = admins_of(org).filter(org_role__in=listed[ADMINS])
        members = _members(workspace, self.now).filter(
            _any(
                Q(org_membership__org_role=org_role, held_role_id__in=roles)
                for org_role, roles in listed[MEMBERS].items()
            )
        )
        keys = _keys(workspace).filter(
            _any(
                Q(workspace__isnull=org_scoped, role_id__in=roles)
                for org_scoped, roles in listed[KEYS].items()
            )
        )
        return [
            (
                _with_tokens(admins, "pk").select_related("user").order_by("user__email"),
                counts[ADMINS],
            ),
            (
                _with_tokens(members, "org_membership")
                .select_related("org_membership__user", "role", "role_after_expiry")
                .order_by("org_membership__user__email"),
                counts[MEMBERS],
            ),
            (keys.select_related("role", "organization").order_by("name", "pk"), counts[KEYS]),
        ]

    def _principal(self, row):
        workspace, now = self.workspace, self.now
        if isinstance(row, OrganizationMembership):
            return _person(
                row, "org_admin", None, None, None, workspace, now, source=row.get_source_display()
            )
        if isinstance(row, WorkspaceMembership):
            role, membership = row.role_in_effect(now), row.org_membership
            membership.tokens_count, membership.tokens_last = row.tokens_count, row.tokens_last
            membership.tokens_narrowed = row.tokens_narrowed
            return _person(
                membership,
                "member",
                role.name,
                role.organization_id,
                role.permissions,
                workspace,
                now,
                since=row.created_at,
                expires_at=row.expires_at if not row.is_expired(now) else None,
                then_role=row.role_after_expiry.name if row.role_after_expiry_id else None,
                source=row.get_source_display(),
            )
        return _key(row, workspace, now)


def admins_of(org):
    """The organization's members who are admin of every workspace (ORG_ROLES)."""
    return OrganizationMembership.objects.filter(
        organization=org, org_role__in=ADMIN_EVERYWHERE_ROLES
    )


def _members(workspace, now):
    """Its members but the org admins, expired grants left out (the resolver ignores them),
    each with the role in effect (`held_role_id`: a temporary upgrade's fallback past it)."""
    return (
        workspace.memberships.exclude(org_membership__org_role__in=ADMIN_EVERYWHERE_ROLES)
        .filter(in_effect(now=now))
        .annotate(held_role_id=role_in_effect_field("", "id"))
    )


def _keys(workspace):
    return (
        ServiceKey.objects.active()
        .filter(organization=workspace.organization_id, role__isnull=False)
        .filter(Q(workspace=workspace) | Q(workspace__isnull=True))
    )


def _any(conditions):
    """The conditions OR'd; none: nothing matches."""
    combined = Q(pk__in=[])
    for condition in conditions:
        combined |= condition
    return combined


def _combinations(workspace, now):
    """One query: per section, each distinct combination of what decides access, counted."""
    uuid, text = UUIDField(), CharField()
    nothing = {"held_role": Value(None, uuid), "held_role_name": Value(None, text)}
    nothing |= {
        "held_role_org": Value(None, uuid),
        "held_role_codes": Cast(Value(None), JSONField()),
    }
    columns = (
        "held_org_role",
        "held_role",
        "held_role_name",
        "held_role_org",
        "held_role_codes",
        "org_wide",
    )

    def grouped(rows, section, **exprs):
        return (
            rows.order_by()
            .values(section=Value(section), **{c: exprs[c] for c in columns})
            .annotate(n=Count("pk"))
        )

    role = {"held_role": F("role_id"), "held_role_name": F("role__name")}
    role |= {"held_role_org": F("role__organization_id"), "held_role_codes": F("role__permissions")}
    not_wide = Value(False)
    return grouped(
        admins_of(workspace.organization),
        ADMINS,
        held_org_role=F("org_role"),
        org_wide=not_wide,
        **nothing,
    ).union(
        grouped(
            _members(workspace, now),
            MEMBERS,
            held_org_role=F("org_membership__org_role"),
            org_wide=not_wide,
            **{
                column: role_in_effect_field("", attr)
                for column, attr in (
                    ("held_role", "id"),
                    ("held_role_name", "name"),
                    ("held_role_org", "organization_id"),
                    ("held_role_codes", "permissions"),
                )
            },
        ),
        grouped(
            _keys(workspace),
            KEYS,
            held_org_role=Value(None, text),
            org_wide=Q(workspace__isnull=True),
            **role,
        ),
        all=True,
    )


def _combination_access(workspace, row):
    if row["section"] == KEYS:
        role = Role(
            id=row["held_role"],
            name=row["held_role_name"],
            organization_id=row["held_role_org"],
            permissions=row["held_role_codes"],
        )
        key = ServiceKey(organization=workspace.organization, role=role)
        key.workspace_id = None if row["org_wide"] else workspace.pk
        return service_key_access(key, workspace)
    return compute_access(
        org_role=row["held_org_role"],
        plan=workspace.organization.plan,
        archived=workspace.archived,
        role_name=row["held_role_name"],
        role_org_id=row["held_role_org"],
        role_codes=row["held_role_codes"],
    )


def _with_tokens(memberships, membership):
    """Each row with its membership's active personal access tokens: how many, last used."""
    tokens = (
        PersonalAccessToken.objects.active()
        .filter(org_membership=OuterRef(membership))
        .order_by()
        .values("org_membership")
    )
    return memberships.annotate(
        tokens_count=Coalesce(Subquery(tokens.annotate(n=Count("pk")).values("n")), 0),
        tokens_narrowed=Coalesce(
            Subquery(tokens.filter(NARROWED).annotate(n=Count("pk")).values("n")), 0
        ),
        tokens_last=Subquery(tokens.annotate(last=Max("last_used_at")).values("last")),
    )


def _key(key, workspace, now):
    access = service_key_access(key, workspace)
    return Principal(
        kind="service_key",
        label=key.audit_label,
        role=access.role,
        reason=("organization-wide key: " if key.is_org_scoped else "") + REASONS[access.reason],
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


def _person(
    membership,
    kind,
    role_name,
    role_org_id,
    role_codes,
    workspace,
    now,
    since=None,
    expires_at=None,
    then_role=None,
    source="",
):
    """`membership` carries its tokens (_with_tokens); `expires_at`: a time-bound grant's end."""
    access = compute_access(
        org_role=membership.org_role,
        plan=workspace.organization.plan,
        archived=workspace.archived,
        role_name=role_name,
        role_org_id=role_org_id,
        role_codes=role_codes,
    )
    user = membership.user
    tokens = {membership.pk: {"last": membership.tokens_last}}
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
        tokens=membership.tokens_count,
        tokens_narrowed=membership.tokens_narrowed,
        tokens_last_used=membership.tokens_last,
        details=(
            {"expires_at": expires_at, **({"then_role": then_role} if then_role else {})}
            if expires_at
            else {}
        ),
        source=source,
    )


def user_access(membership, now=None):
    """Every workspace of the organization and what this member may do in each."""
    now = now or timezone.now()
    org = membership.organization
    roles = {
        wm.workspace_id: wm.role_in_effect(now)
        for wm in membership.workspace_memberships.filter(in_effect(now=now)).select_related(
            "role", "role_after_expiry"
        )
    }
    rows = []
    for workspace in org.workspaces.order_by("name"):
        role = roles.get(workspace.pk)
        workspace.organization = org
        access = compute_access(
            org_role=membership.org_role,
            plan=org.plan,
            archived=workspace.archived,
            **role_fields(role),
        )
        if access.permissions & WORKSPACE_PERMISSIONS:
            rows.append((workspace, access))
    return rows
