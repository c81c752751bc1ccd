from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import transaction

from accesscontrol.accounts.models import User
from accesscontrol.audit import services as audit


def record_login_failed(email: str) -> None:
    """A failed sign-in, kept in the audit log.

    Only a well-formed email is kept: people paste passwords into the email field, and those
    must not end up in the log.
    """
    email = (email or "").strip().lower()[:254]
    try:
        validate_email(email)
    except ValidationError:
        email = "(not an email address)"
    with transaction.atomic():
        audit.record(None, "login.failed", target_label=email, after={"email": email})


def sign_up(*, email, full_name, password):
    """A new account for an invited person; the password must pass the configured validators."""
    email = (email or "").strip().lower()
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
