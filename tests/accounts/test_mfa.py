"""MFA (allauth.mfa, accounts/mfa.py): TOTP with recovery codes, the organizations' "require MFA"
setting and its enrolment walk-through, and sudo mode by MFA (accounts/views.py confirm_password).
Codes are computed with pyotp, as an authenticator app would.
"""

import json
import time

import pyotp
import pytest
from allauth.mfa.models import Authenticator
from allauth.mfa.recovery_codes.internal.auth import RecoveryCodes
from allauth.mfa.totp.internal.auth import TOTP, generate_totp_secret
from django.contrib.auth import SESSION_KEY
from django.urls import reverse

from accesscontrol.accounts import mfa, sudo
from accesscontrol.audit.models import AuditEvent
from accesscontrol.organizations.models import Organization, RequireMfa
from tests.console.test_pages import parse
from tests.factories import PASSWORD, UserFactory, add_member, pat_for
from tests.support.throttling import whoami

SUDO_URL = reverse("sudo")
MEMBERS = "/o/acme/members/"
WORKSPACE = "/o/acme/w/production/"
SECURITY = reverse("mfa_index")


def sign_in(client, user, password=PASSWORD):
    response = client.post("/login/", {"login": user.email, "password": password})
    assert response.status_code == 302, response.content
    return response


def with_totp(user, recovery_codes=True) -> str:
    secret = generate_totp_secret()
    TOTP.activate(user, secret)
    if recovery_codes:
        RecoveryCodes.activate(user)
    return secret


def recovery_codes_of(user) -> list[str]:
    codes = Authenticator.objects.get(user=user, type=Authenticator.Type.RECOVERY_CODES)
    return codes.wrap().get_unused_codes()


def require(org, whom):
    Organization.objects.filter(pk=org.pk).update(require_mfa=whom)


def sudo_on(client) -> bool:
    return client.session.get(sudo.SESSION_KEY, 0) > time.time()


def stale(client):
    session = client.session
    session[sudo.SESSION_KEY] = 0
    session.save()


# --- TOTP -----------------------------------------------------------------------------------------


def test_enrolling_totp_through_the_pages_with_a_pyotp_code(
    client, world, django_capture_on_commit_callbacks
):
    sign_in(client, world.editor)
    page = client.get(reverse("mfa_activate_totp"))
    assert page.status_code == 200
    secret = page.context["form"].secret
    assert 'src="data:image/svg+xml;base64,' in page.content.decode()  # the QR code, CSP-safe

    wrong = client.post(reverse("mfa_activate_totp"), {"code": "000000"})
    assert wrong.status_code == 200 and wrong.context["form"].errors
    assert not mfa.has_mfa(world.editor)

    # allauth sends authenticator_added once the change is committed
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("mfa_activate_totp"), {"code": pyotp.TOTP(secret).now()})

    assert response.status_code == 302
    assert mfa.has_mfa(world.editor)
    assert Authenticator.objects.filter(user=world.editor, type="recovery_codes").exists()
    enabled = AuditEvent.objects.filter(action="mfa.enabled", actor_label=world.editor.email)
    assert sorted(enabled.values_list("target_label", flat=True)) == [
        "an authenticator app",
        "recovery codes",
    ]
    assert {e.organization for e in enabled} == {world.org}


def test_a_factor_and_its_audit_row_are_written_in_one_transaction(
    client, world, django_capture_on_commit_callbacks
):
    """The audit row does not wait for the commit (allauth's own signal does): it is written by
    the change's transaction, so one never stands without the other."""
    sign_in(client, world.editor)
    secret = client.get(reverse("mfa_activate_totp")).context["form"].secret
    with django_capture_on_commit_callbacks(execute=False) as after_commit:
        response = client.post(reverse("mfa_activate_totp"), {"code": pyotp.TOTP(secret).now()})
        written = set(
            AuditEvent.objects.filter(action="mfa.enabled").values_list("target_label", flat=True)
        )
    assert response.status_code == 302
    assert written == {"an authenticator app", "recovery codes"}
    assert after_commit  # allauth's signals still follow the commit (session flag only)


