import sys

from django import forms
from django.conf import settings
from django.contrib.auth import login, logout
from django.contrib.auth.forms import AuthenticationForm
from django.http import JsonResponse
from django.shortcuts import redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.views import defaults
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accesscontrol import draining, throttle, unavailable
from accesscontrol.accounts import sudo
from accesscontrol.accounts.models import normalize_email
from accesscontrol.accounts.services import record_login_failed, record_login_succeeded
from accesscontrol.organizations.models import OrganizationMembership
from accesscontrol.rbac.actor import Actor
from accesscontrol.rbac.gate import authenticated, public
from accesscontrol.rbac.resolver import Access
from accesscontrol.sso.backends import refusal_of
from accesscontrol.workspaces.services import enterable_workspaces


class EmailAuthenticationForm(AuthenticationForm):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["username"].label = "Email"
        self.fields["username"].widget.attrs.update(type="email", autocomplete="email")

    def get_invalid_login_error(self):
        # A right password refused because the organization requires SSO says so (sso/).
        return (
            forms.ValidationError(refusal_of(self.request))
            if refusal_of(self.request)
            else (super().get_invalid_login_error())
        )

    def clean_username(self):
        # From the raw input, exactly as the sign-in throttle reads it (login_view).
        return normalize_email(self.data.get(self.add_prefix("username")))


def _safe_next(request):
    target = request.POST.get("next") or request.GET.get("next") or ""
    if url_has_allowed_host_and_scheme(target, {request.get_host()}, request.is_secure()):
        return target
    return ""


@public
@require_http_methods(["GET", "POST"])
@sensitive_post_parameters("password")
def login_view(request):
    if request.user.is_authenticated and request.method == "GET":
        return redirect(_safe_next(request) or "home")
    form = EmailAuthenticationForm(request, data=request.POST or None)
    if request.method == "POST":
        email = normalize_email(request.POST.get("username"))
        checks = _password_checks(request, email)
        # Reserved before the password is checked, so a locked-out guesser learns nothing more
        # and a burst of guesses gets no more than the limit between them.
        attempt = throttle.reserve(*checks)
        if attempt.retry_after:
            return _too_many_attempts(
                request,
                attempt.retry_after,
                "accounts/login.html",
                {"form": EmailAuthenticationForm(request), "next": _safe_next(request)},
                "failed sign-in attempts",
            )
        if form.is_valid():
            user = form.get_user()
            login(request, user)  # cycles the session key
            record_login_succeeded(user)
            attempt.release()
            throttle.forget(*checks[1])
            return redirect(_safe_next(request) or "home")
        record_login_failed(email)  # the reserved attempt stays counted
    return render(
        request,
        "accounts/login.html",
        {"form": form, "next": _safe_next(request)},
        status=400 if form.errors else 200,
    )


def _password_checks(request, email):
    """What a wrong password counts against: the client's IP, and the account (its email as
    authentication reads it, so no spelling of the address gets a count of its own)."""
    return (
        (throttle.limit("login-ip"), throttle.client_ip(request)),
        (throttle.limit("login-account"), normalize_email(email)),
    )


def _too_many_attempts(request, retry_after, template, context, what):
    minutes = max(1, -(-retry_after // 60))
    error = f"Too many {what}. Try again in {minutes} minute{'s' if minutes > 1 else ''}."
    response = render(request, template, {**context, "error": error}, status=429)
    response["Retry-After"] = str(retry_after)
    return response


class ConfirmPasswordForm(forms.Form):
    password = forms.CharField(
        label="Password", strip=False, widget=forms.PasswordInput(attrs={"autofocus": True})
    )

    def __init__(self, user, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.user = user

    def clean_password(self):
        password = self.cleaned_data["password"]
        if not self.user.check_password(password):
            raise forms.ValidationError("That is not your password.")
        return password


@authenticated
@require_http_methods(["GET", "POST"])
@sensitive_post_parameters("password")
def confirm_password(request):
    """Sudo mode: the password again before an action that hands out power."""
    form = ConfirmPasswordForm(request.user, request.POST or None)
    if request.method == "POST":
        # Wrong passwords here count like failed sign-ins: this is no side door for guessing.
        checks = _password_checks(request, request.user.email)
        attempt = throttle.reserve(*checks)
        if attempt.retry_after:
            return _too_many_attempts(
                request,
                attempt.retry_after,
                "accounts/confirm_password.html",
                _confirm_context(request),
                "wrong passwords",
            )
        if form.is_valid():
            attempt.release()
            sudo.grant(request)
            return redirect(_safe_next(request) or "home")
        record_login_failed(request.user.email)  # the reserved attempt stays counted
    return render(
        request,
        "accounts/confirm_password.html",
        _confirm_context(request, form),
        status=400 if form.errors else 200,
    )


def _confirm_context(request, form=None):
    return {
        "form": form or ConfirmPasswordForm(request.user),
        "next": _safe_next(request),
        "sudo_minutes": settings.SUDO_MODE_SECONDS // 60,
    }


@authenticated
@require_POST
def logout_view(request):
    logout(request)
    return redirect("login")


@authenticated
@require_GET
def home(request):
    """Straight to the first workspace the user can enter; otherwise the list of organizations."""
    memberships = list(
        OrganizationMembership.objects.filter(user=request.user)
        .select_related("organization")
        .order_by("organization__name")
    )
    for membership in memberships:
        actor = Actor.for_user(
            request.user, membership.organization, access=Access(org_role=membership.org_role)
        )
        workspaces = enterable_workspaces(actor)
        if workspaces:
            return redirect("workspace-home", membership.organization.slug, workspaces[0].slug)
    if memberships:
        return redirect("org-overview", memberships[0].organization.slug)
    return render(request, "accounts/home.html", {"memberships": memberships})


@public
@require_GET
def health(request):
    """For load balancers: no database, no session (a database outage is not this node's to
    fix); 503 once the node is draining before a shutdown (accesscontrol/draining.py)."""
    if draining.draining():
        return JsonResponse({"status": "draining"}, status=503)
    return JsonResponse({"status": "ok"})


def not_found(request, exception=None):
    """404 for everything the URLconf does not match: JSON for API clients, a page for people."""
    if unavailable.api_client(request):
        from accesscontrol.api.not_found import no_such_operation

        return no_such_operation(request)
    return render(request, "404.html", status=404)


def server_error(request):
    """handler500: what no view or middleware handled. A dependency that is down is a 503, so a
    client retries and a balancer does not count the node as broken; anything else stays a 500.
    Django calls this inside its `except` block, so the exception is sys.exc_info()'s."""
    if isinstance(sys.exc_info()[1], unavailable.UNAVAILABLE):
        return unavailable.response(request)
    return defaults.server_error(request)
