"""Reading the audit log: the console page, its CSV export and GET /api/v1/audit-logs.

Volume is made with AuditEvent.objects.bulk_create (the clock is set for the insert when a test
needs events on given days or sharing one timestamp); access changes come from the services.
"""

import csv
import datetime
import html
import io
import re
from unittest import mock

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from accesscontrol.apikeys.authentication import forget_cached_principals
from accesscontrol.audit import log
from accesscontrol.audit.models import AuditEvent
from accesscontrol.workspaces import services as workspaces
from tests.factories import (
    WorkspaceFactory,
    audit_event,
    pat_for,
    persona_statuses,
    service_key_for,
    system_role,
)
from tests.support.api import api_call
from tests.support.pages import open_as

PAGE = "/o/acme/audit/"
EXPORT = "/o/acme/audit/export.csv"
LABEL = re.compile(r"evt-\d{4,5}")
HTMX = {"HTTP_HX_REQUEST": "true"}
UTC = datetime.UTC


def at(day, hour=12):
    return datetime.datetime(2026, 1, day, hour, tzinfo=UTC)


def bulk_events(org, n, *, when=None, start=0, workspace=None, **fields):
    """n events labelled evt-0000..., all at `when` if given (else now, one by one)."""
    defaults = {
        "actor_kind": "user",
        "actor_label": "bulk@acme.test",
        "action": "workspace.renamed",
        "target_type": "workspace",
    }
    rows = [
        AuditEvent(
            organization=org,
            workspace=workspace,
            target_label=f"evt-{start + i:04d}",
            changes={"before": {"n": start + i}, "after": {"n": start + i + 1}},
            **(defaults | fields),
        )
        for i in range(n)
    ]
    if when is None:
        return AuditEvent.objects.bulk_create(rows)
    with mock.patch.object(timezone, "now", return_value=when):
        return AuditEvent.objects.bulk_create(rows)


def newest_first(events):
    return [
        e.target_label for e in sorted(events, key=lambda e: (e.created_at, e.pk), reverse=True)
    ]


def labels(response):
    return LABEL.findall(response.content.decode())


def load_more(response):
    """The htmx URL of the "Load older events" row, or None at the end."""
    body = response.content.decode()
    if "Load older events" not in body:
        return None
    (url,) = re.findall(r'<tr id="load-more">.*?hx-get="([^"]+)"', body, re.S)
    return html.unescape(url)


@pytest.fixture
def admin(client, world):
    client.force_login(world.org_admin)
    return client


# Who may read it ----------------------------------------------------------------------------


@pytest.mark.parametrize(("persona", "status"), persona_statuses("org_admin"))
@pytest.mark.parametrize("url", [PAGE, EXPORT])
def test_only_organization_managers_read_the_log(client, world, persona, status, url):
    bulk_events(world.org, 3)
    response = open_as(client, world, persona, url, status, "organization:manage")
    if status != 200:
        assert not labels(response)


def test_signed_out_visitors_are_sent_to_sign_in(client, world):
    for url in (PAGE, EXPORT):
        response = client.get(url)
        assert response.status_code == 302
        assert response["Location"].startswith("/login/")


def test_the_page_lists_events_newest_first_with_their_before_and_after(admin, world):
    events = bulk_events(world.org, 3, when=at(10)) + bulk_events(world.org, 2, start=3)
    bulk_events(world.other_org, 2, start=100)  # Globex's events never show here
    response = admin.get(PAGE)
    assert response.status_code == 200
    assert labels(response) == newest_first(events)
    body = response.content.decode()
    assert "<summary>Show</summary>" in body
    # before / after as a diff, not a Python dict
    assert '<del><span class="visually-hidden">was </span>4</del> → <ins>' in body
    assert "{&#x27;n&#x27;" not in body
    assert "Load older events" not in body