def test_sign_in_with_a_totp_code(client, world):
    secret = with_totp(world.editor)
    sign_in(client, world.editor)
    assert SESSION_KEY not in client.session

    response = client.post(reverse("mfa_authenticate"), {"code": pyotp.TOTP(secret).now()})

    assert response.status_code == 302
    assert client.session[SESSION_KEY] == str(world.editor.pk)


@pytest.mark.parametrize(("steps_ago", "accepted"), [(1, True), (3, False)])
def test_a_code_of_the_step_before_is_accepted_not_older(client, world, steps_ago, accepted):
    """A code typed as its 30-second step ends still works (MFA_TOTP_TOLERANCE = 1)."""
    secret = with_totp(world.editor)
    sign_in(client, world.editor)
    code = pyotp.TOTP(secret).at(time.time() - 30 * steps_ago)
    response = client.post(reverse("mfa_authenticate"), {"code": code})
    assert (response.status_code == 302) is accepted
    assert (SESSION_KEY in client.session) is accepted


@pytest.mark.parametrize("code", ["000000", "12345", "", "not-a-code"])
def test_a_wrong_code_is_refused(client, world, code):
    with_totp(world.editor)
    sign_in(client, world.editor)

    response = client.post(reverse("mfa_authenticate"), {"code": code})

    assert response.status_code == 200
    assert response.context["form"].errors
    assert SESSION_KEY not in client.session
    assert not AuditEvent.objects.filter(action="login.succeeded").exists()


def test_a_used_code_is_refused_the_second_time(client, world):
    secret = with_totp(world.editor)
    code = pyotp.TOTP(secret).now()
    sign_in(client, world.editor)
    client.post(reverse("mfa_authenticate"), {"code": code})
    client.post(reverse("logout"))

    sign_in(client, world.editor)
    response = client.post(reverse("mfa_authenticate"), {"code": code})

    assert response.status_code == 200
    assert SESSION_KEY not in client.session


def test_wrong_codes_are_rate_limited(client, world):
    with_totp(world.editor)
    sign_in(client, world.editor)
    for _ in range(5):
        client.post(reverse("mfa_authenticate"), {"code": "000000"})

    secret_code = "000000"
    response = client.post(reverse("mfa_authenticate"), {"code": secret_code})

    assert "Too many failed login attempts" in response.content.decode()
    assert SESSION_KEY not in client.session


def test_a_recovery_code_signs_in_once(client, world):
    with_totp(world.editor)
    code = recovery_codes_of(world.editor)[0]
    sign_in(client, world.editor)

    response = client.post(reverse("mfa_authenticate"), {"code": code})

    assert response.status_code == 302
    assert client.session[SESSION_KEY] == str(world.editor.pk)
    assert code not in recovery_codes_of(world.editor)
    client.post(reverse("logout"))
    sign_in(client, world.editor)
    again = client.post(reverse("mfa_authenticate"), {"code": code})
    assert again.status_code == 200 and SESSION_KEY not in client.session


def test_turning_totp_off_is_audited(client, world, django_capture_on_commit_callbacks):
    with_totp(world.editor)
    client.force_login(world.editor)  # a fresh sign-in: allauth does not ask again

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("mfa_deactivate_totp"))

    assert response.status_code == 302
    assert not mfa.has_mfa(world.editor)
    removed = AuditEvent.objects.filter(action="mfa.disabled", actor_label=world.editor.email)
    assert sorted(removed.values_list("target_label", flat=True)) == [
        "an authenticator app",
        "recovery codes",
    ]


# --- the Security page ----------------------------------------------------------------------------


