"""The gate every request passes (ARCHITECTURE §6).

Views declare what they need with @requires(...), @authenticated or @public. The middleware
reads the declaration in process_view and refuses anything undeclared; the system check in
checks.py fails `manage.py check` for any URL pattern that reaches an undeclared view.
"""

import functools
import logging
from dataclasses import dataclass

from django.conf import settings
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import ImproperlyConfigured
from django.http import Http404, HttpResponse
from django.shortcuts import render, resolve_url
from django.urls import reverse
from django.utils.http import urlencode

from accesscontrol.organizations.models import Organization
from accesscontrol.rbac.actor import Actor, explain_refusal
from accesscontrol.rbac.permissions import ALL_PERMISSIONS, WORKSPACE_PERMISSIONS
from accesscontrol.rbac.permissions import org_role as org_role_spec
from accesscontrol.rbac.resolver import NO_ACCESS, REASONS, console_access
from accesscontrol.workspaces.models import Workspace

logger = logging.getLogger(__name__)

PUBLIC, AUTHENTICATED, PERMISSION = "public", "authenticated", "permission"
API = "api"  # a REST API route: each of its operations declares its own rule (see enforce)


@dataclass(frozen=True)
class AccessRule:
    kind: str
    codes: tuple[str, ...] = ()
    workspace_param: str | None = None


def _declare(view, rule: AccessRule):
    view.access_rule = rule
    return view


def requires(*codes: str, workspace_param: str | None = None):
    """The view needs every one of these permission codes in the request's context.

    API operations that address a workspace by path (`/workspaces/{workspace_id}`) name that
    parameter in `workspace_param`; the codes are then checked in that workspace.
    """
    if not codes:
        raise ImproperlyConfigured("@requires needs at least one permission code")
    unknown = set(codes) - ALL_PERMISSIONS
    if unknown:
        raise ImproperlyConfigured(f"@requires names unknown permission codes: {sorted(unknown)}")
    rule = AccessRule(PERMISSION, tuple(codes), workspace_param)
    return lambda view: _declare(view, rule)


def authenticated(view):
    """Any signed-in user; for pages about the user themself, never about a tenant's data."""
    return _declare(view, AccessRule(AUTHENTICATED))


def public(view):
    """No sign-in needed: login, health, invitation landing pages."""
    return _declare(view, AccessRule(PUBLIC))


def rule_of(view) -> AccessRule | None:
    return getattr(view, "access_rule", None)


def view_name(view) -> str:
    return f"{getattr(view, '__module__', '?')}.{getattr(view, '__qualname__', repr(view))}"


# The workspace a console user was last in ("<org slug>/<workspace slug>"), so organization
# pages keep showing it in the switcher. Only a display hint: access is always resolved anew.
LAST_WORKSPACE_COOKIE = "ac_workspace"


def remember_workspace(request, response) -> None:
    workspace = getattr(request, "workspace", None)
    if workspace is None:
        return
    value = f"{workspace.organization.slug}/{workspace.slug}"
    if request.COOKIES.get(LAST_WORKSPACE_COOKIE) != value:
        response.set_cookie(
            LAST_WORKSPACE_COOKIE,
            value,
            max_age=60 * 60 * 24 * 365,
            secure=settings.SESSION_COOKIE_SECURE,
            httponly=True,
            samesite="Lax",
        )


class PermissionGateMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        remember_workspace(request, response)
        return response

    def process_view(self, request, view_func, view_args, view_kwargs):
        request.organization = None
        request.workspace = None
        request.access = NO_ACCESS
        request.actor = None  # API operations: set once the key is known (api/auth.py)
        rule = rule_of(view_func)
        if rule is None:
            logger.error("refused: view %s declares no access rule", view_name(view_func))
            return render(request, "rbac/denied.html", {"undeclared": True}, status=403)
        if rule.kind in (PUBLIC, API):
            return None  # API operations are authenticated by key and checked by enforce()
        if not request.user.is_authenticated:
            if request.htmx:
                return signed_out(request)
            return redirect_to_login(request.get_full_path())
        self.resolve_context(request, view_kwargs)
        request.actor = Actor.for_user(
            request.user, request.organization, request.workspace, request.access
        )
        if rule.kind == PERMISSION:
            missing = request.access.missing(rule.codes)
            if missing:
                return deny(request, missing)
        return None

    @staticmethod
    def resolve_context(request, kwargs):
        org_slug, workspace_slug = kwargs.get("org_slug"), kwargs.get("workspace_slug")
        if org_slug is None:
            return
        if workspace_slug is not None:
            workspace = (
                Workspace.objects.select_related("organization")
                .filter(organization__slug=org_slug, slug=workspace_slug)
                .first()
            )
            if workspace is None:
                raise Http404("No such workspace")
            organization = workspace.organization
        else:
            workspace = None
            organization = Organization.objects.filter(slug=org_slug).first()
            if organization is None:
                raise Http404("No such organization")
        access = console_access(request.user, organization.pk, workspace)
        if not access.is_org_member:
            # Another tenant's organization looks exactly like one that does not exist.
            raise Http404("No such organization")
        request.organization, request.workspace, request.access = organization, workspace, access


