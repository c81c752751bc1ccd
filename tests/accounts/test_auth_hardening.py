"""Security review #12, findings 6, 7, 11 and 14: sign-in and key authentication hardening.

6  the per-account limit and the failed-sign-in audit see an email the way authentication does;
7  limits are reserved atomically (increment, then decide): a burst gets exactly `limit` guesses;
11 a key proven valid is not refused because other keys failed from the same address;
14 an organization that turns personal access tokens off refuses the existing ones at once.
"""

import threading
import unicodedata

import pytest
from django.core.cache import cache
from django.db import connection
from django.test import Client

from accesscontrol import throttle
from accesscontrol.accounts.models import User
from accesscontrol.apikeys import authentication
from accesscontrol.apikeys.authentication import forget_cached_principals
from accesscontrol.apikeys.models import ServiceKey
from accesscontrol.apikeys.services import revoke_service_key
from accesscontrol.rbac import versions
from tests.factories import PASSWORD, SYSTEM, pat_for, service_key_for, unknown_key
from tests.support.api import api_call
from tests.support.db import failed_logins
from tests.support.pages import signed_in
from tests.support.throttling import (
    IP_A,
    IP_B,
    assert_login_throttled,
    limits,
    login_blocked,
    sign_in,
    whoami,
)


def fullwidth(text: str) -> str:
    """The same address in fullwidth letters and signs : NFKC folds it back."""
    return "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else c for c in text)


# --- 6: one normalisation for authentication, its throttle and its audit --------------------------


def test_fullwidth_variants_of_an_email_count_against_the_same_account(
    client, world, settings, clock
):
    limits(settings, login_account=(3, 900))
    victim = world.viewer.email
    variants = [
        fullwidth(victim),
        fullwidth(victim).upper(),
        f"  {fullwidth(victim[:3])}{victim[3:]}",
    ]
    assert {unicodedata.normalize("NFKC", v).strip().lower() for v in variants} == {victim}
    for n, variant in enumerate(variants):
        assert sign_in(client, variant, "wrong", ip=f"10.0.3.{n}").status_code == 400

    assert login_blocked(victim) is not None
    assert_login_throttled(sign_in(client, victim, PASSWORD, ip="10.0.3.9"), 900)
    assert_login_throttled(sign_in(client, fullwidth(victim), PASSWORD, ip="10.0.3.9"), 900)
    assert not signed_in(client)


def test_a_fullwidth_variant_signs_in_to_the_same_account_and_clears_its_count(
    client, world, settings, clock
):
    limits(settings, login_account=(3, 900))
    victim = world.viewer.email
    sign_in(client, victim, "wrong")
    sign_in(client, victim, "wrong")

    assert sign_in(client, fullwidth(victim), PASSWORD).status_code == 302
    assert client.session["_auth_user_id"] == str(world.viewer.pk)
    # The success cleared the account's count: three more failures are needed to lock it.
    client.logout()
    for _ in range(2):
        assert sign_in(client, victim, "wrong").status_code == 400
    assert login_blocked(victim) is None


def test_failed_sign_ins_with_a_fullwidth_email_are_in_the_organizations_audit_log(
    client, world, settings, clock
):
    sign_in(client, fullwidth(world.viewer.email), "wrong")

    event = failed_logins().get()
    assert event.organization_id == world.org.pk
    assert event.target_label == world.viewer.email


def test_accounts_are_stored_and_found_under_the_normalised_email(db):
    user = User.objects.create_user(fullwidth("Someone@Example.test"), password=PASSWORD)

    assert user.email == "someone@example.test"
    assert User.objects.get_by_natural_key(fullwidth("SOMEONE@example.test")) == user


# --- 7: reserve, then decide: a concurrent burst gets exactly `limit` evaluations ----------------

BURST = 30


