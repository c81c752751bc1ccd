"""Sudo mode: the actions that hand out power ask the user to prove it is them again if the last
time they did (signing in, or confirming with their password, an MFA code or a passkey) is older
than SUDO_MODE_SECONDS.

A stolen session cookie then cannot widen anyone's access: mint API keys or tokens, change
roles, add members, invite, change the plan or key policy, restore or delete a workspace.
"""

import functools
import time

from allauth.account.signals import authentication_step_completed
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.signals import user_logged_in
from django.http import HttpResponse
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme, urlencode

SESSION_KEY = "sudo_until"


def grant(request) -> None:
    request.session[SESSION_KEY] = time.time() + settings.SUDO_MODE_SECONDS


def is_active(request) -> bool:
    return request.session.get(SESSION_KEY, 0) > time.time()


def _granted_at_login(sender, request, user, **kwargs):
    if request is not None and hasattr(request, "session"):
        grant(request)


def _granted_at_reauthentication(sender, request, user, reauthenticated=False, **kwargs):
    # allauth's re-authentication by password, MFA code or passkey (and by the identity
    # provider, where the SSO flow marks it so) proves it is them again, like our sudo page.
    if reauthenticated and request is not None and request.user.pk == user.pk:
        grant(request)


user_logged_in.connect(_granted_at_login, dispatch_uid="sudo-at-login")
authentication_step_completed.connect(
    _granted_at_reauthentication, dispatch_uid="sudo-at-reauthentication"
)


def _return_to(request, fallback) -> str:
    """Where to come back after confirming: the page the user acted from."""
    for candidate in (request.headers.get("HX-Current-URL"), request.headers.get("Referer")):
        if candidate and url_has_allowed_host_and_scheme(
            candidate, {request.get_host()}, request.is_secure()
        ):
            return candidate
    return fallback(request) if fallback else request.get_full_path()


def sudo_required(view=None, *, return_to=None):
    """Changes (POST) need sudo mode; pages (GET) are shown as usual.

    Without a referring page the user comes back to the URL they posted to, or to
    `return_to(request)` for actions whose URL has no page of its own.
    """
    if view is None:
        return functools.partial(sudo_required, return_to=return_to)

    @functools.wraps(view)
    def wrapped(request, *args, **kwargs):
        if request.method == "GET" or is_active(request):
            return view(request, *args, **kwargs)
        url = f"{reverse('sudo')}?{urlencode({'next': _return_to(request, return_to)})}"
        messages.info(request, "Confirm it is you to continue; nothing was changed.")
        if request.htmx:
            response = HttpResponse(status=204)
            response["HX-Redirect"] = url
            return response
        return redirect(url)

    # The declaration, read by tests/accounts/test_sudo_actions.py, which lists every action
    # that must carry it (whatever widens access: plan, roles, members, invitations, keys).
    wrapped.sudo_required = True
    return wrapped
