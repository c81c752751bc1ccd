"""A member's page says how they sign in (#15, Console): a password, the organization's single
sign-on once they have come through it, and whether they have a second factor."""

from django.urls import reverse

from accesscontrol.organizations.models import OrganizationMembership
from tests.sso.conftest import DOMAIN, oidc_sign_in


def _member_page(client, world, user):
    membership = OrganizationMembership.objects.get(organization=world.org, user=user)
    client.force_login(world.org_admin)
    page = client.get(reverse("member-access", args=[world.org.slug, membership.pk]))
    assert page.status_code == 200
    return page.content.decode()


def test_a_person_provisioned_through_sso_signs_in_with_it_and_has_no_password(
    client, world, acme_oidc
):
    newcomer = f"ada@{DOMAIN}"
    assert oidc_sign_in(client, newcomer).status_code == 302
    client.logout()
    user = OrganizationMembership.objects.get(organization=world.org, user__email=newcomer).user
    page = _member_page(client, world, user)
    assert "Single sign-on: OpenID Connect" in page
    assert "Password" not in page.split('id="member-sign-in">')[1].split("<")[0]


def test_a_password_member_signs_in_with_a_password_only(client, world, acme_oidc):
    page = _member_page(client, world, world.editor)
    assert 'id="member-sign-in">Password<' in page
