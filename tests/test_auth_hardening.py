"""Security review #12, findings 6, 7, 11 and 14: sign-in and key authentication hardening.

6  the per-account limit and the failed-sign-in audit see an email the way authentication does;
7  limits are reserved atomically (increment, then decide): a burst gets exactly `limit` guesses;
11 a key proven valid is not refused because other keys failed from the same address;
14 an organization that turns personal access tokens off refuses the existing ones at once.
"""

import unicodedata

from accesscontrol.accounts.models import User
from tests import test_throttling as throttling
from tests.factories import PASSWORD
from tests.test_throttling import (
    assert_login_throttled,
    failed_logins,
    limits,
    login_blocked,
    sign_in,
    signed_in,
)

# The throttle's frozen clock and the cache backends, shared with the throttling tests.
clock = throttling.clock
locmem_cache, redis_cache = throttling.locmem_cache, throttling.redis_cache


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