def test_the_security_page_is_linked_from_the_user_menu_and_in_our_layout(client, world):
    client.force_login(world.editor)
    home = client.get(WORKSPACE).content.decode()
    assert f'href="{SECURITY}">Security</a>' in home

    response = client.get(SECURITY)

    assert response.status_code == 200
    body = response.content.decode()
    assert "<h1>Security</h1>" in body
    assert "Set up an authenticator app" in body and "Add a passkey" in body
    assert "base.html" in [t.name for t in response.templates]


def test_the_security_page_shows_what_is_set_up(client, world):
    with_totp(world.editor)
    client.force_login(world.editor)
    body = client.get(SECURITY).content.decode()
    assert "An authenticator app is set up." in body
    assert "10 of 10 recovery codes unused" in body


def test_the_security_page_needs_a_session(client, db):
    response = client.get(SECURITY)
    assert response.status_code == 302 and response["Location"].startswith("/login/")


# --- require MFA: the walk-through ----------------------------------------------------------------


def test_a_member_without_mfa_is_walked_through_enrolment_and_can_do_nothing_else(
    client, world, django_capture_on_commit_callbacks
):
    require(world.org, RequireMfa.EVERYONE)
    sign_in(client, world.editor)

    for path in (WORKSPACE, MEMBERS, "/", reverse("personal-tokens", args=["acme"])):
        response = client.get(path)
        assert response.status_code == 302, path
        assert response["Location"] == SECURITY, path
    refused = client.post(reverse("personal-tokens", args=["acme"]), {"name": "t"})
    assert refused.status_code == 302 and refused["Location"] == SECURITY
    htmx = client.get(MEMBERS, headers={"HX-Request": "true"})
    assert (htmx.status_code, htmx["HX-Redirect"]) == (204, SECURITY)

    page = client.get(SECURITY)
    assert page.status_code == 200
    assert "requires two-factor sign-in" in page.content.decode()

    # Enrolment itself is open: the authenticator app, with a code from pyotp.
    secret = client.get(reverse("mfa_activate_totp")).context["form"].secret
    with django_capture_on_commit_callbacks(execute=True):
        done = client.post(reverse("mfa_activate_totp"), {"code": pyotp.TOTP(secret).now()})
    assert done.status_code == 302

    assert client.get(WORKSPACE).status_code == 200
    assert mfa.MUST_ENROL not in client.session


def test_signing_out_stays_open_while_enrolment_is_pending(client, world):
    require(world.org, RequireMfa.EVERYONE)
    sign_in(client, world.editor)
    response = client.post(reverse("logout"))
    assert response.status_code == 302 and response["Location"] == reverse("login")
    assert SESSION_KEY not in client.session


def test_a_member_with_mfa_is_not_stopped(client, world):
    require(world.org, RequireMfa.EVERYONE)
    secret = with_totp(world.editor)
    sign_in(client, world.editor)
    client.post(reverse("mfa_authenticate"), {"code": pyotp.TOTP(secret).now()})
    assert client.get(WORKSPACE).status_code == 200


@pytest.mark.parametrize(
    ("whom", "persona", "stopped"),
    [
        (RequireMfa.ADMINS, "org_admin", True),
        (RequireMfa.ADMINS, "editor", False),
        (RequireMfa.ADMINS, "workspace_admin", False),  # a workspace admin is no org admin
        (RequireMfa.EVERYONE, "org_viewer", True),
        (RequireMfa.OFF, "org_admin", False),
    ],
)
def test_who_the_requirement_covers(client, world, whom, persona, stopped):
    require(world.org, whom)
    sign_in(client, getattr(world, persona))
    response = client.get(reverse("org-overview", args=["acme"]))
    assert (response.status_code == 302 and response["Location"] == SECURITY) is stopped


def test_another_organizations_requirement_applies_to_its_own_members_only(client, world):
    require(world.other_org, RequireMfa.EVERYONE)
    sign_in(client, world.editor)
    assert client.get(WORKSPACE).status_code == 200


