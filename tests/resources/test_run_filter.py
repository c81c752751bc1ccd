"""LangSmith's run filter language and the rest of POST /runs/query and POST /runs/stats.

The parser is tested on its own; everything else goes through the API against a seeded set of
traces, asserting exactly which runs come back (never just a status), that a malformed filter
or a field we cannot honour is a 422 naming it, that another workspace's runs and feedback never
match, and that the runs are read with one SQL query whatever the filter.
"""

import contextlib
import datetime
import uuid

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from accesscontrol.resources import models, run_filter, services
from tests.api.test_langsmith_sdk import sdk  # noqa: F401  (the live-server SDK fixture)
from tests.factories import SYSTEM, RoleFactory, service_key_for
from tests.support.api import api_call

T0 = datetime.datetime(2031, 3, 1, 12, 0, tzinfo=datetime.UTC)
SECOND = datetime.timedelta(seconds=1)


# ---------------------------------------------------------------------------------------------
# The parser


@pytest.mark.parametrize(
    "text",
    [
        'eq(name, "extractor")',
        "eq(name, 'single quoted')",
        'and(gt(start_time, "2023-07-15T12:34:56Z"), or(neq(error, null), '
        'and(eq(feedback_key, "Correctness"), eq(feedback_score, 0.0))))',
        'and(or(has(tags, "experimental"), has(tags, "beta")), gt(latency, 2))',
        'in(run_type, ["llm", "chain"])',
        'search("image classification")',
        "and(eq(metadata_key,'test_run'),eq(metadata_value,'x'))",
        "not(eq(is_root, true))",
        '  eq( name , "spaced" )  ',
    ],
)
def test_parses_langsmiths_examples(text):
    tree = run_filter.parse(text)
    assert isinstance(tree, run_filter.Call)


def test_the_tree_keeps_values_typed():
    tree = run_filter.parse('and(gt(latency, 2.5), eq(is_root, true), in(name, ["a", "b\\"c"]))')
    latency, root, names = tree.args
    assert latency.args == (run_filter.Attr("latency", 7), run_filter.Lit(2.5, 16))
    assert root.args[1].value is True
    assert [item.value for item in names.args[1].items] == ["a", 'b"c']


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('eq(name, "a"', "the filter ends too early at character 13"),
        ('eq(name "a")', "expected ',' or ')', found '\"a\"' at character 9"),
        ('eq(name, "a") and eq(name, "b")', "unexpected 'and' after the end of the filter"),
        ('name = "a"', "unexpected '='"),
        ('"a"', "expected a function such as eq(...), found '\"a\"' at character 1"),
        ("eq(name, @)", "unexpected '@' at character 10"),
        ("", "is empty"),
        ("and(" * 40 + ")" * 40, "nests deeper than 32 levels"),
    ],
)
def test_malformed_filters_say_where(text, message):
    with pytest.raises(run_filter.FilterError) as info:
        run_filter.parse(text)
    assert message in str(info.value)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('eq(nme, "a")', "unknown attribute 'nme'"),
        ('frob(name, "a")', "unknown function 'frob'"),
        ('gt(tags, "a")', "gt() is not supported on 'tags'"),
        ('eq(id, "nope")', "'nope' is not a UUID"),
        ('gt(start_time, "yesterday")', "'yesterday' is not an ISO 8601 date-time"),
        ('gt(latency, "soon")', "is not a duration"),
        ('eq(status, "done")', "status is one of error, pending, success"),
        ("not(eq(name, 'a'), eq(name, 'b'))", "not() takes exactly one condition"),
        ('in(name, "a")', "in() takes a list of values"),
        ('eq("name", "a")', "the first argument of eq() must be an attribute"),
        ('has(metadata, "not json")', "has(metadata, ...) takes a JSON object"),
        ('gt(feedback_score, "high")', "expected a number"),
        ('and(in(metadata_key, "user"), eq(metadata_value, "u1"))', "in() takes a list"),
        ("and(eq(metadata_key, user), eq(metadata_value, 'u1'))", "must be a value"),
        ('and(eq(metadata_key, "k"), gt(metadata_value, "1"))', "gt() is not supported"),
        ('and(search(feedback_key, "c"), eq(feedback_score, 1))', "search() is not supported"),
        ("eq(metadata_value, [1])", "the second argument of eq() must be a value"),
        ("gt(total_tokens, 1e400)", "out of range"),
    ],
)
def test_filters_that_cannot_be_applied_name_what(text, message):
    with pytest.raises(run_filter.FilterError) as info:
        run_filter.compile_filter(text)
    assert message in str(info.value)


