"""Rate limits on failed authentication (accesscontrol/throttle.py) at sign-in, at the sudo
page and on the API.

Only failures count, each against the client's IP and against what was attacked (the account's
email, or the presented key's digest); a blocked attempt is refused before the password or key is
looked at, and is neither counted again nor audited. The limits are shrunk per test with the
`settings` fixture, and the throttle's clock is frozen (`clock`) so a test never straddles two
fixed windows.
"""

import threading

import pytest
from django.core.cache import cache

from accesscontrol import throttle
from accesscontrol.apikeys import keys
from accesscontrol.apikeys.models import ServiceKey
from accesscontrol.apikeys.services import revoke_service_key
from accesscontrol.audit.models import AuditEvent
from tests.factories import PASSWORD, SYSTEM, service_key_for, unknown_key
from tests.support.db import failed_logins
from tests.support.pages import signed_in
from tests.support.throttling import (
    IP_A,
    IP_B,
    WINDOW_START,
    assert_api_throttled,
    assert_login_throttled,
    limits,
    login_blocked,
    sign_in,
    whoami,
)

# --- sign-in --------------------------------------------------------------------------------------

# The counting rules are also checked through `login_blocked`, which asks the throttle the
# question the sign-in form asks before it looks at a password.


def test_an_account_is_locked_after_n_failures_whatever_ip_they_come_from(
    client, world, settings, clock
):
    limits(settings, login_account=(3, 900))
    victim = world.editor.email
    for n in range(3):
        assert login_blocked(victim, "10.0.0.4") is None
        assert sign_in(client, victim, "wrong", ip=f"10.0.0.{n + 1}").status_code == 400

    assert login_blocked(victim, "10.0.0.4") == 895  # 5 s into a 900 s window
    # One audit row per password checked (the editor belongs to one organization).
    assert failed_logins().count() == 3
    assert set(failed_logins().values_list("organization", flat=True)) == {world.org.pk}


def test_a_locked_account_refuses_even_the_right_password_with_a_429_page(
    client, world, settings, clock
):
    limits(settings, login_account=(3, 900))
    victim = world.editor.email
    for n in range(3):
        sign_in(client, victim, "wrong", ip=f"10.0.0.{n + 1}")

    # The right password, from yet another address: refused without being checked.
    response = sign_in(client, victim, PASSWORD, ip="10.0.0.4")

    assert_login_throttled(response, 900)
    assert response["Retry-After"] == "895"
    assert response.context["error"] == "Too many failed sign-in attempts. Try again in 15 minutes."
    assert 'name="password"' in response.content.decode()  # the form, to try again later
    assert not signed_in(client)
    assert not AuditEvent.objects.filter(action="login.succeeded").exists()

    clock.now = WINDOW_START + 900 - 30  # half a minute left: "1 minute", not "0 minutes"
    response = sign_in(client, victim, PASSWORD)
    assert response["Retry-After"] == "30"
    assert "Try again in 1 minute." in response.content.decode()


def test_another_account_from_another_ip_is_not_slowed_by_an_attack_on_one_account(
    client, world, settings, clock
):
    limits(settings, login_account=(3, 900), login_ip=(3, 900))
    for _ in range(3):
        sign_in(client, world.editor.email, "wrong", ip=IP_A)
    assert login_blocked(world.editor.email, IP_A) is not None

    assert login_blocked(world.viewer.email, "10.0.0.9") is None
    assert sign_in(client, world.viewer.email, "wrong", ip="10.0.0.9").status_code == 400
    response = sign_in(client, world.viewer.email, PASSWORD, ip="10.0.0.9")

    assert response.status_code == 302
    assert signed_in(client)


def test_one_ip_is_blocked_after_n_failures_whatever_accounts_it_tries(
    client, world, settings, clock
):
    limits(settings, login_ip=(3, 900))
    for user in (world.editor, world.viewer, world.annotator):
        assert sign_in(client, user.email, "wrong", ip=IP_A).status_code == 400

    # A fourth account, never tried: the address is blocked whatever it tries next.
    assert login_blocked(world.workspace_admin.email, IP_A) == 895
    # The same account from another address is untouched.
    assert login_blocked(world.workspace_admin.email, "10.0.0.9") is None
    response = sign_in(client, world.workspace_admin.email, PASSWORD, ip="10.0.0.9")
    assert response.status_code == 302
    assert signed_in(client)


