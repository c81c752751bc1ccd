"""In Chromium (Playwright): an admin sets up OpenID Connect in the console, a new person signs
in through the provider's own page and lands in the organization; with "require SSO" on, that
person's password is refused with the sentence that says to use SSO, and the break-glass admin's
is not. The provider is the real oidc-provider-mock on loopback."""

import os
import re

import pytest
import requests
from playwright.sync_api import expect

from accesscontrol.accounts.models import User
from accesscontrol.organizations.models import OrganizationMembership
from accesscontrol.sso import services
from accesscontrol.sso.services import REQUIRE_SSO_MESSAGE
from tests.browser.conftest import CHROMIUM
from tests.sso.saml_idp import served

pytestmark = pytest.mark.skipif(
    not os.path.exists(CHROMIUM) and os.environ.get("REQUIRE_BROWSER") != "1",
    reason=f"no Chromium at {CHROMIUM}",
)

NEWCOMER = "newcomer@acme.test"
DEMO_PASSWORD = "accesscontrol-demo"


def sign_in_with_password(page, live_server, email, password):
    page.goto(f"{live_server.url}/login/")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_load_state()


def test_admin_sets_up_oidc_then_a_newcomer_signs_in_and_require_sso_refuses_passwords(
    demo, login, live_server, browser, oidc_provider
):
    admin = login("admin@acme.test")
    admin.goto(f"{live_server.url}/o/acme/settings/")
    admin.get_by_role("link", name="Authentication settings").click()
    admin.get_by_role("link", name="Set up single sign-on").click()
    admin.get_by_label("Email domain").fill("acme.test")
    admin.get_by_role("button", name="Claim domain").click()
    expect(admin.get_by_text("acme.test claimed.")).to_be_visible()

    admin.get_by_label("Protocol").select_option("oidc")
    admin.get_by_label("OIDC issuer URL").fill(oidc_provider)
    admin.get_by_label("OIDC client id").fill("accesscontrol-acme")
    admin.get_by_label("OIDC client secret").fill("s3cret")
    admin.get_by_label("Just-in-time provisioning", exact=False).check()
    admin.get_by_label("Default role in production").select_option(label="Viewer")
    admin.get_by_role("button", name="Save single sign-on").click()
    expect(admin.get_by_text("Single sign-on saved.")).to_be_visible()
    expect(admin.get_by_text("/accounts/oidc/oidc-acme/login/callback/")).to_be_visible()

    # A new person, in a browser of their own: Sign in with SSO → the provider's page → back.
    newcomer = browser.new_context(base_url=live_server.url).new_page()
    newcomer.goto(f"{live_server.url}/login/")
    newcomer.get_by_role("link", name="Sign in with SSO").click()
    newcomer.get_by_label("Work email").fill(NEWCOMER)
    newcomer.get_by_role("button", name="Continue with SSO").click()
    newcomer.get_by_label("Subject").fill(NEWCOMER)  # the provider's own form
    newcomer.get_by_role("button", name="Authorize", exact=True).click()
    newcomer.wait_for_url("**/o/acme/w/production/**")
    membership = OrganizationMembership.objects.get(user__email=NEWCOMER)
    assert (membership.organization.slug, membership.source) == ("acme", "sso")

    # Later they have a password too (a reset email, say); the admin then requires SSO.
    user = User.objects.get(email=NEWCOMER)
    user.set_password("a-password-of-their-own")
    user.save()
    admin.get_by_label("Require single sign-on", exact=False).check()
    admin.get_by_label("Break-glass admin", exact=False).select_option(label="admin@acme.test")
    admin.get_by_role("button", name="Save single sign-on").click()
    expect(admin.get_by_text("Single sign-on saved.")).to_be_visible()

    refused = browser.new_context(base_url=live_server.url).new_page()
    sign_in_with_password(refused, live_server, NEWCOMER, "a-password-of-their-own")
    expect(refused.get_by_text(REQUIRE_SSO_MESSAGE)).to_be_visible()
    expect(refused).to_have_url(re.compile(r"/login/$"))

    # The break-glass admin still signs in with a password.
    glass = browser.new_context(base_url=live_server.url).new_page()
    sign_in_with_password(glass, live_server, "admin@acme.test", DEMO_PASSWORD)
    expect(glass).not_to_have_url(re.compile(r"/login/"))


def test_a_saml_response_posted_cross_site_to_the_acs_signs_the_person_in(demo, live_server, page):
    """SameSite=Lax keeps the session cookie off the IdP's cross-site POST; allauth's ACS keeps
    the response and sends the browser on (a top-level GET, which carries it) to finish."""
    admin = User.objects.get(email="admin@acme.test")
    org = admin.org_memberships.get().organization
    services.claim_domain(actor=admin, organization=org, domain="acme.test")
    with served("saml-person@acme.test") as idp:
        services.save_sso(
            actor=admin,
            organization=org,
            protocol="saml",
            saml_metadata_xml=idp.metadata,
            jit_provisioning=True,
        )
        idp.trust(requests.get(f"{live_server.url}/accounts/saml/acme/metadata/", timeout=10).text)

        page.goto(f"{live_server.url}/login/sso/")
        page.get_by_label("Work email").fill("saml-person@acme.test")
        page.get_by_role("button", name="Continue with SSO").click()
        page.get_by_role("button", name="Continue as saml-person@acme.test").click()
        page.wait_for_url("**/o/acme/**")

    membership = OrganizationMembership.objects.get(user__email="saml-person@acme.test")
    assert (membership.organization, membership.source) == (org, "sso")
