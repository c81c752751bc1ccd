"""Authorization versions: one token per organization that moves on every change to access.

Anything cached about who may do what in an organization is stored with the version it was
computed under and used only while the organization's version is unchanged. The version lives in
the Django cache (Redis in production), so a change made through any process is seen by every
process on its very next request (ASVS 8.3.2).

Versions are random tokens, not counters: if the cache loses one, the replacement can never equal
a version some process still holds.

A warm request asks Redis nothing (ARCHITECTURE §9): Redis pushes every change of a version to
each process (RESP3 `CLIENT TRACKING ... BCAST` on the versions' prefix, one connection per
process), and the process counts the changes pushed for each organization. A cached result is
stored under that count as it was before the database was read (`before_read`, `snapshot` /
`since`) and trusted while the count is unchanged (`trusted`). Before the count is read, the
invalidations already delivered to the connection are applied: a non-blocking read of a local
socket, no round trip. A change committed after the read moves the version after the commit,
so its push moves the count and the result is not trusted again.

Why no process can use a result after the change's response returned: the writer sets the new
version and then makes one more round trip (`bump`); Redis sends a broadcast invalidation in
the same event-loop turn that ran the SET, before it reads the writer's next command, so by the
time the writer's request can answer, the invalidation is in every tracking connection's
receive buffer (on one host; across hosts it has left Redis first), and the next request
anywhere applies it before trusting anything.

Fail safe: if the connection is lost (Redis restarts, the connection is killed or breaks), the
process trusts nothing stored so far (a new session) and, until a new connection is tracking,
reads versions from Redis before the database, as without the channel. Silent network
partitions are detected by TCP keepalive on that connection. If Redis cannot be reached at all,
the version reads as None and nothing cached is used: every request reads the database (and
a change to access, which cannot move its version, is refused; see bump).
"""

import itertools
import logging
import os
import threading
import time
import uuid

import redis
from django.conf import settings
from django.core.cache import cache, caches
from django.core.cache.backends.redis import RedisCache
from django.db import transaction
from django.db.models.signals import post_delete, post_save
from django.utils import timezone

logger = logging.getLogger(__name__)

PREFIX = "authz:version:"
# Redis refused, broke or timed out (accesscontrol/unavailable.py answers 503 for the rest).
UNAVAILABLE = (redis.ConnectionError, redis.TimeoutError)


def key(organization_id) -> str:
    return f"{PREFIX}{organization_id}"


def current(organization_id) -> str | None:
    """The organization's version, made if the cache has none; None if Redis cannot be reached
    (then nothing is cached under it: every request reads the database until Redis is back)."""
    try:
        version = cache.get(key(organization_id))
        if version is None:
            cache.add(key(organization_id), uuid.uuid4().hex, None)
            version = cache.get(key(organization_id))
    except UNAVAILABLE:
        return None
    return version


def bump(organization_id) -> None:
    if organization_id is None:
        return
    name = key(organization_id)
    # Inside the change's transaction: if Redis cannot be told, this raises and the change is
    # rolled back (a 503), since a process that still reaches Redis would keep trusting what it
    # cached. Access does not change while Redis is away; reads go on from the database.
    cache.set(name, uuid.uuid4().hex, None)
    # Again once the change is committed: a request that read the old rows between the first
    # bump and the commit must not have its result trusted under the new version.
    transaction.on_commit(lambda: _set_and_wait(name))


def _set_and_wait(name) -> None:
    try:
        cache.set(name, uuid.uuid4().hex, None)
        # The barrier of the module's docstring: Redis reads this only after it has written the
        # SET's invalidations to every process tracking the versions.
        cache.get(name)
    except UNAVAILABLE:
        # The change is committed (a 503 now would misreport it) and the bump before the commit
        # went through. Redis was lost in between: a process whose channel broke with it trusts
        # nothing it cached. Only one that still reached Redis while this one could not, and
        # read the old rows between the two bumps, keeps them, until the next change or the
        # entry's five minutes.
        logger.warning("authorization version %s not moved again after commit: Redis lost", name)


# What this process knows without asking: with Redis, the channel's own count of the changes
# pushed to it per organization, within one connection's life (a "session").


def trusted(organization_id):
    """The organization's version as far as this process can tell without a round trip, to
    compare with the one a cached result was stored under; None if it cannot tell.

    With Redis: (session, changes pushed for this organization), None while the channel is down.
    With an in-process cache (one process, tests): the cache's version, which is no I/O either.
    """
    channel = _channel()
    if channel is None:
        return cache.get(key(organization_id))
    return channel.local(str(organization_id))