# ---------------------------------------------------------------------------------------------
# The seeded traces: two traces in production, one look-alike in another organization.


def _ingest(workspace, project, *runs):
    posts = [{"session_id": project.pk, **run} for run in runs]
    services.ingest_runs(actor=SYSTEM, workspace=workspace, posts=posts)


def _dotted(*pairs):
    return ".".join(f"{t:%Y%m%dT%H%M%S%f}Z{i}" for t, i in pairs)


@pytest.fixture
def seeded(world, on_postgres):
    ws = world.workspace
    project = models.Project.objects.create(workspace=ws, name="agents")
    ids = {name: uuid.uuid4() for name in ("r1", "c1", "c2", "r2", "c3", "x")}
    r1, c1, c2, r2, c3 = (ids[n] for n in ("r1", "c1", "c2", "r2", "c3"))
    _ingest(
        ws,
        project,
        {
            "id": r1,
            "name": "agent",
            "run_type": "chain",
            "start_time": T0,
            "end_time": T0 + 2 * SECOND,
            "tags": ["prod"],
            "extra": {"metadata": {"user": "u1", "n": 42}},
            "dotted_order": _dotted((T0, r1)),
            "outputs": {"usage_metadata": {"input_tokens": 60, "output_tokens": 40}},
        },
        {
            "id": c1,
            "trace_id": r1,
            "parent_run_id": r1,
            "name": "llm",
            "run_type": "llm",
            "start_time": T0 + SECOND,
            "end_time": T0 + 9 * SECOND,
            "tags": ["beta"],
            "dotted_order": _dotted((T0, r1), (T0 + SECOND, c1)),
            "outputs": {
                "llm_output": {"token_usage": {"prompt_tokens": 4000, "total_tokens": 5000}}
            },
        },
        {
            "id": c2,
            "trace_id": r1,
            "parent_run_id": r1,
            "name": "search",
            "run_type": "tool",
            "start_time": T0 + 2 * SECOND,
            "end_time": T0 + 3 * SECOND,
            "error": "boom: the index is down",
            "dotted_order": _dotted((T0, r1), (T0 + 2 * SECOND, c2)),
        },
        {
            "id": r2,
            "name": "agent",
            "run_type": "chain",
            "start_time": T0 + 60 * SECOND,
            "extra": {"metadata": {"user": "u2"}},
            "dotted_order": _dotted((T0 + 60 * SECOND, r2)),
        },
        {
            "id": c3,
            "trace_id": r2,
            "parent_run_id": r2,
            "name": "llm",
            "run_type": "llm",
            "start_time": T0 + 61 * SECOND,
            "end_time": T0 + 62 * SECOND,
            "dotted_order": _dotted((T0 + 60 * SECOND, r2), (T0 + 61 * SECOND, c3)),
        },
    )
    models.Feedback.objects.create(workspace=ws, run_id=r1, key="correctness", score=1.0)
    models.Feedback.objects.create(workspace=ws, run_id=r2, key="correctness", score=0.2)
    # Feedback on no run (a NULL run_id must not poison NOT IN).
    models.Feedback.objects.create(workspace=ws, run_id=None, key="correctness", score=0.5)
    # Another organization: a run that matches every filter below, and feedback it wrote
    # naming production's run r2 by id (ids are guessable; feedback is matched per workspace).
    other = world.other_workspace_of_other_org
    other_project = models.Project.objects.create(workspace=other, name="agents")
    _ingest(
        other,
        other_project,
        {
            "id": ids["x"],
            "name": "agent",
            "run_type": "chain",
            "start_time": T0,
            "end_time": T0 + 20 * SECOND,
            "tags": ["prod", "beta"],
            "error": "boom",
            "extra": {"metadata": {"user": "u1", "n": 42}},
        },
    )
    models.Feedback.objects.create(workspace=other, run_id=r2, key="correctness", score=1.0)
    models.Feedback.objects.create(workspace=other, run_id=ids["x"], key="correctness", score=1)
    key = service_key_for(ws, "Viewer")
    return ids, key


def _names(ids, body):
    by_id = {str(v): k for k, v in ids.items()}
    return {by_id[run["id"]] for run in body["runs"]}


