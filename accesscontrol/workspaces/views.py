from django.core.paginator import Paginator
from django.db.models import Q
from django.shortcuts import render
from django.views.decorators.http import require_GET

from accesscontrol.rbac.gate import requires
from accesscontrol.rbac.permissions import RESOURCE_LABELS, WORKSPACE_RESOURCES
from accesscontrol.rbac.resolver import REASONS

PAGE_SIZE = 50


def permission_grid(granted):
    """Rows of (resource label, [(action, code, held)]) for drawing a permission table."""
    return [
        (
            RESOURCE_LABELS[resource],
            [
                (action, f"{resource}:{action}", f"{resource}:{action}" in granted)
                for action in actions
            ],
        )
        for resource, actions in WORKSPACE_RESOURCES.items()
    ]


@requires("workspaces:read")
@require_GET
def workspace_home(request, org_slug, workspace_slug):
    access = request.access
    return render(
        request,
        "workspaces/home.html",
        {
            "grid": permission_grid(access.permissions),
            "reason": REASONS.get(access.reason, "").format(plan=request.organization.plan),
        },
    )


@requires("workspaces:read")
@require_GET
def workspace_members(request, org_slug, workspace_slug):
    query = request.GET.get("q", "").strip()
    memberships = request.workspace.memberships.select_related(
        "org_membership__user", "role"
    ).order_by("org_membership__user__email")
    if query:
        memberships = memberships.filter(
            Q(org_membership__user__email__icontains=query)
            | Q(org_membership__user__full_name__icontains=query)
        )
    page = Paginator(memberships, PAGE_SIZE).get_page(request.GET.get("page"))
    org_admins = (
        request.organization.memberships.filter(org_role="admin")
        .select_related("user")
        .order_by("user__email")
    )
    template = "workspaces/members.html"
    if request.htmx:
        template += "#member-rows"
    return render(
        request,
        template,
        {
            "page": page,
            "q": query,
            "org_admins": org_admins,
            "plan_makes_admin": not request.organization.has_workspace_rbac,
        },
    )
