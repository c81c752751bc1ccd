"""Single sign-on per organization: its identity provider (with the allauth SocialApp derived
from it), its claimed email domains, who an SSO sign-in lets in (just-in-time provisioning), and
the refusal of passwords where SSO is required. Every change is atomic and audited.

How a domain is verified: only an org admin whose own email address is at that domain may claim
it for their organization (they proved the address when they joined), and a domain belongs to
one organization at most. A DNS TXT check would be the other way; it is not built.
"""

import re
from urllib.parse import urlsplit

from allauth.socialaccount.models import SocialApp
from django.core.exceptions import ValidationError
from django.core.validators import URLValidator
from django.db import transaction
from onelogin.saml2.idp_metadata_parser import OneLogin_Saml2_IdPMetadataParser

from accesscontrol import writes
from accesscontrol.accounts.models import User, normalize_email
from accesscontrol.audit import services as audit
from accesscontrol.organizations import services as organizations
from accesscontrol.organizations.models import MembershipSource, OrganizationMembership, OrgRole
from accesscontrol.rbac.actor import SERVICE_KEY, Actor, Denied, as_actor
from accesscontrol.rbac.permissions import (
    ADMIN_EVERYWHERE_ROLES,
    ORG_MANAGE,
    ORG_READ,
    PROVISIONABLE_ORG_ROLES,
)
from accesscontrol.rbac.services import check_role_assignable, person_behind
from accesscontrol.scim.models import ScimUser
from accesscontrol.sso.models import DefaultWorkspaceRole, EmailDomain, OrganizationSso, Protocol
from accesscontrol.workspaces import services as workspaces

REQUIRE_SSO_MESSAGE = "Your organization requires single sign-on: use Sign in with SSO."
MAX_METADATA_XML = 200_000
_DOMAIN = re.compile(r"^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")
_url = URLValidator(schemes=["https", "http"])
LOOPBACK = {"localhost", "127.0.0.1", "::1"}


class SsoRefused(Exception):
    """An SSO sign-in this organization does not let in; `reason` is a stable code."""

    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.reason, self.message = reason, message


def _manager(actor, organization):
    actor = as_actor(actor, organization)
    actor.require(ORG_MANAGE)
    return actor


# Selectors


def sso_of(actor) -> OrganizationSso | None:
    """The actor's organization's SSO configuration, for whoever may read the organization."""
    if actor.organization is None or not actor.holds(ORG_READ):
        return None
    return (
        OrganizationSso.objects.select_related("organization", "break_glass_user")
        .filter(organization=actor.organization)
        .first()
    )


def email_domains(actor):
    """The domains the actor's organization has claimed; any other id is simply not found."""
    if actor.organization is None or not actor.holds(ORG_READ):
        return EmailDomain.objects.none()
    return EmailDomain.objects.filter(organization=actor.organization)


def org_admin_named(actor, email):
    """The org admin of the actor's organization with this email (a break-glass candidate)."""
    if actor.organization is None or not actor.holds(ORG_READ):
        return None
    membership = (
        OrganizationMembership.objects.filter(
            organization=actor.organization,
            org_role__in=ADMIN_EVERYWHERE_ROLES,
            user__email=normalize_email(email),
        )
        .select_related("user")
        .first()
    )
    return membership.user if membership else None


def domain_of(email: str) -> str:
    return normalize_email(email).rpartition("@")[2]


def sso_for_email(email) -> OrganizationSso | None:
    """The SSO of the organization that claimed this email's domain, if any."""
    domain = domain_of(email)
    if not domain:
        return None
    return (
        OrganizationSso.objects.select_related("organization", "social_app")
        .filter(organization__email_domains__domain=domain, social_app__isnull=False)
        .first()
    )


def sso_for_provider(provider_id: str) -> OrganizationSso | None:
    """The SSO whose allauth provider (SocialApp.provider_id) this is."""
    return (
        OrganizationSso.objects.select_related("organization", "social_app")
        .filter(social_app__provider_id=provider_id)
        .first()
    )


