"""Keys over the API: whoami, service keys (`/api-key`) and personal access tokens."""

import datetime
import uuid
from typing import Annotated, Literal

from ninja import Field, Schema, Status

from accesscontrol.api.router import GatedRouter
from accesscontrol.api.schemas import Body, UtcDateTime
from accesscontrol.apikeys import services
from accesscontrol.apikeys.limits import PRESETS, TokenLimits
from accesscontrol.rbac.gate import ApiError, authenticated, requires
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


class ServiceKeyOut(Schema):
    id: uuid.UUID
    name: str
    hint: str
    scope: str
    workspace_id: uuid.UUID | None
    role_id: uuid.UUID | None
    role: str | None
    created_by: str
    created_at: datetime.datetime
    expires_at: datetime.datetime | None
    last_used_at: datetime.datetime | None
    revoked_at: datetime.datetime | None
    status: str
    legacy: bool

    @staticmethod
    def resolve_scope(key):
        return "organization" if key.is_org_scoped else "workspace"

    @staticmethod
    def resolve_role(key):
        return key.role.name if key.role else None

    @staticmethod
    def resolve_created_by(key):
        return key.created_by_label


class ServiceKeyCreatedOut(ServiceKeyOut):
    key: str = Field(description="The key itself. Shown this once; store it now.")


class ServiceKeyIn(Body):
    name: str = Field(min_length=1, max_length=100)
    role_id: uuid.UUID | None = Field(None, description="Defaults to the Admin role.")
    expires_at: UtcDateTime | None = None
    scope: str = Field("workspace", pattern="^(workspace|organization)$")


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
    )
    key.key = raw
    return Status(201, key)


@router.delete("/api-key/{key_id}", response=ServiceKeyOut, summary="Revoke a service key")
@requires("workspaces:manage")
def revoke_service_key(request, key_id: uuid.UUID):
    key = _visible_service_keys(request).get(pk=key_id)
    return services.revoke_service_key(actor=request.actor, key=key)


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