def _query(client, key, **body):
    return api_call(client, "POST", "/runs/query", key, json=body)


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"filter": 'eq(name, "agent")'}, {"r1", "r2"}),
        ({"filter": 'and(eq(run_type, "llm"), gt(latency, 5))'}, {"c1"}),
        ({"filter": 'gt(latency, "5s")'}, {"c1"}),
        ({"filter": 'has(tags, "prod")'}, {"r1"}),
        ({"filter": 'or(has(tags, "beta"), eq(name, "search"))'}, {"c1", "c2"}),
        ({"filter": 'and(eq(metadata_key, "user"), eq(metadata_value, "u1"))'}, {"r1"}),
        ({"filter": 'and(eq(metadata_key, "n"), eq(metadata_value, "42"))'}, {"r1"}),
        ({"filter": 'and(in(metadata_key, ["user", "n"]), eq(metadata_value, "u2"))'}, {"r2"}),
        ({"filter": 'eq(metadata_key, "n")'}, {"r1"}),
        ({"filter": 'eq(metadata_value, "u2")'}, {"r2"}),
        ({"filter": 'has(metadata, \'{"user": "u1"}\')'}, {"r1"}),
        (
            {"filter": 'and(eq(feedback_key, "correctness"), gte(feedback_score, 0.5))'},
            {"r1"},
        ),
        ({"filter": 'eq(feedback_key, "correctness")'}, {"r1", "r2"}),
        ({"filter": 'neq(feedback_key, "correctness")'}, {"c1", "c2", "c3"}),
        (
            {"filter": 'not(and(eq(feedback_key, "correctness"), lt(feedback_score, 0.5)))'},
            {"r1", "c1", "c2", "c3"},
        ),
        ({"filter": "and(gte(feedback_score, 0.1), lte(feedback_score, 0.3))"}, {"r2"}),
        ({"filter": "neq(error, null)"}, {"c2"}),
        ({"filter": 'eq(status, "error")'}, {"c2"}),
        ({"filter": 'eq(status, "pending")'}, {"r2"}),
        ({"filter": 'eq(status, "success")'}, {"r1", "c1", "c3"}),
        ({"filter": 'search(error, "index")'}, {"c2"}),
        ({"filter": 'search("index is down")'}, {"c2"}),
        ({"filter": 'not(eq(run_type, "chain"))'}, {"c1", "c2", "c3"}),
        ({"filter": 'in(run_type, ["tool", "chain"])'}, {"r1", "c2", "r2"}),
        ({"filter": "gt(total_tokens, 1000)"}, {"c1"}),
        ({"filter": "eq(total_tokens, 100)"}, {"r1"}),
        ({"filter": "eq(is_root, true)"}, {"r1", "r2"}),
        ({"filter": f'gte(start_time, "{(T0 + 60 * SECOND).isoformat()}")'}, {"r2", "c3"}),
        ({"filter": 'lt(end_time, "2031-03-01T12:00:05Z")'}, {"r1", "c2"}),
        # trace_filter: the trace's root run; tree_filter: any run of the trace.
        (
            {
                "filter": 'eq(run_type, "llm")',
                "trace_filter": 'and(eq(feedback_key, "correctness"), gte(feedback_score, 0.5))',
            },
            {"c1"},
        ),
        ({"trace_filter": 'has(tags, "prod")'}, {"r1", "c1", "c2"}),
        ({"is_root": True, "tree_filter": 'eq(name, "search")'}, {"r1"}),
        ({"tree_filter": "neq(error, null)", "filter": 'eq(run_type, "llm")'}, {"c1"}),
        # The body's own fields.
        ({"error": True}, {"c2"}),
        ({"error": False, "is_root": False}, {"c1", "c3"}),
        ({"execution_order": 1}, {"r1", "r2"}),
        ({"start_time": (T0 + 30 * SECOND).isoformat()}, {"r2", "c3"}),
        ({"end_time": (T0 + SECOND).isoformat()}, {"r1", "c1"}),
        ({"run_type": "llm"}, {"c1", "c3"}),
        ({"data_source_type": "current", "run_type": "tool"}, {"c2"}),
    ],
)
def test_each_filter_returns_exactly_its_runs(client, seeded, body, expected):
    ids, key = seeded
    resp = _query(client, key, **body)
    assert resp.status_code == 200, resp.content
    assert _names(ids, resp.json()) == expected


