"""Fixtures of the rbac tests that need the real Redis (shared by several processes)."""

import uuid

import pytest
import redis
from django.db import connection

from accesscontrol.settings import cache_from_url
from tests.support.servers import REDIS_URL, redis_answers, two_servers


def _new_prefix():
    if not redis_answers():
        pytest.skip("Redis is not answering on 127.0.0.1:6379")
    return f"test-immediate-{uuid.uuid4().hex[:12]}"


def _delete_keys(prefix):
    client = redis.Redis.from_url(REDIS_URL)
    for key in client.scan_iter(f"{prefix}:*"):
        client.delete(key)


@pytest.fixture
def redis_prefix():
    """The cache key prefix of one test; a module that shares its servers (`servers` below)
    overrides this with `module_redis_prefix`, theirs."""
    return _new_prefix()


@pytest.fixture(scope="module")
def module_redis_prefix():
    prefix = _new_prefix()
    yield prefix
    _delete_keys(prefix)


@pytest.fixture
def shared_redis(settings, on_postgres, redis_prefix):
    settings.CACHES = {"default": {**cache_from_url(REDIS_URL), "KEY_PREFIX": redis_prefix}}
    yield redis_prefix
    # Every test starts from an empty Redis, servers kept across tests included: the versions
    # are random and each deletion is pushed to them, so nothing they cached is trusted after.
    _delete_keys(redis_prefix)


@pytest.fixture(scope="module")
def servers(django_db_setup, module_redis_prefix):
    """Two gunicorn processes (tests/support/servers.py) for every test of a module, about
    1.5 s of CPU each to start. Their database is the test database, which a transactional
    test empties after itself; their Redis keys go with `shared_redis` after each test."""
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL (set DATABASE_URL=postgres://...)")
    with two_servers(REDIS_URL, module_redis_prefix) as urls:
        yield urls