def test_a_real_change_shows_who_did_what_from_where(admin, world):
    response = admin.post(
        "/o/acme/w/staging/members/add/",
        {"email": world.viewer.email, "role": str(system_role("Viewer").pk)},
        HTTP_USER_AGENT="console-test",
    )
    assert response.status_code in (200, 302, 204), response.content
    event = AuditEvent.objects.get(action="workspace_member.added")
    assert (event.actor_label, event.workspace_id) == (
        world.org_admin.email,
        world.other_workspace.pk,
    )
    body = admin.get(PAGE).content.decode()
    assert f"{world.org_admin.display_name} added {world.viewer.display_name} to staging." in body
    assert "console-test" in body
    assert event.request_id in body


# Filters -----------------------------------------------------------------------------------


@pytest.fixture
def varied(world):
    """Events of different actors, actions, targets, workspaces and days."""
    org, prod, staging = world.org, world.workspace, world.other_workspace
    alice = bulk_events(org, 2, when=at(10), actor_label="alice@acme.test", workspace=prod)
    bob = bulk_events(
        org, 2, when=at(15), start=2, actor_label="bob@acme.test", action="role.created"
    )
    key = bulk_events(
        org,
        2,
        when=at(20),
        start=4,
        actor_label="service key 'ci'",
        actor_kind="service_key",
        action="workspace_member.added",
        workspace=staging,
    )
    late = bulk_events(org, 1, when=at(20, 23), start=6, target_type="user")
    return alice + bob + key + late


FILTERS = [
    ({"actor": "ALICE"}, ["evt-0001", "evt-0000"]),
    ({"actor": "service key"}, ["evt-0005", "evt-0004"]),
    ({"action": "workspace_member"}, ["evt-0005", "evt-0004"]),
    ({"action": "role.created"}, ["evt-0003", "evt-0002"]),
    ({"action": "created"}, []),  # "starts with", not "contains"
    ({"target": "evt-000"}, [f"evt-000{i}" for i in (6, 5, 4, 3, 2, 1, 0)]),
    ({"target": "EVT-0003"}, ["evt-0003"]),
    ({"since": "2026-01-15"}, ["evt-0006", "evt-0005", "evt-0004", "evt-0003", "evt-0002"]),
    ({"until": "2026-01-15"}, ["evt-0003", "evt-0002", "evt-0001", "evt-0000"]),
    ({"since": "2026-01-15", "until": "2026-01-15"}, ["evt-0003", "evt-0002"]),
    ({"since": "2026-01-20", "until": "2026-01-20"}, ["evt-0006", "evt-0005", "evt-0004"]),
    ({"since": "2026-01-21"}, []),
    ({"actor": "bulk", "since": "2026-01-20"}, ["evt-0006"]),
    # Surrounding spaces are not part of what is looked for (drift fixed: the API kept them).
    ({"actor": " ALICE "}, ["evt-0001", "evt-0000"]),
    ({"action": " role.created"}, ["evt-0003", "evt-0002"]),
]


@pytest.mark.parametrize(("query", "expected"), FILTERS)
def test_filters_on_the_page(admin, world, varied, query, expected):
    assert labels(admin.get(PAGE, query)) == expected
    assert labels(admin.get(PAGE, query, **HTMX)) == expected


@pytest.mark.parametrize("which", ["workspace", "other_workspace"])
def test_workspace_filter(admin, world, varied, which):
    workspace = getattr(world, which)
    expected = {"workspace": ["evt-0001", "evt-0000"], "other_workspace": ["evt-0005", "evt-0004"]}
    assert labels(admin.get(PAGE, {"workspace": str(workspace.pk)})) == expected[which]


def test_filter_form_keeps_the_chosen_values(admin, world, varied):
    body = admin.get(
        PAGE,
        {"actor": "alice", "action": "role.created", "workspace": str(world.workspace.pk)},
    ).content.decode()
    assert 'name="actor" value="alice"' in body
    assert '<option value="role.created" selected>' in body
    assert f'<option value="{world.workspace.pk}" selected>' in body
    # The action list offers exactly the actions this organization has.
    (select,) = re.findall(r'<select id="f-action" name="action">(.*?)</select>', body, re.S)
    offered = re.findall(r'<option value="([a-z_.]+)"', select)
    assert offered == ["role.created", "workspace.renamed", "workspace_member.added"]


