"""The break-glass admin of an organization that requires single sign-on signs in with a
password and a second factor (#15): without one, they are walked through enrolment first."""

from django.urls import reverse

from accesscontrol.accounts import mfa
from accesscontrol.sso import services
from tests.factories import PASSWORD


def _require_sso(world, acme_oidc, required=True):
    services.save_sso(
        actor=world.org_admin,
        organization=world.org,
        protocol="oidc",
        oidc_issuer=acme_oidc.oidc_issuer,
        oidc_client_id="accesscontrol-acme",
        jit_provisioning=True,
        require_sso=required,
        break_glass_user=world.org_admin,
    )


def test_the_break_glass_admin_must_enrol_before_anything_else(client, world, acme_oidc):
    _require_sso(world, acme_oidc)
    assert mfa.must_enrol(world.org_admin)
    assert not mfa.must_enrol(world.editor)  # members sign in through SSO; not required here
    signed_in = client.post("/login/", {"login": world.org_admin.email, "password": PASSWORD})
    assert signed_in.status_code == 302
    page = client.get(reverse("org-members", args=[world.org.slug]))
    assert page.status_code == 302
    assert page["Location"] == reverse(mfa.ENROL_URL)


def test_without_require_sso_the_break_glass_admin_needs_no_second_factor(client, world, acme_oidc):
    _require_sso(world, acme_oidc, required=False)
    assert not mfa.must_enrol(world.org_admin)
