"""Sudo mode for a member whose organization requires single sign-on but who still has a
password (made before SSO was required): the password backend refuses it (sso/backends.py), so
the confirm page does not offer it; they re-authenticate with their identity provider or a
second factor. The break-glass admin keeps their password."""

import time

import pyotp

from accesscontrol.accounts import sudo
from accesscontrol.accounts.views import SSO_NOT_PASSWORD
from accesscontrol.audit.models import AuditEvent
from tests.accounts.test_mfa import with_totp
from tests.factories import PASSWORD, require_sso
from tests.sso.conftest import oidc_sign_in

SUDO_URL = "/account/confirm/"
WRONG_PASSWORD = "That is not your password."


def stale(client):
    session = client.session
    session[sudo.SESSION_KEY] = 0
    session.save()


def sudo_on(client) -> bool:
    return client.session.get(sudo.SESSION_KEY, 0) > time.time()


def signed_in_through_sso(client, world, acme_oidc):
    """The editor (who has a password) signs in through Acme's provider once SSO is required."""
    require_sso(world, acme_oidc)
    assert world.editor.has_usable_password()
    assert oidc_sign_in(client, world.editor.email).status_code == 302
    stale(client)


def test_a_member_who_must_use_sso_is_offered_their_provider_not_their_password(
    client, world, acme_oidc
):
    signed_in_through_sso(client, world, acme_oidc)

    page = client.get(SUDO_URL, {"next": "/o/acme/"})

    assert page.status_code == 200
    assert page.context["form"] is None
    content = page.content.decode()
    assert 'name="password"' not in content
    assert "Re-authenticate with OpenID Connect (Acme)" in content
    assert "requires single sign-on" in content


def test_a_password_posted_anyway_is_refused_naming_sso_and_not_counted(client, world, acme_oidc):
    signed_in_through_sso(client, world, acme_oidc)

    for password in (PASSWORD, "not it"):
        response = client.post(SUDO_URL, {"password": password, "next": "/o/acme/"})

        assert response.status_code == 400
        content = response.content.decode()
        assert SSO_NOT_PASSWORD in content
        assert WRONG_PASSWORD not in content
        assert response.context["next"] == "/o/acme/"
    assert not sudo_on(client)
    assert not AuditEvent.objects.filter(action="login.failed").exists()


def test_with_a_second_factor_they_confirm_with_its_code(client, world, acme_oidc):
    signed_in_through_sso(client, world, acme_oidc)
    secret = with_totp(world.editor)  # added since (a sign-in would ask for it too)

    content = client.get(SUDO_URL).content.decode()
    assert 'name="password"' not in content and 'name="code"' in content

    response = client.post(SUDO_URL, {"code": pyotp.TOTP(secret).now()})
    assert response.status_code == 302
    assert sudo_on(client)


def test_signed_in_before_sso_was_required_they_are_told_to_sign_in_with_sso(
    client, world, acme_oidc
):
    """No account at the provider yet (their session predates SSO): nothing to re-authenticate
    with here, and still no password."""
    client.force_login(world.editor)
    require_sso(world, acme_oidc)
    stale(client)

    content = client.get(SUDO_URL).content.decode()

    assert 'name="password"' not in content
    assert "Re-authenticate with OpenID Connect" not in content
    assert "sign in again with SSO" in content


def test_the_break_glass_admin_is_still_offered_their_password(client, world, acme_oidc):
    require_sso(world, acme_oidc)
    with_totp(world.org_admin)  # required of the break-glass admin before anything else
    client.force_login(world.org_admin)
    stale(client)

    content = client.get(SUDO_URL).content.decode()
    assert 'name="password"' in content
    assert "requires single sign-on" not in content

    response = client.post(SUDO_URL, {"password": PASSWORD, "next": "/o/acme/"})
    assert response.status_code == 302 and response["Location"] == "/o/acme/"
    assert sudo_on(client)


def test_without_require_sso_the_member_confirms_with_their_password(client, world, acme_oidc):
    require_sso(world, acme_oidc, required=False)
    assert oidc_sign_in(client, world.editor.email).status_code == 302
    stale(client)

    content = client.get(SUDO_URL).content.decode()
    assert 'name="password"' in content
    assert client.post(SUDO_URL, {"password": PASSWORD}).status_code == 302
    assert sudo_on(client)


# allauth's own re-authentication (its MFA and email pages ask for it when sudo has lapsed)
# follows the same rule: no password page for a member who must use SSO, but ours instead.

REAUTHENTICATE_URL = "/accounts/reauthenticate/"


def test_allauths_reauthentication_sends_them_to_the_confirm_page_not_a_password_form(
    client, world, acme_oidc
):
    signed_in_through_sso(client, world, acme_oidc)

    # A page of allauth's that needs a recent sign-in (adding an authenticator app).
    response = client.get("/accounts/2fa/totp/activate/")
    assert response.status_code == 302
    assert response["Location"].startswith(SUDO_URL)

    # Its password page, reached directly, offers no password either.
    direct = client.get(REAUTHENTICATE_URL)
    assert direct.status_code == 302
    assert direct["Location"].startswith(SUDO_URL)
    posted = client.post(REAUTHENTICATE_URL, {"password": PASSWORD})
    assert posted.status_code == 302
    assert posted["Location"].startswith(SUDO_URL)
    assert not sudo_on(client)
    assert not AuditEvent.objects.filter(action="login.failed").exists()


def test_allauths_reauthentication_still_asks_others_for_their_password(client, world):
    client.force_login(world.editor)
    stale(client)

    response = client.get("/accounts/2fa/totp/activate/")

    assert response.status_code == 302
    assert response["Location"].startswith(REAUTHENTICATE_URL)