@pytest.mark.parametrize(
    "query",
    [
        {"since": "yesterday"},
        {"until": "2026-13-45"},
        # Days as the API takes them, YYYY-MM-DD only: not the other forms ISO allows.
        {"since": "20261124"},
        {"until": "2026-W48-2"},
        {"since": "2026-01-15", "until": "soon"},
        {"workspace": "not-a-workspace-id"},
        {"cursor": "forged"},
    ],
)
def test_bad_filter_values_are_refused_with_a_message_and_list_nothing(admin, world, varied, query):
    # Refused, not ignored: never the unfiltered log under an error about the filter. 422, as a
    # form with errors, so htmx swaps the refusal into the results.
    for extra in ({}, HTMX):
        response = admin.get(PAGE, query, **extra)
        assert response.status_code == 422
        assert "audit-sentence" not in response.content.decode()  # no event listed
    body = admin.get(PAGE, query).content.decode()
    assert 'class="toast toast-error"' in body


def test_bad_date_says_which_format_to_use(admin, world, varied):
    body = admin.get(PAGE, {"since": "24/11/2026"}).content.decode()
    assert "Use a date like 2026-11-24." in body


# htmx ------------------------------------------------------------------------------------


def test_htmx_filtering_returns_only_the_results(admin, world, varied):
    response = admin.get(PAGE, {"actor": "alice"}, **HTMX)
    body = response.content.decode().strip()
    assert body.startswith('<div id="results">')
    assert "<html" not in body and "<form" not in body
    assert labels(response) == ["evt-0001", "evt-0000"]


def test_htmx_filtering_with_no_match_says_so(admin, world, varied):
    body = admin.get(PAGE, {"actor": "nobody"}, **HTMX).content.decode()
    assert body.strip().startswith('<div id="results">')
    assert "No events match." in body


# Keyset pagination -------------------------------------------------------------------------


def walk(client, first_query):
    """Every label shown by the page, then by each "Load older events" request."""
    response = client.get(PAGE, first_query)
    seen, pages = labels(response), 1
    url = load_more(response)
    while url:
        response = client.get(url, **HTMX)
        assert response.status_code == 200
        body = response.content.decode()
        assert "<table" not in body and "<html" not in body  # rows for the table body only
        seen += labels(response)
        pages += 1
        url = load_more(response)
    return seen, pages


def test_load_older_events_walks_every_event_exactly_once(admin, world):
    # Three bursts sharing one timestamp each (ties broken by id), between single events.
    events = (
        bulk_events(world.org, 30, when=at(5))
        + bulk_events(world.org, 1, when=at(6), start=30)
        + bulk_events(world.org, 48, when=at(7), start=31)
        + bulk_events(world.org, 26, when=at(8), start=79)
        + bulk_events(world.org, 20, start=105)
    )
    seen, pages = walk(admin, {})
    assert seen == newest_first(events)
    assert len(seen) == len(set(seen)) == 125
    assert pages == 3  # 50 + 50 + 25


def test_load_older_events_keeps_the_filters(admin, world):
    mine = bulk_events(world.org, 60, when=at(9), actor_label="alice@acme.test")
    bulk_events(world.org, 60, when=at(9), start=60, actor_label="bob@acme.test")
    seen, pages = walk(admin, {"actor": "alice"})
    assert seen == newest_first(mine)
    assert pages == 2


def test_a_cursor_without_htmx_renders_the_older_events_as_a_page(admin, world):
    events = bulk_events(world.org, 55)
    url = load_more(admin.get(PAGE))
    response = admin.get(url)
    assert "<html" in response.content.decode()
    assert labels(response) == newest_first(events)[50:]


def test_exactly_one_page_has_no_load_more(admin, world):
    bulk_events(world.org, log.PAGE_SIZE)
    assert load_more(admin.get(PAGE)) is None


# CSV export --------------------------------------------------------------------------------


def export(client, query=None):
    response = client.get(EXPORT, query or {})
    assert response.status_code == 200
    assert response.streaming
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert re.fullmatch(
        r'attachment; filename="audit-acme-\d{8}-\d{4}\.csv"', response["Content-Disposition"]
    )
    return list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))