def sign_in_methods(user, organization) -> list[str]:
    """How the person signs in, as this organization's admins see it: a password, and this
    organization's identity provider once they have come through it (another organization's
    provider is not this one's to know)."""
    from allauth.socialaccount.models import SocialAccount

    methods = ["Password"] if user.has_usable_password() else []
    providers = SocialAccount.objects.filter(user=user).values("provider")
    sso = OrganizationSso.objects.filter(
        organization=organization, social_app__provider_id__in=providers
    ).first()
    if sso is not None:
        methods.append(f"Single sign-on: {sso.get_protocol_display()}")
    return methods


def sso_of_user(user) -> OrganizationSso | None:
    """An SSO this user has signed in through (for re-authentication), the most recent first."""
    from allauth.socialaccount.models import SocialAccount

    provider_ids = SocialAccount.objects.filter(user=user).order_by("-last_login")
    for provider_id in provider_ids.values_list("provider", flat=True):
        sso = sso_for_provider(provider_id)
        if sso is not None and _is_member(user, sso.organization):
            return sso
    return None


def invitations_refusal(organization) -> str | None:
    """Why invitations to this organization are refused (its SSO turned them off), or None."""
    if OrganizationSso.objects.filter(
        organization=organization, invitations_enabled=False
    ).exists():
        return (
            f"{organization} takes people in through single sign-on only; invitations are "
            "turned off in its SSO settings."
        )
    return None


def _is_member(user, organization, roles=None) -> bool:
    memberships = OrganizationMembership.objects.filter(user=user, organization=organization)
    if roles is not None:
        memberships = memberships.filter(org_role__in=roles)
    return memberships.exists()


def password_sign_in_refusal(user) -> str | None:
    """The message refusing `user` a password sign-in, or None if a password may be used.

    A member of an organization that requires SSO signs in through it; only that organization's
    break-glass admin (while still an org admin) may use a password. Wired into every password
    path: the authentication backend (sso/backends.py) and the sign-in forms.
    """
    if user is None or user.pk is None:
        return None
    required = OrganizationSso.objects.filter(
        require_sso=True, organization__memberships__user=user
    ).select_related("organization")
    for sso in required:
        if sso.break_glass_user_id == user.pk and _is_member(
            user, sso.organization, ADMIN_EVERYWHERE_ROLES
        ):
            continue
        return REQUIRE_SSO_MESSAGE
    return None


# Configuration


def clean_domain(domain) -> str:
    domain = str(domain or "").strip().lower().rstrip(".")
    if domain.startswith("@"):
        domain = domain[1:]
    if not _DOMAIN.match(domain):
        raise ValidationError({"domain": "Enter a domain name such as example.com."})
    return domain


def _clean_url(value, field) -> str:
    value = (value or "").strip()
    if not value:
        return ""
    try:
        _url(value)
    except ValidationError:
        raise ValidationError({field: "Enter an http(s) URL."}) from None
    if len(value) > 500:
        raise ValidationError({field: "Keep the URL under 500 characters."})
    if urlsplit(value).scheme != "https" and urlsplit(value).hostname not in LOOPBACK:
        # Secrets and tokens travel to it: plain http only to a provider on this machine.
        raise ValidationError({field: "Use an https URL."})
    return value


def _clean_text(value, field, limit=255) -> str:
    value = (value or "").strip()
    if len(value) > limit:
        raise ValidationError({field: f"Keep it under {limit} characters."})
    return value


def parse_idp_metadata(xml: str, entity_id: str = "") -> dict:
    """The identity provider's entity id, sign-in URL and signing certificate, from its SAML
    metadata; a ValidationError when the XML says none of that."""
    if len(xml) > MAX_METADATA_XML:
        raise ValidationError({"saml_metadata_xml": "The metadata is larger than 200 kB."})
    try:
        parsed = OneLogin_Saml2_IdPMetadataParser.parse(xml, entity_id=entity_id or None)
    except Exception:  # lxml and the parser raise many kinds; all mean "not usable metadata"
        parsed = {}
    idp = parsed.get("idp") or {}
    cert = idp.get("x509cert") or next(iter(idp.get("x509certMulti", {}).get("signing", [])), "")
    sso_url = (idp.get("singleSignOnService") or {}).get("url")
    if not (idp.get("entityId") and sso_url and cert):
        raise ValidationError(
            {
                "saml_metadata_xml": "This is not an identity provider's SAML metadata with an "
                "entity id, a sign-in (SSO) URL and a signing certificate"
                + (f" for {entity_id}" if entity_id else "")
                + "."
            }
        )
    slo_url = (idp.get("singleLogoutService") or {}).get("url")
    return {"entity_id": idp["entityId"], "sso_url": sso_url, "x509cert": cert, "slo_url": slo_url}


