import sys

from allauth.account import views as allauth_views
from allauth.account.adapter import get_adapter as get_account_adapter
from allauth.mfa.base.forms import ReauthenticateForm
from django import forms
from django.conf import settings
from django.contrib.auth import logout
from django.http import JsonResponse
from django.shortcuts import redirect, render
from django.utils.html import format_html
from django.utils.http import url_has_allowed_host_and_scheme
from django.views import defaults
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accesscontrol import draining, unavailable
from accesscontrol.accounts import mfa, sudo
from accesscontrol.accounts.adapter import Throttled, wait_message
from accesscontrol.organizations.models import OrganizationMembership
from accesscontrol.rbac.actor import Actor
from accesscontrol.rbac.gate import authenticated, public
from accesscontrol.rbac.resolver import Access
from accesscontrol.sso.services import password_sign_in_refusal
from accesscontrol.workspaces.services import enterable_workspaces


def _safe_next(request):
    target = request.POST.get("next") or request.GET.get("next") or ""
    if url_has_allowed_host_and_scheme(target, {request.get_host()}, request.is_secure()):
        return target
    return ""


class LoginView(allauth_views.LoginView):
    """allauth's sign-in (so its MFA and passkey stages apply) on our page. Throttling and the
    audit are the adapter's and the sign-in signals' (accounts/adapter.py, signin.py)."""

    template_name = "accounts/login.html"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        # allauth echoes any `next` into the page (and refuses it only on redirect): ours
        # carries only a same-host one.
        target = _safe_next(self.request)
        context["redirect_field_value"] = target
        context["redirect_field"] = (
            format_html('<input type="hidden" name="next" value="{}">', target) if target else ""
        )
        return context

    def post(self, request, *args, **kwargs):
        try:
            return super().post(request, *args, **kwargs)
        except Throttled as exc:
            context = self.get_context_data(form=self.get_form_class()(request=request))
            return _too_many_attempts(
                request, exc, self.template_name, context, "failed sign-in attempts"
            )

    def form_invalid(self, form):
        response = super().form_invalid(form)
        response.status_code = 400
        return response


login_view = public(LoginView.as_view())


def _too_many_attempts(request, throttled, template, context, what):
    context = {**context, "error": wait_message(throttled.retry_after, what)}
    response = render(request, template, context, status=429)
    response["Retry-After"] = str(throttled.retry_after)
    return response


class ConfirmPasswordForm(forms.Form):
    password = forms.CharField(
        label="Password", strip=False, widget=forms.PasswordInput(attrs={"autofocus": True})
    )

    def __init__(self, request, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.request = request

    def clean_password(self):
        password = self.cleaned_data["password"]
        # Through the adapter: wrong passwords here count like failed sign-ins (no side door
        # for guessing), and a locked account is refused before the password is looked at.
        if not get_account_adapter(self.request).reauthenticate(self.request.user, password):
            raise forms.ValidationError("That is not your password.")
        return password


class ConfirmCodeForm(ReauthenticateForm):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["code"].label = "Authenticator or recovery code"
        self.fields["code"].widget.attrs.update(inputmode="numeric", autocomplete="one-time-code")


# Shown when a person whose organization requires single sign-on posts a password here anyway.
SSO_NOT_PASSWORD = (
    "Your organization requires single sign-on, so your password cannot confirm it is you: "
    "re-authenticate with your identity provider."
)


@authenticated
@require_http_methods(["GET", "POST"])
@sensitive_post_parameters("password", "code")
def confirm_password(request):
    """Sudo mode: proof that it is them again (password, MFA code or passkey) before an action
    that hands out power. A person without a password (SSO) is never asked for one, nor is one
    whose organization requires single sign-on: the password backend would refuse it
    (sso/backends.py, by the same rule), so it is not offered, and a posted one is not checked
    (nor counted as a wrong password)."""
    user = request.user
    sso_required = user.has_usable_password() and password_sign_in_refusal(user) is not None
    offers_password = user.has_usable_password() and not sso_required
    password_form = ConfirmPasswordForm(request) if offers_password else None
    code_form = ConfirmCodeForm(user=user) if mfa.has_code(user) else None
    if request.method == "POST":
        if "code" in request.POST and code_form is not None:
            code_form = ConfirmCodeForm(request.POST, user=user)
            if code_form.is_valid():
                mfa.reauthenticate_with_code(code_form)
                return redirect(_safe_next(request) or "home")
        elif password_form is not None:
            password_form = ConfirmPasswordForm(request, request.POST)
            try:
                valid = password_form.is_valid()
            except Throttled as exc:
                return _too_many_attempts(
                    request,
                    exc,
                    "accounts/confirm_password.html",
                    _confirm_context(request, ConfirmPasswordForm(request), code_form),
                    "wrong passwords",
                )
            if valid:
                sudo.grant(request)
                return redirect(_safe_next(request) or "home")
        else:
            error = SSO_NOT_PASSWORD if sso_required and "password" in request.POST else None
            return render(
                request,
                "accounts/confirm_password.html",
                _confirm_context(request, password_form, code_form, sso_required, error),
                status=400,
            )
    failed = any(f is not None and f.errors for f in (password_form, code_form))
    return render(
        request,
        "accounts/confirm_password.html",
        _confirm_context(request, password_form, code_form, sso_required),
        status=400 if failed else 200,
    )


def _confirm_context(request, password_form, code_form, sso_required=False, error=None):
    return {
        "form": password_form,
        "code_form": code_form,
        "has_passkey": mfa.has_passkey(request.user),
        "sso_required": sso_required,
        "error": error,
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