def test_export_streams_a_header_and_the_filtered_set_only(admin, world, varied):
    bulk_events(world.other_org, 3, start=200, actor_label="alice@globex.test")
    header, *rows = export(admin, {"actor": "alice"})
    assert header == log.CSV_COLUMNS
    assert [r[header.index("target")] for r in rows] == ["evt-0001", "evt-0000"]
    first = dict(zip(header, rows[0], strict=True))
    assert first["organization"] == "Acme"
    assert first["workspace"] == "production"
    assert first["actor"] == "alice@acme.test"
    assert first["time"] == at(10).isoformat()
    assert first["before"] == '{"n": 1}' and first["after"] == '{"n": 2}'


@pytest.mark.parametrize(("query", "expected"), FILTERS)
def test_export_applies_the_page_filters(admin, world, varied, query, expected):
    _, *rows = export(admin, query)
    assert [r[log.CSV_COLUMNS.index("target")] for r in rows] == expected


def test_export_of_everything_has_every_event(admin, world):
    events = bulk_events(world.org, 130)
    _, *rows = export(admin)
    assert [r[log.CSV_COLUMNS.index("target")] for r in rows] == newest_first(events)


def test_export_with_a_bad_filter_does_not_export_what_was_not_asked_for(admin, world, varied):
    """A bad date must not silently drop the other filters and export everything."""
    response = admin.get(EXPORT, {"actor": "alice", "since": "not-a-date"})
    assert response.status_code < 500
    if response.status_code == 200:
        _, *rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
        actors = {r[log.CSV_COLUMNS.index("actor")] for r in rows}
        assert actors <= {"alice@acme.test"}, actors


def test_export_with_a_malformed_workspace_id_is_not_a_server_error(admin, world, varied):
    response = admin.get(EXPORT, {"workspace": "not-a-workspace-id"})
    assert response.status_code < 500


FORMULAS = ['=HYPERLINK("http://evil.test")', "+1+1", "-2-3", "@SUM(A1)", "\tx", "\rx"]


@pytest.mark.parametrize("formula", FORMULAS)
def test_export_neutralises_spreadsheet_formulas_in_labels(admin, world, formula):
    audit_event(world, "workspace.renamed", target_label=formula)
    bulk_events(world.org, 1, actor_label=formula, user_agent=formula)
    header, *rows = export(admin)
    for column in ("actor", "target", "user_agent"):
        for row in rows:
            value = row[header.index(column)]
            assert not value or value[0] not in "=+-@\t\r", (column, value)
    assert rows[0][header.index("actor")] == "'" + formula
    assert rows[1][header.index("target")] == "'" + formula


def test_export_neutralises_formulas_in_workspace_and_organization_names(admin, world):
    """Workspace and organization names are chosen by people too."""
    evil = workspaces.create_workspace(
        actor=world.org_admin, organization=world.org, name="=cmd|' /C calc'!A0", slug="evil"
    )
    assert AuditEvent.objects.filter(workspace=evil).exists()
    header, *rows = export(admin)
    for row in rows:
        for column in ("organization", "workspace"):
            value = row[header.index(column)]
            assert not value or value[0] not in "=+-@\t\r", (column, value)


# The API -----------------------------------------------------------------------------------


def api(client, key, **query):
    path = "/audit-logs"
    if query:
        path += "?" + "&".join(f"{k}={v}" for k, v in query.items())
    return api_call(client, "get", path, key)


def api_labels(response):
    assert response.status_code == 200, response.content
    return [e["target_label"] for e in response.json()["events"]]


@pytest.mark.parametrize(("query", "expected"), FILTERS)
def test_api_applies_the_same_filters_as_the_page(
    client, world, varied, admin_key, query, expected
):
    events = [e for e in api_labels(api(client, admin_key, **query)) if LABEL.fullmatch(e)]
    assert events == expected


def test_api_workspace_filter(client, world, varied, admin_key):
    response = api(client, admin_key, workspace=world.other_workspace.pk)
    assert api_labels(response) == ["evt-0005", "evt-0004"]


