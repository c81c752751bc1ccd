"""Multi-factor authentication (allauth.mfa) and the organizations' "require MFA" setting.

A person whom an organization requires MFA of (ARCHITECTURE §12), and who has no second factor,
is walked through enrolment from their next sign-in: accounts/middleware.py sends every console
page to ENROL_URL except the pages that enrol and sign out (ENROLMENT_PAGES). API keys are not
sessions and are not affected.
"""

from allauth.account.signals import user_logged_in
from allauth.mfa.models import Authenticator
from allauth.mfa.signals import authenticator_added, authenticator_removed
from django.db import transaction
from django.db.models import Exists, F, OuterRef, Q
from django.db.models.signals import post_delete, post_save

from accesscontrol.audit import services as audit
from accesscontrol.rbac.permissions import ADMIN_EVERYWHERE_ROLES

# Recovery codes back up another factor; alone they are no second factor.
FACTORS = (Authenticator.Type.TOTP, Authenticator.Type.WEBAUTHN)
ENROL_URL = "mfa_index"
# Session key: set at sign-in when the person must enrol, kept up to date as factors come and go.
MUST_ENROL = "mfa_must_enrol"
# What a person who must enrol may still open: the enrolment itself (with the re-authentication
# allauth asks for before a change), their recovery codes, and signing out.
ENROLMENT_PAGES = frozenset(
    {
        "mfa_index",
        "mfa_activate_totp",
        "mfa_add_webauthn",
        "mfa_list_webauthn",
        "mfa_view_recovery_codes",
        "mfa_generate_recovery_codes",
        "mfa_download_recovery_codes",
        "mfa_reauthenticate",
        "mfa_reauthenticate_webauthn",
        "account_reauthenticate",
        "account_logout",
        "logout",
    }
)

LABELS = {
    Authenticator.Type.TOTP: "an authenticator app",
    Authenticator.Type.WEBAUTHN: "a passkey",
    Authenticator.Type.RECOVERY_CODES: "recovery codes",
}


def _types(user) -> set[str]:
    return set(Authenticator.objects.filter(user_id=user.pk).values_list("type", flat=True))


def has_mfa(user) -> bool:
    return Authenticator.objects.filter(user_id=user.pk, type__in=FACTORS).exists()


def has_code(user) -> bool:
    """A code can prove it is them: an authenticator app, or recovery codes."""
    return bool(_types(user) - {Authenticator.Type.WEBAUTHN})


def has_passkey(user) -> bool:
    return Authenticator.Type.WEBAUTHN in _types(user)


def with_mfa_flag(memberships):
    """Memberships annotated `has_mfa` (whether the member has a second factor), in the same
    query: member lists stay one query whatever their length."""
    factor = Authenticator.objects.filter(user_id=OuterRef("user_id"), type__in=FACTORS)
    return memberships.annotate(has_mfa=Exists(factor))


def memberships_requiring_mfa():
    """Memberships whose organization requires MFA of that member (by the org role's
    properties: "admins" means those who manage it, admin in every workspace), and of the
    break-glass admin where single sign-on is required."""
    from accesscontrol.organizations.models import OrganizationMembership, RequireMfa

    return OrganizationMembership.objects.filter(
        Q(organization__require_mfa=RequireMfa.EVERYONE)
        | Q(organization__require_mfa=RequireMfa.ADMINS, org_role__in=ADMIN_EVERYWHERE_ROLES)
        # The break-glass admin of an organization that requires single sign-on keeps a
        # password (sso/): only with a second factor.
        | Q(organization__sso__require_sso=True, organization__sso__break_glass_user=F("user"))
    )


def must_enrol(user) -> bool:
    """Required by one of their organizations and without a second factor: one query."""
    factor = Authenticator.objects.filter(user_id=OuterRef("user_id"), type__in=FACTORS)
    return memberships_requiring_mfa().filter(user_id=user.pk).filter(~Exists(factor)).exists()


def requiring_organizations(user):
    """The organizations that require MFA of this person, by name (for the enrolment page)."""
    from accesscontrol.organizations.models import Organization

    return Organization.objects.filter(
        memberships__in=memberships_requiring_mfa().filter(user_id=user.pk)
    ).order_by("name")


def _audit(action, user, authenticator):
    from accesscontrol.organizations.models import Organization

    with transaction.atomic():
        for organization in Organization.objects.filter(memberships__user_id=user.pk) or [None]:
            audit.record(
                user,
                action,
                authenticator,
                organization=organization,
                target_label=LABELS.get(authenticator.type, authenticator.type),
                after={"type": authenticator.type},
            )


def remember_whether_to_enrol(request, user) -> None:
    if request is None or not hasattr(request, "session"):
        return
    if must_enrol(user):
        request.session[MUST_ENROL] = True
    else:
        request.session.pop(MUST_ENROL, None)


def reauthenticate_with_code(form) -> None:
    """A valid MFA code on the sudo page: allauth records the re-authentication (which grants
    sudo mode, accounts/sudo.py) and marks the code used."""
    form.save()


def _signed_in(sender, request, user, **kwargs):
    remember_whether_to_enrol(request, user)


def _changed(sender, request, user, **kwargs):
    remember_whether_to_enrol(request, user)


# The audit hangs on the rows, not on allauth's signals: allauth sends those once the change has
# committed, and an audit row written then could be lost apart from its change. A row's signal
# runs inside the change's transaction (allauth_urls makes allauth's MFA pages atomic), so the
# factor and its audit row are written together or not at all.
def _row_added(sender, instance, created, **kwargs):
    if created:
        _audit("mfa.enabled", instance.user, instance)


def _row_removed(sender, instance, origin=None, **kwargs):
    # A factor removed for itself; not one swept away with its account (nothing to tell then).
    if isinstance(origin, Authenticator) or getattr(origin, "model", None) is Authenticator:
        _audit("mfa.disabled", instance.user, instance)


user_logged_in.connect(_signed_in, dispatch_uid="mfa-enrolment-at-sign-in")
authenticator_added.connect(_changed, dispatch_uid="mfa-enrolment-added")
authenticator_removed.connect(_changed, dispatch_uid="mfa-enrolment-removed")
post_save.connect(_row_added, sender=Authenticator, dispatch_uid="audit-mfa-enabled")
post_delete.connect(_row_removed, sender=Authenticator, dispatch_uid="audit-mfa-disabled")
