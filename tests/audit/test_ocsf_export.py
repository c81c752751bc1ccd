"""The audit log exported in OCSF: GET /api/v1/audit-logs/export and the console download.

Every line is checked against a JSON Schema of the class it claims, OCSF 1.7.0 API Activity
(6003), vendored in tests/audit/schemas/ (what LangSmith's audit logs answer in). The events come
from the services (real changes) and from bulk rows (volume, filters).
"""

import json
import pathlib

import jsonschema
import pytest
from django.db import transaction

from accesscontrol.apikeys.authentication import forget_cached_principals
from accesscontrol.apikeys.services import create_service_key, revoke_service_key
from accesscontrol.audit import ocsf
from accesscontrol.audit import services as audit
from accesscontrol.audit.models import AuditEvent
from accesscontrol.workspaces import services as workspaces
from tests.audit.test_log import FILTERS, LABEL, bulk_events, newest_first, queries_of, varied
from tests.factories import SYSTEM, pat_for, persona_statuses, service_key_for, system_role
from tests.support.api import api_call
from tests.support.pages import failed_sign_in, open_as

__all__ = ["varied"]  # a fixture, used by name

SCHEMA = json.loads(
    (pathlib.Path(__file__).parent / "schemas/ocsf-1.7.0-api_activity.schema.json").read_text()
)
VALIDATOR = jsonschema.Draft202012Validator(SCHEMA, format_checker=jsonschema.FormatChecker())
DOWNLOAD = "/o/acme/audit/export.ocsf.jsonl"
EXPORT = "/audit-logs/export"


def validated(lines: list[str]) -> list[dict]:
    """Each line parsed and checked against the class; the consistency rules the schema cannot
    state (type_uid = class_uid * 100 + activity_id) checked here."""
    events = []
    for line in lines:
        event = json.loads(line)
        errors = sorted(VALIDATOR.iter_errors(event), key=str)
        assert not errors, f"{line}\n" + "\n".join(e.message for e in errors)
        assert event["type_uid"] == event["class_uid"] * 100 + event["activity_id"]
        events.append(event)
    return events


def body_lines(response) -> list[str]:
    assert response.status_code == 200, response.content
    assert response["Content-Type"] == "application/x-ndjson"
    assert response["Content-Disposition"].endswith('.ocsf.jsonl"')
    text = b"".join(response.streaming_content).decode()
    assert text == "" or text.endswith("\n")
    return text.splitlines()


def export(client, key, **query):
    path = EXPORT + ("?" + "&".join(f"{k}={v}" for k, v in query.items()) if query else "")
    return api_call(client, "get", path, key)


def labels_of(events):
    return [
        e["unmapped"]["original_audit_log"]["target_label"]
        for e in events
        if LABEL.fullmatch(e["unmapped"]["original_audit_log"]["target_label"])
    ]


@pytest.fixture
def real_changes(world):
    """A workspace made, a key made and revoked, a failed sign-in: events of every kind of
    actor and activity, written by the services."""
    admin = world.org_admin
    ws = workspaces.create_workspace(actor=admin, organization=world.org, name="ocsf")
    key, _ = create_service_key(
        actor=admin,
        organization=world.org,
        workspace=ws,
        name="ocsf key",
        role=system_role("Viewer"),
    )
    revoke_service_key(actor=admin, key=key)
    with transaction.atomic():
        audit.record(SYSTEM, "login.failed", organization=world.org, target_label="x@acme.test")
    return ws


def test_every_line_of_a_real_log_validates_against_api_activity(
    client, world, real_changes, admin_key
):
    response = export(client, admin_key)
    events = validated(body_lines(response))
    rows = list(AuditEvent.objects.filter(organization=world.org).order_by("-created_at", "-id"))
    assert [e["metadata"]["uid"] for e in events] == [str(r.pk) for r in rows]
    by_action = {e["api"]["operation"]: e for e in events}
    created, revoked = by_action["workspace.created"], by_action["service_key.revoked"]
    assert (created["activity_id"], created["type_uid"]) == (1, 600301)
    assert (revoked["activity_id"], revoked["activity_name"]) == (4, "Delete")
    assert created["actor"]["user"] == {
        "uid": str(world.org_admin.pk),
        "name": world.org_admin.email,
        "type_id": 1,
        "type": "User",
    }
    assert created["status_id"] == 1 and created["severity_id"] == 1
    assert {"type": "workspace", "uid": str(real_changes.pk), "name": "ocsf"} in created[
        "resources"
    ]
    failed = by_action["login.failed"]
    assert (failed["status_id"], failed["status"], failed["severity_id"]) == (2, "Failure", 2)
    assert failed["actor"]["user"] == {"name": "system: test", "type_id": 3, "type": "System"}
    assert failed["src_endpoint"] == {"name": "accesscontrol"}  # no request, no address
    # The token this test's key is: made by the admin's request-less service call.
    assert any(e["api"]["operation"] == "personal_access_token.created" for e in events)


