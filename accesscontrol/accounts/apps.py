from django.apps import AppConfig


def _deactivation(user, created=False, update_fields=None, **kwargs):
    """Only deactivation matters for access (a sign-in saves last_login on every login)."""
    return not created and (update_fields is None or "is_active" in update_fields)


def _organizations_of_user(user):
    from accesscontrol.organizations.models import OrganizationMembership

    return OrganizationMembership.objects.filter(user_id=user.pk).values_list(
        "organization_id", flat=True
    )


class AccountsConfig(AppConfig):
    name = "accesscontrol.accounts"

    def ready(self):
        from django.contrib.auth import get_user_model

        from accesscontrol.accounts import (  # noqa: F401  (signal receivers)
            mfa,  # audits adding and removing a second factor
            sessions,  # remembers each signed-in session, to end them all (SCIM deprovisioning)
            signin,  # audits and throttles every sign-in path
            sudo,  # grants sudo mode at sign-in and re-authentication
        )
        from accesscontrol.rbac import versions

        versions.track(get_user_model(), _organizations_of_user, when=_deactivation)