def test_a_blocked_ip_gets_the_429_page_for_any_account(client, world, settings, clock):
    limits(settings, login_ip=(3, 900))
    for user in (world.editor, world.viewer, world.annotator):
        sign_in(client, user.email, "wrong", ip=IP_A)

    response = sign_in(client, world.workspace_admin.email, PASSWORD, ip=IP_A)

    assert_login_throttled(response, 900)
    assert not signed_in(client)


def test_emails_typed_differently_count_against_the_same_account(client, world, settings, clock):
    limits(settings, login_account=(3, 900))
    email = world.editor.email
    for n, variant in enumerate((email.upper(), f"  {email}  ", email.capitalize())):
        assert sign_in(client, variant, "wrong", ip=f"10.0.3.{n}").status_code == 400

    assert login_blocked(email, "10.0.0.4") is not None


def test_after_retry_after_seconds_a_new_window_lets_the_client_in(client, world, settings, clock):
    limits(settings, login_account=(2, 900), login_ip=(2, 900))
    for _ in range(2):
        sign_in(client, world.editor.email, "wrong")
    retry_after = login_blocked(world.editor.email)
    assert retry_after == 895

    clock.now += retry_after - 1
    assert login_blocked(world.editor.email) == 1  # never 0: "retry in 0 seconds" is a lie

    clock.now += 1
    assert login_blocked(world.editor.email) is None
    response = sign_in(client, world.editor.email, PASSWORD)
    assert response.status_code == 302
    assert signed_in(client)


def test_retry_after_stays_within_the_window_on_the_real_clock(client, world, settings, clock):
    clock.now = None
    limits(settings, login_account=(1, 3600))
    sign_in(client, world.editor.email, "wrong")

    response = sign_in(client, world.editor.email, "wrong")

    assert_login_throttled(response, 3600)


def test_a_success_clears_the_accounts_count_but_not_the_ips(client, world, settings, clock):
    limits(settings, login_account=(3, 900), login_ip=(4, 900))
    user = world.editor
    for _ in range(2):
        sign_in(client, user.email, "wrong")
    assert sign_in(client, user.email, PASSWORD).status_code == 302
    client.logout()

    # The account starts again from zero: two more mistakes are not a lock-out...
    assert sign_in(client, user.email, "wrong", ip=IP_B).status_code == 400
    assert sign_in(client, user.email, "wrong", ip=IP_B).status_code == 400
    assert login_blocked(user.email, IP_B) is None
    assert sign_in(client, user.email, PASSWORD, ip=IP_B).status_code == 302
    client.logout()

    # ...while IP_A still holds its two failures (+ two more = its limit of four).
    sign_in(client, world.viewer.email, "wrong", ip=IP_A)
    assert login_blocked(world.annotator.email, IP_A) is None
    sign_in(client, world.viewer.email, "wrong", ip=IP_A)
    assert login_blocked(world.annotator.email, IP_A) is not None


def test_blocked_attempts_are_not_audited_so_a_flood_does_not_flood_the_log(
    client, world, settings, clock
):
    limits(settings, login_account=(3, 900))
    statuses = [sign_in(client, world.editor.email, "wrong").status_code for _ in range(8)]

    assert statuses == [400] * 3 + [429] * 5
    # One row per password actually checked; the blocked attempts were not evaluated.
    assert failed_logins().count() == 3
    assert set(failed_logins().values_list("target_label", flat=True)) == {world.editor.email}


def test_an_unknown_email_is_throttled_like_a_known_one(client, db, settings, clock):
    limits(settings, login_account=(2, 900))
    statuses = [sign_in(client, "nobody@example.test", "guess").status_code for _ in range(2)]

    assert statuses == [400, 400]
    assert login_blocked("nobody@example.test", "10.0.0.9") is not None
    assert failed_logins().count() == 2  # logged outside any organization, once per attempt
    assert set(failed_logins().values_list("organization", flat=True)) == {None}