def test_the_original_row_is_kept_as_the_log_api_shows_it(client, world, real_changes, admin_key):
    (event,) = validated(body_lines(export(client, admin_key, action="service_key.revoked")))
    shown = api_call(client, "get", "/audit-logs?action=service_key.revoked", admin_key).json()
    (row,) = shown["events"]
    assert event["unmapped"]["original_audit_log"] == row
    assert event["time"] == int(AuditEvent.objects.get(pk=row["id"]).created_at.timestamp() * 1000)


def test_request_context_is_mapped(client, world, admin_key):
    failed_sign_in(client, "ocsf-agent", "req-ocsf-1")
    # A failed sign-in for an unknown address belongs to no organization: seen by nobody's export.
    assert not validated(body_lines(export(client, admin_key, action="login.failed")))
    with transaction.atomic():
        from accesscontrol.audit import context

        token = context.bind(context.RequestContext("2001:db8::7", "ocsf-agent", "req-ocsf-2"))
        try:
            audit.record(
                world.org_admin,
                "org_member.role_changed",
                organization=world.org,
                target_label="someone",
            )
        finally:
            context.reset(token)
    (event,) = validated(body_lines(export(client, admin_key, action="org_member")))
    assert event["src_endpoint"] == {"ip": "2001:db8::7"}
    assert event["http_request"] == {"user_agent": "ocsf-agent"}
    assert event["api"]["request"] == {"uid": "req-ocsf-2"}
    assert (event["activity_id"], event["type_name"]) == (3, "API Activity: Update")


@pytest.mark.parametrize(
    "breakage",
    [
        lambda e: e.pop("actor"),
        lambda e: e.pop("src_endpoint"),
        lambda e: e["api"].pop("operation"),
        lambda e: e.update(activity_id=5),
        lambda e: e.update(type_uid=600305),
        lambda e: e.update(class_uid=3001),
        lambda e: e.update(severity_id=7),
        lambda e: e.update(time="2026-12-01T00:00:00Z"),
        lambda e: e["metadata"].pop("version"),
        lambda e: e.update(src_endpoint={"ip": "not an address"}),
        lambda e: e.update(actor={"user": {"type_id": 1}}),
        lambda e: e.update(tenant="acme"),  # not an attribute of the class
    ],
)
def test_the_schema_refuses_what_the_class_does_not_allow(world, breakage):
    """The check above can fail: each breakage of a valid event is refused."""
    with transaction.atomic():
        row = audit.record(world.org_admin, "workspace.created", world.workspace)
    event = ocsf.event(AuditEvent.objects.select_related("workspace").get(pk=row.pk))
    event["src_endpoint"] = {"ip": "192.0.2.1"}
    assert not list(VALIDATOR.iter_errors(event))
    breakage(event)
    assert list(VALIDATOR.iter_errors(event))


@pytest.mark.parametrize(
    ("action", "activity"),
    [
        ("workspace.created", 1),
        ("org_member.added", 1),
        ("invitation.sent", 1),
        ("invitation.accepted", 1),
        ("service_key.legacy_imported", 1),
        ("access_review.started", 1),
        ("role.deleted", 4),
        ("workspace_member.removed", 4),
        ("personal_access_token.revoked", 4),
        ("invitation.cancelled", 4),
        ("audit.partition_dropped", 4),
        ("workspace_member.role_changed", 3),
        ("organization.ip_allow_list_changed", 3),
        ("role.updated", 3),
        ("workspace.renamed", 3),
        ("workspace.archived", 3),
        ("access_review.decided", 3),
        ("login.failed", 99),
        ("login.succeeded", 99),
        ("something.new", 99),
    ],
)
def test_activity_of_each_kind_of_action(action, activity):
    assert ocsf.activity_of(action) == activity


@pytest.mark.parametrize(("query", "expected"), FILTERS)
def test_the_api_export_applies_the_log_filters(client, world, varied, admin_key, query, expected):
    assert labels_of(validated(body_lines(export(client, admin_key, **query)))) == expected


