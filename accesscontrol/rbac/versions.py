"""Authorization versions: one token per organization that moves on every change to access.

Anything cached about who may do what in an organization is stored with the version it was
computed under and used only while the organization's version is unchanged. The version lives in
the Django cache (Redis in production), so a change made through any process is seen by every
process on its very next request (ASVS 8.3.2).

Versions are random tokens, not counters: if the cache loses one, the replacement can never equal
a version some process still holds.

A warm request asks Redis nothing (ARCHITECTURE §9): each process keeps the versions it has read
(`trusted`), and Redis pushes every change of one to it (RESP3 `CLIENT TRACKING ... BCAST` on
the versions' prefix, one connection per process). Before a kept version is used, the
invalidations already delivered to that connection are applied: a non-blocking read of a local
socket, no round trip. Why no process can use a version after the change's response returned:
the writer sets the new version and then makes one more round trip (`bump`); Redis sends a
broadcast invalidation in the same event-loop turn that ran the SET, before it reads the
writer's next command, so by the time the writer's request can answer, the invalidation is in
every tracking connection's receive buffer (on one host; across hosts it has left Redis first),
and the next request anywhere reads it before trusting anything. A version is kept only if no
invalidation arrived while it was being read (`mark` / `learn`), so a read that raced a change
is never kept.

Fail safe: if the connection is lost (Redis restarts, the connection is killed or breaks), the
process forgets every kept version and trusts none until a new connection is tracking; versions
are then read from Redis again, as on a cold start. Silent network partitions are detected by
TCP keepalive on that connection.
"""

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

PREFIX = "authz:version:"


def key(organization_id) -> str:
    return f"{PREFIX}{organization_id}"


def current(organization_id, known: str | None = None) -> str:
    """The organization's version; `known` is one already read in a batch with other keys."""
    version = known if known is not None else cache.get(key(organization_id))
    if version is None:
        cache.add(key(organization_id), uuid.uuid4().hex, None)
        version = cache.get(key(organization_id))
    return version


def bump(organization_id) -> None:
    if organization_id is None:
        return
    name = key(organization_id)
    cache.set(name, uuid.uuid4().hex, None)
    # Again once the change is committed: a request that read the old rows between the first
    # bump and the commit must not have its result trusted under the new version.
    transaction.on_commit(lambda: _set_and_wait(name))


def _set_and_wait(name) -> None:
    cache.set(name, uuid.uuid4().hex, None)
    # The barrier of the module's docstring: Redis reads this only after it has written the
    # SET's invalidations to every process tracking the versions.
    cache.get(name)


# The versions this process has read, kept true by Redis pushing every change.


def trusted(organization_id) -> str | None:
    """The organization's version as this process knows it, asking Redis nothing.

    None when it is not known here (never read, changed since, or the channel is down): the
    caller then reads it from the cache, between mark() and learn(). With an in-process cache
    (one process, tests) the cache itself is read: that is no I/O either.
    """
    channel = _channel()
    if channel is None:
        return cache.get(key(organization_id))
    return channel.trusted(str(organization_id))


def mark():
    """Before a version is read from the cache: what learn() needs to know if it raced a change."""
    channel = _channel()
    return channel.mark() if channel is not None else None


def learn(organization_id, version, mark) -> None:
    """Keep a version read from the cache after mark(), unless a change arrived meanwhile."""
    channel = _channel()
    if channel is not None and version is not None:
        channel.learn(str(organization_id), version, mark)


def forget_trusted() -> None:
    """Forget every kept version (tests; the cache was emptied)."""
    channel = _channels.get("current")
    if isinstance(channel, _Channel):
        channel.reset()


_channels: dict = {}
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
    """One RESP3 connection on which Redis pushes every change of a version (module doc)."""

    def __init__(self, ident, config):
        self.ident, self.config, self.pid = ident, config, ident[2]
        self.lock = threading.Lock()
        self.connection = None
        self.known: dict[str, str] = {}
        self.changes = 0  # invalidations and resets seen; learn() keeps nothing read across one
        self.retry_at = 0.0

    # --- reading ------------------------------------------------------------------------------

    def trusted(self, organization_id):
        with self.lock:
            if not self._drain():
                return None
            return self.known.get(organization_id)

    def mark(self):
        with self.lock:
            return self.changes if self._drain() else None

    def learn(self, organization_id, version, mark):
        with self.lock:
            if mark is not None and mark == self.changes and self._drain() and mark == self.changes:
                self.known[organization_id] = version

    def reset(self):
        with self.lock:
            self.known.clear()
            self.changes += 1

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
        self.known.clear()
        self.changes += 1
        return True

    def _lost(self):
        self.known.clear()
        self.changes += 1
        if self.connection is not None:
            self.connection.disconnect()
            self.connection = None

    def _invalidated(self, message):
        # [b"invalidate", [key, ...]], or [b"invalidate", None] when Redis was flushed.
        self.changes += 1
        prefix = self.ident[1]
        try:
            for name in message[1]:
                name = name.decode() if isinstance(name, bytes) else str(name)
                self.known.pop(name[len(prefix) :], None)
        except Exception:
            self.known.clear()  # None (a flush), or a message we do not understand
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
