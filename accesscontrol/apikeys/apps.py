from django.apps import AppConfig


class ApikeysConfig(AppConfig):
    name = "accesscontrol.apikeys"

    def ready(self):
        from accesscontrol.apikeys.models import PersonalAccessToken, ServiceKey
        from accesscontrol.organizations.apps import organizations_of_membership
        from accesscontrol.rbac import versions

        versions.track(
            PersonalAccessToken, lambda t: organizations_of_membership(t.org_membership_id)
        )
        versions.track(ServiceKey, lambda key: [key.organization_id])