@pytest.mark.parametrize(("query", "expected"), FILTERS[::3])
def test_the_console_download_applies_the_log_filters(client, world, varied, query, expected):
    client.force_login(world.org_admin)
    assert labels_of(validated(body_lines(client.get(DOWNLOAD, query)))) == expected


def test_the_first_and_last_days_there_are_are_dates_like_any_other(
    client, world, varied, admin_key
):
    query = {"since": "0001-01-01", "until": "9999-12-31"}
    events = validated(body_lines(export(client, admin_key, **query)))
    assert labels_of(events) == [f"evt-000{i}" for i in (6, 5, 4, 3, 2, 1, 0)]


def test_the_workspace_filter(client, world, varied, admin_key):
    events = validated(body_lines(export(client, admin_key, workspace=world.other_workspace.pk)))
    assert labels_of(events) == ["evt-0005", "evt-0004"]


def test_the_log_page_links_the_download_with_its_filters(client, world, varied):
    client.force_login(world.org_admin)
    body = client.get("/o/acme/audit/", {"actor": "alice"}).content.decode()
    assert f'href="{DOWNLOAD}?actor=alice"' in body


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"since": "yesterday"}, "since"),
        ({"workspace": "nope"}, "workspace"),
        ({"format": "csv"}, "format"),
        ({"cursor": "abc"}, "cursor"),  # the export has no pages: refused, not ignored
        ({"limit": "5"}, "limit"),
        ({"actor": "a", "colour": "red"}, "colour"),
    ],
)
def test_bad_or_unknown_parameters_are_a_422(client, world, admin_key, query, field):
    bulk_events(world.org, 2)
    response = export(client, admin_key, **query)
    assert response.status_code == 422, response.content
    body = response.json()
    # Unknown parameters are refused by the router's one check (api/router.py), bad values by
    # the schema.
    assert body["error"] in {"invalid", "validation_error", "unknown_parameter"}
    assert field in json.dumps(body["detail"]) + json.dumps(body.get("fields", {}))


def test_a_bad_filter_in_the_console_is_a_400_page_not_a_download(client, world):
    client.force_login(world.org_admin)
    response = client.get(DOWNLOAD, {"since": "yesterday"})
    assert response.status_code == 400
    assert "Use a date like" in response.content.decode()
    assert not response.streaming


@pytest.mark.parametrize("who", ["editor_pat", "workspace_admin_key"])
def test_the_api_export_needs_organization_manage(client, world, who):
    raw = {
        "editor_pat": lambda: pat_for(world.editor, world.org),
        "workspace_admin_key": lambda: service_key_for(world.workspace, "Admin"),
    }[who]()
    bulk_events(world.org, 3)
    response = export(client, raw)
    assert response.status_code == 403
    assert response.json()["required"] == "organization:manage"


@pytest.mark.parametrize(("persona", "status"), persona_statuses("org_admin"))
def test_only_organization_managers_download(client, world, persona, status):
    bulk_events(world.org, 3)
    response = open_as(client, world, persona, DOWNLOAD, status, "organization:manage")
    if status != 200:
        assert b"evt-" not in response.content


def test_a_globex_key_exports_only_globex_events(client, world):
    bulk_events(world.org, 5, actor_label="acme@acme.test")
    mine = bulk_events(world.other_org, 3, start=50, actor_label="gus@globex.test")
    raw = pat_for(world.outsider, world.other_org)
    events = validated(body_lines(export(client, raw)))
    assert {e["unmapped"]["original_audit_log"]["organization_id"] for e in events} == {
        str(world.other_org.pk)
    }
    assert labels_of(events) == newest_first(mine)
    assert labels_of(validated(body_lines(export(client, raw, workspace=world.workspace.pk)))) == []


# Pinned: the key (one statement) and the events (streamed, one statement per 1,000 rows with
# the iterator's chunks on PostgreSQL's server-side cursor, or one on SQLite).
EXPORT_QUERIES = 2


@pytest.mark.parametrize("n", [10, 1000])
def test_the_export_costs_the_same_at_10_and_1000_events(client, world, n):
    raw = pat_for(world.org_admin, world.org)
    export(client, raw)  # the first use records last_used_at
    bulk_events(world.org, n)
    forget_cached_principals()
    lines, queries = queries_of(lambda: body_lines(export(client, raw, actor="bulk")))
    assert len(validated(lines)) == n
    assert len(queries) == EXPORT_QUERIES, "\n".join(q["sql"] for q in queries.captured_queries)