def test_ids_trace_and_parent(client, seeded):
    ids, key = seeded
    trace = _query(client, key, trace=str(ids["r1"])).json()
    assert _names(ids, trace) == {"r1", "c1", "c2"}
    children = _query(client, key, parent_run=str(ids["r1"])).json()
    assert _names(ids, children) == {"c1", "c2"}
    some = _query(client, key, id=[str(ids["c3"]), str(ids["x"])]).json()
    assert _names(ids, some) == {"c3"}  # the other workspace's id is simply not found
    ancestors = _query(client, key, filter=f'has(parent_run_ids, "{ids["r2"]}")').json()
    assert _names(ids, ancestors) == {"c3"}


def test_order_and_select(client, seeded):
    ids, key = seeded
    body = _query(client, key, order="asc", select=["name", "status", "feedback_stats"]).json()
    runs = body["runs"]
    assert [r["start_time"] for r in runs] == sorted(r["start_time"] for r in runs)
    # What was selected, plus what the SDK needs to build a Run; nothing else.
    assert set(runs[0]) == {
        "id",
        "name",
        "run_type",
        "start_time",
        "trace_id",
        "status",
        "feedback_stats",
    }
    stats = {r["id"]: r["feedback_stats"] for r in runs}
    assert stats[str(ids["r1"])] == {"correctness": {"n": 1, "avg": 1.0}}
    assert stats[str(ids["r2"])] == {"correctness": {"n": 1, "avg": 0.2}}  # not the outsider's
    full = _query(client, key, id=[str(ids["c1"])], select=["total_cost", "parent_run_ids"]).json()
    (c1,) = full["runs"]
    assert c1["total_cost"] is None and c1["parent_run_ids"] == [str(ids["r1"])]


def test_the_sdks_default_select_is_served(client, seeded):
    from langsmith import client as ls_client  # noqa: F401  (the list below is the SDK's)

    default = [
        "app_path", "completion_cost", "completion_tokens", "dotted_order", "end_time", "error",
        "events", "extra", "feedback_stats", "first_token_time", "id", "inputs", "name",
        "outputs", "parent_run_id", "parent_run_ids", "prompt_cost", "prompt_tokens",
        "reference_example_id", "run_type", "s3_urls", "session_id", "start_time", "status",
        "tags", "total_cost", "total_tokens", "trace_id",
    ]  # fmt: skip
    ids, key = seeded
    resp = _query(client, key, select=default, id=[str(ids["c1"])])
    assert resp.status_code == 200, resp.content
    (c1,) = resp.json()["runs"]
    assert c1["prompt_tokens"] == 4000 and c1["total_tokens"] == 5000
    assert c1["session_id"] and c1["status"] == "success"


@pytest.mark.parametrize(
    ("body", "field", "detail"),
    [
        ({"filter": 'eq(name, "a"'}, "filter", "ends too early at character 13"),
        ({"trace_filter": 'eq(colour, "red")'}, "trace_filter", "unknown attribute 'colour'"),
        ({"tree_filter": "and()"}, "tree_filter", "and() needs at least one condition"),
        ({"query": "runs that failed"}, "query", "natural-language"),
        ({"search_filter": "boom"}, "search_filter", "not supported"),
        ({"execution_order": 2}, "execution_order", "only 1"),
        ({"skip_pagination": True}, "skip_pagination", "paginated"),
        ({"data_source_type": "lite"}, "data_source_type", "only current, historical"),
        ({"select": ["name", "colour"]}, "select", "unknown field 'colour'"),
        ({"reference_dataset_id": str(uuid.uuid4())}, "reference_dataset_id", "not supported"),
    ],
)
def test_what_cannot_be_honoured_is_a_422_naming_it(client, seeded, body, field, detail):
    _, key = seeded
    resp = _query(client, key, **body)
    assert resp.status_code == 422, resp.content
    assert resp.json()["error"] == "invalid_query"
    assert resp.json()["field"] == field
    assert detail in resp.json()["detail"]


@pytest.mark.parametrize("path", ["/runs/query", "/runs/stats"])
def test_unknown_body_fields_are_refused(client, seeded, path):
    _, key = seeded
    resp = api_call(client, "POST", path, key, json={"filtr": 'eq(name, "a")'})
    assert resp.status_code == 422
    # Every API body refuses what it does not declare the same way (accesscontrol/api/api.py).
    assert resp.json()["error"] == "unknown_field"
    assert resp.json()["unknown"] == ["filtr"]


