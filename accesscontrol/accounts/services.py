from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import transaction

from accesscontrol.accounts.models import User, normalize_email
from accesscontrol.audit import services as audit


def _organizations_of(email):
    from accesscontrol.organizations.models import Organization

    return list(Organization.objects.filter(memberships__user__email=email))


def record_login_failed(email: str) -> None:
    """A failed sign-in, in the log of every organization the account belongs to.

    Only a well-formed email is kept: people paste passwords into the email field, and those
    must not end up in the log. An unknown email is logged once, outside any organization.
    """
    email = normalize_email(email)[:254]
    try:
        validate_email(email)
    except ValidationError:
        email = "(not an email address)"
    with transaction.atomic():
        for organization in _organizations_of(email) or [None]:
            audit.record(
                None,
                "login.failed",
                target_label=email,
                organization=organization,
                after={"email": email},
            )


def record_login_succeeded(user) -> None:
    with transaction.atomic():
        for organization in _organizations_of(user.email) or [None]:
            audit.record(
                user, "login.succeeded", user, organization=organization, target_label=user.email
            )


def sign_up(*, email, full_name, password):
    """A new account for an invited person; the password must pass the configured validators."""
    email = normalize_email(email)
    if User.objects.filter(email=email).exists():
        raise ValidationError({"email": "An account with this email exists; sign in instead."})
    candidate = User(email=email, full_name=(full_name or "").strip()[:150])
    try:
        validate_password(password, candidate)
    except ValidationError as exc:
        raise ValidationError({"password": exc.messages}) from None
    candidate.set_password(password)
    candidate.save()
    return candidate