# Attribute names IdPs send the email and names under (allauth's defaults, and the short ones).
SAML_ATTRIBUTES = {
    "uid": ["urn:oasis:names:tc:SAML:attribute:subject-id"],
    "email": [
        "urn:oid:0.9.2342.19200300.100.1.3",
        "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/emailaddress",
        "email",
        "mail",
    ],
    "first_name": [
        "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/givenname",
        "urn:oid:2.5.4.42",
        "givenName",
    ],
    "last_name": ["urn:oid:2.5.4.4", "sn", "surname"],
}


def _fetch_idp_metadata(url, entity_id) -> dict:
    """The IdP's metadata read from its URL when the configuration is saved (never while someone
    signs in: an IdP metadata host that is down must not break sign-in pages)."""
    try:
        xml = OneLogin_Saml2_IdPMetadataParser.get_metadata(url, timeout=10)
    except Exception:  # urllib's many errors: unreachable, refused, TLS, HTTP status
        raise ValidationError(
            {"saml_metadata_url": "The metadata could not be read from this URL."}
        ) from None
    if isinstance(xml, bytes):
        xml = xml.decode("utf-8", "replace")
    try:
        return parse_idp_metadata(xml, entity_id)
    except ValidationError:
        raise ValidationError(
            {"saml_metadata_url": "This URL does not serve the IdP's SAML metadata."}
        ) from None


def _social_app_fields(sso, idp=None) -> dict:
    org = sso.organization
    if sso.protocol == Protocol.OIDC:
        return {
            "provider": "openid_connect",
            "provider_id": sso.provider_id,
            "name": f"{org.name} single sign-on",
            "client_id": sso.oidc_client_id,
            "secret": sso.oidc_client_secret,
            "settings": {"server_url": sso.oidc_issuer},
        }
    if idp is None:
        idp = parse_idp_metadata(sso.saml_metadata_xml, sso.saml_entity_id)
    return {
        "provider": "saml",
        "provider_id": sso.provider_id,
        "name": f"{org.name} single sign-on",
        "client_id": org.slug,
        "secret": "",
        "settings": {
            "idp": {k: v for k, v in idp.items() if v},
            "attribute_mapping": SAML_ATTRIBUTES,
            # Assertions must be signed, only sign-ins we started are accepted (each answers
            # one request of this browser session, once), audience and validity are checked.
            "advanced": {
                "strict": True,
                "want_assertion_signed": True,
                "reject_idp_initiated_sso": True,
            },
        },
    }


def _sync_social_app(sso, idp=None) -> None:
    """The allauth provider of this configuration, made to match it (in the caller's
    transaction): one SocialApp per organization, replaced when the protocol changes."""
    fields = _social_app_fields(sso, idp)
    app = sso.social_app
    if app is not None and app.provider != fields["provider"]:
        sso.social_app = None
        app.delete()
        app = None
    if app is None:
        app = SocialApp(**fields)
    else:
        for name, value in fields.items():
            setattr(app, name, value)
    app.save()
    if sso.social_app_id != app.pk:
        sso.social_app = app
        sso.save(update_fields=["social_app"])


def _snapshot(sso) -> dict:
    """What the audit row shows of a configuration: never the client secret itself."""
    if sso is None:
        return {}
    return {
        "protocol": sso.protocol,
        "oidc_issuer": sso.oidc_issuer,
        "oidc_client_id": sso.oidc_client_id,
        "saml_entity_id": sso.saml_entity_id,
        "saml_metadata_url": sso.saml_metadata_url,
        "saml_metadata": "set" if sso.saml_metadata_xml else "",
        "jit_provisioning": sso.jit_provisioning,
        "default_org_role": sso.default_org_role,
        "default_workspace_roles": sorted(
            f"{d.workspace.slug}: {d.role.name}"
            for d in sso.default_workspace_roles.select_related("workspace", "role")
        ),
        "invitations_enabled": sso.invitations_enabled,
        "require_sso": sso.require_sso,
        "break_glass_admin": sso.break_glass_user.email if sso.break_glass_user else None,
    }


