from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import transaction

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
