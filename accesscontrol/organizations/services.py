"""Organizations and their members. Every change is atomic and audited."""

import datetime
import hashlib
import secrets

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.mail import send_mail
from django.core.validators import validate_email, validate_slug
from django.db import transaction
from django.urls import reverse
from django.utils import timezone
from django.utils.text import slugify

from accesscontrol import writes
from accesscontrol.accounts import mfa
from accesscontrol.accounts.models import normalize_email
from accesscontrol.accounts.services import sign_up
from accesscontrol.apikeys import ip_allow_lists
from accesscontrol.audit import services as audit
from accesscontrol.organizations.models import (
    OIDC_PROVIDER_PREFIX,
    Invitation,
    MembershipSource,
    Organization,
    OrganizationMembership,
    OrgRole,
    Plan,
    RequireMfa,
)
from accesscontrol.rbac.actor import SERVICE_KEY, as_actor
from accesscontrol.rbac.permissions import ADMIN_EVERYWHERE_ROLES, ORG_MANAGE, ORG_READ, ORG_ROLES
from accesscontrol.rbac.resolver import resolve_access
from accesscontrol.rbac.services import (
    check_can_grant,
    check_can_grant_org_role,
    check_holds_all,
    check_not_self,
    check_role_assignable,
    people_behind,
    person_behind,
)
from accesscontrol.workspaces.models import Workspace, WorkspaceMembership


def unique_slug(model, name, **scope) -> str:
    base = slugify(name)[:50] or "item"
    slug, n = base, 2
    while model.objects.filter(slug=slug, **scope).exists():
        slug, n = f"{base}-{n}", n + 1
    return slug


def clean_slug(slug: str) -> str:
    slug = (slug or "").strip().lower()
    try:
        validate_slug(slug)
    except ValidationError:
        raise ValidationError(
            {"slug": "Use only lowercase letters, numbers, hyphens and underscores."}
        ) from None
    if len(slug) > 60:
        raise ValidationError({"slug": "Keep the slug under 60 characters."})
    return slug


def clean_name(name: str, missing: str = "A name is required.") -> str:
    """A name of up to 100 characters, trimmed; `missing` says what an empty one needs."""
    name = (name or "").strip()
    if not name:
        raise ValidationError({"name": missing})
    if len(name) > 100:
        raise ValidationError({"name": "Keep the name under 100 characters."})
    return name


def create_organization(
    *, creator, name, slug=None, plan=Plan.DEVELOPER, actor=None
) -> Organization:
    """A new organization; its creator becomes its first admin. `actor`: who makes it, as the
    audit log records it (a command passes its named system actor); the creator by default."""
    actor = actor or creator
    name = clean_name(name)
    if plan not in Plan.values:
        raise ValidationError({"plan": f"Unknown plan {plan!r}."})
    if slug:
        slug = clean_slug(slug)
        if slug.startswith(OIDC_PROVIDER_PREFIX):
            raise ValidationError(
                {
                    "slug": f"A slug may not begin with {OIDC_PROVIDER_PREFIX!r}: single sign-on "
                    "names its OpenID Connect providers so."
                }
            )
    else:
        slug = unique_slug(Organization, name)
        if slug.startswith(OIDC_PROVIDER_PREFIX):
            slug = unique_slug(Organization, f"org {name}")
    with writes.unique_or(ValidationError({"slug": f"The slug {slug!r} is taken."})):
        org = Organization.objects.create(name=name, slug=slug, plan=plan)
        audit.record(
            actor,
            "organization.created",
            org,
            organization=org,
            after={"name": name, "slug": slug, "plan": plan},
        )
        _join(actor, org, creator, OrgRole.ADMIN)
    return org


def _join(actor, organization, user, org_role, **how) -> OrganizationMembership:
    """A new member of the organization, audited (in the caller's transaction)."""
    membership = organization.memberships.create(
        user=user, org_role=org_role, source=how.get("via", MembershipSource.MANUAL)
    )
    audit.record(
        actor,
        "org_member.added",
        membership,
        organization=organization,
        target_label=user.email,
        after={"org_role": org_role, **how},
    )
    return membership


