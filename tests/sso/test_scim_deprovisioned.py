"""Someone the organization's SCIM client deactivated is out until SCIM reactivates them: single
sign-on's just-in-time provisioning does not bring them back as a newcomer."""

from accesscontrol.organizations.models import OrganizationMembership
from accesscontrol.rbac.actor import Actor
from accesscontrol.scim import protocol, services
from accesscontrol.scim.models import ScimToken
from tests.sso.conftest import DOMAIN, oidc_sign_in


def test_a_person_scim_deactivated_is_not_provisioned_again_by_sso(client, world, acme_oidc):
    services.issue_token(actor=world.org_admin, organization=world.org)
    scim = Actor.for_scim_token(ScimToken.objects.get(organization=world.org))
    email = f"grace@{DOMAIN}"
    grace = services.provision_user(actor=scim, state=protocol.user_state({"userName": email}))
    inactive = protocol.user_state({"userName": email, "active": False})
    services.update_user(actor=scim, scim_user=grace, state=inactive)
    assert not OrganizationMembership.objects.filter(user=grace.user).exists()

    oidc_sign_in(client, email)

    assert not OrganizationMembership.objects.filter(user=grace.user).exists()
