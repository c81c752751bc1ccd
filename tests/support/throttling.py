"""The throttle under test: its clock frozen, its limits shrunk, its cache backends, and the
requests that count against it (sign-ins and API keys).

The fixtures here (`clock`, `locmem_cache`, `redis_cache`, `shared_cache`) are a pytest plugin
of tests/conftest.py, so every test module may ask for them.
"""

import time
import uuid
from types import SimpleNamespace

import pytest
from django.core.cache import cache

from accesscontrol import throttle

# 1_800_000_000 is a multiple of both windows used below (60 s and 900 s): START sits 5 seconds
# into a window, so Retry-After is exactly window - 5.
WINDOW_START = 1_800_000_000.0
START = WINDOW_START + 5

IP_A, IP_B = "203.0.113.10", "198.51.100.20"


@pytest.fixture
def clock(monkeypatch):
    """The throttle's clock only: frozen at START; `clock.now = None` lets real time run."""
    state = SimpleNamespace(now=START)
    monkeypatch.setattr(
        throttle,
        "time",
        SimpleNamespace(time=lambda: time.time() if state.now is None else state.now),
    )
    return state


def limits(settings, **scopes):
    """Small limits for the scopes named (login_ip=(3, 900) ...), generous ones for the others."""
    generous = {
        "login-ip": (1000, 900),
        "login-account": (1000, 900),
        "key-ip": (1000, 60),
        "key": (1000, 60),
    }
    settings.THROTTLES = {**generous, **{name.replace("_", "-"): v for name, v in scopes.items()}}


def sign_in(client, email, password, ip=IP_A, **extra):
    return client.post("/login/", {"login": email, "password": password}, REMOTE_ADDR=ip, **extra)


def whoami(client, key, ip=IP_A, *, tenant=None, bearer=False, **extra):
    headers = {"Authorization": f"Bearer {key}"} if bearer else {"X-API-Key": key}
    if tenant is not None:
        headers["X-Tenant-Id"] = str(tenant)
    return client.get("/api/v1/auth/whoami", headers=headers, REMOTE_ADDR=ip, **extra)


def assert_login_throttled(response, window):
    assert response.status_code == 429
    assert 1 <= int(response["Retry-After"]) <= window
    assert "Too many failed sign-in attempts. Try again in" in response.content.decode()
    assert response.templates[0].name == "accounts/login.html"


def assert_api_throttled(response, window):
    assert response.status_code == 429, response.content
    body = response.json()
    assert body["error"] == "too_many_requests"
    assert "retry in" in body["detail"]
    assert 1 <= int(response["Retry-After"]) <= window


def login_blocked(email, ip=IP_A):
    """What the sign-in form asks the throttle before it looks at a password (views.login_view)."""
    return throttle.blocked(
        (throttle.limit("login-ip"), ip),
        (throttle.limit("login-account"), email.strip().lower()),
    )


REDIS_URL = "redis://127.0.0.1:6379/15"


def one_cache(backend, location, **options) -> dict:
    """CACHES holding the default cache alone."""
    return {"default": {"BACKEND": backend, "LOCATION": location, **options}}


@pytest.fixture
def redis_cache(settings):
    """The Django cache on Redis (db 15, a prefix of our own, removed afterwards)."""
    redis = pytest.importorskip("redis")
    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=0.5).ping()
    except redis.RedisError as exc:
        pytest.skip(f"needs Redis at {REDIS_URL}: {exc}")
    prefix = f"test-throttle-{uuid.uuid4().hex}"
    settings.CACHES = one_cache("accesscontrol.cache.RedisCache", REDIS_URL, KEY_PREFIX=prefix)
    client = redis.Redis.from_url(REDIS_URL)

    def stored_keys():
        return [k.decode() for k in client.scan_iter(match=f"{prefix}:*")]

    yield SimpleNamespace(names=stored_keys)
    for key in stored_keys():
        client.delete(key)


@pytest.fixture
def locmem_cache(settings):
    locmem = "django.core.cache.backends.locmem.LocMemCache"
    settings.CACHES = one_cache(locmem, f"test-throttle-{uuid.uuid4().hex}")
    yield SimpleNamespace(names=lambda: list(cache._cache))
    cache.clear()


@pytest.fixture(params=["locmem", "redis"])
def shared_cache(request):
    """The same test on each cache backend: the counters must hold on both."""
    return request.getfixturevalue(f"{request.param}_cache")
