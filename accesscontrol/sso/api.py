"""The organization's single sign-on over the API: the same services as the console."""

import uuid

from django.core.exceptions import ValidationError
from ninja import Field, Schema, Status

from accesscontrol.api.router import GatedRouter
from accesscontrol.api.schemas import Body
from accesscontrol.organizations.services import invitable_workspaces
from accesscontrol.rbac.gate import requires
from accesscontrol.rbac.services import role_by_id
from accesscontrol.sso import services

router = GatedRouter(tags=["single sign-on"])


class DefaultWorkspaceRoleIO(Schema):
    workspace_id: uuid.UUID
    role_id: uuid.UUID


class EmailDomainOut(Schema):
    id: uuid.UUID
    domain: str
    claimed_by: str = Field(alias="claimed_by_label")


class SsoOut(Schema):
    configured: bool
    protocol: str | None = None
    oidc_issuer: str = ""
    oidc_client_id: str = ""
    oidc_client_secret_set: bool = Field(
        False, description="The secret is write-only: whether one is stored, never its value."
    )
    saml_entity_id: str = ""
    saml_metadata_url: str = ""
    saml_metadata_xml: str = ""
    jit_provisioning: bool = False
    default_org_role: str = "member"
    default_workspace_roles: list[DefaultWorkspaceRoleIO] = []
    invitations_enabled: bool = True
    require_sso: bool = False
    break_glass_user_email: str | None = None
    domains: list[EmailDomainOut] = []


class SsoIn(Body):
    protocol: str = Field(pattern="^(oidc|saml)$")
    oidc_issuer: str = Field("", max_length=500)
    oidc_client_id: str = Field("", max_length=255)
    oidc_client_secret: str | None = Field(
        None, max_length=500, description="Write-only; leave it out to keep the stored secret."
    )
    saml_entity_id: str = Field("", max_length=500)
    saml_metadata_url: str = Field("", max_length=500)
    saml_metadata_xml: str = Field("", max_length=services.MAX_METADATA_XML)
    jit_provisioning: bool = False
    default_org_role: str = "member"  # one of PROVISIONABLE_ORG_ROLES, checked by save_sso
    default_workspace_roles: list[DefaultWorkspaceRoleIO] = Field(
        default_factory=list, max_length=500
    )
    invitations_enabled: bool = True
    require_sso: bool = False
    break_glass_user_email: str | None = Field(None, max_length=254)


class DomainIn(Body):
    domain: str = Field(min_length=1, max_length=253)


def _out(actor):
    sso = services.sso_of(actor)
    domains = list(services.email_domains(actor))
    if sso is None:
        return {"configured": False, "domains": domains}
    return {
        "configured": True,
        "protocol": sso.protocol,
        "oidc_issuer": sso.oidc_issuer,
        "oidc_client_id": sso.oidc_client_id,
        "oidc_client_secret_set": bool(sso.oidc_client_secret),
        "saml_entity_id": sso.saml_entity_id,
        "saml_metadata_url": sso.saml_metadata_url,
        "saml_metadata_xml": sso.saml_metadata_xml,
        "jit_provisioning": sso.jit_provisioning,
        "default_org_role": sso.default_org_role,
        "default_workspace_roles": [
            {"workspace_id": d.workspace_id, "role_id": d.role_id}
            for d in sso.default_workspace_roles.all()
        ],
        "invitations_enabled": sso.invitations_enabled,
        "require_sso": sso.require_sso,
        "break_glass_user_email": sso.break_glass_user.email if sso.break_glass_user else None,
        "domains": domains,
    }


@router.get("/orgs/current/sso", response=SsoOut, summary="The organization's single sign-on")
@requires("organization:manage")
def get_sso(request):
    return _out(request.actor)


@router.put(
    "/orgs/current/sso",
    response=SsoOut,
    summary="Set up or replace the organization's single sign-on",
    description="OpenID Connect (issuer, client id, secret) or SAML (IdP metadata XML, or its "
    "URL and entity id). The client secret is write-only.",
)
@requires("organization:manage")
def put_sso(request, payload: SsoIn):
    organization = request.actor.organization
    pairs = []
    for each in payload.default_workspace_roles:
        workspace = invitable_workspaces(request.actor).filter(pk=each.workspace_id).first()
        if workspace is None:
            raise ValidationError({"default_workspace_roles": "No such workspace here."})
        pairs.append((workspace, role_by_id(request.actor, each.role_id, field="role_id")))
    break_glass = None
    if payload.break_glass_user_email:
        break_glass = services.org_admin_named(request.actor, payload.break_glass_user_email)
        if break_glass is None:
            raise ValidationError({"break_glass_user_email": "No org admin has this email."})
    data = payload.model_dump(exclude={"default_workspace_roles", "break_glass_user_email"})
    services.save_sso(
        actor=request.actor,
        organization=organization,
        default_workspace_roles=pairs,
        break_glass_user=break_glass,
        **data,
    )
    return _out(request.actor)


@router.delete(
    "/orgs/current/sso", response={204: None}, summary="Remove the organization's single sign-on"
)
@requires("organization:manage")
def delete_sso(request):
    services.remove_sso(actor=request.actor, organization=request.actor.organization)
    return Status(204, None)


@router.post(
    "/orgs/current/sso/domains",
    response={201: EmailDomainOut},
    summary="Claim an email domain for single sign-on",
    description="Only an org admin whose own email is at the domain may claim it (so a personal "
    "access token of such an admin; a service key acts for no person). One organization per "
    "domain.",
)
@requires("organization:manage")
def claim_domain(request, payload: DomainIn):
    claimed = services.claim_domain(
        actor=request.actor, organization=request.actor.organization, domain=payload.domain
    )
    return Status(201, claimed)


@router.delete(
    "/orgs/current/sso/domains/{domain_id}",
    response={204: None},
    summary="Release a claimed email domain",
)
@requires("organization:manage")
def release_domain(request, domain_id: uuid.UUID):
    email_domain = services.email_domains(request.actor).get(pk=domain_id)
    services.release_domain(actor=request.actor, email_domain=email_domain)
    return Status(204, None)
