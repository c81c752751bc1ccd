"""Members of the key's organization, and invitations."""

import datetime
import uuid

from ninja import Field, Schema, Status

from accesscontrol.api.router import GatedRouter
from accesscontrol.api.schemas import Body
from accesscontrol.organizations import services
from accesscontrol.organizations.models import OrgRole
from accesscontrol.rbac.gate import ApiError, requires
from accesscontrol.rbac.models import Role
from accesscontrol.workspaces.models import Workspace

router = GatedRouter(tags=["organization"])

ORG_ROLE_PATTERN = "^(" + "|".join(OrgRole.values) + ")$"


class OrgMemberOut(Schema):
    id: uuid.UUID
    user_id: int
    email: str
    full_name: str
    org_role: str
    created_at: datetime.datetime

    @staticmethod
    def resolve_email(m):
        return m.user.email

    @staticmethod
    def resolve_full_name(m):
        return m.user.full_name


class InvitationOut(Schema):
    id: uuid.UUID
    email: str
    org_role: str
    workspace_ids: list[uuid.UUID]
    workspace_role: str | None
    created_by: str
    created_at: datetime.datetime
    expires_at: datetime.datetime
    status: str

    @staticmethod
    def resolve_workspace_ids(inv):
        return [ws.pk for ws in inv.workspaces.all()]

    @staticmethod
    def resolve_workspace_role(inv):
        return inv.workspace_role.name if inv.workspace_role else None

    @staticmethod
    def resolve_created_by(inv):
        return inv.created_by_label


class OrgMembersOut(Schema):
    members: list[OrgMemberOut]
    pending: list[InvitationOut]


class InviteIn(Body):
    email: str = Field(min_length=3, max_length=254)
    org_role: str = Field("member", pattern=ORG_ROLE_PATTERN)
    workspace_ids: list[uuid.UUID] = Field(default_factory=list)
    workspace_role_id: uuid.UUID | None = None


class OrgMemberPatch(Body):
    org_role: str = Field(pattern=ORG_ROLE_PATTERN)


def _pending(organization):
    return (
        organization.invitations.pending()
        .select_related("workspace_role")
        .prefetch_related("workspaces")
        .order_by("email")
    )


@router.get(
    "/orgs/current/members",
    response=OrgMembersOut,
    summary="Members of the organization, and pending invitations",
)
@requires("organization:read")
def list_org_members(request):
    org = request.auth.organization
    return {
        "members": list(org.memberships.select_related("user").order_by("user__email")),
        "pending": list(_pending(org)),
    }


@router.post(
    "/orgs/current/members",
    response={201: InvitationOut},
    summary="Invite someone by email (with an optional first set of workspaces)",
    description="An email with a single-use link goes out; the person joins when "
    "they accept it (new people set a password, existing users sign in).",
)
@requires("organization:manage")
def invite_org_member(request, payload: InviteIn):
    p = request.auth
    workspaces = list(
        Workspace.objects.filter(organization=p.organization, pk__in=payload.workspace_ids)
    )
    if len(workspaces) != len(set(payload.workspace_ids)):
        raise _bad("workspace_ids", "No such workspace in this organization.")
    role = None
    if payload.workspace_role_id is not None:
        role = Role.objects.usable_in(p.organization).filter(pk=payload.workspace_role_id).first()
        if role is None:
            raise _bad("workspace_role_id", "No such role in this organization.")
    invitation, _raw = services.invite_member(
        actor=request.actor,
        organization=p.organization,
        email=payload.email,
        org_role=payload.org_role,
        workspaces=workspaces,
        workspace_role=role,
    )
    return Status(201, invitation)


def _bad(field, message) -> ApiError:
    return ApiError(422, "invalid", message, fields={field: [message]})


@router.patch(
    "/orgs/current/members/{member_id}",
    response=OrgMemberOut,
    summary="Change someone's organization role",
)
@requires("organization:manage")
def change_org_role(request, member_id: uuid.UUID, payload: OrgMemberPatch):
    org = request.auth.organization
    membership = services.get_membership(org, member_id)
    return services.change_org_role(
        actor=request.actor,
        membership=membership,
        org_role=payload.org_role,
    )


@router.delete(
    "/orgs/current/members/{member_id}",
    response={204: None},
    summary="Remove a member (their tokens go too) or cancel an invitation",
)
@requires("organization:manage")
def remove_org_member(request, member_id: uuid.UUID):
    org = request.auth.organization
    invitation = _pending(org).filter(pk=member_id).first()
    if invitation is not None:
        services.cancel_invitation(actor=request.actor, invitation=invitation)
    else:
        services.remove_org_member(
            actor=request.actor,
            membership=services.get_membership(org, member_id),
        )
    return Status(204, None)