def identity_provider_may_adopt(user, organization) -> bool:
    """Whether an organization's identity provider (its single sign-on or its SCIM client) may
    take this existing account as one of its people: a member already, or an account of no
    organization. Another organization's account never: an organization could claim an email
    domain it does not own; the person joins by invitation first, then the IdP manages them."""
    memberships = OrganizationMembership.objects.filter(user=user)
    return memberships.filter(organization=organization).exists() or not memberships.exists()


def _org_manager(actor, organization):
    """The actor, if it may manage this organization's people."""
    actor = as_actor(actor, organization)
    actor.require(ORG_MANAGE)
    return actor


def add_org_member(
    *, actor, organization, user, org_role=OrgRole.MEMBER, source=MembershipSource.MANUAL
):
    """`source`: how they came (SSO and SCIM provisioning name themselves; the audit row says)."""
    if org_role not in OrgRole.values:
        raise ValidationError({"org_role": f"Unknown organization role {org_role!r}."})
    actor = _org_manager(actor, organization)
    check_not_self(actor, user, "You cannot add yourself to an organization.")
    check_can_grant_org_role(org_role, actor.grantable)
    how = {} if source == MembershipSource.MANUAL else {"via": source}
    with writes.unique_or(ValidationError(f"{user.email} is already a member of {organization}.")):
        membership = _join(actor, organization, user, org_role, **how)
    return membership


def _lock_membership(membership) -> OrganizationMembership:
    """Lock the organization row, then re-read the membership.

    Every change that could remove an admin takes the organization's row lock first, so two
    concurrent demotions run one after the other and the second sees the first's result.
    """
    Organization.objects.select_for_update().filter(pk=membership.organization_id).first()
    try:
        return OrganizationMembership.objects.select_related("user", "organization").get(
            pk=membership.pk
        )
    except OrganizationMembership.DoesNotExist:
        raise ValidationError(
            "This person is no longer a member of the organization.", code="not_found"
        ) from None


def _ensure_another_admin(membership):
    others = OrganizationMembership.objects.filter(
        organization_id=membership.organization_id, org_role__in=ADMIN_EVERYWHERE_ROLES
    ).exclude(pk=membership.pk)
    if not others.exists():
        raise ValidationError(
            "An organization must keep at least one admin. Make someone else an admin first.",
            code="last_admin",
        )


def _standing(org_role) -> frozenset:
    """What an org role holds that an organization manager may lack.

    An org admin holds every org permission (and Admin everywhere); members and viewers hold
    nothing an organization manager could not grant (as check_can_grant_org_role says).
    """
    spec = ORG_ROLES[org_role]
    return spec.permissions if spec.admin_everywhere else frozenset()


def change_org_role(*, actor, membership, org_role) -> OrganizationMembership:
    if org_role not in OrgRole.values:
        raise ValidationError({"org_role": f"Unknown organization role {org_role!r}."})
    actor = _org_manager(actor, membership.organization)
    check_not_self(actor, membership.user, "You cannot change your own organization role.")
    check_can_grant_org_role(org_role, actor.grantable)
    with transaction.atomic():
        membership = _lock_membership(membership)
        writes.change(
            actor,
            membership,
            "org_role",
            org_role,
            "org_member.role_changed",
            check=lambda: _check_may_demote(actor, membership),
            organization=membership.organization,
            target_label=membership.user.email,
        )
    return membership


def _check_may_demote(actor, membership) -> None:
    """Whether the actor may take the member's current org role away from them."""
    before = membership.org_role
    if ORG_ROLES[before].admin_everywhere:
        _ensure_another_admin(membership)
    check_holds_all(
        _standing(before), actor.grantable, f"{membership.user.email} is an organization {before}"
    )


