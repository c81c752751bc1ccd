"""MFA in the browser: TOTP enrolment and sign-in with codes from pyotp, and passkeys through
Chromium's virtual authenticator (CDP WebAuthn). live_server answers on http://localhost, which
Chromium counts as a secure context, so the passkey's relying party is "localhost".

Every page is watched for console errors: a CSP violation from allauth's passkey scripts (they
must load as files, their options as JSON data blocks) fails the test.
"""

import re
import time

import pyotp
import pytest
from allauth.mfa.models import Authenticator
from django.contrib.sessions.backends.db import SessionStore
from django.contrib.sessions.models import Session
from playwright.sync_api import expect

from accesscontrol.audit.models import AuditEvent
from accesscontrol.organizations.models import Organization, RequireMfa
from tests.factories import PASSWORD, build_world

SECURITY = "/accounts/2fa/"


@pytest.fixture
def world(transactional_db):
    return build_world()


@pytest.fixture
def errors(page):
    seen = []
    page.on("console", lambda m: seen.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: seen.append(str(e)))
    return seen


@pytest.fixture
def authenticator(page):
    """A virtual passkey authenticator (resident keys, user verification) for this page."""
    cdp = page.context.new_cdp_session(page)
    cdp.send("WebAuthn.enable")
    added = cdp.send(
        "WebAuthn.addVirtualAuthenticator",
        {
            "options": {
                "protocol": "ctap2",
                "transport": "internal",
                "hasResidentKey": True,
                "hasUserVerification": True,
                "isUserVerified": True,
            }
        },
    )
    return cdp, added["authenticatorId"]


def base(live_server):
    url = live_server.url
    assert url.startswith("http://localhost:"), url  # the passkey's RP id must be localhost
    return url


def password_step(page, live_server, email):
    page.goto(f"{base(live_server)}/login/")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in", exact=True).click()
    page.wait_for_load_state()


def sign_out(page):
    page.locator(".user-menu summary").click()
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_load_state()


def enrol_totp(page, live_server) -> str:
    page.goto(f"{base(live_server)}{SECURITY}")
    page.get_by_role("link", name="Set up an authenticator app").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Authenticator")
    secret = page.locator("#authenticator_secret").input_value()
    page.get_by_label("Authenticator code").fill(pyotp.TOTP(secret).now())
    page.get_by_role("button", name="Activate").click()
    page.wait_for_load_state()
    return secret


def test_totp_enrolment_and_sign_in(page, live_server, world, errors):
    password_step(page, live_server, world.editor.email)
    secret = enrol_totp(page, live_server)
    assert Authenticator.objects.filter(user=world.editor, type="totp").exists()

    page.goto(f"{base(live_server)}{SECURITY}")
    expect(page.locator("#mfa-totp")).to_contain_text("An authenticator app is set up.")
    sign_out(page)
    page.wait_for_load_state()

    password_step(page, live_server, world.editor.email)
    expect(page.get_by_label("Code")).to_be_visible()  # the MFA stage, not signed in yet
    page.get_by_label("Code").fill(pyotp.TOTP(secret).now())
    page.get_by_role("button", name="Sign In").first.click()
    page.wait_for_load_state()
    assert "/o/acme/w/production/" in page.url
    assert errors == []


def test_a_required_enrolment_walks_the_member_to_the_security_page(
    page, live_server, world, errors
):
    Organization.objects.filter(pk=world.org.pk).update(require_mfa=RequireMfa.EVERYONE)
    password_step(page, live_server, world.editor.email)
    assert page.url.endswith(SECURITY)
    expect(page.get_by_role("alert")).to_contain_text("requires two-factor sign-in")

    page.goto(f"{base(live_server)}/o/acme/members/")
    assert page.url.endswith(SECURITY)

    enrol_totp(page, live_server)
    page.goto(f"{base(live_server)}/o/acme/members/")
    expect(page.get_by_role("heading", level=1, name="Organization members")).to_be_visible()
    assert errors == []


def test_passkey_enrolment_and_sign_in(page, live_server, world, authenticator, errors):
    cdp, authenticator_id = authenticator
    password_step(page, live_server, world.editor.email)

    page.goto(f"{base(live_server)}{SECURITY}")
    page.get_by_role("link", name="Add a passkey").click()
    page.get_by_label("Name").fill("laptop")
    page.get_by_label("Passwordless").check()  # a discoverable credential: sign in with it alone
    page.get_by_role("button", name="Add").click()
    # The first factor comes with recovery codes, shown at once.
    expect(page.get_by_role("heading", level=1, name="Recovery Codes")).to_be_visible()
    page.goto(f"{base(live_server)}{SECURITY}")
    expect(page.locator("#mfa-passkeys")).to_contain_text("laptop")
    assert Authenticator.objects.filter(user=world.editor, type="webauthn").count() == 1
    credentials = cdp.send("WebAuthn.getCredentials", {"authenticatorId": authenticator_id})
    assert len(credentials["credentials"]) == 1

    sign_out(page)
    page.wait_for_load_state()

    # Sign in with the passkey alone: no email, no password.
    page.goto(f"{base(live_server)}/login/")
    page.get_by_role("button", name="Use a passkey").click()
    page.wait_for_url(re.compile(r"/o/acme/w/production/"))
    expect(page.locator(".user-menu summary")).to_contain_text(world.editor.display_name)
    # audited like any sign-in: the password one, then the passkey one
    signed_in = AuditEvent.objects.filter(action="login.succeeded", actor_label=world.editor.email)
    assert signed_in.count() == 2
    assert errors == []


def sessions_of(user):
    for row in Session.objects.all():
        store = SessionStore(session_key=row.session_key)
        if store.get("_auth_user_id") == str(user.pk):
            yield store


def test_sudo_with_a_passkey(page, live_server, world, authenticator, errors):
    password_step(page, live_server, world.org_admin.email)
    page.goto(f"{base(live_server)}/accounts/2fa/webauthn/add/")
    page.get_by_label("Name").fill("laptop")
    page.get_by_role("button", name="Add").click()
    expect(page.get_by_role("heading", level=1, name="Recovery Codes")).to_be_visible()
    for store in sessions_of(world.org_admin):  # signed in longer ago than the sudo window
        store["sudo_until"] = 0
        store.save()

    page.goto(f"{base(live_server)}/account/confirm/?next=/o/acme/members/")
    expect(page.get_by_role("heading", level=1, name="Confirm it is you")).to_be_visible()
    page.get_by_role("link", name="Confirm with a passkey").click()
    page.get_by_role("button", name="Use a security key").click()

    page.wait_for_url(f"{base(live_server)}/o/acme/members/")
    assert max(s.get("sudo_until", 0) for s in sessions_of(world.org_admin)) > time.time()
    assert errors == []
