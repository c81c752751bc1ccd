"""Keys over the API: whoami, service keys (`/api-key`) and personal access tokens."""

import datetime
import uuid

from ninja import Field, Schema, Status

from accesscontrol.api.router import GatedRouter
from accesscontrol.api.schemas import Body, UtcDateTime
from accesscontrol.apikeys import services
from accesscontrol.apikeys.ip_allow_lists import MAX_ENTRIES
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


class PersonalAccessTokenCreatedOut(PersonalAccessTokenOut):
    key: str = Field(description="The token itself. Shown this once; store it now.")


class PersonalAccessTokenIn(Body):
    name: str = Field(min_length=1, max_length=100)
    expires_at: UtcDateTime | None = None


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
