from django.core.paginator import Paginator
from django.db.models import Count, Q
from django.shortcuts import render
from django.views.decorators.http import require_GET

from accesscontrol.rbac.context_processors import switcher_workspaces
from accesscontrol.rbac.gate import requires

PAGE_SIZE = 50


@requires("organization:read")
@require_GET
def org_overview(request, org_slug):
    org = request.organization
    counts = org.memberships.aggregate(
        members=Count("id"), admins=Count("id", filter=Q(org_role="admin"))
    )
    return render(
        request,
        "organizations/overview.html",
        {
            "counts": counts,
            "workspace_count": org.workspaces.filter(archived=False).count(),
            "workspaces": switcher_workspaces(request.user, org, request.access),
        },
    )


@requires("organization:read")
@require_GET
def org_members(request, org_slug):
    query = request.GET.get("q", "").strip()
    memberships = (
        request.organization.memberships.select_related("user")
        .annotate(workspace_count=Count("workspace_memberships"))
        .order_by("user__email")
    )
    if query:
        memberships = memberships.filter(
            Q(user__email__icontains=query) | Q(user__full_name__icontains=query)
        )
    page = Paginator(memberships, PAGE_SIZE).get_page(request.GET.get("page"))
    template = "organizations/members.html"
    if request.htmx:
        template += "#member-rows"
    return render(request, template, {"page": page, "q": query})