def burst(send) -> list[int]:
    """`send(n)` from BURST threads released at once; the status codes, in order."""
    start = threading.Barrier(BURST)
    statuses = [None] * BURST

    def run(n):
        try:
            start.wait()
            statuses[n] = send(n)
        finally:
            connection.close()  # each thread's own connection, before the test database flush

    threads = [threading.Thread(target=run, args=(n,)) for n in range(BURST)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return statuses


def assert_ten_evaluated(statuses, refused, *, audited=False):
    """Exactly 10 of the burst were looked at and `refused`; the other 20 got 429 unseen. With
    `audited`, each password checked left its one audit row."""
    assert set(statuses) <= {refused, 429}
    assert statuses.count(refused) == 10
    if audited:
        assert failed_logins().count() == 10


@pytest.mark.django_db(transaction=True)
def test_a_burst_of_sign_ins_gets_exactly_the_account_limit_of_guesses(
    world, settings, clock, shared_cache
):
    limits(settings, login_account=(10, 900))
    victim = world.viewer.email

    statuses = burst(lambda n: sign_in(Client(), victim, "wrong", ip=f"10.0.4.{n}").status_code)

    assert_ten_evaluated(statuses, 400, audited=True)
    assert login_blocked(victim) is not None


@pytest.mark.django_db(transaction=True)
def test_a_burst_from_one_address_gets_exactly_the_ip_limit_of_guesses(
    world, settings, clock, shared_cache
):
    limits(settings, login_ip=(10, 900))

    statuses = burst(lambda n: sign_in(Client(), f"guess{n}@acme.test", "wrong").status_code)

    assert_ten_evaluated(statuses, 400, audited=True)


@pytest.mark.django_db(transaction=True)
def test_a_burst_of_wrong_passwords_at_the_sudo_page_gets_exactly_the_limit(
    world, settings, clock, shared_cache
):
    limits(settings, login_account=(10, 900))

    def confirm(n):
        client = Client()
        client.force_login(world.org_admin)
        return client.post("/account/confirm/", {"password": "wrong"}, REMOTE_ADDR=f"10.0.5.{n}")

    statuses = burst(lambda n: confirm(n).status_code)

    assert_ten_evaluated(statuses, 400, audited=True)


@pytest.mark.django_db(transaction=True)
def test_a_burst_of_key_guesses_from_one_address_gets_exactly_the_ip_limit(
    world, settings, clock, shared_cache
):
    limits(settings, key_ip=(10, 60))
    guesses = [unknown_key() for _ in range(BURST)]

    statuses = burst(lambda n: whoami(Client(), guesses[n]).status_code)

    assert_ten_evaluated(statuses, 401)


@pytest.mark.django_db(transaction=True)
def test_a_burst_with_one_failing_key_gets_exactly_the_key_limit(
    world, settings, clock, shared_cache
):
    limits(settings, key=(10, 60))
    raw = service_key_for(world.workspace, "Editor")
    revoke_service_key(actor=SYSTEM, key=ServiceKey.objects.get(name="Editor key"))

    statuses = burst(lambda n: whoami(Client(), raw, ip=f"10.0.6.{n}").status_code)

    assert_ten_evaluated(statuses, 401)


@pytest.mark.django_db(transaction=True)
def test_a_burst_of_good_requests_with_a_proven_key_is_never_throttled(
    world, settings, clock, shared_cache
):
    # Every request is cold here (no principal cache), as all are after an access change.
    settings.AUTHZ_CACHE = False
    limits(settings, key=(10, 60), key_ip=(10, 60))
    good = service_key_for(world.workspace, "Viewer")
    assert whoami(Client(), good).status_code == 200

    assert burst(lambda n: whoami(Client(), good).status_code) == [200] * BURST


def test_a_success_gives_its_attempt_back(client, world, settings, clock):
    # Only failures count: at a limit of 2, any number of successes between failures is fine.
    limits(settings, login_ip=(2, 900), key_ip=(2, 60), key=(2, 60))
    good = service_key_for(world.workspace, "Viewer")
    assert [whoami(client, good).status_code for _ in range(5)] == [200] * 5
    assert whoami(client, unknown_key()).status_code == 401
    assert [whoami(client, good).status_code for _ in range(5)] == [200] * 5
    assert whoami(client, unknown_key()).status_code == 401
    assert whoami(client, unknown_key()).status_code == 429

    sign_in(client, world.viewer.email, "wrong")
    assert sign_in(client, world.viewer.email, PASSWORD).status_code == 302
    client.logout()
    assert sign_in(client, world.viewer.email, "wrong").status_code == 400
    assert sign_in(client, world.viewer.email, "wrong").status_code == 429


def test_a_refused_attempt_is_not_counted_against_the_other_limit(client, world, settings, clock):
    # A blocked address cannot lock accounts out: its refused attempts leave their counts alone.
    limits(settings, login_ip=(2, 900), login_account=(3, 900))
    victim = world.viewer.email
    for _ in range(2):
        sign_in(client, f"someone-else@{victim.split('@')[1]}", "wrong", ip=IP_A)
    for _ in range(5):
        assert sign_in(client, victim, "wrong", ip=IP_A).status_code == 429

    assert sign_in(client, victim, PASSWORD, ip=IP_B).status_code == 302


# --- 11: a key proven valid is not refused for other keys' failures -------------------------------


def exhaust_ip(client, settings, ip=IP_A):
    """The address's key limit (3) used up by guesses; the next guess is refused."""
    for _ in range(3):
        assert whoami(client, unknown_key(), ip=ip).status_code == 401
    assert whoami(client, unknown_key(), ip=ip).status_code == 429


@pytest.mark.parametrize("authz_cache", [False, True])
def test_a_key_proven_valid_works_from_an_address_past_its_limit(
    client, world, settings, clock, authz_cache
):
    settings.AUTHZ_CACHE = authz_cache
    limits(settings, key_ip=(3, 60))
    good = service_key_for(world.workspace, "Viewer")
    assert whoami(client, good, ip=IP_A).status_code == 200  # proven
    exhaust_ip(client, settings, ip=IP_A)

    assert [whoami(client, good, ip=IP_A).status_code for _ in range(5)] == [200] * 5
    forget_cached_principals()  # as another process would see it: the proof is shared
    assert whoami(client, good, ip=IP_A, bearer=True).status_code == 200
    # ...and an unknown key from there is still refused unseen: no oracle for guessers.
    response = whoami(client, unknown_key(), ip=IP_A)
    assert response.status_code == 429
    assert response.json()["error"] == "too_many_requests"


def test_a_key_never_proven_is_refused_like_any_guess_from_an_address_past_its_limit(
    client, world, settings, clock
):
    # Looking it up would tell a guesser there which guess was right.
    limits(settings, key_ip=(3, 60))
    fresh = service_key_for(world.workspace, "Viewer")
    exhaust_ip(client, settings, ip=IP_A)

    assert whoami(client, fresh, ip=IP_A).status_code == 429
    assert whoami(client, fresh, ip=IP_B).status_code == 200
    assert whoami(client, fresh, ip=IP_A).status_code == 200  # proven now


def test_a_proven_key_that_fails_counts_against_its_address_again(client, world, settings, clock):
    limits(settings, key_ip=(3, 60), key=(3, 60))
    raw = service_key_for(world.workspace, "Editor")
    assert whoami(client, raw, ip=IP_A).status_code == 200
    revoke_service_key(actor=SYSTEM, key=ServiceKey.objects.get(name="Editor key"))

    assert whoami(client, raw, ip=IP_A).json()["error"] == "revoked_api_key"
    for _ in range(2):
        assert whoami(client, unknown_key(), ip=IP_A).status_code == 401
    assert whoami(client, unknown_key(), ip=IP_A).status_code == 429
    assert whoami(client, raw, ip=IP_A).status_code == 429  # no longer proven


def test_the_per_key_limit_still_applies_to_a_proven_key(client, world, settings, clock):
    limits(settings, key=(2, 60))
    raw = service_key_for(world.workspace, "Editor")
    assert whoami(client, raw).status_code == 200
    ServiceKey.objects.filter(name="Editor key").update(expires_at="2001-01-01T00:00:00Z")

    statuses = [whoami(client, raw, ip=f"10.0.7.{n}").status_code for n in range(4)]

    assert statuses == [401, 401, 429, 429]


def test_a_warm_proven_key_costs_one_cache_read_and_no_write_past_the_ip_limit(
    client, world, settings, clock, monkeypatch, django_assert_num_queries
):
    settings.AUTHZ_CACHE = True
    limits(settings, key_ip=(3, 60))
    good = service_key_for(world.workspace, "Viewer")
    for _ in range(2):  # the first learns the key's organization, the second caches
        assert whoami(client, good).status_code == 200
    exhaust_ip(client, settings)
    operations = []

    class CountingCache:
        """The real cache, noting each operation the key path asks of it."""

        def __getattr__(self, name):
            operations.append(name)
            return getattr(cache, name)

    for module in (authentication, throttle, versions):
        monkeypatch.setattr(module, "cache", CountingCache())
    with django_assert_num_queries(0):
        assert whoami(client, good).status_code == 200

    # The organization's version from the in-process cache (with Redis not even that: the
    # version is pushed to the process, tests/rbac/test_warm_path.py); no rate-limit counter.
    assert operations == ["get"]


# --- 14: turning personal access tokens off refuses the existing ones at once ---------------------


def set_tokens_allowed(world, allowed: bool):
    """The org admin flips the setting on the console's settings page."""
    admin = Client()
    admin.force_login(world.org_admin)
    data = {"plan": world.org.plan, "max_key_lifetime_days": ""}
    if allowed:
        data["allow_personal_access_tokens"] = "on"
    response = admin.post(f"/o/{world.org.slug}/settings/", data)
    assert response.status_code == 302, response.content


def assert_tokens_disabled(response):
    assert response.status_code == 403, response.content
    body = response.json()
    assert body["error"] == "personal_access_tokens_disabled"
    assert "turned off personal access tokens" in body["detail"]


@pytest.mark.parametrize("authz_cache", [False, True])
def test_turning_tokens_off_refuses_existing_tokens_on_their_next_request(
    client, world, settings, authz_cache
):
    settings.AUTHZ_CACHE = authz_cache
    token = pat_for(world.editor, world.org)
    service_key = service_key_for(world.workspace, "Viewer")
    for _ in range(2):  # warm: cached in this process when the principal cache is on
        assert api_call(client, "GET", "/auth/whoami", token).status_code == 200
        assert api_call(client, "GET", "/datasets", token).status_code == 200

    set_tokens_allowed(world, False)

    assert_tokens_disabled(api_call(client, "GET", "/auth/whoami", token))
    assert_tokens_disabled(api_call(client, "GET", "/datasets", token))
    assert_tokens_disabled(api_call(client, "GET", "/auth/whoami", token, bearer=True))
    assert_tokens_disabled(client.get("/datasets", headers={"X-API-Key": token}))  # SDK root
    assert api_call(client, "GET", "/datasets", service_key).status_code == 200

    set_tokens_allowed(world, True)
    assert api_call(client, "GET", "/auth/whoami", token).status_code == 200


def test_the_settings_change_moves_the_organizations_authorization_version(world):
    before = versions.current(world.org.pk)
    set_tokens_allowed(world, False)
    assert versions.current(world.org.pk) != before


def test_refused_tokens_of_a_disabled_organization_are_not_counted_as_guesses(
    client, world, settings, clock
):
    limits(settings, key_ip=(2, 60), key=(2, 60))
    token = pat_for(world.editor, world.org)
    set_tokens_allowed(world, False)

    for _ in range(5):
        assert_tokens_disabled(api_call(client, "GET", "/auth/whoami", token))


def test_the_settings_page_says_existing_tokens_are_refused(client, world):
    client.force_login(world.org_admin)
    body = client.get(f"/o/{world.org.slug}/settings/").content.decode()
    assert "existing tokens are refused" in body
