"""Keys over the API: whoami, service keys (`/api-key`) and personal access tokens."""

import datetime
import uuid
from typing import Annotated, Literal

from django.conf import settings
from ninja import Field, Schema, Status

from accesscontrol import throttle
from accesscontrol.api.router import GatedRouter
from accesscontrol.api.schemas import Body, UtcDateTime
from accesscontrol.apikeys import leaks, rotation, services
from accesscontrol.apikeys.ip_allow_lists import MAX_ENTRIES
from accesscontrol.apikeys.limits import PRESETS, TokenLimits
from accesscontrol.rbac.gate import ApiError, authenticated, public, requires
from accesscontrol.rbac.resolver import REASONS
from accesscontrol.rbac.services import role_by_id

router = GatedRouter(tags=["keys"])


class NamedRef(Schema):
    id: uuid.UUID
    name: str


class WorkspaceRef(NamedRef):
    slug: str


class OrganizationRef(NamedRef):
    slug: str
    plan: str


class TokenLimitsOut(Schema):
    preset: str | None = Field(
        description="read-only, tracing-only, custom (its own pick), or null: no permission limit"
    )
    permissions: list[str] | None = Field(description="The codes it is limited to, if any.")
    workspace_ids: list[uuid.UUID] | None = Field(
        description="The workspaces it is limited to, if any."
    )


class WhoAmIOut(Schema):
    kind: str
    principal: str
    key_id: uuid.UUID
    key_hint: str
    user_email: str | None
    organization: OrganizationRef
    workspace: WorkspaceRef | None
    role: str | None
    reason: str
    permissions: list[str]
    limits: TokenLimitsOut | None = Field(
        description="A narrowed personal access token's limits; `permissions` is already "
        "what its user may do here within them."
    )
    withheld_by_limits: list[str] = Field(
        description="What the token's user may do here but the token's limits leave out."
    )
    expires_at: datetime.datetime | None
    legacy: bool


@router.get("/auth/whoami", response=WhoAmIOut, summary="What is this key, and what may it do?")
@authenticated
def whoami(request):
    p = request.auth
    return {
        "kind": p.kind,
        "principal": p.label,
        "key_id": p.key.pk,
        "key_hint": p.key.hint,
        "user_email": p.user.email if p.user else None,
        "organization": p.organization,
        "workspace": p.workspace,
        "role": p.access.role,
        "reason": REASONS.get(p.access.reason, p.access.reason).format(plan=p.organization.plan),
        "permissions": sorted(p.access.permissions),
        "limits": TokenLimits.of(p.key).as_dict(),
        "withheld_by_limits": sorted(p.access.withheld),
        "expires_at": p.key.expires_at,
        "legacy": getattr(p.key, "legacy", False),
    }


# Service keys


KEY_ALLOW_LIST_DOC = (
    "CIDR networks this key may be used from, within the organization's own IP allow list "
    "(a request must come from an address in both); empty: wherever the organization allows."
)


class ServiceKeyOut(Schema):
    id: uuid.UUID
    name: str
    hint: str
    scope: str
    workspace_id: uuid.UUID | None
    role_id: uuid.UUID | None
    role: str | None = Field(None, alias="role.name")
    created_by: str = Field(alias="created_by_label")
    created_at: datetime.datetime
    expires_at: datetime.datetime | None
    last_used_at: datetime.datetime | None
    revoked_at: datetime.datetime | None
    status: str
    legacy: bool
    rotated_to_id: uuid.UUID | None = Field(
        description="Its successor, once rotated: this key works until expires_at."
    )
    revoked_reason: str = Field(
        description="'leaked' (a secret scanner's report), 'self' (revoked with itself), "
        "or '' (by hand)."
    )
    leak_reported_by: str
    leak_url: str
    leak_source: str
    ip_allow_list: list[str] = Field(description=KEY_ALLOW_LIST_DOC)

    @staticmethod
    def resolve_scope(key):
        return "organization" if key.is_org_scoped else "workspace"


class ServiceKeyCreatedOut(ServiceKeyOut):
    key: str = Field(description="The key itself. Shown this once; store it now.")


class ServiceKeyIn(Body):
    name: str = Field(min_length=1, max_length=100)
    role_id: uuid.UUID | None = Field(None, description="Defaults to the Admin role.")
    expires_at: UtcDateTime | None = None
    scope: str = Field("workspace", pattern="^(workspace|organization)$")
    ip_allow_list: list[str] = Field(
        default_factory=list, max_length=MAX_ENTRIES, description=KEY_ALLOW_LIST_DOC
    )


def _visible_service_keys(request):
    return services.visible_service_keys(request.actor, request.auth.workspace)


@router.get("/api-key", response=list[ServiceKeyOut], summary="List service keys")
@requires("workspaces:manage")
def list_service_keys(request):
    return list(_visible_service_keys(request).order_by("-created_at"))


