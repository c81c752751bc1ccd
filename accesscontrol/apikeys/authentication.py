"""API key authentication: from a presented key and X-Tenant-Id to a principal with its access.

Budget (ARCHITECTURE §9): one SQL statement for the key with its organization, workspace and
role (apikeys/lookup.py); none, and no Redis round trip either, when the principal is cached.
The cache is per process, keyed by (key digest, tenant), and an entry is used only while its
organization's authorization version is the one it was computed under. This process knows that
without asking: Redis pushes every change of a version to it (rbac/versions.py), so any change
to roles, memberships or keys is still seen by every process on the next request.

Every request, warm or cold, is also held to the organization's IP allow lists against its own
client address (apikeys/ip_allow_lists.py), from the lists parsed into the cached principal.
"""

import dataclasses
import datetime
import uuid
from dataclasses import dataclass

from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.db.models import F, FilteredRelation, Q
from django.utils import timezone

from accesscontrol import throttle
from accesscontrol.apikeys import ip_allow_lists, keys, lookup
from accesscontrol.apikeys.limits import TokenLimits, narrow
from accesscontrol.apikeys.models import PersonalAccessToken, ServiceKey
from accesscontrol.audit import services as audit
from accesscontrol.rbac import versions
from accesscontrol.rbac.permissions import (
    ADMIN,
    ORG_MANAGE,
    ORG_READ,
    ORG_ROLE_PERMISSIONS,
    WORKSPACE_PERMISSIONS,
)
from accesscontrol.rbac.resolver import Access, compute_access, role_fields
from accesscontrol.workspaces.models import Workspace

LAST_USED_RESOLUTION = datetime.timedelta(minutes=1)


class KeyRejected(Exception):
    """The request cannot go on; `status` is 401 for bad keys, 400/403 for bad selection."""

    def __init__(self, error: str, detail: str, status: int = 401):
        super().__init__(detail)
        self.error, self.detail, self.status = error, detail, status


@dataclass
class Principal:
    kind: str  # personal_access_token | service_key
    key: PersonalAccessToken | ServiceKey
    organization: object
    workspace: Workspace | None
    access: Access
    # Where the key may be used from, parsed once when the principal is read (None: anywhere);
    # and the address this request came from (each request has its own copy of the principal).
    allow_list: ip_allow_lists.AllowList | None = None
    address: str | None = None

    @property
    def user(self):
        return self.key.user

    @property
    def label(self) -> str:
        return self.key.audit_label

    def access_in(self, workspace) -> Access:
        """Access in another workspace of the same organization (path-addressed operations)."""
        if workspace.organization_id != self.organization.pk:
            return Access()
        if self.workspace is not None and workspace.pk == self.workspace.pk:
            return self.access
        if self.kind == "service_key":
            if not self.key.is_org_scoped:
                return Access()  # a workspace key acts in its own workspace only
            return service_key_access(self.key, workspace)
        row = _pat_workspaces(self.key).filter(pk=workspace.pk).first()
        return _pat_access(self.key, row) if row else Access()


class AddressNotAllowed(KeyRejected):
    """A valid key used from outside its organization's (or its own) IP allow list."""

    def __init__(self, address, refused_by):
        super().__init__(
            "ip_not_allowed", ip_allow_lists.refusal_detail(address, refused_by), status=403
        )
        self.extra = {"address": address, "allow_list": refused_by}


class Throttled(KeyRejected):
    def __init__(self, retry_after: int):
        super().__init__(
            "too_many_requests",
            "Too many failed authentications from this client or with this key; "
            f"retry in {retry_after} seconds.",
            status=429,
        )
        self.retry_after = retry_after


