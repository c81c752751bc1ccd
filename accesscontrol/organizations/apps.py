from django.apps import AppConfig


def organizations_of_membership(org_membership_id):
    from accesscontrol.organizations.models import OrganizationMembership

    return OrganizationMembership.objects.filter(pk=org_membership_id).values_list(
        "organization_id", flat=True
    )


class OrganizationsConfig(AppConfig):
    name = "accesscontrol.organizations"

    def ready(self):
        from accesscontrol.organizations.models import Organization, OrganizationMembership
        from accesscontrol.rbac import versions

        # The plan and the token policy are access; so is every membership.
        versions.track(Organization, lambda org: [org.pk])
        versions.track(OrganizationMembership, lambda m: [m.organization_id])
