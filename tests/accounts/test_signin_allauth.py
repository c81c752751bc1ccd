"""Sign-in goes through django-allauth (accounts/views.py LoginView, accounts/adapter.py): its
stages apply, and the throttle and the audit hang on the adapter and the sign-in signals
(accounts/signin.py), so every path (password, MFA stage, invitation) is counted and logged alike.
"""

import pyotp
import pytest
from allauth.account.views import LoginView as AllauthLoginView
from allauth.mfa.totp.internal.auth import TOTP, generate_totp_secret
from django.contrib.auth import SESSION_KEY
from django.urls import resolve, reverse

from accesscontrol.accounts.models import User
from accesscontrol.audit.models import AuditEvent
from accesscontrol.organizations.models import Invitation
from accesscontrol.organizations.services import invite_member
from tests.factories import PASSWORD
from tests.support.throttling import IP_B, limits, login_blocked, sign_in


def logins(action):
    return AuditEvent.objects.filter(action=action)


def test_the_sign_in_page_is_allauths_login_view_on_our_template(client, db):
    view = resolve("/login/").func
    assert issubclass(view.view_class, AllauthLoginView)

    response = client.get("/login/")

    assert response.status_code == 200
    assert response.templates[0].name == "accounts/login.html"
    body = response.content.decode()
    assert 'name="login"' in body and 'type="email"' in body
    assert 'name="password"' in body
    assert ">Sign in</button>" in body
    assert 'id="passkey_login"' in body  # "Use a passkey": allauth's passkey sign-in
    assert 'action="/accounts/2fa/webauthn/login/"' in body


def test_allauths_own_login_url_uses_the_same_form(client, db):
    response = client.get(reverse("account_login"))
    assert response.status_code == 200
    assert 'name="login"' in response.content.decode()
    assert any(t.name == "accounts/login.html" for t in response.templates)


def test_right_password_signs_in_audits_and_records_how(client, world):
    response = client.post("/login/", {"login": world.editor.email, "password": PASSWORD})

    assert response.status_code == 302
    assert client.session[SESSION_KEY] == str(world.editor.pk)
    event = logins("login.succeeded").get()
    assert (event.actor_label, event.organization) == (world.editor.email, world.org)
    # allauth's record of how this session authenticated (what re-authentication reads)
    assert [r["method"] for r in client.session["account_authentication_methods"]] == ["password"]


@pytest.mark.parametrize(("remember", "browser_session"), [("on", False), ("", True)])
def test_keep_me_signed_in_decides_how_long_the_session_lasts(
    client, world, remember, browser_session
):
    assert 'name="remember"' in client.get("/login/").content.decode()
    client.post(
        "/login/", {"login": world.editor.email, "password": PASSWORD, "remember": remember}
    )
    assert client.session.get_expire_at_browser_close() is browser_session


def test_the_email_is_read_as_authentication_reads_it(client, world):
    typed = "  " + world.editor.email.upper() + " "
    response = client.post("/login/", {"login": typed, "password": PASSWORD})
    assert response.status_code == 302
    assert client.session[SESSION_KEY] == str(world.editor.pk)


def test_wrong_password_is_refused_audited_and_counted(client, world, settings, clock):
    limits(settings, login_account=(5, 900))

    response = sign_in(client, world.editor.email, "wrong-password")

    assert response.status_code == 400
    assert "Please enter a correct email and password." in response.content.decode()
    assert SESSION_KEY not in client.session
    assert list(logins("login.failed").values_list("target_label", flat=True)) == [
        world.editor.email
    ]
    assert not logins("login.succeeded").exists()
    for _ in range(4):
        sign_in(client, world.editor.email, "wrong-password")
    assert login_blocked(world.editor.email) == 895


def test_text_that_is_no_email_is_counted_and_audited_without_being_kept(client, db, settings):
    response = client.post("/login/", {"login": "hunter2 my password", "password": "x"})
    assert response.status_code == 400
    assert logins("login.failed").get().target_label == "(not an email address)"


