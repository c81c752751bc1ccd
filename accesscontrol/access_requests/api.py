"""Access requests through the API: the same services as the console, with the key's actor.

Anyone in the organization may ask and list; reading one request and deciding it needs member
management where the key acts (the gate's first, coarse check). The services decide the rest:
the request's own workspace, and whether the actor may grant the chosen role there.
"""

import datetime
import uuid
from typing import Literal

from ninja import Field, Query, Schema, Status

from accesscontrol.access_requests import services
from accesscontrol.api.router import GatedRouter
from accesscontrol.api.schemas import Body
from accesscontrol.rbac.gate import requires
from accesscontrol.rbac.services import role_by_id
from accesscontrol.workspaces.services import EXPIRY_CHOICES

router = GatedRouter(tags=["access-requests"])

Expiry = Literal[tuple(EXPIRY_CHOICES)]


class AccessRequestOut(Schema):
    id: uuid.UUID
    workspace_id: uuid.UUID | None
    requester: str = Field(alias="requester.user.email")
    permission: str
    role_id: uuid.UUID | None
    role_name: str | None = None
    reason: str
    status: str
    created_at: datetime.datetime
    decided_at: datetime.datetime | None
    decided_by: str = Field(alias="decided_by_label")
    note: str
    granted: str
    expires_at: datetime.datetime | None

    @staticmethod
    def resolve_role_name(obj):
        return obj.role.name if obj.role_id else None


class AccessRequestIn(Body):
    workspace_id: uuid.UUID | None = Field(
        None, description="Where the access is needed; omit for an organization permission."
    )
    permission: str = Field("", max_length=64, description="The permission code a 403 named.")
    role_id: uuid.UUID | None = Field(None, description="The workspace role asked for.")
    reason: str = Field(min_length=1, max_length=1000)


class ApproveIn(Body):
    role_id: uuid.UUID | None = Field(
        None, description="The workspace role to grant (default: the one asked for)."
    )
    org_role: str | None = Field(None, description="For an organization-level request.")
    expiry: Expiry = Field("permanent", description="1h, 1d, 1w or permanent.")
    note: str = Field("", max_length=1000)


class DenyIn(Body):
    note: str = Field("", max_length=1000)


class ListFilters(Schema):
    status: Literal["pending", "approved", "denied", "all"] = "pending"
    mine: bool = Field(False, description="Your own requests instead of those you decide.")


@router.post(
    "/access-requests", response={201: AccessRequestOut}, summary="Request access you lack"
)
@requires("organization:read")
def create_access_request(request, payload: AccessRequestIn):
    actor = request.actor
    workspace = None
    if payload.workspace_id is not None:
        workspace = services.workspace_named(actor, "workspace_id", pk=payload.workspace_id)
    role = None if payload.role_id is None else role_by_id(actor, payload.role_id, field="role_id")
    created = services.create_access_request(
        actor=actor,
        workspace=workspace,
        permission=payload.permission,
        role=role,
        reason=payload.reason,
        workspace_field="workspace_id",
    )
    return Status(201, services.request_by_id(actor, created.pk))


@router.get(
    "/access-requests",
    response=list[AccessRequestOut],
    summary="Access requests you may decide (or, with mine=true, your own)",
)
@requires("organization:read")
def list_access_requests(request, filters: Query[ListFilters]):
    status = "" if filters.status == "all" else filters.status
    if filters.mine:
        rows = services.own_requests(request.actor)
        return list(rows.filter(status=status) if status else rows)
    return list(services.requests_to_decide(request.actor, status=status))


@router.get("/access-requests/{request_id}", response=AccessRequestOut, summary="One request")
@requires("workspaces:manage-members")
def get_access_request(request, request_id: uuid.UUID):
    return services.request_by_id(request.actor, request_id)


@router.post(
    "/access-requests/{request_id}/approve",
    response=AccessRequestOut,
    summary="Approve a request: grant a role, for good or until an expiry",
)
@requires("workspaces:manage-members")
def approve_access_request(request, request_id: uuid.UUID, payload: ApproveIn):
    actor = request.actor
    found = services.request_by_id(actor, request_id)
    role = None if payload.role_id is None else role_by_id(actor, payload.role_id, field="role_id")
    services.approve_access_request(
        actor=actor,
        access_request=found,
        role=role,
        org_role=payload.org_role,
        expiry=payload.expiry,
        note=payload.note,
    )
    return services.request_by_id(actor, request_id)


@router.post(
    "/access-requests/{request_id}/deny", response=AccessRequestOut, summary="Deny a request"
)
@requires("workspaces:manage-members")
def deny_access_request(request, request_id: uuid.UUID, payload: DenyIn):
    found = services.request_by_id(request.actor, request_id)
    services.deny_access_request(actor=request.actor, access_request=found, note=payload.note)
    return services.request_by_id(request.actor, request_id)
