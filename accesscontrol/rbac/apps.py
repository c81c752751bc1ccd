from django.apps import AppConfig


class RbacConfig(AppConfig):
    name = "accesscontrol.rbac"

    def ready(self):
        from accesscontrol.rbac import (
            checks,  # noqa: F401  (registers the gate's system check)
            versions,
        )
        from accesscontrol.rbac.models import Role

        versions.track(Role, lambda role: [role.organization_id])
