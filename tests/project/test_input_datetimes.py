"""Date-times from input must be storable *and readable back*: years 1-9999 once in UTC (#12).

`9999-12-31T23:59:59-14:00` is a valid datetime, PostgreSQL stores it as year 10000, and psycopg
then cannot read the row: every later read of it failed. The findings are reproduced one by one,
then the class is walked: every date-time field of every request body (and query) of every
NinjaAPI's OpenAPI document must refuse such a value with a 422 naming the field, writing
nothing. Last, the data migrations that repair rows stored before the check.
"""

import importlib
import json
import uuid

import pytest
from django.apps import apps
from django.db import DataError, connection

from accesscontrol.apikeys.models import PersonalAccessToken, ServiceKey
from accesscontrol.resources.models import Dataset, Example, Run
from tests.factories import pat_for, run_and_example, service_key_for
from tests.support.api import api_call
from tests.support.openapi import documented_operations, json_body_schema

PAST_9999 = "9999-12-31T23:59:59-14:00"  # year 10000 in UTC
BEFORE_1 = "0001-01-01T00:00:00+14:00"  # year 0 in UTC
GOOD = "2030-01-01T00:00:00Z"
OUT_OF_RANGE = [PAST_9999, BEFORE_1]


@pytest.fixture
def admin_pat(world):
    return pat_for(world.org_admin, world.org)


def row_counts():
    return {m._meta.label: m.objects.count() for m in apps.get_models()}


def errors_at(response, field):
    return [
        e for e in response.json()["detail"] if e["loc"][-1] == field and "once in UTC" in e["msg"]
    ]


# --- the findings, one by one ----------------------------------------------------------------


def test_pat_with_an_expiry_past_year_9999_in_utc_is_refused(client, world, admin_pat):
    before = PersonalAccessToken.objects.count()
    response = api_call(
        client,
        "POST",
        "/orgs/current/personal-access-tokens",
        admin_pat,
        json={"name": "forever", "expires_at": PAST_9999},
    )
    assert response.status_code == 422, response.content
    assert errors_at(response, "expires_at")
    assert "expires_at" in errors_at(response, "expires_at")[0]["msg"]
    assert PersonalAccessToken.objects.count() == before
    listed = api_call(client, "GET", "/orgs/current/personal-access-tokens", admin_pat)
    assert listed.status_code == 200


def test_service_key_with_an_expiry_past_year_9999_in_utc_is_refused(client, world):
    key = service_key_for(world.workspace)
    before = ServiceKey.objects.count()
    response = api_call(
        client, "POST", "/api-key", key, json={"name": "forever", "expires_at": PAST_9999}
    )
    assert response.status_code == 422, response.content
    assert errors_at(response, "expires_at")
    assert ServiceKey.objects.count() == before
    assert api_call(client, "GET", "/api-key", key).status_code == 200


def post_run(client, key, **times):
    """POST /runs: a run of project 'p' with these times."""
    run = {"name": "r", "run_type": "chain", "session_name": "p", **times}
    return api_call(client, "POST", "/runs", key, json=run)


@pytest.mark.parametrize("when", OUT_OF_RANGE)
def test_run_with_a_start_time_outside_the_years_in_utc_is_refused(client, world, when):
    key = service_key_for(world.workspace)
    response = post_run(client, key, start_time=when)
    assert response.status_code == 422, response.content
    assert errors_at(response, "start_time")
    assert not Run.objects.exists()
    assert api_call(client, "POST", "/runs/query", key, json={}).status_code == 200


@pytest.mark.parametrize("when", OUT_OF_RANGE)
def test_example_with_a_created_at_outside_the_years_in_utc_is_refused(client, world, when):
    key = service_key_for(world.workspace)
    dataset = Dataset.objects.create(workspace=world.workspace, name="d")
    response = api_call(
        client,
        "POST",
        "/examples",
        key,
        json={"dataset_id": str(dataset.pk), "inputs": {"q": 1}, "created_at": when},
    )
    assert response.status_code == 422, response.content
    assert errors_at(response, "created_at")
    assert not Example.objects.exists()