def before_read(organization_id):
    """The version to store a result under, read before the database is: what trusted() says
    if it can tell, else the shared cache's (one round trip)."""
    channel = _channel()
    version = channel.local(str(organization_id)) if channel is not None else None
    return version if version is not None else current(organization_id)


def snapshot():
    """Before a database read whose organization is not known yet; see since()."""
    channel = _channel()
    return channel.snapshot() if channel is not None else None


def since(snapshot, organization_id):
    """The organization's version as of snapshot(), if this process can vouch that nothing at
    all was pushed to it in between; else None (the result is then not trusted)."""
    channel = _channel()
    if channel is None or snapshot is None:
        return None
    return channel.since(snapshot, str(organization_id))


def forget_trusted() -> None:
    """Trust nothing seen so far (tests; the cache was emptied)."""
    for results in _results:
        results.clear()
    channel = _channels.get("current")
    if isinstance(channel, _Channel):
        with channel.lock:
            channel.new_session()


class Results:
    """Results kept in this process, each stored under its organization's version and used
    only while this process can tell, without a round trip, that the version is unchanged.

    The one mechanism for everything cached about access: API principals
    (apikeys/authentication.py) and the signed-in user's access on console pages
    (rbac/resolver.py). A caller reads `trusted(entry)`; on a miss it reads the version with
    before_read() (or snapshot()/since() when the organization is not known yet), then the
    database, and stores the result under that version with `remember`.
    """

    def __init__(self, size=10_000, seconds=300):
        self.size, self.seconds = size, seconds
        # key -> (organization id, version, stale after, result, valid until): `stale after` is
        # this process's monotonic clock (a bound on trust), `valid until` wall-clock time, the
        # earliest expiry of a time-bound grant the result depends on (None: no such grant).
        self.entries: dict = {}
        _results.append(self)

    def entry(self, key):
        return self.entries.get(key)

    def trusted(self, entry):
        """The entry's result if this process knows its organization's version is still the
        one it was computed under, without any network round trip; else None."""
        if entry is None or not settings.AUTHZ_CACHE:
            return None
        organization_id, version, stale_after, result, until = entry
        if version is None or time.monotonic() >= stale_after or _past(until):
            return None
        if trusted(organization_id) != version:
            return None
        return result

    @staticmethod
    def under(entry, version):
        """The entry's result if it was computed under `version`, the organization's version as
        just read (before_read); else None."""
        _, computed_under, stale_after, result, until = entry
        if version is None:  # Redis cannot say: nothing cached is used
            return None
        if computed_under == version and time.monotonic() < stale_after and not _past(until):
            return result
        return None

    def remember(self, key, organization_id, version, result, until=None) -> None:
        """Store `result` under `version`, read before the database was: never a later one.
        `until`: the instant a time-bound grant it was computed from expires; no process uses
        the result from then on, version or not (an expiry moves no version)."""
        if not settings.AUTHZ_CACHE:
            return
        if len(self.entries) >= self.size:
            self.entries.pop(next(iter(self.entries)), None)
        self.entries[key] = (
            organization_id,
            version,
            time.monotonic() + self.seconds,
            result,
            until,
        )

    def forget(self, key) -> None:
        self.entries.pop(key, None)

    def clear(self) -> None:
        self.entries.clear()


_results: list[Results] = []


def _past(until) -> bool:
    return until is not None and timezone.now() >= until


_channels: dict = {}
_sessions = itertools.count(1)
RETRY_SECONDS = 1.0  # after a failed connection, how long the database path is used before retrying


def _channel():
    """This process's channel, for the cache backend in use (tests swap it), or None without
    Redis. Checked on every request, so it compares identities before building anything; the
    cache's settings, not its backend object, which Django makes per thread."""
    config = settings.CACHES["default"]
    channel = _channels.get("current")
    pid = os.getpid()  # a forked child (gunicorn --preload) opens its own connection
    if channel is not None and channel.config is config and channel.pid == pid:
        return channel if isinstance(channel, _Channel) else None
    if channel is not None:
        channel.close()
        del _channels["current"]
    backend = caches["default"]
    if not isinstance(backend, RedisCache):
        _channels["current"] = _NoChannel(config, pid)
        return None
    location = config["LOCATION"]
    if not isinstance(location, str):
        location = location[0]
    ident = (
        location.split(",")[0],
        backend.make_key(PREFIX),
        pid,
        channel_name(backend.key_prefix),
    )
    channel = _channels["current"] = _Channel(ident, config)
    return channel


