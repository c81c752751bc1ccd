"""Rate limits on failed authentication (sign-in and API keys), counted in the shared cache.

Only failures are counted, each against the client's IP and against what was attacked (the
account's email, or the presented key), so a flood of bad keys from one client never slows
another tenant's good traffic. Counters are fixed windows in the Django cache: Redis in
production, so every app process sees the same counts; `incr` is atomic there.

An attempt is reserved (`reserve`: increment, then decide on the count the increment returned)
before the credential is looked at, never checked first and counted afterwards: concurrent
guesses each get their own number, so a burst gets exactly `attempts` evaluations. An attempt
that turns out not to be a failure (a success, a bad workspace selection) is given back.
"""

import contextlib
import hashlib
import time
from dataclasses import dataclass

from django.conf import settings
from django.core.cache import cache


@dataclass(frozen=True)
class Limit:
    scope: str
    attempts: int
    window: int  # seconds


def limit(scope: str) -> Limit:
    attempts, window = settings.THROTTLES[scope]
    return Limit(scope, attempts, window)


def client_ip(request) -> str:
    """The caller's address: REMOTE_ADDR, or the one the trusted proxies in front of us saw."""
    hops = settings.TRUSTED_PROXY_COUNT
    forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
    if hops and forwarded:
        addresses = [a.strip() for a in forwarded.split(",") if a.strip()]
        if len(addresses) >= hops:
            return addresses[-hops]
    return request.META.get("REMOTE_ADDR") or "unknown"


def hashed(ident: str) -> str:
    """What a cache key may hold of an email or a key: never the thing itself."""
    return hashlib.sha256(ident.encode()).hexdigest()[:32]


def _counter(rule: Limit, ident: str, now: float) -> tuple[str, int]:
    name = hashed(ident)
    window = int(now // rule.window)
    retry_after = rule.window - int(now % rule.window)
    return f"throttle:{rule.scope}:{name}:{window}", retry_after


def counters(*checks: tuple[Limit, str]) -> list[tuple[str, Limit, int]]:
    """(cache key, limit, seconds left in the window) for each check, read with get_many."""
    now = time.time()
    result = []
    for rule, ident in checks:
        key, retry_after = _counter(rule, ident, now)
        result.append((key, rule, retry_after))
    return result


def over_limit(current: list[tuple[str, Limit, int]], counts: dict) -> int | None:
    """Seconds until the client may try again, or None if no limit is reached."""
    waits = [wait for key, rule, wait in current if counts.get(key, 0) >= rule.attempts]
    return max(waits) if waits else None


def blocked(*checks: tuple[Limit, str]) -> int | None:
    current = counters(*checks)
    return over_limit(current, cache.get_many([key for key, _, _ in current]))


def _increment(key: str, rule: Limit) -> int:
    cache.add(key, 0, rule.window + 1)
    try:
        return cache.incr(key)
    except ValueError:  # expired between add and incr: this attempt opens a new window
        cache.set(key, 1, rule.window + 1)
        return 1


class Reservation:
    """Attempts taken from some limits; `retry_after` is set when one of them was exhausted."""

    def __init__(self, keys: list[str], retry_after: int | None = None):
        self.keys, self.retry_after = keys, retry_after

    def release(self) -> None:
        """Give the attempts back: what was attempted turned out not to be a failure."""
        for key in self.keys:
            # ValueError: the window is over, there is nothing left to give back.
            with contextlib.suppress(ValueError):
                cache.decr(key)
        self.keys = []


def reserve(*checks: tuple[Limit, str]) -> Reservation:
    """Take one attempt from each limit before the credential is evaluated.

    The count returned by the atomic increment decides: past a limit the attempt is refused and
    given back at once (a refused attempt is neither evaluated nor counted). Otherwise it stays
    counted unless the caller releases it.
    """
    now = time.time()
    keys, waits = [], []
    for rule, ident in checks:
        key, retry_after = _counter(rule, ident, now)
        keys.append(key)
        if _increment(key, rule) > rule.attempts:
            waits.append(retry_after)
    reservation = Reservation(keys)
    if waits:
        reservation.release()
        reservation.retry_after = max(waits)
    return reservation


def record_failure(*checks: tuple[Limit, str]) -> None:
    """Count a failure that needs no decision (the caller already let the attempt through)."""
    now = time.time()
    for rule, ident in checks:
        _increment(_counter(rule, ident, now)[0], rule)


def forget(rule: Limit, ident: str) -> None:
    """A successful sign-in clears its account's count (never the IP's)."""
    cache.delete(_counter(rule, ident, time.time())[0])