def save_sso(
    *,
    actor,
    organization,
    protocol,
    oidc_issuer="",
    oidc_client_id="",
    oidc_client_secret=None,
    saml_entity_id="",
    saml_metadata_url="",
    saml_metadata_xml="",
    jit_provisioning=False,
    default_org_role=OrgRole.MEMBER,
    default_workspace_roles=(),
    invitations_enabled=True,
    require_sso=False,
    break_glass_user=None,
) -> OrganizationSso:
    """Create or replace the organization's SSO. `oidc_client_secret=None` keeps the stored
    secret (it is write-only: nobody reads it back). `default_workspace_roles`: (workspace,
    role) pairs a person provisioned just in time receives."""
    actor = _manager(actor, organization)
    if protocol not in Protocol.values:
        raise ValidationError({"protocol": "Choose OpenID Connect or SAML."})
    if default_org_role not in PROVISIONABLE_ORG_ROLES:
        choices = ", ".join(PROVISIONABLE_ORG_ROLES)
        raise ValidationError(
            {"default_org_role": f"People provisioned by SSO join with one of: {choices}."}
        )
    oidc_issuer = _clean_url(oidc_issuer, "oidc_issuer")
    oidc_client_id = _clean_text(oidc_client_id, "oidc_client_id")
    saml_entity_id = _clean_text(saml_entity_id, "saml_entity_id", 500)
    saml_metadata_url = _clean_url(saml_metadata_url, "saml_metadata_url")
    saml_metadata_xml = (saml_metadata_xml or "").strip()
    pairs = list(default_workspace_roles)
    for workspace, role in pairs:
        if workspace.organization_id != organization.pk or workspace.archived:
            raise ValidationError({"default_workspace_roles": "No such workspace here."})
        check_role_assignable(role, organization)
    if len({w.pk for w, _ in pairs}) != len(pairs):
        raise ValidationError({"default_workspace_roles": "One role per workspace."})
    if break_glass_user is not None and not _is_member(
        break_glass_user, organization, ADMIN_EVERYWHERE_ROLES
    ):
        raise ValidationError({"break_glass_user": "The break-glass admin must be an org admin."})
    fetched = None
    if protocol == Protocol.SAML and not saml_metadata_xml and saml_metadata_url:
        fetched = _fetch_idp_metadata(saml_metadata_url, saml_entity_id)
    with transaction.atomic():
        sso = _lock_sso(organization)
        before = _snapshot(sso)
        secret_before = sso.oidc_client_secret if sso else ""
        sso = sso or OrganizationSso(organization=organization)
        sso.protocol = protocol
        sso.oidc_issuer, sso.oidc_client_id = oidc_issuer, oidc_client_id
        if oidc_client_secret is not None:
            sso.oidc_client_secret = _clean_text(oidc_client_secret, "oidc_client_secret", 500)
        sso.saml_entity_id, sso.saml_metadata_url = saml_entity_id, saml_metadata_url
        sso.saml_metadata_xml = saml_metadata_xml
        sso.jit_provisioning = bool(jit_provisioning)
        sso.default_org_role = default_org_role
        sso.invitations_enabled = bool(invitations_enabled)
        sso.require_sso = bool(require_sso)
        sso.break_glass_user = break_glass_user
        _check_complete(sso, organization)
        sso.save()
        sso.default_workspace_roles.all().delete()
        DefaultWorkspaceRole.objects.bulk_create(
            DefaultWorkspaceRole(sso=sso, workspace=w, role=r) for w, r in pairs
        )
        _sync_social_app(sso, fetched)
        after = _snapshot(sso)
        secret_changed = sso.oidc_client_secret != secret_before
        if after == before and not secret_changed:
            return sso
        changed = {k for k in after if not before or after[k] != before[k]}
        audit.record(
            actor,
            "sso.configured",
            sso,
            organization=organization,
            target_label=sso.provider_label,
            before={k: before[k] for k in changed if k in before} or None,
            after={
                **{k: after[k] for k in changed},
                **({"oidc_client_secret": "changed"} if secret_changed else {}),
            },
        )
    return sso


