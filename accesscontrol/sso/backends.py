"""Passwords refused where single sign-on is required, on every password path.

Django's sign-in form and allauth's both call django.contrib.auth.authenticate(), and this
backend takes ModelBackend's place in AUTHENTICATION_BACKENDS: a right password of someone whose
organization requires SSO raises PermissionDenied, which stops authenticate() before any other
backend is tried. The sentence to show is left on the request (`refusal_of`) for the form.
"""

from django.contrib.auth.backends import ModelBackend
from django.core.exceptions import PermissionDenied

from accesscontrol.sso.services import password_sign_in_refusal

_ATTRIBUTE = "sso_password_refusal"


class PasswordBackend(ModelBackend):
    def authenticate(self, request, username=None, password=None, **kwargs):
        user = super().authenticate(request, username=username, password=password, **kwargs)
        if user is None:
            return None
        refusal = password_sign_in_refusal(user)
        if refusal:
            if request is not None:
                setattr(request, _ATTRIBUTE, refusal)
            raise PermissionDenied(refusal)
        return user


def refusal_of(request) -> str | None:
    """Why the password sign-in of this request was refused for SSO, if it was."""
    return getattr(request, _ATTRIBUTE, None)