def test_a_locked_account_gets_429_even_with_the_right_password(client, world, settings, clock):
    limits(settings, login_account=(2, 900))
    for _ in range(2):
        sign_in(client, world.editor.email, "wrong", ip=IP_B)

    response = sign_in(client, world.editor.email, PASSWORD)

    assert response.status_code == 429
    assert response["Retry-After"] == "895"
    assert "Too many failed sign-in attempts. Try again in 15 minutes." in response.content.decode()
    assert response.templates[0].name == "accounts/login.html"
    assert SESSION_KEY not in client.session
    assert logins("login.failed").count() == 2  # the refused attempt was not evaluated


def test_a_success_gives_its_attempt_back_and_clears_the_account_count(
    client, world, settings, clock
):
    limits(settings, login_account=(3, 900), login_ip=(3, 900))
    sign_in(client, world.editor.email, "wrong")
    sign_in(client, world.editor.email, PASSWORD)
    assert login_blocked(world.editor.email) is None
    client.logout()
    # The IP's count kept the one failure only: two more attempts from it still go through.
    sign_in(client, world.viewer.email, "wrong")
    assert sign_in(client, world.viewer.email, PASSWORD).status_code == 302


def test_self_sign_up_is_closed(client, db):
    response = client.post(
        reverse("account_signup"),
        {"email": "walk-in@example.test", "password1": "a-long-password-9x"},
    )
    assert response.status_code == 200
    assert any(t.name == "account/signup_closed.html" for t in response.templates)
    assert not User.objects.filter(email="walk-in@example.test").exists()


def test_with_totp_the_password_alone_does_not_sign_in(client, world):
    secret = generate_totp_secret()
    TOTP.activate(world.editor, secret)

    response = client.post("/login/", {"login": world.editor.email, "password": PASSWORD})

    assert response.status_code == 302
    assert response["Location"] == reverse("mfa_authenticate")
    assert SESSION_KEY not in client.session
    assert not logins("login.succeeded").exists()  # not signed in yet

    response = client.post(reverse("mfa_authenticate"), {"code": pyotp.TOTP(secret).now()})

    assert response.status_code == 302
    assert client.session[SESSION_KEY] == str(world.editor.pk)
    assert logins("login.succeeded").count() == 1
    methods = [r["method"] for r in client.session["account_authentication_methods"]]
    assert methods == ["password", "mfa"]


def test_the_mfa_stage_page_is_in_our_layout(client, world):
    TOTP.activate(world.editor, generate_totp_secret())
    client.post("/login/", {"login": world.editor.email, "password": PASSWORD})

    response = client.get(reverse("mfa_authenticate"))

    assert response.status_code == 200
    names = [t.name for t in response.templates]
    assert "base.html" in names and "allauth/layouts/entrance.html" in names
    body = response.content.decode()
    assert 'class="card auth-card"' in body and 'name="code"' in body


def test_an_invited_newcomer_is_signed_in_through_the_same_signal(client, world):
    invitation, token = invite_member(
        actor=world.org_admin, organization=world.org, email="newcomer@example.test"
    )

    response = client.post(
        reverse("invitation-accept", args=[token]),
        {
            "full_name": "New",
            "password": "a-long-password-9x",
            "password_again": "a-long-password-9x",
        },
    )

    assert response.status_code == 302
    assert response["Location"] == reverse("org-overview", args=["acme"])
    newcomer = User.objects.get(email="newcomer@example.test")
    assert client.session[SESSION_KEY] == str(newcomer.pk)
    assert Invitation.objects.get(pk=invitation.pk).status == "accepted"
    event = logins("login.succeeded").get()
    assert (event.actor_label, event.organization) == (newcomer.email, world.org)


def test_the_sign_in_form_carries_the_csrf_token_and_a_safe_next_only(client, db):
    page = client.get("/login/", {"next": "/o/acme/members/"}).content.decode()
    assert 'name="csrfmiddlewaretoken"' in page
    assert 'name="next" value="/o/acme/members/"' in page
    evil = client.get("/login/", {"next": "https://evil.test/"}).content.decode()
    assert "evil.test" not in evil
