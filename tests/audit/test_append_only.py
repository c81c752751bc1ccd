import pytest
from django.db import DatabaseError, connection, transaction

from accesscontrol.audit import context
from accesscontrol.audit import services as audit
from accesscontrol.audit.models import AppendOnlyError, AuditEvent
from tests.factories import audit_event


@pytest.fixture
def event(world):
    return audit_event(world, after={"name": "production"})


def test_record_fills_every_column(world):
    token = context.bind(context.RequestContext("203.0.113.9", "curl/8", "req-42"))
    try:
        e = audit_event(
            world,
            "workspace_member.role_changed",
            before={"role": "Viewer"},
            after={"role": "Editor"},
            target_label="editor@acme.test",
        )
    finally:
        context.reset(token)
    e.refresh_from_db()
    assert (e.organization_id, e.workspace_id) == (world.org.pk, world.workspace.pk)
    admin, workspace = world.org_admin, world.workspace
    assert (e.actor_kind, e.actor_label, e.actor_user_id) == ("user", admin.email, admin.pk)
    target = (e.target_type, e.target_id, e.target_label)
    assert target == ("workspace", str(workspace.pk), "editor@acme.test")
    assert e.changes == {"before": {"role": "Viewer"}, "after": {"role": "Editor"}}
    assert (e.ip_address, e.user_agent, e.request_id) == ("203.0.113.9", "curl/8", "req-42")
    assert e.created_at is not None


def test_system_actor(db):
    with transaction.atomic():
        e = audit.record(None, "login.failed", target_label="x@example.test")
    assert (e.actor_kind, e.actor_label, e.actor_user_id) == ("system", "system", None)


def test_record_refuses_to_run_outside_the_change_transaction(transactional_db):
    with pytest.raises(RuntimeError, match="inside the transaction"):
        audit.record(None, "workspace.created", target_label="x")
    assert not AuditEvent.objects.exists()


def test_event_rolls_back_with_the_change(world):
    with pytest.raises(ZeroDivisionError), transaction.atomic():
        audit.record(world.org_admin, "workspace.created", world.workspace)
        1 / 0
    assert not AuditEvent.objects.exists()


def test_model_refuses_update_and_delete(event):
    event.action = "rewritten"
    with pytest.raises(AppendOnlyError):
        event.save()
    with pytest.raises(AppendOnlyError):
        event.delete()
    with pytest.raises(AppendOnlyError):
        AuditEvent.objects.filter(pk=event.pk).update(action="rewritten")
    with pytest.raises(AppendOnlyError):
        AuditEvent.objects.all().delete()
    assert AuditEvent.objects.get(pk=event.pk).action == "workspace.created"


def test_database_refuses_raw_update_and_delete_on_postgres(on_postgres, event):
    table = AuditEvent._meta.db_table
    for sql in (f"UPDATE {table} SET action = 'rewritten'", f"DELETE FROM {table}"):
        with (
            pytest.raises(DatabaseError, match="append-only"),
            transaction.atomic(),
            connection.cursor() as cursor,
        ):
            cursor.execute(sql)
    assert AuditEvent.objects.get(pk=event.pk).action == "workspace.created"


def test_events_outlive_what_they_describe(world, event):
    from accesscontrol.organizations import services as orgs

    membership = world.editor.org_memberships.get()
    orgs.remove_org_member(actor=world.org_admin, membership=membership)
    world.editor.delete()
    assert AuditEvent.objects.filter(pk=event.pk).exists()
    removed = AuditEvent.objects.get(action="org_member.removed")
    assert removed.target_label == world.editor.email
    assert removed.changes["before"] == {"org_role": "member", "workspaces": ["production"]}


def test_request_context_reaches_the_audit_row(client, db):
    response = client.post(
        "/login/",
        {"login": "nobody@example.test", "password": "wrong"},
        HTTP_USER_AGENT="pytest-agent",
        HTTP_X_REQUEST_ID="abc-123",
    )
    assert response.status_code == 400
    assert response["X-Request-Id"] == "abc-123"
    e = AuditEvent.objects.get(action="login.failed")
    assert (e.ip_address, e.user_agent, e.request_id) == ("127.0.0.1", "pytest-agent", "abc-123")
    assert "wrong" not in str(e.changes)


def test_unsafe_request_ids_are_replaced(client, db):
    response = client.get("/healthz", HTTP_X_REQUEST_ID="bad id\nwith newline")
    assert response["X-Request-Id"] != "bad id\nwith newline"
    assert len(response["X-Request-Id"]) == 32