def _check_complete(sso, organization) -> None:
    if sso.protocol == Protocol.OIDC:
        missing = [
            f
            for f in ("oidc_issuer", "oidc_client_id", "oidc_client_secret")
            if not getattr(sso, f)
        ]
        if missing:
            raise ValidationError({f: "Required for OpenID Connect." for f in missing})
    else:
        if not sso.saml_metadata_xml and not sso.saml_metadata_url:
            raise ValidationError(
                {
                    "saml_metadata_xml": "Paste the identity provider's metadata, or give its "
                    "metadata URL."
                }
            )
        if sso.saml_metadata_xml:
            parse_idp_metadata(sso.saml_metadata_xml, sso.saml_entity_id)
    if sso.require_sso:
        if sso.break_glass_user is None:
            raise ValidationError(
                {
                    "break_glass_user": "Name a break-glass org admin who can still sign in with "
                    "a password if the identity provider is down."
                }
            )
        if not organization.email_domains.exists():
            raise ValidationError(
                {"require_sso": "Claim your email domain first: nobody could sign in through SSO."}
            )


def _lock_sso(organization) -> OrganizationSso | None:
    """The organization's SSO configuration, locked (its row only), or None."""
    return (
        OrganizationSso.objects.select_for_update(of=("self",))
        .select_related("organization", "social_app", "break_glass_user")
        .filter(organization=organization)
        .first()
    )


def remove_sso(*, actor, organization) -> None:
    """The organization's SSO goes (and its provider): people sign in with passwords again."""
    actor = _manager(actor, organization)
    with transaction.atomic():
        sso = _lock_sso(organization)
        if sso is None:
            raise ValidationError("This organization has no single sign-on.", code="not_found")
        audit.record(
            actor,
            "sso.removed",
            sso,
            organization=organization,
            target_label=sso.provider_label,
            before=_snapshot(sso),
        )
        if sso.social_app is not None:
            sso.social_app.delete()
        sso.delete()


def claim_domain(*, actor, organization, domain) -> EmailDomain:
    """Claim an email domain: its people sign in through this organization's SSO. Only an org
    admin whose own email is at the domain may claim it; one organization per domain."""
    actor = _manager(actor, organization)
    domain = clean_domain(domain)
    if actor.kind == SERVICE_KEY:
        raise Denied(
            "A service key acts for no person, so it cannot claim an email domain: an org admin "
            "whose own email is at the domain claims it.",
            {
                "required": "an org admin's own email at the domain",
                "principal": actor.label,
                "role": actor.access.role,
                "workspace": str(actor.workspace.pk) if actor.workspace else None,
            },
        )
    person = person_behind(actor)
    if person is None or domain_of(person.email) != domain:
        raise ValidationError(
            {
                "domain": f"Only an org admin whose own email is at {domain} can claim it "
                "(that is how the domain is verified)."
            },
            code="permission",
        )
    with writes.unique_or(
        ValidationError(
            {"domain": f"{domain} is already claimed by an organization."}, code="duplicate"
        )
    ):
        claimed = EmailDomain.objects.create(
            organization=organization,
            domain=domain,
            claimed_by_label=audit.describe_actor(actor)["actor_label"],
        )
        audit.record(
            actor,
            "sso.domain_claimed",
            claimed,
            organization=organization,
            after={"domain": domain},
        )
    return claimed


def release_domain(*, actor, email_domain) -> None:
    """Give a claimed domain up. While SSO is required, the last domain stays."""
    organization = email_domain.organization
    actor = _manager(actor, organization)
    with transaction.atomic():
        sso = OrganizationSso.objects.select_for_update().filter(organization=organization).first()
        email_domain = EmailDomain.objects.select_for_update().filter(pk=email_domain.pk).first()
        if email_domain is None:
            raise ValidationError("This domain was already released.", code="not_found")
        others = organization.email_domains.exclude(pk=email_domain.pk)
        if sso is not None and sso.require_sso and not others.exists():
            raise ValidationError(
                "Single sign-on is required: turn that off before giving up the last domain.",
                code="conflict",
            )
        audit.record(
            actor,
            "sso.domain_released",
            email_domain,
            organization=organization,
            before={"domain": email_domain.domain},
        )
        email_domain.delete()


# Signing in


