import datetime
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

from accesscontrol.settings import cache_from_url, env_bool, env_date, env_list

ROOT = Path(__file__).resolve().parents[2]


def test_env_bool(monkeypatch):
    monkeypatch.setenv("X_FLAG", "yes")
    assert env_bool("X_FLAG", False) is True
    monkeypatch.setenv("X_FLAG", "0")
    assert env_bool("X_FLAG", True) is False
    monkeypatch.delenv("X_FLAG")
    assert env_bool("X_FLAG", True) is True
    monkeypatch.setenv("X_FLAG", "maybe")
    with pytest.raises(ImproperlyConfigured, match="X_FLAG"):
        env_bool("X_FLAG", False)


def test_env_date_and_list(monkeypatch):
    assert env_date("X_DATE", "2024-07-01") == datetime.date(2024, 7, 1)
    monkeypatch.setenv("X_DATE", "07/01/2024")
    with pytest.raises(ImproperlyConfigured, match="ISO date"):
        env_date("X_DATE", "2024-07-01")
    monkeypatch.setenv("X_LIST", " a.test, b.test ,,")
    assert env_list("X_LIST", []) == ["a.test", "b.test"]


def test_cache_url():
    assert cache_from_url("redis://127.0.0.1:6379/1")["BACKEND"].endswith("RedisCache")
    assert cache_from_url("locmem://")["BACKEND"].endswith("LocMemCache")
    with pytest.raises(ImproperlyConfigured, match="CACHE_URL"):
        cache_from_url("memcached://x")


def test_legacy_sunset_default(settings):
    assert datetime.date(2024, 7, 1) == settings.LEGACY_API_KEY_SUNSET


def _import_settings(**env):
    base = {k: v for k, v in os.environ.items() if k not in {"SECRET_KEY", "DEBUG"}}
    return subprocess.run(
        [sys.executable, "-c", "import accesscontrol.settings"],
        cwd=ROOT,
        env={**base, **env},
        capture_output=True,
        text=True,
        check=False,
    )


def test_no_secret_key_default_in_production():
    result = _import_settings(DEBUG="0")
    assert result.returncode != 0
    assert "SECRET_KEY is not set" in result.stderr
    assert _import_settings(DEBUG="1").returncode == 0
    assert _import_settings(DEBUG="0", SECRET_KEY="s3cret").returncode == 0


def test_bad_values_fail_loudly():
    result = _import_settings(DEBUG="1", LEGACY_API_KEY_SUNSET="soon")
    assert result.returncode != 0
    assert "LEGACY_API_KEY_SUNSET" in result.stderr


def test_the_redis_cache_keeps_one_client_per_pool():
    """Django makes a new redis.Redis per operation; ours reuses it (see accesscontrol/cache.py)."""
    from accesscontrol.cache import RedisCache

    redis_cache = RedisCache("redis://127.0.0.1:6379/11", {})
    client = redis_cache._cache.get_client(write=True)
    assert redis_cache._cache.get_client(write=False) is client
    assert redis_cache._cache.get_client("any-key", write=True) is client
