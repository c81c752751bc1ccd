from django.apps import AppConfig


class WorkspacesConfig(AppConfig):
    name = "accesscontrol.workspaces"

    def ready(self):
        from accesscontrol.organizations.apps import organizations_of_membership
        from accesscontrol.rbac import versions
        from accesscontrol.workspaces.models import Workspace, WorkspaceMembership

        versions.track(Workspace, lambda ws: [ws.organization_id])
        versions.track(
            WorkspaceMembership, lambda m: organizations_of_membership(m.org_membership_id)
        )
