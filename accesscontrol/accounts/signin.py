"""Sign-in auditing and throttling on the sign-in signals (ARCHITECTURE §12).

allauth sends `user_logged_in` at the end of every sign-in it completes (a password with its MFA
stage, a passkey, an identity provider, an accepted invitation), and Django sends
`user_login_failed` for every password authentication refuses, so every path is logged and
counted the same way.
"""

from allauth.account.signals import user_logged_in
from django.contrib.auth.signals import user_login_failed

from accesscontrol import throttle
from accesscontrol.accounts.adapter import password_checks
from accesscontrol.accounts.services import record_login_failed, record_login_succeeded


def _signed_in(sender, request, user, sociallogin=None, **kwargs):
    if sociallogin is None:
        # An identity provider's sign-in is recorded by sso/signals.py, naming the provider.
        record_login_succeeded(user)
    # A successful sign-in clears its account's count of wrong passwords (never the IP's).
    throttle.forget(*password_checks(request, user.email)[1])


def _refused(sender, credentials, request=None, **kwargs):
    email = credentials.get("email") or credentials.get("username") or ""
    if request is not None and not getattr(request, "_sign_in_attempt_counted", False):
        # Refused by a path that did not go through the adapter: counted all the same.
        throttle.record_failure(*password_checks(request, email))
    record_login_failed(email)


user_logged_in.connect(_signed_in, dispatch_uid="audit-sign-in")
user_login_failed.connect(_refused, dispatch_uid="audit-refused-sign-in")