def test_removing_the_last_factor_under_the_requirement_walks_back_to_enrolment(
    client, world, django_capture_on_commit_callbacks
):
    require(world.org, RequireMfa.EVERYONE)
    secret = with_totp(world.editor, recovery_codes=False)
    sign_in(client, world.editor)
    client.post(reverse("mfa_authenticate"), {"code": pyotp.TOTP(secret).now()})
    assert client.get(WORKSPACE).status_code == 200

    with django_capture_on_commit_callbacks(execute=True):
        assert client.post(reverse("mfa_deactivate_totp")).status_code == 302

    assert client.get(WORKSPACE)["Location"] == SECURITY


def test_api_keys_are_not_affected_by_the_requirement(client, world):
    require(world.org, RequireMfa.EVERYONE)
    key = pat_for(world.editor, world.org)
    sign_in(client, world.editor)  # the same client holds a session that must enrol

    response = whoami(client, key)

    assert response.status_code == 200, response.content
    assert response.json()["kind"] == "personal_access_token"


# --- Settings → Authentication --------------------------------------------------------------------

AUTHENTICATION = reverse("org-authentication", args=["acme"])


def test_an_org_admin_sets_the_requirement_and_it_is_audited(client, world):
    client.force_login(world.org_admin)
    page = client.get(AUTHENTICATION)
    assert page.status_code == 200
    body = page.content.decode()
    assert "Two-factor sign-in" in body

    response = client.post(AUTHENTICATION, {"require_mfa": "admins"})

    assert response.status_code == 302
    world.org.refresh_from_db()
    assert world.org.require_mfa == RequireMfa.ADMINS
    event = AuditEvent.objects.get(action="organization.mfa_requirement_changed")
    assert event.changes == {"before": {"require_mfa": "off"}, "after": {"require_mfa": "admins"}}


@pytest.mark.parametrize("value", ["sometimes", "", "ADMINS"])
def test_a_bad_choice_is_a_form_error_and_changes_nothing(client, world, value):
    client.force_login(world.org_admin)
    response = client.post(AUTHENTICATION, {"require_mfa": value})
    assert response.status_code == 422
    world.org.refresh_from_db()
    assert world.org.require_mfa == RequireMfa.OFF
    assert not AuditEvent.objects.filter(action="organization.mfa_requirement_changed").exists()


@pytest.mark.parametrize(
    ("persona", "status"), [("workspace_admin", 403), ("editor", 403), ("outsider", 404)]
)
def test_only_org_admins_reach_the_setting(client, world, persona, status):
    client.force_login(getattr(world, persona))
    assert client.get(AUTHENTICATION).status_code == status
    assert client.post(AUTHENTICATION, {"require_mfa": "everyone"}).status_code == status
    world.org.refresh_from_db()
    assert world.org.require_mfa == RequireMfa.OFF


def test_the_settings_page_links_to_it(client, world):
    client.force_login(world.org_admin)
    body = client.get(reverse("org-settings", args=["acme"])).content.decode()
    assert f'href="{AUTHENTICATION}"' in body


# --- member pages show MFA ------------------------------------------------------------------------


def test_the_members_list_and_member_page_show_who_has_mfa(client, world):
    with_totp(world.editor)
    client.force_login(world.org_admin)
    listing = client.get(MEMBERS).content.decode()
    assert listing.count('title="Two-factor sign-in is on">2FA</span>') == 1

    editor = world.org.memberships.get(user=world.editor)
    viewer = world.org.memberships.get(user=world.viewer)
    on = client.get(reverse("member-access", args=["acme", editor.pk])).content.decode()
    off = client.get(reverse("member-access", args=["acme", viewer.pk])).content.decode()
    assert '<dd id="member-mfa"><span class="badge status-active">On</span>' in on
    assert '<dd id="member-mfa"><span class="badge">Off</span>' in off


# --- sudo by MFA ----------------------------------------------------------------------------------


