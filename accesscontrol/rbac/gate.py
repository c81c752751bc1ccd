"""The gate every request passes (ARCHITECTURE §6).

Views declare what they need with @requires(...), @authenticated or @public. The middleware
reads the declaration in process_view and refuses anything undeclared; the system check in
checks.py fails `manage.py check` for any URL pattern that reaches an undeclared view.
"""

import logging
from dataclasses import dataclass

from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import ImproperlyConfigured
from django.http import Http404
from django.shortcuts import render

from accesscontrol.organizations.models import Organization
from accesscontrol.rbac.permissions import ALL_PERMISSIONS
from accesscontrol.rbac.resolver import NO_ACCESS, REASONS, resolve_access
from accesscontrol.workspaces.models import Workspace

logger = logging.getLogger(__name__)

PUBLIC, AUTHENTICATED, PERMISSION = "public", "authenticated", "permission"


@dataclass(frozen=True)
class AccessRule:
    kind: str
    codes: tuple[str, ...] = ()


def _declare(view, rule: AccessRule):
    view.access_rule = rule
    return view


def requires(*codes: str):
    """The view needs every one of these permission codes in the request's context."""
    if not codes:
        raise ImproperlyConfigured("@requires needs at least one permission code")
    unknown = set(codes) - ALL_PERMISSIONS
    if unknown:
        raise ImproperlyConfigured(f"@requires names unknown permission codes: {sorted(unknown)}")
    return lambda view: _declare(view, AccessRule(PERMISSION, tuple(codes)))


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


class PermissionGateMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_view(self, request, view_func, view_args, view_kwargs):
        request.organization = None
        request.workspace = None
        request.access = NO_ACCESS
        rule = rule_of(view_func)
        if rule is None:
            logger.error("refused: view %s declares no access rule", view_name(view_func))
            return render(request, "rbac/denied.html", {"undeclared": True}, status=403)
        if rule.kind == PUBLIC:
            return None
        if not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path())
        self.resolve_context(request, view_kwargs)
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
        access = resolve_access(request.user, organization.pk, workspace)
        if not access.is_org_member:
            # Another tenant's organization looks exactly like one that does not exist.
            raise Http404("No such organization")
        request.organization, request.workspace, request.access = organization, workspace, access


def deny(request, missing):
    access = request.access
    reason = REASONS.get(access.reason, "").format(plan=getattr(request.organization, "plan", ""))
    return render(
        request,
        "rbac/denied.html",
        {"required": missing, "role": access.role, "org_role": access.org_role, "reason": reason},
        status=403,
    )
