"""What a single sign-on test looks at around a sign-in (tests/sso)."""

from allauth.socialaccount.models import SocialAccount

from accesscontrol.accounts.models import User
from accesscontrol.organizations.models import OrganizationMembership
from accesscontrol.workspaces.models import WorkspaceMembership


def people():
    """Everything a refused sign-in must leave as it was: the users, their memberships of
    organizations and workspaces, and the identity-provider accounts linked to them."""
    return (
        sorted(User.objects.values_list("email", flat=True)),
        sorted(OrganizationMembership.objects.values_list("user__email", "organization__slug")),
        sorted(WorkspaceMembership.objects.values_list("org_membership__user__email", "role")),
        sorted(SocialAccount.objects.values_list("provider", "uid")),
    )