def admit_sso_sign_in(*, sso, email, user=None, full_name="") -> User:
    """The person an SSO sign-in is, admitted to the organization; SsoRefused otherwise.

    `user`: the account already linked to this identity provider, if any. The email must be at
    a domain the organization claimed. A member comes in; with just-in-time provisioning a
    newcomer gets an account (no password) and a membership with the default org and workspace
    roles, made by the organization's SSO as a system actor.
    """
    organization = sso.organization
    linked = user is not None
    email = normalize_email(email)
    if not email or not organization.email_domains.filter(domain=domain_of(email)).exists():
        raise SsoRefused(
            "unverified_domain",
            f"{email or 'Your identity provider sent no email address'} is not at an email "
            f"domain {organization.name} has verified, so its single sign-on cannot sign you in.",
        )
    if user is None:
        user = User.objects.filter(email=email).first()
    if user is not None and not user.is_active:
        raise SsoRefused("inactive", "This account is deactivated.")
    if user is not None and _is_member(user, organization):
        return user
    if (
        user is not None
        and not linked
        and not organizations.identity_provider_may_adopt(user, organization)
    ):
        # An account of another organization's is never taken over by this one's IdP (an org
        # could claim a domain it does not own); its owner joins by invitation first.
        raise SsoRefused(
            "account_elsewhere",
            f"An account for {email} already exists and belongs to another organization, so "
            f"{organization.name}'s single sign-on cannot take it over. Ask one of its admins "
            "to invite you; once you have joined, single sign-on works.",
        )
    if (
        user is not None
        and ScimUser.objects.filter(organization=organization, user=user, active=False).exists()
    ):
        # The organization's provisioning took them out; only it (or an admin's invitation, a
        # person's decision) brings them back, never an automatic just-in-time join.
        raise SsoRefused(
            "deprovisioned",
            f"{organization.name}'s provisioning (SCIM) deactivated you, so its single sign-on "
            "cannot sign you in. Ask one of its admins.",
        )
    if not sso.jit_provisioning:
        raise SsoRefused(
            "not_a_member",
            f"You are not a member of {organization.name}, and it does not add people through "
            "single sign-on. Ask one of its admins to invite you.",
        )
    system = _acting(sso)
    try:
        with transaction.atomic():
            if user is None:
                user = User.objects.create_user(email, password=None, full_name=full_name[:150])
            organizations.add_org_member(
                actor=system,
                organization=organization,
                user=user,
                org_role=sso.default_org_role,
                source=MembershipSource.SSO,
            )
            for default in sso.default_workspace_roles.select_related("workspace", "role"):
                if default.workspace.archived:
                    continue
                workspaces.add_workspace_member(
                    actor=system,
                    workspace=default.workspace,
                    user=user,
                    role=default.role,
                    source=MembershipSource.SSO,
                )
    except ValidationError as exc:
        # The same services refuse what they refuse to the console (a default role the plan
        # no longer offers): a refused sign-in, with nothing made, not a server error.
        raise SsoRefused(
            "not_provisionable",
            f"{organization.name}'s single sign-on cannot add you: {' '.join(exc.messages)} "
            "Ask one of its admins.",
        ) from None
    return user


def _acting(sso) -> Actor:
    """The organization's single sign-on as the system actor of what it does by itself."""
    organization = sso.organization
    return Actor.system(f"single sign-on of {organization.slug}", organization=organization)


def record_account_linked(sso, user) -> None:
    """An account linked to the organization's identity provider: a new way to sign in as it,
    in the organization's log (in the caller's transaction, with the link)."""
    audit.record(
        _acting(sso),
        "sso.account_linked",
        user,
        organization=sso.organization,
        target_label=user.email,
        after={"provider": sso.provider_label},
    )


def record_sso_refusal(sso, email, refusal: SsoRefused) -> None:
    """A refused SSO sign-in, in the organization's log (like a failed password sign-in)."""
    with transaction.atomic():
        audit.record(
            None,
            "sso.sign_in_refused",
            organization=sso.organization,
            target_label=normalize_email(email)[:254] or "(no email)",
            after={"reason": refusal.reason, "provider": sso.provider_label},
        )


def record_sso_sign_in(user, sso) -> None:
    """A sign-in through the organization's identity provider: its login.succeeded row names
    the provider."""
    with transaction.atomic():
        audit.record(
            user,
            "login.succeeded",
            user,
            organization=sso.organization,
            target_label=user.email,
            after={"via": "sso", "provider": sso.provider_label},
        )