def test_the_js_sdks_nulls_mean_not_given(client, seeded):
    # listRuns sends null for what it was not given (JSON.stringify keeps null).
    ids, key = seeded
    nulls = dict.fromkeys(
        ["session", "run_type", "reference_example", "query", "filter", "trace_filter",
         "tree_filter", "execution_order", "parent_run", "start_time", "error", "id", "limit",
         "trace", "select", "is_root", "order", "cursor"]
    )  # fmt: skip
    resp = _query(client, key, **{**nulls, "filter": 'eq(name, "search")'})
    assert resp.status_code == 200, resp.content
    assert _names(ids, resp.json()) == {"c2"}


@pytest.mark.parametrize(
    "body", [{"is_root": 0}, {"error": "yes"}, {"order": "sideways"}, {"select": "name"}]
)
def test_body_scalars_are_strict(client, seeded, body):
    _, key = seeded
    assert _query(client, key, **body).status_code == 422


def test_the_runs_are_read_in_one_query(client, seeded):
    _, key = seeded
    body = {
        "filter": 'and(has(tags, "prod"), eq(metadata_key, "user"), eq(metadata_value, "u1"))',
        "trace_filter": 'and(eq(feedback_key, "correctness"), gte(feedback_score, 0.5))',
        "tree_filter": "neq(error, null)",
    }
    _query(client, key, **body)  # warm the key's cache
    with CaptureQueriesContext(connection) as queries:
        resp = _query(client, key, **body)
    assert resp.status_code == 200
    assert len(resp.json()["runs"]) == 1
    run_queries = [q["sql"] for q in queries.captured_queries if "resources_run" in q["sql"]]
    assert len(run_queries) == 1, run_queries
    assert len(queries.captured_queries) <= 3


def test_stats_over_a_filter(client, seeded):
    _, key = seeded
    resp = api_call(client, "POST", "/runs/stats", key, json={"filter": 'neq(name, "nothing")'})
    assert resp.status_code == 200, resp.content
    stats = resp.json()
    assert stats["run_count"] == 5
    assert stats["error_rate"] == pytest.approx(1 / 5)
    # Latencies of the four finished runs: 2, 8, 1, 1 seconds.
    assert stats["latency_p50"] == pytest.approx(1.5)
    assert stats["latency_p99"] == pytest.approx(8 - 0.03 * 6, abs=0.01)
    assert stats["latency_avg"] == pytest.approx(3.0)
    assert stats["total_tokens"] == 5100
    assert stats["prompt_tokens"] == 4060 and stats["completion_tokens"] == 40
    assert stats["feedback_stats"] == {"correctness": {"n": 2, "avg": pytest.approx(0.6)}}
    assert stats["total_cost"] is None
    assert stats["last_run_start_time"].startswith("2031-03-01T12:01:01")


def test_stats_selected_and_filtered_by_trace(client, seeded):
    ids, key = seeded
    body = {"trace": str(ids["r1"]), "select": ["run_count", "error_rate"]}
    resp = api_call(client, "POST", "/runs/stats", key, json=body)
    assert resp.json() == {"run_count": 3, "error_rate": pytest.approx(1 / 3)}
    refused = api_call(client, "POST", "/runs/stats", key, json={"group_by": {"attribute": "name"}})
    assert refused.status_code == 422 and refused.json()["field"] == "group_by"
    empty = api_call(client, "POST", "/runs/stats", key, json={"filter": 'eq(name, "none")'})
    assert empty.json()["run_count"] == 0 and empty.json()["error_rate"] is None


@pytest.mark.parametrize("path", ["/runs/query", "/runs/stats"])
def test_reading_runs_needs_runs_read(client, seeded, world, path):
    RoleFactory(organization=world.org, name="Projects only", permissions=["projects:read"])
    key = service_key_for(world.workspace, "Projects only")
    resp = api_call(client, "POST", path, key, json={})
    assert resp.status_code == 403
    assert resp.json()["required"] == "runs:read"


def test_another_workspace_sees_only_its_own(client, seeded, world):
    ids, _ = seeded
    outsider = service_key_for(world.other_workspace_of_other_org, "Viewer")
    body = _query(client, outsider, filter='has(tags, "prod")').json()
    assert [r["id"] for r in body["runs"]] == [str(ids["x"])]
    stats = api_call(client, "POST", "/runs/stats", outsider, json={}).json()
    assert stats["run_count"] == 1


# ---------------------------------------------------------------------------------------------
# The real `langsmith` SDK against a live server: what list_runs and get_run_stats send.


