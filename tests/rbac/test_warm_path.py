"""A warm key request asks nothing of the network, and stops trusting when the channel is lost.

With Redis as the cache, each process keeps the authorization versions it has read and Redis
pushes every change of one to it (rbac/versions.py). These tests run against the real Redis:
the warm request sends no command at all; killing the push connection (`CLIENT KILL`) makes the
process forget what it trusted, so a change made while the channel was down is still refused.
"""

from contextlib import contextmanager
from unittest import mock

import pytest
import redis
from django.core.cache import cache

from accesscontrol.apikeys import services as keys
from accesscontrol.apikeys.models import ServiceKey
from accesscontrol.rbac import versions
from tests.factories import pat_for, service_key_for
from tests.support.api import api_call
from tests.support.servers import kill_channels

pytestmark = pytest.mark.django_db(transaction=True)


@contextmanager
def redis_commands():
    """Every command any redis-py connection of this process sends, counted at the socket."""
    sent = []
    real = redis.connection.AbstractConnection.send_packed_command

    def counting(self, command, *args, **kwargs):
        sent.append(command)
        return real(self, command, *args, **kwargs)

    with mock.patch.object(redis.connection.AbstractConnection, "send_packed_command", counting):
        yield sent


def forget_every_version():
    """A flush of the cache, then one more round trip, as versions._set_and_wait does after its
    SET: Redis reads the second command only after it has written the flush's invalidation to
    this process's tracking connection. Without it the next request could run before that push
    arrived and trust what it had cached (a flaky 0 queries, seen once in 4 runs)."""
    cache.clear()
    cache.get("after-the-flush")


def whoami(client, raw, tenant=None):
    return api_call(client, "GET", "/auth/whoami", raw, tenant=tenant)


def test_a_warm_request_sends_nothing_to_redis_and_no_sql(
    client, world, shared_redis, django_assert_num_queries
):
    service_key = service_key_for(world.workspace, "Editor")
    token = pat_for(world.editor, world.org)
    for raw, tenant in ((service_key, None), (token, world.workspace.pk), (token, None)):
        for _ in range(3):  # learn the organization, then cache, then warm
            assert whoami(client, raw, tenant).status_code == 200
        with redis_commands() as sent, django_assert_num_queries(0):
            assert whoami(client, raw, tenant).status_code == 200
        assert sent == []


def test_a_cold_request_is_one_statement_for_either_kind_of_key(
    client, world, shared_redis, django_assert_num_queries
):
    service_key = service_key_for(world.workspace, "Editor", org_scoped=True)
    token = pat_for(world.editor, world.org)
    for raw, tenant in (
        (service_key, world.workspace.pk),
        (token, world.workspace.pk),
        (token, None),
    ):
        assert whoami(client, raw, tenant).status_code == 200  # records last_used_at
        forget_every_version()
        with django_assert_num_queries(1):
            assert whoami(client, raw, tenant).status_code == 200


def test_a_change_is_refused_on_the_next_request_and_the_warm_path_comes_back(
    client, world, shared_redis
):
    raw = service_key_for(world.workspace, "Admin")
    other = service_key_for(world.workspace, "Viewer")
    for _ in range(3):
        assert whoami(client, raw).status_code == 200
        assert whoami(client, other).status_code == 200
    keys.revoke_service_key(actor=world.org_admin, key=ServiceKey.objects.get(name="Admin key"))
    assert whoami(client, raw).status_code == 401
    # The same organization's other key: read once from the database, then warm again.
    assert whoami(client, other).status_code == 200
    with redis_commands() as sent:
        assert whoami(client, other).status_code == 200
    assert sent == []


def test_a_lost_channel_is_not_trusted_until_resynchronised(client, world, shared_redis):
    raw = service_key_for(world.workspace, "Admin")
    for _ in range(3):
        assert whoami(client, raw).status_code == 200
    assert kill_channels(shared_redis) == 1
    # Changed while no invalidation can reach this process: the revocation's push is lost.
    keys.revoke_service_key(actor=world.org_admin, key=ServiceKey.objects.get(name="Admin key"))
    with redis_commands() as sent:
        assert whoami(client, raw).status_code == 401
    assert sent  # the version was read again, not trusted from before the loss


def test_a_lost_channel_costs_round_trips_until_it_is_back(client, world, shared_redis):
    raw = service_key_for(world.workspace, "Admin")
    for _ in range(3):
        assert whoami(client, raw).status_code == 200
    assert kill_channels(shared_redis) == 1
    with redis_commands() as sent:
        assert whoami(client, raw).status_code == 200
    assert sent  # not trusted: read from Redis (and the channel opened again)
    assert whoami(client, raw).status_code == 200
    with redis_commands() as sent:
        assert whoami(client, raw).status_code == 200
    assert sent == []  # resynchronised: warm again


def test_after_an_access_change_a_known_key_costs_one_statement_and_no_round_trip(
    client, world, shared_redis, django_assert_num_queries
):
    raw = service_key_for(world.workspace, "Editor")
    for _ in range(2):
        assert whoami(client, raw).status_code == 200
    versions.bump(world.org.pk)  # any change to access in the organization
    with redis_commands() as sent, django_assert_num_queries(1):
        assert whoami(client, raw).status_code == 200
    assert sent == []  # the push told this process the version moved; nothing to ask


def test_a_new_key_is_warm_from_its_second_request(
    client, world, shared_redis, django_assert_num_queries
):
    raw = service_key_for(world.workspace, "Editor")
    assert whoami(client, raw).status_code == 200  # first sight: rate limit read, key proven
    with redis_commands() as sent, django_assert_num_queries(0):
        assert whoami(client, raw).status_code == 200
    assert sent == []
