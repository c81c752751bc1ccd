"""The permission catalog and the organization's roles."""

import uuid

from ninja import Field, Schema, Status

from accesscontrol.api.router import GatedRouter
from accesscontrol.api.schemas import Body
from accesscontrol.rbac import permissions as catalog
from accesscontrol.rbac import services
from accesscontrol.rbac.gate import authenticated, requires
from accesscontrol.rbac.models import Role

router = GatedRouter(tags=["roles"])


class ResourceOut(Schema):
    resource: str
    label: str
    actions: list[str]
    codes: list[str]


class PermissionsOut(Schema):
    workspace: list[ResourceOut]
    organization: list[str]
    system_roles: dict[str, list[str]]


@router.get("/permissions", response=PermissionsOut, summary="The permission catalog")
@authenticated
def list_permissions(request):
    return {
        "workspace": catalog.catalog(),
        "organization": sorted(catalog.ORGANIZATION_PERMISSIONS),
        "system_roles": {
            name: sorted(codes) for name, codes in catalog.SYSTEM_ROLE_PERMISSIONS.items()
        },
    }


class RoleOut(Schema):
    id: uuid.UUID
    name: str
    description: str
    system: bool = Field(alias="is_system")
    permissions: list[str]

    @staticmethod
    def resolve_permissions(role):
        return sorted(role.permission_set)


class RoleIn(Body):
    name: str = Field(min_length=1, max_length=60)
    description: str = Field("", max_length=300)
    permissions: list[str] = Field(default_factory=list)


class RolePatch(Body):
    name: str | None = Field(None, min_length=1, max_length=60)
    description: str | None = Field(None, max_length=300)
    permissions: list[str] | None = None


@router.get("/orgs/current/roles", response=list[RoleOut], summary="System and custom roles")
@requires("organization:read")
def list_roles(request):
    org = request.auth.organization
    roles = Role.objects.usable_in(org)
    return sorted(roles, key=lambda r: (not r.is_system, r.name.lower()))


@router.post("/orgs/current/roles", response={201: RoleOut}, summary="Create a custom role")
@requires("organization:manage")
def create_role(request, payload: RoleIn):
    role = services.create_role(
        actor=request.actor,
        organization=request.auth.organization,
        name=payload.name,
        description=payload.description,
        permissions=payload.permissions,
    )
    return Status(201, role)


@router.patch("/orgs/current/roles/{role_id}", response=RoleOut, summary="Change a custom role")
@requires("organization:manage")
def update_role(request, role_id: uuid.UUID, payload: RolePatch):
    return services.update_role(
        actor=request.actor,
        role=services.role_by_id(request.actor, role_id),
        name=payload.name,
        description=payload.description,
        permissions=payload.permissions,
    )


@router.delete(
    "/orgs/current/roles/{role_id}",
    response={204: None},
    summary="Delete a custom role that nobody uses",
)
@requires("organization:manage")
def delete_role(request, role_id: uuid.UUID):
    role = services.role_by_id(request.actor, role_id)
    services.delete_role(actor=request.actor, role=role)
    return Status(204, None)