def _trace(client, project, user, tags, *, fail=False):
    import langsmith
    from langsmith import traceable

    @traceable(client=client, project_name=project, name="retrieve", run_type="retriever")
    def retrieve(q):
        if fail:
            raise RuntimeError("index down")
        return {"docs": [q]}

    @traceable(
        client=client, project_name=project, name="answer", tags=tags, metadata={"user": user}
    )
    def answer(q):
        try:
            return {"answer": retrieve(q)["docs"][0]}
        except RuntimeError:
            return {"answer": None}

    with langsmith.tracing_context(enabled=True):
        answer(f"question from {user}")
    client.flush()


@pytest.mark.django_db(transaction=True)
@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_the_sdk_filters_runs(world, sdk):  # noqa: F811  (sdk: the imported fixture)
    client = sdk(service_key_for(world.workspace, "Editor"))
    project = "filtered"
    before = datetime.datetime.now(datetime.UTC)
    _trace(client, project, "u1", ["prod"])
    _trace(client, project, "u2", ["beta"], fail=True)
    runs = list(client.list_runs(project_name=project))
    assert len(runs) == 4
    roots = {r.metadata["user"]: r for r in runs if r.parent_run_id is None}
    client.create_feedback(roots["u1"].id, key="correctness", score=1.0)
    client.create_feedback(roots["u2"].id, key="correctness", score=0.0)

    def names(**kwargs):
        return sorted((r.name, r.metadata.get("user")) for r in client.list_runs(**kwargs))

    # Metadata is inherited by the child runs, as LangSmith's tracer does it.
    user_u1 = 'and(eq(metadata_key, "user"), eq(metadata_value, "u1"))'
    assert names(project_name=project, filter=user_u1) == [("answer", "u1"), ("retrieve", "u1")]
    assert names(project_name=project, filter='has(tags, "beta")') == [
        ("answer", "u2"),
        ("retrieve", "u2"),
    ]
    assert names(project_name=project, filter="neq(error, null)") == [("retrieve", "u2")]
    good = 'and(eq(feedback_key, "correctness"), gte(feedback_score, 0.5))'
    assert names(project_name=project, filter='eq(run_type, "retriever")', trace_filter=good) == [
        ("retrieve", "u1")
    ]
    assert names(project_name=project, is_root=True, tree_filter='eq(status, "error")') == [
        ("answer", "u2")
    ]
    assert len(names(project_name=project, start_time=before)) == 4
    later = datetime.datetime.now(datetime.UTC) + datetime.timedelta(hours=1)
    assert names(project_name=project, start_time=later) == []

    # A malformed filter is the server's 422, raised by the SDK, not an unfiltered list.
    from langsmith.utils import LangSmithError

    with pytest.raises(LangSmithError, match=r"422.*unknown attribute .{0,2}colour"):
        list(client.list_runs(project_name=project, filter='eq(colour, "red")'))

    stats = client.get_run_stats(project_names=[project], filter='eq(name, "retrieve")')
    assert stats["run_count"] == 2 and stats["error_rate"] == 0.5
    assert stats["latency_p50"] is not None


# ---------------------------------------------------------------------------------------------
# Any text: a Q the database runs, or a FilterError - never an exception of another kind.

PIECES = [
    *sorted(run_filter.COMPARATORS | {"and", "or", "not"}),
    *run_filter.ATTRIBUTES,
    "(", ")", ",", "[", "]", " ", '"x"', "'u1'", '"2031-03-01T12:00:00Z"', "1.5", "-3", "1e400",
    "null", "true", "false", '"00000000-0000-0000-0000-000000000001"', '"{\\"k\\": 1}"', "@",
]  # fmt: skip


def _texts():
    return st.lists(st.sampled_from(PIECES), min_size=1, max_size=25).map("".join)


@settings(max_examples=300, deadline=None)
@given(_texts())
def test_any_text_compiles_or_is_refused(text):
    with contextlib.suppress(run_filter.FilterError):
        run_filter.compile_filter(text)


@pytest.mark.django_db
@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    st.builds(
        lambda op, attr, value: f'and(eq(metadata_key, "k"), {op}({attr}, {value}))',
        st.sampled_from(sorted(run_filter.COMPARATORS - {"search"})),
        st.sampled_from(run_filter.ATTRIBUTES),
        st.sampled_from([*PIECES[-12:-1], '["a", "b"]']),
    )
)
def test_compiled_filters_run_in_the_database(on_postgres, text):
    try:
        condition = run_filter.compile_filter(text)
    except run_filter.FilterError:
        return
    runs = models.Run.objects.alias(**run_filter.aliases()).filter(condition)
    assert runs.count() == 0
