"""Fixtures of the rbac tests that need the real Redis (shared by several processes)."""

import uuid

import pytest

from accesscontrol.settings import cache_from_url
from tests.support.servers import REDIS_URL, redis_answers


@pytest.fixture
def shared_redis(settings, on_postgres):
    if not redis_answers():
        pytest.skip("Redis is not answering on 127.0.0.1:6379")
    prefix = f"test-immediate-{uuid.uuid4().hex[:12]}"
    settings.CACHES = {"default": {**cache_from_url(REDIS_URL), "KEY_PREFIX": prefix}}
    yield prefix
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    for key in client.scan_iter(f"{prefix}:*"):
        client.delete(key)