# --- the sudo page: no side door for guessing -----------------------------------------------------


def test_wrong_passwords_on_the_sudo_page_count_like_failed_sign_ins(
    client, world, settings, clock
):
    limits(settings, login_account=(3, 900))
    sign_in(client, world.org_admin.email, "wrong")  # one failure at the sign-in form
    client.force_login(world.org_admin)
    assert login_blocked(world.org_admin.email, "10.0.0.7") is None
    for _ in range(2):
        response = client.post("/account/confirm/", {"password": "wrong"}, REMOTE_ADDR=IP_B)
        assert response.status_code == 400
        assert response.context["form"].errors == {"password": ["That is not your password."]}

    assert failed_logins().count() == 3
    assert set(failed_logins().values_list("target_label", flat=True)) == {world.org_admin.email}
    # The account is locked at the sign-in form, from anywhere.
    assert login_blocked(world.org_admin.email, "10.0.0.7") == 895


def test_the_locked_sudo_page_refuses_the_right_password_with_a_429(client, world, settings, clock):
    limits(settings, login_account=(3, 900))
    client.force_login(world.org_admin)
    session = client.session
    session["sudo_until"] = 0
    session.save()
    for _ in range(3):
        client.post("/account/confirm/", {"password": "wrong"}, REMOTE_ADDR=IP_B)

    response = client.post("/account/confirm/", {"password": PASSWORD}, REMOTE_ADDR="10.0.0.9")

    assert response.status_code == 429
    assert response["Retry-After"] == "895"
    assert "Too many wrong passwords. Try again in 15 minutes." in response.content.decode()
    assert client.session["sudo_until"] == 0  # not granted
    assert failed_logins().count() == 3  # the blocked attempt was not evaluated


def test_the_sudo_page_shares_the_ip_limit(client, world, settings, clock):
    limits(settings, login_ip=(2, 900))
    client.force_login(world.org_admin)
    for _ in range(2):
        client.post("/account/confirm/", {"password": "wrong"}, REMOTE_ADDR=IP_A)

    assert login_blocked(world.editor.email, IP_A) is not None
    assert login_blocked(world.editor.email, IP_B) is None


# --- X-Forwarded-For ------------------------------------------------------------------------------


def test_x_forwarded_for_is_ignored_without_trusted_proxies(client, world, settings, clock):
    settings.TRUSTED_PROXY_COUNT = 0
    limits(settings, login_ip=(3, 900))
    for n, user in enumerate((world.editor, world.viewer, world.annotator)):
        # A client making up a new address each time does not escape its own limit.
        response = sign_in(client, user.email, "wrong", ip=IP_A, HTTP_X_FORWARDED_FOR=f"10.9.9.{n}")
        assert response.status_code == 400

    assert login_blocked(world.workspace_admin.email, IP_A) is not None
    assert set(failed_logins().values_list("ip_address", flat=True)) == {IP_A}


def test_x_forwarded_for_names_the_client_behind_trusted_proxies(client, world, settings, clock):
    settings.TRUSTED_PROXY_COUNT = 1
    limits(settings, login_ip=(2, 900))
    proxy = "10.0.0.1"
    # Everyone arrives from the proxy; the address it appended is the client's. What the client
    # itself put in front of it (a spoofed first entry) is not trusted.
    for spoofed in ("1.1.1.1", "2.2.2.2"):
        response = sign_in(
            client, world.editor.email, "wrong", ip=proxy, HTTP_X_FORWARDED_FOR=f"{spoofed}, {IP_A}"
        )
        assert response.status_code == 400
    assert set(failed_logins().values_list("ip_address", flat=True)) == {IP_A}

    assert login_blocked(world.viewer.email, IP_A) is not None
    assert login_blocked(world.viewer.email, proxy) is None
    # Another client behind the same proxy is not blocked by IP_A's failures.
    other = sign_in(client, world.viewer.email, PASSWORD, ip=proxy, HTTP_X_FORWARDED_FOR=IP_B)
    assert other.status_code == 302