def test_sudo_with_a_totp_code(client, world):
    secret = with_totp(world.org_admin)
    client.force_login(world.org_admin)
    stale(client)
    page = client.get(SUDO_URL, {"next": MEMBERS})
    assert 'name="code"' in page.content.decode() and 'name="password"' in page.content.decode()

    response = client.post(SUDO_URL, {"code": pyotp.TOTP(secret).now(), "next": MEMBERS})

    assert response.status_code == 302 and response["Location"] == MEMBERS
    assert sudo_on(client)


def test_sudo_with_a_recovery_code(client, world, settings):
    with_totp(world.org_admin)
    client.force_login(world.org_admin)
    stale(client)
    response = client.post(SUDO_URL, {"code": recovery_codes_of(world.org_admin)[0]})
    assert response.status_code == 302
    assert sudo_on(client)


def test_a_wrong_code_grants_no_sudo(client, world):
    with_totp(world.org_admin)
    client.force_login(world.org_admin)
    stale(client)
    response = client.post(SUDO_URL, {"code": "000000"})
    assert response.status_code == 400
    assert response.context["code_form"].errors
    assert not sudo_on(client)


def test_a_person_without_a_password_is_never_asked_for_one(client, world):
    sso_user = UserFactory(email="sso@acme.test")
    sso_user.set_unusable_password()
    sso_user.save()
    add_member(world.org, org_role="admin")  # (another admin; this one is a plain member)
    client.force_login(sso_user)
    stale(client)

    page = client.get(SUDO_URL).content.decode()
    assert 'name="password"' not in page
    assert 'id="sudo-sso"' in page  # where "Re-authenticate with your identity provider" goes

    refused = client.post(SUDO_URL, {"password": "anything"})
    assert refused.status_code == 400
    assert not sudo_on(client)
    assert not AuditEvent.objects.filter(action="login.failed").exists()


def test_a_person_without_a_password_confirms_with_mfa(client, world):
    sso_user = UserFactory(email="sso@acme.test")
    sso_user.set_unusable_password()
    sso_user.save()
    secret = with_totp(sso_user)
    client.force_login(sso_user)
    stale(client)

    page = client.get(SUDO_URL).content.decode()
    assert 'name="password"' not in page and 'name="code"' in page

    response = client.post(SUDO_URL, {"code": pyotp.TOTP(secret).now()})
    assert response.status_code == 302
    assert sudo_on(client)


def test_a_passkey_holder_is_offered_the_passkey(client, world):
    Authenticator.objects.create(
        user=world.org_admin, type=Authenticator.Type.WEBAUTHN, data={"name": "laptop"}
    )
    client.force_login(world.org_admin)
    stale(client)
    page = client.get(SUDO_URL, {"next": MEMBERS}).content.decode()
    assert f'href="{reverse("mfa_reauthenticate_webauthn")}?next=%2Fo%2Facme%2Fmembers%2F"' in page


# --- allauth's pages in our layout, under our CSP -------------------------------------------------

ALLAUTH_PAGES = [
    "mfa_index",
    "mfa_deactivate_totp",
    "mfa_add_webauthn",
    "mfa_reauthenticate",
    "mfa_view_recovery_codes",
    "mfa_generate_recovery_codes",
    "account_reauthenticate",
]


@pytest.mark.parametrize("name", ALLAUTH_PAGES)
def test_allauths_pages_are_ours_and_carry_no_inline_script_or_style(client, world, name):
    with_totp(world.editor)
    sign_in(client, world.editor)
    totp = Authenticator.objects.get(user=world.editor, type="totp").wrap()
    client.post(
        reverse("mfa_authenticate"), {"code": pyotp.TOTP(totp.instance.data["secret"]).now()}
    )

    response = client.get(reverse(name))

    assert response.status_code == 200, name
    assert "base.html" in [t.name for t in response.templates]
    page = parse(response)
    for attrs, body in page.scripts:
        if attrs.get("type") == "application/json":
            json.loads(body)  # data for allauth's scripts, never run
        else:
            assert attrs.get("src") and not body.strip(), attrs
    assert page.style_attributes == [] and page.style_elements == 0
    assert page.event_handlers == []
