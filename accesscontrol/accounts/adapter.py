"""django-allauth, told our rules (ARCHITECTURE §12).

Every password allauth checks (the sign-in form, re-authentication, our sudo page) passes
`AccountAdapter.authenticate`, which takes an attempt from the sign-in throttle before the
password is looked at and gives it back when the password was right. The audit hangs on the
signals (accounts/signin.py), so each sign-in path is logged the same way.
"""

from allauth.account.adapter import DefaultAccountAdapter
from allauth.account.forms import LoginForm
from allauth.account.internal.stagekit import clear_login
from allauth.core import context
from allauth.core.exceptions import ImmediateHttpResponse
from django import forms
from django.contrib import messages
from django.http import HttpResponse
from django.shortcuts import redirect
from django.urls import reverse

from accesscontrol import throttle
from accesscontrol.accounts import sudo
from accesscontrol.accounts.models import normalize_email
from accesscontrol.sso.backends import refusal_of
from accesscontrol.sso.services import password_sign_in_refusal


def password_checks(request, email):
    """What a wrong password counts against: the client's IP, and the account (its email as
    authentication reads it, so no spelling of the address gets a count of its own)."""
    return (
        (throttle.limit("login-ip"), throttle.client_ip(request)),
        (throttle.limit("login-account"), normalize_email(email)),
    )


def wait_message(retry_after: int, what: str) -> str:
    minutes = max(1, -(-retry_after // 60))
    return f"Too many {what}. Try again in {minutes} minute{'s' if minutes > 1 else ''}."


class Throttled(ImmediateHttpResponse):
    """Too many wrong passwords: the password is not evaluated. Our pages catch this and show
    their own form with the message; any other allauth page answers the plain 429."""

    def __init__(self, retry_after: int):
        self.retry_after = retry_after
        response = HttpResponse(
            wait_message(retry_after, "failed sign-in attempts"),
            status=429,
            content_type="text/plain; charset=utf-8",
        )
        response["Retry-After"] = str(retry_after)
        super().__init__(response)


class AccountAdapter(DefaultAccountAdapter):
    error_messages = {
        **DefaultAccountAdapter.error_messages,
        "email_password_mismatch": "Please enter a correct email and password.",
    }

    def is_open_for_signup(self, request):
        # Accounts come from invitations and from an organization's SSO (its own adapter).
        return False

    def pre_login(self, request, user, **kwargs):
        # A sign-in that did not come through an identity provider (a passkey, an invitation's
        # first sign-in) is refused where the organization requires single sign-on, as a
        # password is (sso/backends.py): the identity provider decides who gets in.
        refused = super().pre_login(request, user, **kwargs)
        if refused is not None:
            return refused
        if (kwargs.get("signal_kwargs") or {}).get("sociallogin") is None:
            refusal = password_sign_in_refusal(user)
            if refusal:
                clear_login(request)
                messages.error(request, refusal)
                return redirect("login")
        return None

    def pre_authenticate(self, request, **credentials):
        # Reserved before the password is checked, so a locked-out guesser learns nothing more
        # and a burst of guesses gets no more than the limit between them.
        self._attempt = throttle.reserve(*password_checks(request, credentials.get("email")))
        request._sign_in_attempt_counted = True  # the failure signal must not count it again
        if self._attempt.retry_after:
            raise Throttled(self._attempt.retry_after)

    def authenticate(self, request, **credentials):
        user = super().authenticate(request, **credentials)
        if user is not None:
            self._attempt.release()  # not a failure; a wrong password stays counted
        return user

    def is_reauthentication_required(self, *, app, **kwargs):
        # Our sudo mode is the one proof of a recent sign-in: fresh from signing in or from
        # confirming (password, MFA code, passkey), allauth's own pages do not ask again. So a
        # person walked to MFA enrolment at sign-in enrols at once, with or without a password.
        request = context.request
        if request is not None and hasattr(request, "session") and sudo.is_active(request):
            return False
        return super().is_reauthentication_required(app=app, **kwargs)

    def get_reauthentication_methods(self, user):
        # Someone the password backend refuses (their organization requires SSO) is not asked
        # for a password here either: allauth's pages send them to our confirm page, which
        # offers their identity provider (the same rule as the sign-in and the sudo page).
        methods = super().get_reauthentication_methods(user)
        if not user.is_authenticated or password_sign_in_refusal(user) is None:
            return methods
        ours = {"id": "sudo", "description": "Confirm it is you", "url": reverse("sudo")}
        return [ours, *(m for m in methods if m["id"] != "reauthenticate")]

    def reauthenticate(self, user, password):
        # By the account's own email: allauth's default reads its EmailAddress table, which
        # accounts made by invitation or by an admin have no row in.
        again = self.authenticate(context.request, email=user.email, password=password)
        return again is not None and again.pk == user.pk


class EmailLoginForm(LoginForm):
    """allauth's sign-in form with the email read as authentication reads it. Any text reaches
    authentication (not only a valid address), so every attempt is counted and audited."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["login"] = forms.CharField(
            label="Email",
            widget=forms.EmailInput(attrs={"autocomplete": "email", "autofocus": True}),
        )

    def clean_login(self):
        return normalize_email(self.cleaned_data["login"])

    def clean(self):
        try:
            return super().clean()
        except forms.ValidationError:
            # A right password refused because the organization requires SSO says so.
            refusal = refusal_of(self.request)
            if refusal:
                raise forms.ValidationError(refusal) from None
            raise