def test_api_x_forwarded_for_follows_the_same_rule(client, world, settings, clock):
    limits(settings, key_ip=(2, 60))
    settings.TRUSTED_PROXY_COUNT = 0
    for n in range(2):
        whoami(client, unknown_key(), ip=IP_A, HTTP_X_FORWARDED_FOR=f"10.9.9.{n}")
    assert (
        whoami(client, unknown_key(), ip=IP_A, HTTP_X_FORWARDED_FOR="10.9.9.9").status_code == 429
    )

    settings.TRUSTED_PROXY_COUNT = 1
    assert whoami(client, unknown_key(), ip=IP_A, HTTP_X_FORWARDED_FOR=IP_B).status_code == 401


# --- the API --------------------------------------------------------------------------------------


def test_bad_keys_from_one_ip_never_slow_a_valid_key_from_another(client, world, settings, clock):
    limits(settings, key_ip=(3, 60), key=(3, 60))
    good = service_key_for(world.workspace, "Viewer")
    for _ in range(3):
        response = whoami(client, unknown_key(), ip=IP_A)
        assert response.status_code == 401
        assert response.json()["error"] == "invalid_api_key"

    response = whoami(client, unknown_key(), ip=IP_A)
    assert_api_throttled(response, 60)
    assert response["Retry-After"] == "55"
    # The blocked address is refused before any key is looked at, a good one included:
    # otherwise a guesser would still learn which guess was right.
    assert whoami(client, good, ip=IP_A).status_code == 429

    # Successful traffic from elsewhere is never throttled by another tenant's failures.
    assert [whoami(client, good, ip=IP_B).status_code for _ in range(10)] == [200] * 10
    assert whoami(client, good, ip=IP_B, bearer=True).status_code == 200


def test_api_retry_after_stays_within_the_window_on_the_real_clock(client, world, settings, clock):
    clock.now = None
    limits(settings, key_ip=(1, 3600))
    whoami(client, unknown_key())

    assert_api_throttled(whoami(client, unknown_key()), 3600)


def test_successful_requests_are_never_counted(client, world, settings, clock):
    limits(settings, key_ip=(2, 60), key=(2, 60))
    good = service_key_for(world.workspace, "Viewer")

    assert [whoami(client, good).status_code for _ in range(10)] == [200] * 10
    assert whoami(client, unknown_key()).status_code == 401


def test_a_revoked_key_hammered_is_throttled_per_key_across_ips(client, world, settings, clock):
    limits(settings, key=(3, 60))
    raw = service_key_for(world.workspace, "Editor")
    revoke_service_key(actor=SYSTEM, key=ServiceKey.objects.get(name="Editor key"))
    for n in range(3):
        response = whoami(client, raw, ip=f"10.0.1.{n}")
        assert response.status_code == 401
        assert response.json()["error"] == "revoked_api_key"

    assert_api_throttled(whoami(client, raw, ip="10.0.1.200"), 60)
    assert_api_throttled(whoami(client, raw, ip="10.0.1.201", bearer=True), 60)
    # Only that key: another bad key from the same new address is still just a 401.
    assert whoami(client, unknown_key(), ip="10.0.1.200").status_code == 401


def test_an_expired_key_hammered_is_audited_once_and_then_throttled(client, world, settings, clock):
    limits(settings, key=(3, 60))
    raw = service_key_for(world.workspace, "Editor")
    ServiceKey.objects.filter(name="Editor key").update(expires_at="2001-01-01T00:00:00Z")

    statuses = [whoami(client, raw, ip=f"10.0.2.{n}").status_code for n in range(6)]

    assert statuses == [401] * 3 + [429] * 3
    assert AuditEvent.objects.filter(action="service_key.expired_use").count() == 1


def test_malformed_keys_count_against_the_ip_only(client, world, settings, clock):
    limits(settings, key_ip=(4, 60), key=(1, 60))
    statuses = [whoami(client, "not-a-key", ip=IP_A).status_code for _ in range(5)]

    # The same malformed string four times is not blocked by the per-key limit of one.
    assert statuses == [401, 401, 401, 401, 429]
    assert whoami(client, "not-a-key", ip=IP_B).status_code == 401
    stored = getattr(cache, "_cache", None)
    if isinstance(stored, dict):  # the local-memory cache: its keys can be listed
        scopes = {k.split("throttle:", 1)[1].split(":")[0] for k in stored if "throttle:" in k}
        assert scopes == {"key-ip"}