def authenticate(raw_key: str, tenant: str | None, client_ip: str | None = None) -> Principal:
    """The principal for a presented key and X-Tenant-Id, or KeyRejected.

    Failed authentications (401) count against the presented key and the client's IP; past a
    limit the answer is 429. For a key not proven valid an attempt is reserved before the key is
    looked up (throttle.reserve), so a burst of guesses gets no more lookups than the limit.

    A key proven valid (it authenticated before: cached in this process, or marked proven in the
    shared cache) is not refused for other keys' failures from its address; any other key from an
    address past its limit gets 429 without being looked up, so a guesser there cannot tell a
    right guess from a wrong one. On the hot path (a principal cached in this process whose
    organization's version this process still trusts) nothing is read at all: a key proven
    here is no guess, so its counter cannot matter; otherwise the key's counter and the
    organization's version are read in one cache round trip.
    """
    ip_checks = [] if client_ip is None else [(throttle.limit("key-ip"), client_ip)]
    parsed = keys.parse(raw_key)
    if parsed is None:  # nothing to look up or to count against but the client's address
        attempt = throttle.reserve(*ip_checks)
        if attempt.retry_after:
            raise Throttled(attempt.retry_after)
        raise KeyRejected("invalid_api_key", "The API key is malformed or its checksum is wrong.")
    tenant_id = _parse_tenant(tenant)  # a bad selection is no guess: not counted
    entry = _principals.entry((parsed.digest, tenant_id))
    principal = _trusted(entry)
    if principal is not None:
        # This very key authenticated in this process and nothing about its access changed
        # since: no guess, so no rate limit to consult, and nothing to ask the network.
        return _admitted(principal, client_ip)

    key_check = (throttle.limit("key"), parsed.digest)
    proof = _proof_key(parsed.digest)
    if entry is not None:
        # Proven in this process, but its organization's access changed since (or the process
        # lost track of it): still no guess, so no rate limit is read, and the version only if
        # this process cannot tell it.
        organization_id = entry[0]
        version = versions.before_read(organization_id)
        principal = _cached(entry, version)
        if principal is not None:
            return _admitted(principal, client_ip)
        proven = True
    else:
        [(counter, rule, wait)] = throttle.counters(key_check)
        snapshot = versions.snapshot()
        known = cache.get_many([counter, proof])
        if known.get(counter, 0) >= rule.attempts:
            raise Throttled(wait)
        organization_id = version = None
        proven = proof in known

    # A proven key is no guess: it is looked up without a reservation, so a burst of its own
    # good requests (all cold after an access change) cannot use up its limit; if it fails now,
    # the failure is counted below.
    attempt = throttle.reserve(*([] if proven else [key_check, *ip_checks]))
    if attempt.retry_after:
        raise Throttled(attempt.retry_after)
    try:
        if parsed.kind == keys.LEGACY:
            _refuse_after_sunset(parsed.digest)
        if parsed.kind == keys.PERSONAL:
            principal = _authenticate_pat(parsed.digest, tenant_id)
        else:
            principal = _authenticate_service_key(parsed.digest, tenant_id, parsed.kind)
    except KeyRejected as exc:
        if exc.status != 401:
            attempt.release()  # a valid key with a bad selection: not a failed authentication
        elif proven:
            # A key that was valid fails now (revoked, expired): from here on it is an
            # unproven key, counted against the address like any other.
            _principals.forget((parsed.digest, tenant_id))
            cache.delete(proof)
            throttle.record_failure(key_check, *ip_checks)
        raise
    attempt.release()
    principal.allow_list = ip_allow_lists.allow_list_for(principal.organization, principal.key)
    if entry is None:
        cache.set(proof, True, PROOF_SECONDS)
        # First sight: the organization was not known before the read; its version then is, if
        # nothing was pushed to this process meanwhile (else the next request reads it again).
        organization_id = principal.organization.pk
        version = versions.since(snapshot, organization_id)
    _remember(parsed.digest, tenant_id, principal, organization_id, version)
    return _admitted(principal, client_ip)


def _admitted(principal, client_ip) -> Principal:
    """The principal of this request, if its address may use the key (AddressNotAllowed if
    not: a valid key, so no failed authentication). Checked on every request, warm or cold,
    against the lists parsed into the principal: no I/O. A refused request is no use of the key.
    """
    principal.address = client_ip
    if principal.allow_list is not None:
        refused_by = principal.allow_list.refused_by(client_ip)
        if refused_by is not None:
            raise AddressNotAllowed(client_ip or "unknown", refused_by)
    _touch(principal.key)
    return principal


# How long a key stays proven valid after its last authentication from the database.
PROOF_SECONDS = 24 * 3600


def _proof_key(digest) -> str:
    return f"apikeys:proven:{throttle.hashed(digest)}"


def _refuse_after_sunset(digest):
    sunset = settings.LEGACY_API_KEY_SUNSET
    if timezone.now().date() < sunset:
        return
    refused = _unique(
        ServiceKey.objects.select_related("organization", "workspace").filter(
            digest=digest, legacy=True
        )
    )
    if refused is not None:
        _record_refused_use(refused, "service_key.legacy_refused")
    raise KeyRejected(
        "legacy_api_key_sunset",
        f"legacy ls__ API keys are no longer supported since {sunset.isoformat()}; "
        "create a service key or a personal access token",
    )


