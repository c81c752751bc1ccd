"""Redis or PostgreSQL not answering is a 503 with Retry-After, never a 500, and never lets a
credential through that was not proven (accesscontrol/unavailable.py, rbac/versions.py).

Redis here is an address nobody listens on (a port just closed): connections are refused, as
when Redis is down. The topology tests (tests/faults) stop a live deployment's Redis and restart
its PostgreSQL under traffic.
"""

import multiprocessing

import pytest
import redis
from django.test import Client

from accesscontrol import draining
from accesscontrol.audit.models import AuditEvent
from accesscontrol.rbac import services as rbac
from accesscontrol.settings import cache_from_url
from tests.factories import PASSWORD, service_key_for
from tests.faults.topology import free_port
from tests.support.api import api_call


def take_redis_down(settings):
    settings.CACHES = {
        "default": {**cache_from_url(f"redis://127.0.0.1:{free_port()}/0"), "KEY_PREFIX": "down"}
    }
    settings.AUTHZ_CACHE = True


def assert_503(response):
    assert response.status_code == 503
    assert response["Retry-After"] == "5"


def test_a_key_not_proven_here_gets_a_503_json_without_being_looked_up(
    client, world, settings, django_assert_num_queries
):
    key = service_key_for(world.workspace, "Viewer")
    take_redis_down(settings)
    with django_assert_num_queries(0):  # refused before the key is evaluated: no guess counts
        response = api_call(client, "GET", "/datasets", key)
    assert_503(response)
    assert response.json()["error"] == "service_unavailable"


def test_sign_in_is_refused_whatever_the_password_while_attempts_cannot_be_counted(world, settings):
    take_redis_down(settings)
    client = Client(raise_request_exception=False)
    for password in (PASSWORD, "a guess"):
        response = client.post("/login/", {"login": world.editor.email, "password": password})
        assert_503(response)
        assert b"Briefly unavailable" in response.content
        assert "_auth_user_id" not in client.session


def test_a_session_in_the_database_keeps_working(world, settings):
    client = Client(raise_request_exception=False)
    client.force_login(world.editor)
    take_redis_down(settings)
    response = client.get(f"/o/{world.org.slug}/w/{world.workspace.slug}/")
    assert response.status_code == 200


def test_a_change_to_access_is_refused_whole_when_its_version_cannot_move(world, settings):
    role = rbac.create_role(
        actor=world.org_admin, organization=world.org, name="Readers", permissions=["runs:read"]
    )
    audit_rows = AuditEvent.objects.count()
    take_redis_down(settings)
    with pytest.raises(redis.ConnectionError):
        rbac.update_role(actor=world.org_admin, role=role, permissions=["datasets:read"])
    role.refresh_from_db()
    assert role.permissions == ["runs:read"]
    assert AuditEvent.objects.count() == audit_rows


def test_healthz_says_draining_once_the_node_got_sigterm(client, db, monkeypatch):
    assert client.get("/healthz").status_code == 200
    monkeypatch.setattr(draining, "_flag", multiprocessing.RawValue("b", 0))
    draining.begin()
    response = client.get("/healthz")
    assert response.status_code == 503
    assert response.json() == {"status": "draining"}