def test_the_edges_of_the_range_are_accepted(client, world):
    key = service_key_for(world.workspace)
    for when in ("9999-12-31T23:59:59Z", "9999-12-31T23:59:59", "0001-01-01T00:00:00Z"):
        response = post_run(client, key, start_time=when)
        assert response.status_code == 202, (when, response.content)
    assert api_call(client, "POST", "/runs/query", key, json={}).status_code == 200


# --- the class: every date-time of every operation of every API -------------------------------


def _resolve(schema, components):
    while "$ref" in schema:
        schema = components[schema["$ref"].rsplit("/", 1)[1]]
    if "anyOf" in schema:  # `X | None`: the non-null branch
        schema = next(s for s in schema["anyOf"] if s.get("type") != "null")
        return _resolve(schema, components)
    if "allOf" in schema and len(schema["allOf"]) == 1:
        return _resolve(schema["allOf"][0], components)
    return schema


def datetime_paths(schema, components, prefix=()):
    """Every path (keys and list indexes) to a date-time inside a JSON schema."""
    schema = _resolve(schema, components)
    if schema.get("format") == "date-time":
        yield prefix
    elif schema.get("type") == "array" and "items" in schema:
        yield from datetime_paths(schema["items"], components, (*prefix, 0))
    for name, sub in schema.get("properties", {}).items():
        yield from datetime_paths(sub, components, (*prefix, name))


def sample(schema, components, force=None, value=None):
    """A minimal valid instance of `schema`, with `value` at the path `force`."""
    if force == ():
        return value
    schema = _resolve(schema, components)
    if "enum" in schema:
        return schema["enum"][0]
    kind = schema.get("type")
    if kind == "object" or "properties" in schema:
        wanted = set(schema.get("required", ()))
        if force:
            wanted.add(force[0])
        return {
            name: sample(sub, components, force[1:] if force and force[0] == name else None, value)
            for name, sub in schema.get("properties", {}).items()
            if name in wanted
        }
    if kind == "array":
        return [sample(schema["items"], components, force[1:] if force else None, value)]
    if kind == "string":
        fallback = "x" * max(1, schema.get("minLength", 1))
        return {"uuid": str(uuid.uuid4()), "date-time": GOOD}.get(schema.get("format"), fallback)
    return {"integer": 1, "number": 1.5, "boolean": True}.get(kind, "x")


def body_cases():
    return [
        (path, method, schema, components, where)
        for path, method, operation, components in documented_operations()
        if (schema := json_body_schema(operation)) is not None
        for where in datetime_paths(schema, components)
    ]


def query_cases():
    return [
        (path, method, param["name"])
        for path, method, operation, components in documented_operations()
        for param in operation.get("parameters", ())
        if param["in"] == "query"
        and _resolve(param.get("schema", {}), components).get("format") == "date-time"
    ]


BODY_CASES = body_cases()
QUERY_CASES = query_cases()


def test_the_walk_finds_every_date_time_the_api_takes():
    # 24 in /api/v1 (PAT, service key, run create/patch/batch, example one/bulk, the start_time
    # and end_time bounds of runs query/stats, feedback's created_at/modified_at/start_time, a
    # project's end_time, presigned feedback tokens, a dataset version's tag, a workspace
    # member's grant expiry on add and change), 20 again at the SDK's root paths; so the walk
    # cannot silently find nothing.
    found = {(path, where) for path, _, _, _, where in BODY_CASES}
    assert len(found) == 44, sorted(found)
    assert ("/api/v1/runs/stats", ("end_time",)) in found
    assert ("/api/v1/feedback/tokens", (0, "expires_at")) in found
    assert ("/api/v1/datasets/{dataset_id}/tags", ("as_of",)) in found
    assert ("/api/v1/runs/batch", ("patch", 0, "end_time")) in found
    assert ("/api/v1/examples/bulk", (0, "created_at")) in found
    assert QUERY_CASES == []  # none today; a date-time query parameter would be walked too


