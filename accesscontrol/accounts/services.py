from django.db import transaction

from accesscontrol.audit import services as audit


def record_login_failed(email: str) -> None:
    """A failed sign-in, kept in the audit log (the password never is)."""
    with transaction.atomic():
        audit.record(
            None,
            "login.failed",
            target_label=(email or "")[:255],
            after={"email": (email or "")[:255]},
        )