@router.post("/api-key", response={201: ServiceKeyCreatedOut}, summary="Create a service key")
@requires("workspaces:manage")
def create_service_key(request, payload: ServiceKeyIn):
    p = request.auth
    role = None
    if payload.role_id is not None:
        role = role_by_id(request.actor, payload.role_id, field="role_id")
    key, raw = services.create_service_key(
        actor=request.actor,
        organization=p.organization,
        workspace=None if payload.scope == "organization" else p.workspace,
        name=payload.name,
        role=role,
        expires_at=payload.expires_at,
        ip_allow_list=payload.ip_allow_list,
    )
    key.key = raw
    return Status(201, key)


@router.delete("/api-key/{key_id}", response=ServiceKeyOut, summary="Revoke a service key")
@requires("workspaces:manage")
def revoke_service_key(request, key_id: uuid.UUID):
    key = _visible_service_keys(request).get(pk=key_id)
    return services.revoke_service_key(actor=request.actor, key=key)


class RotateIn(Body):
    grace_hours: int = Field(
        24,
        description="How long the old key keeps working beside its successor: 1 to 168 hours "
        "(1 hour to 7 days).",
    )


class RotatedServiceKeyOut(ServiceKeyCreatedOut):
    rotated_from: ServiceKeyOut = Field(description="The old key, with its grace expiry.")


@router.post(
    "/api-key/{key_id}/rotate",
    response={201: RotatedServiceKeyOut},
    summary="Rotate a service key: its successor now, the old key until a grace expiry",
)
@requires("workspaces:manage")
def rotate_service_key(request, key_id: uuid.UUID, payload: RotateIn):
    key = _visible_service_keys(request).get(pk=key_id)
    return _rotated(rotation.rotate_service_key(actor=request.actor, key=key, **payload.dict()))


def _rotated(rotated):
    """The successor with its key (shown this once) and the old key it replaces."""
    successor, raw, old = rotated
    successor.key, successor.rotated_from = raw, old
    return Status(201, successor)


class ServiceKeyIpAllowListIn(Body):
    ip_allow_list: list[str] = Field(max_length=MAX_ENTRIES, description=KEY_ALLOW_LIST_DOC)


@router.put(
    "/api-key/{key_id}/ip-allow-list",
    response=ServiceKeyOut,
    summary="Set where a service key may be used from",
    description="Replaces the key's list (normalised as the organization's is); effective on "
    "every process from the next request. A key may not set a list that refuses its own "
    "request's address.",
)
@requires("workspaces:manage")
def set_service_key_ip_allow_list(request, key_id: uuid.UUID, payload: ServiceKeyIpAllowListIn):
    key = _visible_service_keys(request).get(pk=key_id)
    return services.set_service_key_ip_allow_list(
        actor=request.actor, key=key, ip_allow_list=payload.ip_allow_list
    )


# Personal access tokens


class PersonalAccessTokenOut(Schema):
    id: uuid.UUID
    name: str
    hint: str
    created_at: datetime.datetime
    expires_at: datetime.datetime | None
    last_used_at: datetime.datetime | None
    revoked_at: datetime.datetime | None
    status: str
    rotated_to_id: uuid.UUID | None
    revoked_reason: str
    leak_reported_by: str
    leak_url: str
    leak_source: str
    limits: TokenLimitsOut | None = Field(description="null: the token is not narrowed.")

    @staticmethod
    def resolve_limits(token):
        return TokenLimits.of(token).as_dict()


class PersonalAccessTokenCreatedOut(PersonalAccessTokenOut):
    key: str = Field(description="The token itself. Shown this once; store it now.")


class PersonalAccessTokenIn(Body):
    name: str = Field(min_length=1, max_length=100)
    expires_at: UtcDateTime | None = None
    preset: Literal[tuple(PRESETS)] | None = Field(
        None, description="Narrow the token to a preset: read-only or tracing-only."
    )
    permissions: list[Annotated[str, Field(max_length=64)]] | None = Field(
        None,
        max_length=100,
        description="Or narrow it to your own pick of workspace permissions (and "
        "organization:read). Not with `preset`.",
    )
    workspace_ids: list[uuid.UUID] | None = Field(
        None,
        max_length=1000,
        description="Narrow it to these workspaces (of yours). Without X-Tenant-Id it acts in "
        "the first of them you joined.",
    )


def _own_tokens(request):
    """The caller's own tokens; a service key has none (a 403 that says so)."""
    if request.actor.user is None:
        raise _no_user(request.auth)
    return services.own_tokens(request.actor)


NO_USER = "Service keys act for no person, so they have no personal access tokens."


def _no_user(principal) -> ApiError:
    return ApiError(
        403,
        "permission_denied",
        NO_USER,
        required="a personal access token",
        principal=principal.label,
        role=principal.access.role,
        workspace=str(principal.workspace.pk) if principal.workspace else None,
    )