def test_workspace_selection_errors_are_not_counted(client, world, settings, clock):
    limits(settings, key_ip=(1, 60), key=(1, 60))
    good = service_key_for(world.workspace, "Viewer")
    elsewhere = world.other_workspace.pk

    forbidden = [whoami(client, good, tenant=elsewhere).status_code for _ in range(3)]
    invalid = [whoami(client, good, tenant="not-a-uuid").status_code for _ in range(3)]

    assert forbidden == [403] * 3
    assert invalid == [400] * 3
    assert whoami(client, good).status_code == 200


def test_a_missing_key_is_not_counted(client, world, settings, clock):
    limits(settings, key_ip=(1, 60))
    for _ in range(3):
        response = client.get("/api/v1/auth/whoami", REMOTE_ADDR=IP_A)
        assert response.status_code == 401
        assert response.json()["error"] == "missing_api_key"
    assert whoami(client, "", ip=IP_A).json()["error"] == "missing_api_key"

    assert whoami(client, unknown_key(), ip=IP_A).status_code == 401
    assert whoami(client, unknown_key(), ip=IP_A).status_code == 429


def test_x_api_key_and_bearer_share_the_count(client, world, settings, clock):
    limits(settings, key_ip=(2, 60))
    assert whoami(client, unknown_key()).status_code == 401
    assert whoami(client, unknown_key(), bearer=True).status_code == 401

    assert whoami(client, unknown_key()).status_code == 429
    assert whoami(client, unknown_key(), bearer=True).status_code == 429


# --- the counters: atomic, and never holding what they count --------------------------------------


def test_counters_are_atomic_under_concurrency(shared_cache, clock):
    threads_count, failures_each = 16, 25
    total = threads_count * failures_each
    rule, ident = throttle.Limit("key-ip", total, 3600), "203.0.113.77"
    other = throttle.Limit("key", total, 3600), "some digest"
    start = threading.Barrier(threads_count)
    errors = []

    def hammer():
        try:
            start.wait()
            for _ in range(failures_each):
                throttle.record_failure((rule, ident), other)
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=hammer) for _ in range(threads_count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    key, _ = throttle._counter(rule, ident, clock.now)
    assert cache.get(key) == total
    # Exactly `total`: blocked at a limit of `total`, not at `total + 1`.
    assert throttle.blocked((rule, ident)) == 3600 - 5
    assert throttle.blocked((throttle.Limit("key-ip", total + 1, 3600), ident)) is None
    assert throttle.blocked(other) is not None


@pytest.mark.parametrize("backend", ["locmem", "redis"])
def test_cache_keys_never_hold_an_email_or_a_key(request, client, world, settings, clock, backend):
    stored = request.getfixturevalue(f"{backend}_cache")
    limits(settings, login_account=(2, 900), key=(2, 60))
    email = world.editor.email
    raw = service_key_for(world.workspace, "Editor")
    revoke_service_key(actor=SYSTEM, key=ServiceKey.objects.get(name="Editor key"))
    bad_guess = unknown_key()

    for n in range(3):
        sign_in(client, email.upper(), "wrong")  # the third is blocked (429)
        whoami(client, raw)
        whoami(client, bad_guess)
        whoami(client, "ls__not-even-close")
    assert login_blocked(email) is not None
    assert whoami(client, raw).status_code == 429

    names = [k for k in stored.names() if "throttle:" in k]
    assert {n.split("throttle:", 1)[1].split(":")[0] for n in names} == {
        "login-ip",
        "login-account",
        "key-ip",
        "key",
    }
    secrets = [
        email,
        email.upper(),
        email.split("@")[0],
        raw,
        raw[8:40],
        bad_guess,
        keys.digest(raw),
    ]
    text = "\n".join(stored.names())
    for secret in secrets:
        assert secret not in text
