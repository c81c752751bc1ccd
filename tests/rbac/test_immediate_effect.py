"""Access changes take effect on the very next request, on every process (ASVS 8.3.2).

Two real server processes (gunicorn, one worker each) share PostgreSQL and Redis, as two app
nodes behind a load balancer would. Each caches API principals in memory; the authorization
version in Redis, whose every change Redis pushes to each process (rbac/versions.py), is what
tells them a cached principal is out of date. The control test runs the
same scenario with a per-process cache and shows the stale answer this design exists to prevent,
so the main test could fail if the versions stopped being shared.
"""

import uuid

import pytest
from django.db import connection

from accesscontrol.apikeys import services as keys
from accesscontrol.apikeys.models import ServiceKey
from accesscontrol.organizations import services as organizations
from accesscontrol.rbac import services as rbac
from accesscontrol.workspaces import services as workspaces
from accesscontrol.workspaces.models import WorkspaceMembership
from tests.factories import pat_for, service_key_for, system_role
from tests.support.servers import call, two_servers

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def redis_prefix(module_redis_prefix):
    return module_redis_prefix  # that of the servers the module's tests share (conftest.py)


def new_dataset(base, key, tenant=None):
    return call(base, "POST", "/datasets", key, tenant, {"name": f"ds-{uuid.uuid4().hex[:10]}"})


def warm(urls, request):
    """Three requests per process: the last ones are served from each process's cache."""
    for base in urls:
        for _ in range(3):
            status, body = request(base)
            assert status in (200, 201), body


def everywhere(urls, request):
    return [request(base)[0] for base in urls]


def test_every_change_is_seen_by_both_processes_on_the_next_request(servers, world, shared_redis):
    ws = world.workspace
    editor_pat = pat_for(world.editor, world.org)
    admin_pat = pat_for(world.workspace_admin, world.org)
    admin_key = service_key_for(ws, "Admin")
    writers = rbac.create_role(
        actor=world.org_admin,
        organization=world.org,
        name="Dataset writers",
        permissions=["datasets:read", "datasets:create", "workspaces:read"],
    )
    writer_key = service_key_for(ws, "Dataset writers")
    org_admin_pat = pat_for(world.org_admin, world.org)

    urls = servers
    # 1. A role change: Editor -> Viewer.
    warm(urls, lambda base: new_dataset(base, editor_pat, ws.pk))
    membership = WorkspaceMembership.objects.get(workspace=ws, org_membership__user=world.editor)
    workspaces.change_workspace_role(
        actor=world.org_admin, membership=membership, role=system_role("Viewer")
    )
    assert everywhere(urls, lambda base: new_dataset(base, editor_pat, ws.pk)) == [403, 403]

    # 2. A membership removal.
    warm(urls, lambda base: call(base, "GET", "/datasets", admin_pat, ws.pk))
    membership = WorkspaceMembership.objects.get(
        workspace=ws, org_membership__user=world.workspace_admin
    )
    workspaces.remove_workspace_member(actor=world.org_admin, membership=membership)
    statuses = everywhere(urls, lambda base: call(base, "GET", "/datasets", admin_pat, ws.pk))
    assert statuses == [403, 403]

    # 3. A key revocation.
    warm(urls, lambda base: call(base, "GET", "/datasets", admin_key))
    key = ServiceKey.objects.get(workspace=ws, name="Admin key")
    keys.revoke_service_key(actor=world.org_admin, key=key)
    assert everywhere(urls, lambda base: call(base, "GET", "/datasets", admin_key)) == [
        401,
        401,
    ]

    # 4. A role edit: the custom role loses datasets:create.
    warm(urls, lambda base: new_dataset(base, writer_key))
    rbac.update_role(
        actor=world.org_admin, role=writers, permissions=["datasets:read", "workspaces:read"]
    )
    assert everywhere(urls, lambda base: new_dataset(base, writer_key)) == [403, 403]

    # 5. A deactivated user: their tokens stop.
    warm(urls, lambda base: call(base, "GET", "/datasets", org_admin_pat, ws.pk))
    world.org_admin.is_active = False
    world.org_admin.save()
    statuses = everywhere(urls, lambda base: call(base, "GET", "/datasets", org_admin_pat, ws.pk))
    assert statuses == [401, 401]


def test_an_ip_allow_list_change_is_enforced_by_both_processes_on_the_next_request(
    servers, world, shared_redis
):
    """The servers see every request from 127.0.0.1 (no trusted proxy)."""
    token = pat_for(world.editor, world.org)
    key = service_key_for(world.workspace, "Viewer")
    whoami = [
        lambda base: call(base, "GET", "/auth/whoami", token),
        lambda base: call(base, "GET", "/auth/whoami", key),
    ]
    urls = servers
    for request in whoami:
        warm(urls, request)
    organizations.set_ip_allow_list(
        actor=world.org_admin, organization=world.org, ip_allow_list=["10.0.0.0/8", "::1"]
    )
    for request in whoami:
        answers = [request(base) for base in urls]
        assert [status for status, _ in answers] == [403, 403]
        assert {body["address"] for _, body in answers} == {"127.0.0.1"}
    organizations.set_ip_allow_list(
        actor=world.org_admin, organization=world.org, ip_allow_list=["127.0.0.0/8"]
    )
    for request in whoami:
        assert everywhere(urls, request) == [200, 200]
    keys.set_service_key_ip_allow_list(
        actor=world.org_admin,
        key=ServiceKey.objects.get(workspace=world.workspace, name="Viewer key"),
        ip_allow_list=["2001:db8::/32"],
    )
    assert everywhere(urls, whoami[1]) == [403, 403]
    assert everywhere(urls, whoami[0]) == [200, 200]


def test_control_without_a_shared_cache_the_other_process_would_answer_stale(world, settings):
    """Why the version must live in Redis: with per-process caches a revoked key still works."""
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL (set DATABASE_URL=postgres://...)")
    admin_key = service_key_for(world.workspace, "Admin")
    with two_servers("locmem://", "control") as urls:
        warm(urls, lambda base: call(base, "GET", "/datasets", admin_key))
        key = ServiceKey.objects.get(workspace=world.workspace, name="Admin key")
        keys.revoke_service_key(actor=world.org_admin, key=key)
        assert everywhere(urls, lambda base: call(base, "GET", "/datasets", admin_key)) == [
            200,
            200,
        ]