def test_api_event_shape(client, world, admin_key):
    role_change = {"before": {"role": "Viewer"}, "after": {"role": "Editor"}}
    audit_event(world, "workspace_member.role_changed", **role_change)
    body = api(client, admin_key, action="workspace_member").json()
    (event,) = body["events"]
    assert body["next_cursor"] is None
    assert event["organization_id"] == str(world.org.pk)
    assert event["workspace_id"] == str(world.workspace.pk)
    assert (event["actor_kind"], event["actor_label"]) == ("user", world.org_admin.email)
    assert event["changes"] == {"before": {"role": "Viewer"}, "after": {"role": "Editor"}}
    assert set(event) == {
        "id",
        "created_at",
        "organization_id",
        "workspace_id",
        "actor_kind",
        "actor_id",
        "actor_label",
        "action",
        "target_type",
        "target_id",
        "target_label",
        "changes",
        "ip_address",
        "user_agent",
        "request_id",
    }


def test_api_next_cursor_walks_every_event_exactly_once(client, world, admin_key):
    events = bulk_events(world.org, 23, when=at(3)) + bulk_events(world.org, 17, start=23)
    seen, cursor, pages = [], None, 0
    while True:
        query = {"limit": 7, "actor": "bulk"} | ({"cursor": cursor} if cursor else {})
        response = api(client, admin_key, **query)
        seen += api_labels(response)
        pages += 1
        cursor = response.json()["next_cursor"]
        if cursor is None:
            break
    assert seen == newest_first(events)
    assert pages == 6


@pytest.mark.parametrize(
    "cursor",
    [
        "forged",
        "Zm9v",  # "foo"
        "eHx5",  # "x|y"
        "MjAyNi0wMS0wMVQwMDowMDowMCswMDowMHxhYmM",  # "2026-01-01T00:00:00+00:00|abc"
        "////",
        "a" * 201,
    ],
)
def test_api_forged_cursor_is_a_422(client, world, admin_key, cursor):
    bulk_events(world.org, 3)
    response = api(client, admin_key, cursor=cursor)
    assert response.status_code == 422, response.content
    assert response.json()["error"] in {"invalid", "validation_error"}


@pytest.mark.parametrize(
    ("limit", "status", "count"),
    [
        (0, 422, None),
        (501, 422, None),
        (-1, 422, None),
        (1, 200, 1),
        (500, 200, 12),
        ("x", 422, None),
    ],
)
def test_api_limit_bounds(client, world, admin_key, limit, status, count):
    bulk_events(world.org, 12)
    response = api(client, admin_key, limit=limit, actor="bulk")
    assert response.status_code == status, response.content
    if count is not None:
        assert len(response.json()["events"]) == count
        assert (response.json()["next_cursor"] is None) == (count == 12)


@pytest.mark.parametrize(
    "query",
    [
        {"since": "yesterday"},
        {"workspace": "nope"},
        # pydantic's lax mode read these as Unix timestamps (1970-01-01, 1970-01-02) and
        # answered 200 for a day nobody asked about.
        {"until": "0"},
        {"since": "86400"},
        {"until": "2026-01-15T00:00:00"},
        {"until": "2026-02-30"},
    ],
)
def test_api_bad_filters_are_a_422(client, world, admin_key, query):
    response = api(client, admin_key, **query)
    assert response.status_code == 422, response.content
    assert next(iter(query)) in response.content.decode()


@pytest.mark.parametrize("query", [{"since": "0001-01-01"}, {"until": "9999-12-31"}])
def test_api_the_first_and_last_days_are_answered(client, world, varied, admin_key, query):
    response = api(client, admin_key, **query)
    assert response.status_code == 200, response.content
    assert response.json()["events"] == api(client, admin_key).json()["events"]


@pytest.mark.parametrize("who", ["editor_pat", "editor_service_key", "workspace_admin_key"])
def test_api_needs_organization_manage(client, world, who):
    raw = {
        "editor_pat": lambda: pat_for(world.editor, world.org),
        "editor_service_key": lambda: service_key_for(world.workspace, "Editor"),
        # A workspace key, even an Admin one, manages no organization.
        "workspace_admin_key": lambda: service_key_for(world.workspace, "Admin"),
    }[who]()
    bulk_events(world.org, 3)
    response = api(client, raw)
    assert response.status_code == 403
    body = response.json()
    assert body["error"] == "permission_denied"
    assert body["required"] == "organization:manage"
    assert "organization:manage" in body["detail"]
    assert "evt-" not in response.content.decode()