# The per-process principal cache: (digest, tenant) -> principal, under its organization's
# version (rbac/versions.Results, the same as the console's access).
_principals = versions.Results(size=10_000, seconds=300)


def _trusted(entry):
    """The cached principal, if this process knows its organization's version is unchanged
    (rbac/versions.py: Redis pushes every change here), without any network round trip."""
    return _usable(_principals.trusted(entry))


def _cached(entry, version):
    """The cached principal if it was computed under `version`, the organization's current one.

    On a miss the version was read before the database is, so a result is stored under the
    version that was current before it was computed, never under a later one.
    """
    return _usable(_principals.under(entry, version))


def _usable(principal):
    if principal is None:
        return None
    expires_at = principal.key.expires_at
    if expires_at is not None and expires_at <= timezone.now():
        return None
    return dataclasses.replace(principal)


def _remember(digest, tenant_id, principal, organization_id, version):
    if organization_id != principal.organization.pk:
        # Read under another organization's version (a key never moves, but if it did):
        # remember the right organization, trust nothing until it is read again.
        version = None
    _principals.remember(
        (digest, tenant_id),
        principal.organization.pk,
        version,
        dataclasses.replace(principal),
        until=principal.access.expires_at,
    )


def forget_cached_principals() -> None:
    """Trust nothing cached so far: principals, and the console's access (tests)."""
    versions.forget_trusted()


def _parse_tenant(tenant):
    if not tenant:
        return None
    try:
        return uuid.UUID(tenant.strip())
    except ValueError:
        raise KeyRejected(
            "invalid_tenant", "X-Tenant-Id must be a workspace id (a UUID).", status=400
        ) from None


def _unique(queryset):
    """The row of a unique lookup, without the ORDER BY that .first() would add."""
    rows = list(queryset.order_by()[:2])
    return rows[0] if len(rows) == 1 else None


def _check_usable(key, presented_digest):
    if key is None or not keys.same_digest(key.digest, presented_digest):
        raise KeyRejected("invalid_api_key", "This API key is not known.")
    if key.revoked_at is not None or getattr(key, "role_id", True) is None:
        raise KeyRejected("revoked_api_key", _revoked_detail(key))
    if key.expires_at is not None and key.expires_at <= timezone.now():
        _record_refused_use(key, f"{key.audit_kind}.expired_use")
        raise KeyRejected("expired_api_key", _expired_detail(key))


def _revoked_detail(key) -> str:
    if key.revoked_reason == key.LEAKED:
        return f"This API key was revoked: {key.leak_reported_by} reported it leaked."
    return "This API key was revoked."


def _expired_detail(key) -> str:
    """When it expired, and for a rotated key the successor to use (its hint: one more query,
    on a refusal only)."""
    detail = f"This API key expired at {key.expires_at.isoformat()}."
    if key.rotated_to_id is not None:
        hint = type(key).objects.filter(pk=key.rotated_to_id).values_list("hint", flat=True).first()
        detail += f" It was rotated: use its successor {hint}."
    return detail


def _not_accessible(tenant_id):
    return KeyRejected(
        "workspace_not_accessible",
        f"This key has no access to workspace {tenant_id} (X-Tenant-Id).",
        status=403,
    )


# Personal access tokens


def _pat_workspaces(token):
    """Workspaces of the token's organization, each with the user's role there (if any)."""
    return (
        Workspace.objects.filter(organization_id=token.org_membership.organization_id)
        .annotate(
            m=FilteredRelation(
                "memberships", condition=Q(memberships__org_membership_id=token.org_membership_id)
            )
        )
        .annotate(
            role_name=F("m__role__name"),
            role_org_id=F("m__role__organization_id"),
            role_codes=F("m__role__permissions"),
            joined_at=F("m__created_at"),
            grant_expires_at=F("m__expires_at"),
            after_role_name=F("m__role_after_expiry__name"),
            after_role_org_id=F("m__role_after_expiry__organization_id"),
            after_role_codes=F("m__role_after_expiry__permissions"),
        )
    )


def personal_token_access(token) -> list:
    """(workspace, access) for each workspace of the token's organization where its user can
    act, by the rule its requests follow: for its page and the access review."""
    rows = _pat_workspaces(token).order_by("name")
    accesses = [(workspace, _pat_access(token, workspace)) for workspace in rows]
    return [
        (workspace, access)
        for workspace, access in accesses
        if (access.permissions | access.withheld) & WORKSPACE_PERMISSIONS
    ]