@router.get(
    "/orgs/current/personal-access-tokens",
    response=list[PersonalAccessTokenOut],
    summary="List your personal access tokens",
)
@requires("organization:read")
def list_personal_access_tokens(request):
    return list(_own_tokens(request).order_by("-created_at"))


@router.post(
    "/orgs/current/personal-access-tokens",
    response={201: PersonalAccessTokenCreatedOut},
    summary="Create a personal access token",
)
@requires("organization:pats:create")
def create_personal_access_token(request, payload: PersonalAccessTokenIn):
    p = request.auth
    if p.user is None:
        raise _no_user(p)
    token, raw = services.create_personal_access_token(
        user=p.user,
        organization=p.organization,
        name=payload.name,
        expires_at=payload.expires_at,
        preset=payload.preset,
        permissions=payload.permissions,
        workspaces=payload.workspace_ids,
    )
    token.key = raw
    return Status(201, token)


@router.delete(
    "/orgs/current/personal-access-tokens/{token_id}",
    response=PersonalAccessTokenOut,
    summary="Revoke one of your tokens",
)
@requires("organization:read")
def revoke_personal_access_token(request, token_id: uuid.UUID):
    token = _own_tokens(request).get(pk=token_id)
    return services.revoke_personal_access_token(actor=request.actor, token=token)


class RotatedPersonalAccessTokenOut(PersonalAccessTokenCreatedOut):
    rotated_from: PersonalAccessTokenOut = Field(description="The old token, until its grace ends.")


@router.post(
    "/orgs/current/personal-access-tokens/{token_id}/rotate",
    response={201: RotatedPersonalAccessTokenOut},
    summary="Rotate one of your tokens: its successor now, the old one until a grace expiry",
)
@requires("organization:pats:create")  # it makes a token, as creating one does
def rotate_personal_access_token(request, token_id: uuid.UUID, payload: RotateIn):
    token = _own_tokens(request).get(pk=token_id)
    return _rotated(
        rotation.rotate_personal_access_token(actor=request.actor, token=token, **payload.dict())
    )


# Ending a key without the console: with the key itself, or by a secret scanner's report


class RevokedKeyOut(Schema):
    kind: str
    id: uuid.UUID
    hint: str
    revoked_at: datetime.datetime


@router.delete(
    "/auth/self",
    response=RevokedKeyOut,
    summary="Revoke the key this request presents (whoever holds a key may end it)",
)
@authenticated
def revoke_self(request):
    key = services.revoke_presented_key(actor=request.actor)
    return {"kind": request.auth.kind, "id": key.pk, "hint": key.hint, "revoked_at": key.revoked_at}


class LeakVerdictOut(Schema):
    token_raw: str
    token_type: str
    label: str = Field(description="true_positive: a live key, now revoked; else false_positive.")


REPORT_BODY = {
    "required": True,
    "content": {
        "application/json": {
            "schema": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["token"],
                    "properties": {
                        name: {"type": "string"} for name in ("token", "type", "url", "source")
                    },
                },
            }
        }
    },
}


@router.post(
    "/secret-scanning/reports",
    auth=None,
    response=list[LeakVerdictOut],
    summary="Report leaked keys (for secret scanners; signed, see docs/key-patterns.md)",
    description="A JSON list of {token, type, url, source}, signed as GitHub's secret-scanning "
    f"partner program signs: `{leaks.KEY_ID_HEADER}` names a trusted scanner's public key, "
    f"`{leaks.SIGNATURE_HEADER}` is the base64 DER ECDSA P-256/SHA-256 signature of the raw "
    "body. Every live key named is revoked at once and its owners are told. No API key needed.",
    openapi_extra={"requestBody": REPORT_BODY},
)
@public
def report_leaked_keys(request):
    attempt = throttle.reserve((throttle.limit("secret-scanning"), throttle.client_ip(request)))
    if attempt.retry_after:  # every report counts, accepted or not
        raise ApiError(
            429, "too_many_requests", f"Too many reports; retry in {attempt.retry_after} seconds."
        )
    limit = settings.SECRET_SCANNING_MAX_BODY
    try:
        declared = int(request.headers.get("Content-Length") or 0)
    except ValueError:
        declared = 0
    if declared > limit or len(request.body) > limit:
        raise ApiError(413, "too_large", f"A report is at most {limit} bytes.")
    try:
        # Its shape first (a 422 like every API body's, and it writes nothing), then who sent it.
        findings = leaks.parse_report(request.body)
        scanner = leaks.verify_signature(
            request.body,
            request.headers.get(leaks.KEY_ID_HEADER),
            request.headers.get(leaks.SIGNATURE_HEADER),
        )
    except leaks.ReportRefused as refused:
        raise ApiError(refused.status, refused.error, refused.detail) from None
    return leaks.act_on_report(scanner, findings)
