from django.utils.functional import SimpleLazyObject

from accesscontrol.organizations.models import OrganizationMembership
from accesscontrol.rbac.actor import Actor
from accesscontrol.rbac.gate import LAST_WORKSPACE_COOKIE
from accesscontrol.rbac.resolver import NO_ACCESS
from accesscontrol.workspaces.services import enterable_workspaces


def access(request):
    """The current org/workspace and what the user may do there, for every template."""
    user = getattr(request, "user", None)
    organization = getattr(request, "organization", None)
    current = getattr(request, "access", NO_ACCESS)
    if user is None or not user.is_authenticated:
        return {"access": current}

    def memberships():
        from accesscontrol.access_requests.services import pending_in_organizations

        return list(
            OrganizationMembership.objects.filter(user=user)
            .select_related("organization")
            .annotate(pending_requests=pending_in_organizations())
            .order_by("organization__name")
        )

    my_memberships = SimpleLazyObject(memberships)

    def workspaces():
        if organization is None:
            return []
        actor = getattr(request, "actor", None) or Actor.for_user(
            user, organization, access=current
        )
        return enterable_workspaces(actor)

    my_workspaces = SimpleLazyObject(workspaces)
    workspace = getattr(request, "workspace", None)

    def remembered():
        """On an organization's own pages, the workspace the user was last in (if they may
        still enter it), so the switcher keeps the context."""
        if organization is None or workspace is not None:
            return None
        org_slug, _, slug = request.COOKIES.get(LAST_WORKSPACE_COOKIE, "").partition("/")
        if org_slug != organization.slug:
            return None
        return next((ws for ws in my_workspaces if ws.slug == slug), None)

    def pending_requests():
        actor = getattr(request, "actor", None)
        if organization is None or actor is None:
            return 0
        from accesscontrol.access_requests.services import pending_count

        here = [m for m in my_memberships if m.organization_id == organization.pk]
        return pending_count(actor, waiting=here[0].pending_requests if here else None)

    return {
        "pending_requests": SimpleLazyObject(pending_requests),
        "access": current,
        "perms_here": current.permissions,
        "current_org": organization,
        "current_workspace": workspace,
        "context_workspace": workspace or SimpleLazyObject(remembered),
        "my_org_memberships": my_memberships,
        "my_workspaces": my_workspaces,
    }
