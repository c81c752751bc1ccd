"""Members of the key's organization, and invitations."""

import datetime
import uuid

from django.core.exceptions import ValidationError
from ninja import Field, Schema, Status

from accesscontrol.api.router import GatedRouter
from accesscontrol.api.schemas import Body
from accesscontrol.apikeys.ip_allow_lists import MAX_ENTRIES
from accesscontrol.organizations import services
from accesscontrol.organizations.models import OrgRole
from accesscontrol.rbac.gate import requires
from accesscontrol.rbac.services import role_by_id

router = GatedRouter(tags=["organization"])

IP_ALLOW_LIST_DOC = (
    "CIDR networks (IPv4 or IPv6; a bare address is one address) the organization's API keys "
    "may be used from; empty: anywhere. A request from elsewhere gets 403 `ip_not_allowed`."
)

ORG_ROLE_PATTERN = "^(" + "|".join(OrgRole.values) + ")$"


class OrgMemberOut(Schema):
    id: uuid.UUID
    user_id: int
    email: str = Field(alias="user.email")
    full_name: str = Field(alias="user.full_name")
    org_role: str
    created_at: datetime.datetime


class InvitationOut(Schema):
    id: uuid.UUID
    email: str
    org_role: str
    workspace_ids: list[uuid.UUID] = Field(
        description="The workspaces the person joins on accepting (one archived since the "
        "invitation went out takes nobody in, and is not listed)."
    )
    workspace_role: str | None = Field(None, alias="workspace_role.name")
    created_by: str = Field(alias="created_by_label")
    created_at: datetime.datetime
    expires_at: datetime.datetime
    status: str

    @staticmethod
    def resolve_workspace_ids(inv):
        return [ws.pk for ws in services.invited_workspaces(inv)]


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


@router.get(
    "/orgs/current/members",
    response=OrgMembersOut,
    summary="Members of the organization, and pending invitations",
)
@requires("organization:read")
def list_org_members(request):
    return {
        "members": list(services.org_members(request.actor)),
        "pending": list(services.pending_invitations(request.actor)),
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
        services.invitable_workspaces(request.actor).filter(pk__in=payload.workspace_ids)
    )
    if len(workspaces) != len(set(payload.workspace_ids)):
        raise ValidationError({"workspace_ids": "No such workspace in this organization."})
    role = None
    if payload.workspace_role_id is not None:
        role = role_by_id(request.actor, payload.workspace_role_id, field="workspace_role_id")
    invitation, _raw = services.invite_member(
        actor=request.actor,
        organization=p.organization,
        email=payload.email,
        org_role=payload.org_role,
        workspaces=workspaces,
        workspace_role=role,
    )
    return Status(201, invitation)


@router.patch(
    "/orgs/current/members/{member_id}",
    response=OrgMemberOut,
    summary="Change someone's organization role",
)
@requires("organization:manage")
def change_org_role(request, member_id: uuid.UUID, payload: OrgMemberPatch):
    return services.change_org_role(
        actor=request.actor,
        membership=services.org_members(request.actor).get(pk=member_id),
        org_role=payload.org_role,
    )


@router.delete(
    "/orgs/current/members/{member_id}",
    response={204: None},
    summary="Remove a member (their tokens go too) or cancel an invitation",
)
@requires("organization:manage")
def remove_org_member(request, member_id: uuid.UUID):
    invitation = services.pending_invitations(request.actor).filter(pk=member_id).first()
    if invitation is not None:
        services.cancel_invitation(actor=request.actor, invitation=invitation)
    else:
        membership = services.org_members(request.actor).get(pk=member_id)
        services.remove_org_member(actor=request.actor, membership=membership)
    return Status(204, None)


# IP allow list


class IpAllowListOut(Schema):
    ip_allow_list: list[str] = Field(description=IP_ALLOW_LIST_DOC)
    your_address: str = Field(
        description="The address this request came from, as the server sees it "
        "(TRUSTED_PROXY_COUNT): what the list must include for this key to keep working."
    )


class IpAllowListIn(Body):
    ip_allow_list: list[str] = Field(max_length=MAX_ENTRIES, description=IP_ALLOW_LIST_DOC)


def _allow_list_out(request, organization):
    return {"ip_allow_list": organization.ip_allow_list, "your_address": request.auth.address}


@router.get(
    "/orgs/current/ip-allow-list",
    response=IpAllowListOut,
    summary="Where the organization's API keys may be used from",
)
@requires("organization:manage")
def get_ip_allow_list(request):
    # The organization as read with the key, under the authorization version a change moves.
    return _allow_list_out(request, request.auth.organization)


@router.put(
    "/orgs/current/ip-allow-list",
    response=IpAllowListOut,
    summary="Set where the organization's API keys may be used from",
    description="Replaces the list; entries are normalised (2001:DB8::/32 becomes "
    "2001:db8::/32, 203.0.113.7 becomes 203.0.113.7/32). An entry with host bits set "
    "(10.0.0.5/24) is refused, as is a list that would refuse this very request's address: "
    "make that change in the console. Effective on every process from the next request.",
)
@requires("organization:manage")
def set_ip_allow_list(request, payload: IpAllowListIn):
    organization = services.set_ip_allow_list(
        actor=request.actor,
        organization=request.auth.organization,
        ip_allow_list=payload.ip_allow_list,
    )
    return _allow_list_out(request, organization)