def remove_org_member(*, actor, membership) -> None:
    """Remove someone from the organization, with every workspace membership they held.

    Whoever may not change someone's organization role may not remove them either; anyone may
    leave (but not come back on their own: see check_not_self).
    """
    actor = as_actor(actor, membership.organization)
    with transaction.atomic():
        membership = _lock_membership(membership)
        if membership.role_spec.admin_everywhere:
            _ensure_another_admin(membership)
        # Leaving is allowed (it only narrows); joining again is never self-service.
        if membership.user_id not in people_behind(actor):
            actor = _org_manager(actor, membership.organization)
            check_holds_all(
                _standing(membership.org_role),
                actor.grantable,
                f"{membership.user.email} is an organization {membership.org_role}",
            )
        workspaces = sorted(
            membership.workspace_memberships.values_list("workspace__slug", flat=True)
        )
        # Their personal access tokens go with the membership (FK cascade): one event each.
        for token in membership.personal_access_tokens.select_related("org_membership__user"):
            audit.record(
                actor,
                "personal_access_token.deleted",
                token,
                organization=membership.organization,
                target_label=token.audit_label,
                before={"name": token.name, "hint": token.hint, "status": token.status},
                after={"reason": "user removed from the organization"},
            )
        # So do their pending access requests: nobody is left to grant them to.
        for waiting in membership.access_requests.pending().select_related("workspace", "role"):
            audit.record(
                actor,
                "access_request.closed",
                waiting,
                organization=membership.organization,
                workspace=waiting.workspace,
                target_label=membership.user.email,
                before={
                    "status": waiting.status,
                    "permission": waiting.permission or None,
                    "role": waiting.role.name if waiting.role else None,
                },
                after={"reason": "user removed from the organization"},
            )
        audit.record(
            actor,
            "org_member.removed",
            membership,
            organization=membership.organization,
            target_label=membership.user.email,
            before={"org_role": membership.org_role, "workspaces": workspaces},
        )
        membership.delete()


# Selectors: what an actor may see of its organization's people


def org_members(actor):
    """The members of the actor's organization, for whoever may read the organization (the
    console's members page and the API alike); any other id is simply not found."""
    if actor.organization is None or not actor.holds(ORG_READ):
        return OrganizationMembership.objects.none()
    return mfa.with_mfa_flag(
        actor.organization.memberships.select_related("user").order_by("user__email")
    )


def pending_invitations(actor):
    """The organization's open invitations, for whoever manages it (who may resend or cancel
    them); nobody else sees who was invited."""
    if actor.organization is None or not actor.holds(ORG_MANAGE):
        return Invitation.objects.none()
    return (
        actor.organization.invitations.pending()
        .select_related("workspace_role")
        .prefetch_related("workspaces")
        .order_by("email")
    )


def invitable_workspaces(actor):
    """The workspaces an invitation may name: the actor's organization's active ones (as
    invite_member insists; an archived workspace takes nobody in)."""
    return Workspace.objects.filter(organization=actor.organization, archived=False)


# Invitations