def test_api_org_scoped_admin_key_reads_the_log(client, world):
    bulk_events(world.org, 3)
    raw = service_key_for(world.workspace, "Admin", org_scoped=True)
    assert api_labels(api(client, raw, actor="bulk")) == ["evt-0002", "evt-0001", "evt-0000"]


def test_api_a_globex_key_sees_only_globex_events(client, world):
    bulk_events(world.org, 5, actor_label="acme@acme.test")
    mine = bulk_events(world.other_org, 3, start=50, actor_label="gus@globex.test")
    raw = pat_for(world.outsider, world.other_org)
    response = api(client, raw, limit=500)
    events = response.json()["events"]
    assert {e["organization_id"] for e in events} == {str(world.other_org.pk)}
    assert [e["target_label"] for e in events if LABEL.fullmatch(e["target_label"])] == (
        newest_first(mine)
    )
    # Even when it asks for an Acme workspace.
    assert api_labels(api(client, raw, workspace=world.workspace.pk)) == []


# Constant queries --------------------------------------------------------------------------

# Pinned: a change here is a change to each request's cost.
#   page: session, user, organization, access, the page of events (+1 row to know if there is
#     more; workspaces joined), the names of the people the events mention (sentences), the
#     distinct actions, the workspaces for the filter, sidebar organizations, sidebar
#     workspaces = 10
#   CSV: session, user, organization, access, the events (organization and workspace joined,
#     streamed) = 5
#   API: the key (with membership, user, organization, the default workspace and the role in
#     one statement), the events = 2
PAGE_QUERIES, CSV_QUERIES, API_QUERIES = 10, 5, 2


def many_events(world, n):
    third = WorkspaceFactory(organization=world.org, name="third", slug="third")
    spread = (world.workspace, world.other_workspace, third, None)
    for i, ws in enumerate(spread):
        count = len(range(i, n, len(spread)))
        bulk_events(world.org, count, start=i * n, workspace=ws)
    assert (
        AuditEvent.objects.filter(organization=world.org, actor_label="bulk@acme.test").count() == n
    )


def queries_of(request):
    with CaptureQueriesContext(connection) as queries:
        result = request()
    return result, queries


@pytest.mark.parametrize("n", [10, 1000])
def test_page_csv_and_api_cost_the_same_at_10_and_1000_events(admin, client, world, n):
    raw = pat_for(world.org_admin, world.org)
    api(client, raw)  # the first use records last_used_at; measure a steady-state request
    n -= 1  # the token's creation is the first event
    many_events(world, n)
    n += 1

    response, queries = queries_of(lambda: admin.get(PAGE))
    assert response.status_code == 200
    assert response.content.decode().count("<tr>") == min(n, log.PAGE_SIZE) + 1  # + the header
    assert len(queries) == PAGE_QUERIES, "\n".join(q["sql"] for q in queries.captured_queries)

    def csv_export():
        response = admin.get(EXPORT)
        return list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))

    forget_cached_principals()  # pinned as the page: the user's access not kept yet
    rows, queries = queries_of(csv_export)
    assert len(rows) == n + 1
    assert len(queries) == CSV_QUERIES, "\n".join(q["sql"] for q in queries.captured_queries)

    forget_cached_principals()  # pinned for a key whose principal is not cached yet
    response, queries = queries_of(lambda: api(client, raw, limit=500))
    assert len(response.json()["events"]) == min(n, 500)
    assert len(queries) == API_QUERIES, "\n".join(q["sql"] for q in queries.captured_queries)

    cursor = response.json()["next_cursor"]
    if cursor:
        forget_cached_principals()
        response, queries = queries_of(lambda: api(client, raw, limit=500, cursor=cursor))
        assert len(response.json()["events"]) == 500
        assert len(queries) == API_QUERIES