def _pat_access(token, workspace) -> Access:
    """The one place a personal access token's Access is built: its user's current access in
    `workspace` (annotated with the user's role there; None: no workspace selected), narrowed
    by the token's limits (apikeys/limits.py)."""
    membership = token.org_membership
    if workspace is None:
        access = Access(
            ORG_ROLE_PERMISSIONS[membership.org_role],
            membership.org_role,
            None,
            "no_workspace_selected",
        )
    else:
        access = compute_access(
            org_role=membership.org_role,
            plan=membership.organization.plan,
            archived=workspace.archived,
            role_name=workspace.role_name,
            role_org_id=workspace.role_org_id,
            role_codes=workspace.role_codes,
            grant_expires_at=workspace.grant_expires_at,
            after_expiry=(
                workspace.after_role_name,
                workspace.after_role_org_id,
                workspace.after_role_codes,
            ),
        )
    return narrow(access, TokenLimits.of(token), workspace)


def _authenticate_pat(presented_digest, tenant_id) -> Principal:
    token, workspace = lookup.personal_access_token(presented_digest, tenant_id)
    _check_usable(token, presented_digest)
    membership = token.org_membership
    if not membership.user.is_active:
        raise KeyRejected("revoked_api_key", "The user of this token is deactivated.")
    if not membership.organization.allow_personal_access_tokens:
        # The setting is read with the token, and changing it moves the organization's
        # authorization version, so no process keeps accepting a cached token afterwards.
        raise KeyRejected(
            "personal_access_tokens_disabled",
            f"The admins of {membership.organization.name} turned off personal access tokens; "
            "ask for a service key instead.",
            status=403,
        )
    limits = TokenLimits.of(token)
    if tenant_id is not None and not limits.allows_workspace(tenant_id):
        # Said whether or not the workspace exists: the limit is the token's own business.
        raise KeyRejected(
            "token_limit",
            f"This token is limited to {limits.describe_workspaces()}; X-Tenant-Id selected "
            f"{tenant_id}, outside its limit.",
            status=403,
        )
    # Without X-Tenant-Id the workspace is the default one: the first one joined (any, for
    # org admins; archived ones never) within the token's workspace limit, chosen by the same
    # statement.
    if tenant_id is not None and workspace is None:
        raise _not_accessible(tenant_id)
    access = _pat_access(token, workspace)
    return Principal("personal_access_token", token, membership.organization, workspace, access)


# Service keys


def service_key_org_permissions(key) -> frozenset[str]:
    if key.is_org_scoped and key.role.is_system and key.role.name == ADMIN:
        return frozenset({ORG_READ, ORG_MANAGE})
    return frozenset({ORG_READ})


def service_key_access(key, workspace) -> Access:
    return compute_access(
        org_role=None,
        plan=key.organization.plan,
        archived=workspace.archived,
        **role_fields(key.role),
        org_permissions=service_key_org_permissions(key),
    )


def _authenticate_service_key(presented_digest, tenant_id, kind) -> Principal:
    key, workspace = lookup.service_key(presented_digest, tenant_id, kind == keys.LEGACY)
    _check_usable(key, presented_digest)
    if tenant_id is not None and (workspace is None or workspace.pk != tenant_id):
        # Another workspace than a workspace key's own, or one outside the key's organization.
        raise _not_accessible(tenant_id)
    if workspace is None:
        access = Access(
            service_key_org_permissions(key), None, key.role.name, "no_workspace_selected"
        )
        return Principal("service_key", key, key.organization, None, access)
    return Principal(
        "service_key", key, key.organization, workspace, service_key_access(key, workspace)
    )


REFUSED_USE_LOG_INTERVAL = 24 * 3600


def _record_refused_use(key, action) -> None:
    """Log that a dead key is still in use: once a day per key, so it cannot flood the log."""
    if not cache.add(f"audit:refused:{action}:{key.pk}", 1, REFUSED_USE_LOG_INTERVAL):
        return
    if isinstance(key, PersonalAccessToken):
        organization, workspace = key.org_membership.organization, None
    else:
        organization, workspace = key.organization, key.workspace
    with transaction.atomic():
        audit.record(
            key,
            action,
            key,
            organization=organization,
            workspace=workspace,
            target_label=key.audit_label,
            after={"expires_at": key.expires_at.isoformat() if key.expires_at else None},
        )


def _touch(key) -> None:
    """Record use at most once a minute, so a busy key does not write on every request."""
    now = timezone.now()
    if key.last_used_at is None or now - key.last_used_at >= LAST_USED_RESOLUTION:
        type(key).objects.filter(pk=key.pk).update(last_used_at=now)
        key.last_used_at = now