def _token_digest(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


def invitation_link(raw_token: str) -> str:
    return f"{settings.SITE_URL}{reverse('invitation-accept', args=[raw_token])}"


def _send_invitation(invitation, raw_token, inviter_label):
    link = invitation_link(raw_token)
    send_mail(
        subject=f"You are invited to {invitation.organization.name} on accesscontrol",
        message=(
            f"{inviter_label} invited you to join {invitation.organization.name} as "
            f"{invitation.get_org_role_display().lower()}.\n\n"
            f"Accept the invitation: {link}\n\n"
            f"The link works once and expires on {invitation.expires_at:%Y-%m-%d %H:%M} UTC."
        ),
        from_email=None,
        recipient_list=[invitation.email],
    )


def _new_token(invitation):
    raw = secrets.token_urlsafe(32)
    invitation.digest = _token_digest(raw)
    invitation.expires_at = timezone.now() + datetime.timedelta(
        days=settings.INVITATION_LIFETIME_DAYS
    )
    return raw


def _check_invitations_on(organization) -> None:
    """Nobody is invited, invited again (a resent link) or taken in by an invitation while the
    organization's SSO settings turn invitations off."""
    from accesscontrol.sso.services import invitations_refusal  # sso imports this module

    if refusal := invitations_refusal(organization):
        raise ValidationError(refusal, code="disabled")


def invite_member(
    *,
    actor,
    organization,
    email,
    org_role=OrgRole.MEMBER,
    workspaces=(),
    workspace_role=None,
):
    """Invite someone by email; returns (invitation, raw token). The email carries the link.

    The inviter must hold what the invitation hands out: the org role, and the workspace role
    in every invited workspace (checked again when it is accepted).
    """
    actor = _org_manager(actor, organization)
    _check_invitations_on(organization)
    email = normalize_email(email)
    try:
        validate_email(email)
    except ValidationError:
        raise ValidationError({"email": "Enter a valid email address."}) from None
    if org_role not in OrgRole.values:
        raise ValidationError({"org_role": f"Unknown organization role {org_role!r}."})
    check_can_grant_org_role(org_role, actor.grantable)
    workspaces = list(workspaces)
    if any(ws.organization_id != organization.pk or ws.archived for ws in workspaces):
        raise ValidationError({"workspaces": "No such workspace in this organization."})
    if workspaces:
        if workspace_role is None:
            raise ValidationError({"workspace_role": "Choose the role for those workspaces."})
        check_role_assignable(workspace_role, organization)
        for workspace in workspaces:
            check_can_grant(workspace_role, actor.access_in(workspace).grantable)
    if organization.memberships.filter(user__email=email).exists():
        raise ValidationError(f"{email} is already a member of {organization}.", code="duplicate")
    if organization.invitations.pending().filter(email=email).exists():
        raise ValidationError(
            f"{email} already has a pending invitation; resend or cancel it.", code="duplicate"
        )
    invitation = Invitation(
        organization=organization,
        email=email,
        org_role=org_role,
        workspace_role=workspace_role if workspaces else None,
        created_by=person_behind(actor),
        created_by_service_key=actor.key if actor.kind == SERVICE_KEY else None,
        created_by_label=audit.describe_actor(actor)["actor_label"],
    )
    raw = _new_token(invitation)
    pending = ValidationError(f"{email} already has a pending invitation.", code="duplicate")
    with writes.unique_or(pending):
        invitation.save()
        invitation.workspaces.set(workspaces)
        audit.record(
            actor,
            "invitation.sent",
            invitation,
            organization=organization,
            target_label=email,
            after={
                "org_role": org_role,
                "workspaces": sorted(ws.slug for ws in workspaces),
                "workspace_role": workspace_role.name if workspaces else None,
            },
        )
        transaction.on_commit(
            lambda: _send_invitation(invitation, raw, invitation.created_by_label)
        )
    return invitation, raw


def _lock_pending(invitation) -> Invitation:
    locked = (
        Invitation.objects.select_for_update(of=("self",))
        .select_related("organization", "workspace_role")
        .filter(pk=invitation.pk)
        .pending()
        .first()
    )
    if locked is None:
        raise ValidationError(
            "This invitation was already accepted or cancelled.", code="duplicate"
        )
    return locked


def resend_invitation(*, actor, invitation):
    """A fresh link and expiry; the old link stops working."""
    actor = _org_manager(actor, invitation.organization)
    _check_invitations_on(invitation.organization)
    with transaction.atomic():
        invitation = _lock_pending(invitation)
        raw = _new_token(invitation)
        invitation.save(update_fields=["digest", "expires_at"])
        audit.record(
            actor,
            "invitation.resent",
            invitation,
            organization=invitation.organization,
            target_label=invitation.email,
            after={"expires_at": invitation.expires_at.isoformat()},
        )
        sender = audit.describe_actor(actor)["actor_label"]
        transaction.on_commit(lambda: _send_invitation(invitation, raw, sender))
    return invitation, raw


def cancel_invitation(*, actor, invitation):
    actor = _org_manager(actor, invitation.organization)
    with transaction.atomic():
        invitation = _lock_pending(invitation)
        writes.save(
            actor,
            invitation,
            "invitation.cancelled",
            {"cancelled_at": timezone.now()},
            organization=invitation.organization,
            target_label=invitation.email,
        )
    return invitation


def find_invitation(raw_token) -> Invitation | None:
    """The pending, unexpired invitation this link belongs to, or None."""
    if not raw_token or len(raw_token) > 100:
        return None
    return (
        Invitation.objects.pending()
        .select_related("organization", "workspace_role")
        .filter(digest=_token_digest(raw_token), expires_at__gt=timezone.now())
        .first()
    )


def _inviter_grantable(invitation, workspace=None):
    """What whoever sent the invitation may hand out now; None for the system itself."""
    from accesscontrol.apikeys.authentication import (  # here: apikeys imports this app
        service_key_access,
        service_key_org_permissions,
    )

    organization = invitation.organization
    key = invitation.created_by_service_key
    if key is not None:
        if key.status != "active" or key.role_id is None:
            return frozenset()
        if workspace is None:
            return service_key_org_permissions(key)
        if key.workspace_id not in (None, workspace.pk):
            return frozenset()
        return service_key_access(key, workspace).grantable
    if invitation.created_by_id is None:
        # Sent by the system, or by someone whose account is gone: only the system's stand.
        return None if invitation.created_by_label.startswith("system") else frozenset()
    access = resolve_access(invitation.created_by, organization.pk, workspace)
    return access.grantable


def invited_workspaces(invitation) -> list[Workspace]:
    """The workspaces accepting `invitation` adds its person to: the invited ones that still
    take people in. One archived since the invitation went out is read-only, and nobody joins
    it (as with SSO's defaults and SCIM's mappings). Accepting, the link's page, the members
    page and the API all read this, so none promises a workspace the person will not join.
    It reads `invitation.workspaces.all()`: a prefetched list (pending_invitations) costs no
    query."""
    return [ws for ws in invitation.workspaces.all() if not ws.archived]


def _check_inviter_still_may(invitation) -> None:
    """An invitation hands out only what its sender may still hand out when it is accepted.

    Otherwise an org admin could invite another address of their own, lose their role, and
    come back through the invitation.
    """
    refused = ValidationError(
        "Whoever invited you can no longer grant this access; ask an organization admin for "
        "a new invitation.",
        code="permission",
    )
    held = _inviter_grantable(invitation)
    if held is None:
        return
    if ORG_MANAGE not in held:
        raise refused
    try:
        check_can_grant_org_role(invitation.org_role, held)
        role = invitation.workspace_role
        for workspace in invited_workspaces(invitation) if role else ():
            check_can_grant(role, _inviter_grantable(invitation, workspace))
    except ValidationError:
        raise refused from None


def _check_role_still_assignable(invitation) -> None:
    """The invited workspace role, still one the organization's plan offers when it is
    accepted (the plan may have gone below Enterprise since): check_role_assignable, as
    SCIM's group mappings and SSO's default workspace roles are checked when applied."""
    role = invitation.workspace_role
    if role is None or not invited_workspaces(invitation):
        return
    try:
        check_role_assignable(role, invitation.organization)
    except ValidationError as exc:
        raise ValidationError(
            f"{' '.join(exc.messages)} Ask an organization admin for a new invitation.",
            code="plan",
        ) from None


def accept_invitation(*, invitation, user) -> OrganizationMembership:
    """The invited person joins: organization membership, then the invited workspaces."""
    if normalize_email(user.email) != invitation.email:
        raise ValidationError(f"This invitation is for {invitation.email}.", code="permission")
    with transaction.atomic():
        invitation = _lock_pending(invitation)
        if invitation.expires_at <= timezone.now():
            raise ValidationError("This invitation has expired; ask for a new one.")
        _check_invitations_on(invitation.organization)
        _check_inviter_still_may(invitation)
        _check_role_still_assignable(invitation)
        organization = invitation.organization
        membership = OrganizationMembership.objects.filter(
            organization=organization, user=user
        ).first()
        if membership is None:
            membership = _join(user, organization, user, invitation.org_role, via="invitation")
        role = invitation.workspace_role
        # workspaces.services imports this module; a grant that expired but is not cleaned up
        # yet must make way here as on the members page, or the invitation would add nothing.
        from accesscontrol.workspaces.services import end_expired_grants

        for workspace in invited_workspaces(invitation) if role else ():
            end_expired_grants(membership, workspace)
            ws_membership, created = WorkspaceMembership.objects.get_or_create(
                org_membership=membership,
                workspace=workspace,
                defaults={"role": role, "source": MembershipSource.INVITATION},
            )
            if created:
                audit.record(
                    user,
                    "workspace_member.added",
                    ws_membership,
                    workspace=workspace,
                    target_label=user.email,
                    after={"role": role.name, "via": "invitation"},
                )
        writes.save(
            user,
            invitation,
            "invitation.accepted",
            {"accepted_at": timezone.now()},
            organization=organization,
            target_label=user.email,
        )
    return membership


def sign_up_and_accept(*, invitation, full_name, password):
    """A newcomer's account and their joining, together or not at all: a refused invitation
    (expired, cancelled, its sender's power gone) leaves no account behind."""
    with transaction.atomic():
        user = sign_up(email=invitation.email, full_name=full_name, password=password)
        accept_invitation(invitation=invitation, user=user)
    return user


def update_organization_settings(
    *, actor, organization, plan=None, max_key_lifetime_days=..., allow_personal_access_tokens=None
) -> Organization:
    """Plan and key policy. `max_key_lifetime_days=None` removes the cap (hence the ... default)."""
    actor = _org_manager(actor, organization)
    if plan is not None and plan not in Plan.values:
        raise ValidationError({"plan": f"Unknown plan {plan!r}."})
    if max_key_lifetime_days not in (None, ...) and not 1 <= max_key_lifetime_days <= 3650:
        raise ValidationError(
            {"max_key_lifetime_days": "Choose between 1 and 3650 days, or leave it empty."}
        )
    with transaction.atomic():
        org = Organization.objects.select_for_update().get(pk=organization.pk)
        before = {
            "plan": org.plan,
            "max_key_lifetime_days": org.max_key_lifetime_days,
            "allow_personal_access_tokens": org.allow_personal_access_tokens,
        }
        if plan is not None:
            org.plan = plan
        if max_key_lifetime_days is not ...:
            org.max_key_lifetime_days = max_key_lifetime_days
        if allow_personal_access_tokens is not None:
            org.allow_personal_access_tokens = bool(allow_personal_access_tokens)
        after = {
            "plan": org.plan,
            "max_key_lifetime_days": org.max_key_lifetime_days,
            "allow_personal_access_tokens": org.allow_personal_access_tokens,
        }
        if after == before:
            return org
        org.save(update_fields=list(after))
        if before["plan"] != after["plan"]:
            audit.record(
                actor,
                "organization.plan_changed",
                org,
                organization=org,
                before={"plan": before["plan"]},
                after={"plan": after["plan"]},
            )
        changed = {k for k in after if k != "plan" and after[k] != before[k]}
        if changed:
            audit.record(
                actor,
                "organization.settings_changed",
                org,
                organization=org,
                before={k: before[k] for k in changed},
                after={k: after[k] for k in changed},
            )
    return org


def set_ip_allow_list(*, actor, organization, ip_allow_list) -> Organization:
    """Where the organization's API keys may be used from (apikeys/ip_allow_lists.py): CIDR
    networks, normalised; empty for anywhere. Saving the row moves the authorization version,
    so every process holds keys to the new list from its next request on."""
    actor = _org_manager(actor, organization)
    networks = ip_allow_lists.clean_allow_list(ip_allow_list)
    return _change_setting(
        actor,
        organization,
        "ip_allow_list",
        networks,
        "organization.ip_allow_list_changed",
        check=lambda: ip_allow_lists.check_keeps_caller(actor, organization_list=networks),
    )


def set_require_mfa(*, actor, organization, require_mfa) -> Organization:
    """Whose sign-in needs a second factor: nobody, the organization's admins, or everyone. Those
    it covers who have none are walked through enrolment before anything else (accounts/mfa.py)."""
    actor = _org_manager(actor, organization)
    if require_mfa not in RequireMfa.values:
        raise ValidationError({"require_mfa": f"Unknown choice {require_mfa!r}."})
    return _change_setting(
        actor, organization, "require_mfa", require_mfa, "organization.mfa_requirement_changed"
    )


def _change_setting(actor, organization, field, value, action, check=None) -> Organization:
    """One setting of the organization, changed under its row lock and audited (see
    writes.change; `check` runs once the value is known to change)."""
    with transaction.atomic():
        org = Organization.objects.select_for_update().get(pk=organization.pk)
        writes.change(actor, org, field, value, action, check=check, organization=org)
    return org
