"""An organization that requires MFA holds people who come in through its single sign-on to it
like everyone else: without a second factor here, enrolment first (accounts/mfa.py), whether
they were a member already or were just provisioned on the way in."""

from django.urls import reverse

from accesscontrol.accounts import mfa
from accesscontrol.organizations.models import RequireMfa
from tests.accounts.test_mfa import require
from tests.sso.conftest import DOMAIN, oidc_sign_in

OVERVIEW = reverse("org-overview", args=["acme"])
ENROL = reverse(mfa.ENROL_URL)


def test_a_member_signing_in_through_sso_is_walked_through_enrolment(client, world, acme_oidc):
    require(world.org, RequireMfa.EVERYONE)
    assert oidc_sign_in(client, world.editor.email).status_code == 302
    response = client.get(OVERVIEW)
    assert (response.status_code, response["Location"]) == (302, ENROL)


def test_a_person_provisioned_just_in_time_is_walked_through_enrolment(client, world, acme_oidc):
    require(world.org, RequireMfa.EVERYONE)
    assert oidc_sign_in(client, f"newcomer@{DOMAIN}").status_code == 302
    response = client.get(OVERVIEW)
    assert (response.status_code, response["Location"]) == (302, ENROL)
