"""JSON nested a thousand deep, and bodies over the size limit (#12, finding 13).

The API accepted JSON nested ~1,000 levels deep; the run page and the example edit page then
failed (RecursionError while pretty-printing), and with DEBUG=1 the error page took minutes.
Every API body is now parsed by one parser that refuses nesting deeper than 64 (422), a body
over DATA_UPLOAD_MAX_MEMORY_SIZE gets the API's JSON error (413) instead of Django's HTML 400,
the console's JSON fields refuse the same depth, and the pages that pretty-print JSON clip
what rows stored before the limit may hold, instead of failing.
"""

import json
import uuid

import pytest
from django.apps import apps
from django.db import connection
from django.urls import reverse

from accesscontrol.resources.models import Dataset, Example, Run
from accesscontrol.storable import MAX_JSON_DEPTH
from tests.factories import pat_for, run_and_example, service_key_for
from tests.support.openapi import documented_operations, json_body_schema

DEPTH_DETAIL = f"JSON may nest arrays and objects at most {MAX_JSON_DEPTH} deep."


def nested(levels: int) -> str:
    """`levels` arrays one inside the other, as JSON text (built as text: no recursion)."""
    return "[" * levels + "]" * levels


def run_body(levels: int) -> str:
    # The body object and `inputs` are two levels; `levels` more inside.
    return (
        '{"name": "r", "run_type": "chain", "session_name": "p", '
        f'"inputs": {{"x": {nested(levels)}}}}}'
    )


def post(client, path, key, text, prefix="/api/v1"):
    return client.post(
        prefix + path, data=text, content_type="application/json", headers={"X-API-Key": key}
    )


def row_counts():
    return {m._meta.label: m.objects.count() for m in apps.get_models()}


# --- the API refuses deep JSON ---------------------------------------------------------------


def test_a_run_nested_at_the_limit_is_accepted_and_one_deeper_refused(client, world):
    key = service_key_for(world.workspace)
    ok = post(client, "/runs", key, run_body(MAX_JSON_DEPTH - 2))
    assert ok.status_code == 202, ok.content
    too_deep = post(client, "/runs", key, run_body(MAX_JSON_DEPTH - 1))
    assert too_deep.status_code == 422
    assert too_deep.json() == {"error": "invalid_json", "detail": DEPTH_DETAIL}
    assert Run.objects.count() == 1


@pytest.mark.parametrize("levels", [1000, 5000])  # 5000: json.loads itself hits RecursionError
@pytest.mark.parametrize("prefix", ["/api/v1", ""])  # and at the SDK's root paths
def test_a_run_nested_a_thousand_deep_is_refused(client, world, levels, prefix):
    key = service_key_for(world.workspace)
    response = post(client, "/runs", key, run_body(levels), prefix)
    assert response.status_code == 422
    assert response.json() == {"error": "invalid_json", "detail": DEPTH_DETAIL}
    assert not Run.objects.exists()


def test_even_with_debug_on_a_deep_body_is_a_quick_422(client, world, settings):
    settings.DEBUG = True
    key = service_key_for(world.workspace)
    dataset = Dataset.objects.create(workspace=world.workspace, name="d")
    body = f'{{"dataset_id": "{dataset.pk}", "inputs": {{"x": {nested(1000)}}}}}'
    response = post(client, "/examples", key, body)
    assert response.status_code == 422
    assert response.json()["detail"] == DEPTH_DETAIL
    assert not Example.objects.exists()


def body_operations():
    return [
        (path, method)
        for path, method, operation, _ in documented_operations()
        if json_body_schema(operation) is not None
    ]


BODY_OPERATIONS = body_operations()


def test_the_walk_finds_the_api_bodies():
    assert len(BODY_OPERATIONS) >= 30, BODY_OPERATIONS


@pytest.mark.parametrize("path, method", BODY_OPERATIONS)
def test_every_api_body_refuses_deep_json(client, world, path, method):
    key = pat_for(world.org_admin, world.org)
    url = "/".join(str(uuid.uuid4()) if p.startswith("{") else p for p in path.split("/"))
    before = row_counts()
    response = client.generic(
        method,
        url,
        data=f'{{"x": {nested(200)}}}',
        content_type="application/json",
        headers={"X-API-Key": key, "X-Tenant-Id": str(world.workspace.pk)},
    )
    assert response.status_code == 422, response.content
    assert response.json() == {"error": "invalid_json", "detail": DEPTH_DETAIL}
    assert row_counts() == before


# --- a body over the size limit gets the API's JSON error --------------------------------------


@pytest.mark.parametrize("prefix", ["/api/v1", ""])
def test_a_body_over_the_upload_limit_gets_a_json_413(client, world, settings, prefix):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    key = service_key_for(world.workspace)
    text = json.dumps({"name": "r", "run_type": "chain", "inputs": {"x": "y" * 2000}})
    response = post(client, "/runs", key, text, prefix)
    assert response.status_code == 413
    assert response["Content-Type"] == "application/json; charset=utf-8"
    assert response.json() == {
        "error": "too_large",
        "detail": "The request body is larger than 1000 bytes.",
    }
    assert not Run.objects.exists()


# --- the console -------------------------------------------------------------------------------


@pytest.fixture
def stored_deep(world):
    """A run and an example holding JSON 900 deep, as rows stored before the limit may."""
    _, example = run_and_example(world.workspace)
    deep = f'{{"x": {nested(900)}}}'
    with connection.cursor() as cursor:  # SQL, as the API no longer takes it
        cursor.execute(f"UPDATE {Run._meta.db_table} SET inputs = %s, outputs = %s", [deep, deep])
        cursor.execute(f"UPDATE {Example._meta.db_table} SET inputs = %s", [deep])
    return Run.objects.get(), example


def ws_url(name, *args):
    return reverse(name, args=["acme", "production", *args])


def test_pages_render_stored_deep_json_clipped_instead_of_failing(client, world, stored_deep):
    run, example = stored_deep
    client.force_login(world.org_admin)
    for url in (
        ws_url("run", run.project_id, run.pk),
        ws_url("example-edit", example.dataset_id, example.pk),
        ws_url("dataset", example.dataset_id),
    ):
        response = client.get(url)
        assert response.status_code == 200, url
        assert "…" in response.text


def test_the_console_json_fields_refuse_deep_json(client, world):
    dataset = Dataset.objects.create(workspace=world.workspace, name="d")
    example = Example.objects.create(workspace=world.workspace, dataset=dataset, inputs={"a": 1})
    client.force_login(world.org_admin)
    response = client.post(
        ws_url("example-edit", dataset.pk, example.pk),
        {"inputs": f'{{"x": {nested(MAX_JSON_DEPTH)}}}', "split": "base"},
    )
    assert response.status_code == 422
    assert DEPTH_DETAIL in response.text
    example.refresh_from_db()
    assert example.inputs == {"a": 1}
