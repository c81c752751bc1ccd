from django.utils.functional import SimpleLazyObject

from accesscontrol.organizations.models import OrganizationMembership
from accesscontrol.rbac.permissions import org_role
from accesscontrol.rbac.resolver import NO_ACCESS
from accesscontrol.workspaces.models import Workspace


def switcher_workspaces(user, organization, access):
    """Workspaces of the organization this user can enter: all of them for org admins."""
    workspaces = Workspace.objects.filter(organization=organization, archived=False)
    spec = org_role(access.org_role)
    if spec is None or not spec.admin_everywhere:
        workspaces = workspaces.filter(memberships__org_membership__user=user)
    return list(workspaces.order_by("name"))


def access(request):
    """The current org/workspace and what the user may do there, for every template."""
    user = getattr(request, "user", None)
    organization = getattr(request, "organization", None)
    current = getattr(request, "access", NO_ACCESS)
    if user is None or not user.is_authenticated:
        return {"access": current}

    def memberships():
        return list(
            OrganizationMembership.objects.filter(user=user)
            .select_related("organization")
            .order_by("organization__name")
        )

    def workspaces():
        if organization is None:
            return []
        return switcher_workspaces(user, organization, current)

    return {
        "access": current,
        "perms_here": current.permissions,
        "current_org": organization,
        "current_workspace": getattr(request, "workspace", None),
        "my_org_memberships": SimpleLazyObject(memberships),
        "my_workspaces": SimpleLazyObject(workspaces),
    }