class _NoChannel:
    """Remembers that the cache in use is not Redis (see _channel)."""

    def __init__(self, config, pid):
        self.config, self.pid = config, pid

    def close(self):
        pass


def channel_name(key_prefix) -> str:
    """The Redis client name of the push connections of processes using this cache prefix."""
    return "accesscontrol-versions:" + "_".join(str(key_prefix).split())


class _Channel:
    """One RESP3 connection on which Redis pushes every change of a version (module doc).

    Versions seen here are (session, count of changes pushed for the organization): a session
    is one connection's life, unique in the process, so nothing stored under an earlier
    connection, or before a flush, is ever trusted again.
    """

    def __init__(self, ident, config):
        self.ident, self.config, self.pid = ident, config, ident[2]
        self.lock = threading.Lock()
        self.connection = None
        self.retry_at = 0.0
        self.new_session()

    def new_session(self):
        self.session = next(_sessions)
        self.changes: dict[str, int] = {}
        self.pushed = 0  # every change pushed in this session, whatever its organization

    # --- reading ------------------------------------------------------------------------------

    def local(self, organization_id):
        with self.lock:
            if not self._drain():
                return None
            return (self.session, self.changes.get(organization_id, 0))

    def snapshot(self):
        with self.lock:
            return (self.session, self.pushed) if self._drain() else None

    def since(self, snapshot, organization_id):
        with self.lock:
            if not self._drain() or snapshot != (self.session, self.pushed):
                return None
            return (self.session, self.changes.get(organization_id, 0))

    # --- the connection -----------------------------------------------------------------------

    def _drain(self) -> bool:
        """Apply every invalidation already delivered; False (nothing trusted) if down."""
        if self.connection is None:
            return self._connect()
        try:
            while self.connection.can_read(timeout=0):
                # A message that has begun to arrive is read to its end (socket timeout).
                self.connection.read_response(push_request=True)
        except (redis.RedisError, OSError):
            self._lost()
            return False
        return True

    def _connect(self) -> bool:
        if time.monotonic() < self.retry_at:
            return False
        location, prefix, _, name = self.ident
        kwargs = redis.connection.parse_url(location)
        connection_class = kwargs.pop("connection_class", redis.Connection)
        connection = connection_class(
            **kwargs,
            client_name=name,
            protocol=3,
            socket_timeout=2,
            socket_connect_timeout=2,
            socket_keepalive=True,
        )
        try:
            connection.connect()
            connection._parser.set_invalidation_push_handler(self._invalidated)
            connection.send_command("CLIENT", "TRACKING", "ON", "BCAST", "PREFIX", prefix)
            if connection.read_response() not in (b"OK", "OK"):
                raise redis.ConnectionError("CLIENT TRACKING was refused")
        except (redis.RedisError, OSError):
            connection.disconnect()
            self.retry_at = time.monotonic() + RETRY_SECONDS
            return False
        # Whatever changed while there was no channel was not pushed here: start from nothing.
        self.connection = connection
        self.new_session()
        return True

    def _lost(self):
        self.new_session()
        if self.connection is not None:
            self.connection.disconnect()
            self.connection = None

    def _invalidated(self, message):
        # [b"invalidate", [key, ...]], or [b"invalidate", None] when Redis was flushed.
        self.pushed += 1
        prefix = self.ident[1]
        try:
            for name in message[1]:
                name = name.decode() if isinstance(name, bytes) else str(name)
                organization_id = name[len(prefix) :]
                self.changes[organization_id] = self.changes.get(organization_id, 0) + 1
        except Exception:
            self.new_session()  # None (a flush), or a message we do not understand
        return message

    def close(self):
        if self.connection is not None:
            self.connection.disconnect()
            self.connection = None


# What moves a version. Each app registers its own access-bearing models in its AppConfig.ready
# (this module imports no app), saying which organization(s) a row belongs to.


def track(model, organizations_of, *, when=None) -> None:
    """Saving or deleting a `model` row moves the version of each organization it belongs to.

    `organizations_of(instance)` returns organization ids; `when(instance, **signal kwargs)`,
    if given, says whether a save matters at all (a sign-in saves last_login, not access).
    """

    def changed(sender, instance, **kwargs):
        if when is not None and not when(instance, **kwargs):
            return
        for organization_id in organizations_of(instance):
            bump(organization_id)

    uid = f"authz-version-{model._meta.label}"
    post_save.connect(changed, sender=model, dispatch_uid=uid, weak=False)
    post_delete.connect(changed, sender=model, dispatch_uid=f"{uid}-deleted", weak=False)