def signed_out(request):
    """An htmx request without a session (it expired, or the user signed out elsewhere): a
    401 the page's script reports ("your session expired; nothing was changed") after putting
    the control back, instead of a redirect whose login page htmx would swap into a row."""
    response = HttpResponse("Your session has expired: sign in again.", status=401)
    response["X-Login-Url"] = resolve_url(settings.LOGIN_URL)
    return response


def deny(request, missing):
    access = request.access
    reason = REASONS.get(access.reason, "").format(plan=getattr(request.organization, "plan", ""))
    context = {"required": missing, "role": access.role, "org_role": access.org_role}
    context |= {"reason": reason, **next_step(request, missing[0])}
    response = render(request, "rbac/denied.html", context, status=403)
    response["X-Required-Permission"] = ", ".join(missing)  # htmx requests toast this
    if context.get("request_url"):
        response["X-Request-Access-Url"] = context["request_url"]  # ... with this link
    return response


def next_step(request, code) -> dict:
    """What a refused person can do: whom to ask (people who can grant `code` here) and the
    "Request access" form's inputs."""
    from accesscontrol.access_requests import services as access_requests
    from accesscontrol.rbac.services import roles_assignable_in

    organization, workspace = request.organization, request.workspace
    if organization is None:
        return {}
    spec = org_role_spec(request.access.org_role)
    here = workspace if code in WORKSPACE_PERMISSIONS else None
    query = urlencode({"workspace": here.slug if here else "", "permission": code})
    return {
        "permission": code,
        "org_role_label": spec.label if spec else None,
        "ask": access_requests.admins_to_ask(organization, here, code),
        "workspace_slug": here.slug if here else "",
        "role_choices": roles_assignable_in(organization).order_by("organization_id", "name")
        if here
        else (),
        "suggested_role": access_requests.suggested_role(organization, code) if here else None,
        "request_url": f"{reverse('access-request-new', args=[organization.slug])}?{query}",
    }


# The REST API's side of the gate. API requests never use the session: the principal is the
# key that ninja's auth resolved (request.auth), and the rule is the operation's declaration.


class ApiError(Exception):
    """Raised by an API handler to answer a coded JSON error: {"error", "detail", **extra}."""

    def __init__(self, status: int, error: str, detail: str, **extra):
        super().__init__(detail)
        self.status, self.error, self.detail, self.extra = status, error, detail, extra

    def body(self) -> dict:
        return {"error": self.error, "detail": self.detail, **self.extra}


def enforce(view_func):
    """Wrap an API operation so its declared rule is checked before it runs; undeclared = 403."""
    rule = rule_of(view_func)

    @functools.wraps(view_func)
    def gated(request, *args, **kwargs):
        if rule is None:
            logger.error("refused: API operation %s declares no access rule", view_name(view_func))
            raise ApiError(403, "undeclared_operation", "This operation declares no permission.")
        if rule.kind == PERMISSION:
            _check_api_permission(request, rule, kwargs)
        return view_func(request, *args, **kwargs)

    return gated


def check_before_input(request, principal) -> None:
    """The operation's rule, checked as soon as the key is known: before ninja reads the body.

    The rules of the operations behind each URL pattern are put on its view by
    accesscontrol.api.urls.gated_urls, from the API registry. Rules that name a workspace in the
    path are left to enforce(), which looks it up once.
    """
    match = getattr(request, "resolver_match", None)
    rules = getattr(getattr(match, "func", None), "operation_rules", None) or {}
    rule = rules.get(request.method)
    if rule is None or rule.kind != PERMISSION or rule.workspace_param is not None:
        return
    request.auth = principal
    _check_api_permission(request, rule, {})


def _check_api_permission(request, rule, kwargs) -> None:
    principal = request.auth
    access, workspace = principal.access, principal.workspace
    if rule.workspace_param is not None:
        workspace = (
            Workspace.objects.select_related("organization")
            .filter(pk=kwargs[rule.workspace_param], organization_id=principal.organization.pk)
            .first()
        )
        if workspace is None:
            raise ApiError(404, "not_found", "No such workspace.")
        access = principal.access_in(workspace)
        if not access.permissions & WORKSPACE_PERMISSIONS:
            # A workspace this principal cannot act in at all looks like one that is not there.
            raise ApiError(404, "not_found", "No such workspace.")
        request.target_workspace = workspace
    require_api_permission(principal, access, workspace, rule.codes)


def require_api_permission(principal, access, workspace, codes) -> None:
    """Raise the 403 for the first of `codes` the principal lacks there.

    For operations whose need depends on the input (archiving by PATCH needs more than renaming).
    """
    missing = access.missing(codes)
    if not missing:
        return
    if workspace is None and any(code in WORKSPACE_PERMISSIONS for code in missing):
        # The code the langsmith SDK recognises (it then tells its user to set workspace_id);
        # `alias` keeps the code this server answered before, for clients that match on it.
        raise ApiError(
            403,
            "org_scoped_key_requires_workspace",
            f"{principal.label} acts in no workspace here: send the workspace id in the "
            "X-Tenant-Id header.",
            alias="workspace_required",
            required=missing[0],
            principal=principal.label,
            role=access.role,
        )
    error, message, fields = explain_refusal(principal.label, missing[0], access, workspace)
    raise ApiError(403, error, message, **fields)
