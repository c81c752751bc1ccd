"""Workspaces and their members."""

import datetime
import uuid

from ninja import Field, Schema, Status

from accesscontrol.api.router import GatedRouter
from accesscontrol.api.schemas import Body, UtcDateTime
from accesscontrol.rbac.gate import requires
from accesscontrol.rbac.services import role_by_id
from accesscontrol.workspaces import services

router = GatedRouter(tags=["workspaces"])


class WorkspaceOut(Schema):
    id: uuid.UUID
    name: str
    slug: str
    archived: bool
    created_at: datetime.datetime


class WorkspaceIn(Body):
    name: str = Field(min_length=1, max_length=100)
    slug: str | None = Field(None, min_length=1, max_length=60)


class WorkspacePatch(Body):
    name: str | None = Field(None, min_length=1, max_length=100)
    archived: bool | None = None


@router.get("/workspaces", response=list[WorkspaceOut], summary="Workspaces this key can reach")
@requires("organization:read")
def list_workspaces(request):
    return services.workspaces_of(request.actor)


@router.post("/workspaces", response={201: WorkspaceOut}, summary="Create a workspace")
@requires("organization:manage")
def create_workspace(request, payload: WorkspaceIn):
    workspace = services.create_workspace(
        actor=request.actor,
        organization=request.auth.organization,
        name=payload.name,
        slug=payload.slug,
    )
    return Status(201, workspace)


@router.get("/workspaces/{workspace_id}", response=WorkspaceOut, summary="One workspace")
@requires("workspaces:read", workspace_param="workspace_id")
def get_workspace(request, workspace_id: uuid.UUID):
    return request.target_workspace


@router.patch(
    "/workspaces/{workspace_id}",
    response=WorkspaceOut,
    summary="Rename, archive or restore a workspace",
)
@requires("workspaces:manage", workspace_param="workspace_id")
def update_workspace(request, workspace_id: uuid.UUID, payload: WorkspacePatch):
    return services.update_workspace(
        actor=request.actor,
        workspace=request.target_workspace,
        name=payload.name,
        archived=payload.archived,
    )


@router.delete(
    "/workspaces/{workspace_id}",
    response=WorkspaceOut,
    summary="Archive a workspace (it becomes read-only; restore with PATCH)",
)
@requires("organization:manage", workspace_param="workspace_id")
def archive_workspace(request, workspace_id: uuid.UUID):
    return services.update_workspace(
        actor=request.actor, workspace=request.target_workspace, archived=True
    )


# Members of the selected workspace (X-Tenant-Id, or the key's own workspace)


class MemberOut(Schema):
    id: uuid.UUID
    user_id: int = Field(alias="org_membership.user_id")
    email: str = Field(alias="org_membership.user.email")
    full_name: str = Field(alias="org_membership.user.full_name")
    # The role in effect now: past a temporary upgrade's expiry (before the cleanup job settles
    # the row) that is the role it fell back to, as the resolver and the members page read it.
    role_id: uuid.UUID = Field(alias="role_in_effect_id")
    role_name: str
    created_at: datetime.datetime
    expires_at: datetime.datetime | None = None
    role_after_expiry_id: uuid.UUID | None = Field(
        None, description="A temporary upgrade: the role in effect from expires_at on."
    )

    @staticmethod
    def resolve_role_name(membership) -> str:
        return membership.role_in_effect().name


class MemberIn(Body):
    email: str = Field(min_length=3, max_length=254)
    role_id: uuid.UUID
    expires_at: UtcDateTime | None = Field(
        None, description="A time-bound grant: the role ends at this instant (omit: permanent)."
    )


class MemberPatch(Body):
    role_id: uuid.UUID
    expires_at: UtcDateTime | None = Field(
        None,
        description="Set (or, with null, remove) the grant's expiry; omit to keep it as it is. "
        "On a temporary upgrade (role_after_expiry_id set), a new role with the expiry omitted "
        "is the member's role for good; with a new expiry it lasts until then.",
    )


def _members(request):
    return services.workspace_members(request.actor, request.auth.workspace)


@router.get(
    "/workspaces/current/members",
    response=list[MemberOut],
    summary="Members of the selected workspace",
)
@requires("workspaces:read")
def list_members(request):
    return list(_members(request))


@router.post(
    "/workspaces/current/members",
    response={201: MemberOut},
    summary="Add an organization member to the selected workspace",
)
@requires("workspaces:manage-members")
def add_member(request, payload: MemberIn):
    p = request.auth
    user = services.org_member_by_email(p.organization, payload.email)
    membership = services.add_workspace_member(
        actor=request.actor,
        workspace=p.workspace,
        user=user,
        role=role_by_id(request.actor, payload.role_id, field="role_id"),
        expires_at=payload.expires_at,
    )
    return Status(201, _members(request).get(pk=membership.pk))


@router.patch(
    "/workspaces/current/members/{member_id}", response=MemberOut, summary="Change a member's role"
)
@requires("workspaces:manage-members")
def change_member_role(request, member_id: uuid.UUID, payload: MemberPatch):
    membership = _members(request).get(pk=member_id)
    services.change_workspace_role(
        actor=request.actor,
        membership=membership,
        role=role_by_id(request.actor, payload.role_id, field="role_id"),
        expires_at=(
            payload.expires_at if "expires_at" in payload.model_fields_set else services.KEEP
        ),
    )
    return _members(request).get(pk=member_id)


@router.delete(
    "/workspaces/current/members/{member_id}",
    response={204: None},
    summary="Remove a member from the selected workspace",
)
@requires("workspaces:manage-members")
def remove_member(request, member_id: uuid.UUID):
    membership = _members(request).get(pk=member_id)
    services.remove_workspace_member(actor=request.actor, membership=membership)
    return Status(204, None)