@pytest.mark.parametrize(
    "path, method, schema, components, where",
    BODY_CASES,
    ids=[f"{m} {p} {'.'.join(map(str, w))}" for p, m, _, _, w in BODY_CASES],
)
@pytest.mark.parametrize("when", OUT_OF_RANGE)
def test_every_request_date_time_refuses_values_outside_the_years_in_utc(
    client, world, admin_pat, path, method, schema, components, where, when
):
    url = "/".join(str(uuid.uuid4()) if p.startswith("{") else p for p in path.split("/"))
    before = row_counts()
    response = client.generic(
        method,
        url,
        data=json.dumps(sample(schema, components, where, when)),
        content_type="application/json",
        headers={"X-API-Key": admin_pat, "X-Tenant-Id": str(world.workspace.pk)},
    )
    assert response.status_code == 422, response.content
    errors = response.json()["detail"]
    # The body is otherwise valid: the date-time, and nothing else, is what refuses it.
    assert [tuple(e["loc"][2:]) for e in errors] == [where], errors
    assert "once in UTC" in errors[0]["msg"] and str(where[-1]) in errors[0]["msg"]
    assert row_counts() == before


@pytest.mark.parametrize("path, method, name", QUERY_CASES)
def test_every_query_date_time_refuses_values_outside_the_years_in_utc(
    client, world, admin_pat, path, method, name
):  # none today (see above)
    response = client.generic(
        method, path, QUERY_STRING=f"{name}={PAST_9999}", headers={"X-API-Key": admin_pat}
    )
    assert response.status_code == 422


# --- the repair of rows stored before the check -----------------------------------------------


def _migration(app, name):
    return importlib.import_module(f"accesscontrol.{app}.migrations.{name}")


def _run(migration):
    with connection.schema_editor() as editor:
        migration.repair(apps, editor)


def test_keys_stored_past_year_9999_are_repaired_to_the_last_readable_instant(world, on_postgres):
    pat_for(world.org_admin, world.org)
    service_key_for(world.workspace)
    with connection.cursor() as cursor:
        for model in (PersonalAccessToken, ServiceKey):
            cursor.execute(
                f"UPDATE {model._meta.db_table} SET expires_at = '10000-01-01'::timestamptz"
            )
    with pytest.raises(DataError):  # what every page touching such a key did
        list(PersonalAccessToken.objects.all())
    _run(_migration("apikeys", "0001_initial_squashed_0005_service_key_ip_allow_list"))
    for model in (PersonalAccessToken, ServiceKey):
        (expiry,) = {key.expires_at.isoformat() for key in model.objects.all()}
        assert expiry == "9999-12-31T23:59:59+00:00"


def test_runs_and_examples_stored_outside_the_years_are_clamped_into_them(world, on_postgres):
    run_and_example(world.workspace)
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {Run._meta.db_table} SET start_time = '0001-01-01 00:00+14'::timestamptz, "
            "end_time = '10000-01-01'::timestamptz"
        )
        cursor.execute(
            f"UPDATE {Example._meta.db_table} SET created_at = '10000-06-01'::timestamptz"
        )
    with pytest.raises(DataError):
        list(Run.objects.all())
    _run(_migration("resources", "0001_initial_squashed_0006_project_end_time"))
    run = Run.objects.get()
    assert run.start_time.isoformat() == "0001-01-01T00:00:00+00:00"
    assert run.end_time.isoformat() == "9999-12-31T23:59:59.999999+00:00"
    assert Example.objects.get().created_at.year == 9999


# --- the console ------------------------------------------------------------------------------


def test_the_console_date_input_stays_in_range_at_its_extremes(client, world):
    # The console's only date input: a campaign deadline, a date the view pins to 23:59 UTC, so
    # even 9999-12-31 stays readable. The campaign list and page must render with it.
    from accesscontrol.reviews.models import Campaign

    client.force_login(world.org_admin)
    response = client.post(
        "/o/acme/reviews/",
        {"name": "far", "workspace": str(world.workspace.pk), "deadline": "9999-12-31"},
    )
    assert response.status_code in (200, 302), response.content
    campaign = Campaign.objects.get()
    assert campaign.deadline.isoformat() == "9999-12-31T23:59:00+00:00"
    assert client.get("/o/acme/reviews/").status_code == 200
    assert client.get(f"/o/acme/reviews/{campaign.pk}/").status_code == 200
    refused = client.post(
        "/o/acme/reviews/",
        {"name": "past", "workspace": str(world.workspace.pk), "deadline": "0001-01-01"},
    )
    assert refused.status_code in (200, 422) and Campaign.objects.count() == 1
