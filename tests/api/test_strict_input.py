"""Nothing a client asks for is dropped: unknown query parameters and body fields are refused.

A parameter or field an operation does not declare answers 422 naming it, and changes nothing
(issue 18: "never a silent 200 with wrong data"). The rule is one piece of code for every
operation (accesscontrol.api.router.GatedRouter, accesscontrol.api.schemas.Body), so the tests
check it structurally over the whole API and then by example.
"""

import pytest

from accesscontrol.api.api import api
from accesscontrol.resources.models import Dataset, Example, Feedback
from tests.factories import service_key_for
from tests.support.api import api_call

pytestmark = pytest.mark.django_db


def _resolve(document, schema):
    while "$ref" in schema:
        schema = document["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
    return schema


# Secret scanners' reports are a third party's signed format (GitHub's), parsed from the raw
# body by apikeys.leaks.parse_report: a field GitHub adds must not make us refuse a leak report.
OPEN_BY_DESIGN = {"POST /secret-scanning/reports"}


def test_every_json_body_of_the_api_is_closed():
    """Every object a request body may hold says additionalProperties: false."""
    document = api.get_openapi_schema(path_prefix="")
    open_bodies = []
    for path, item in document["paths"].items():
        for method, operation in item.items():
            body = operation.get("requestBody", {}).get("content", {}).get("application/json")
            if body is None:
                continue
            schema = _resolve(document, body["schema"])
            if schema.get("type") == "array":
                schema = _resolve(document, schema["items"])
            if schema.get("type") == "object" and schema.get("additionalProperties") is not False:
                open_bodies.append(f"{method.upper()} {path}")
    assert set(open_bodies) == OPEN_BY_DESIGN


@pytest.mark.parametrize(
    "path",
    [
        "/datasets?bogus=1",
        "/datasets?name=faq&metadatas=x",
        "/sessions?name=p&bogus=1",
        "/examples?dataset_idx=1",
        "/feedback?bogus=",
        "/auth/whoami?bogus=1",
        "/workspaces/current/members?bogus=1",
    ],
)
def test_an_unknown_query_parameter_is_refused_naming_it(client, editor_key, path):
    response = api_call(client, "GET", path, editor_key)
    assert response.status_code == 422, response.content
    body = response.json()
    assert body["error"] == "unknown_parameter"
    unknown = path.split("?")[1].split("&")[-1].split("=")[0]
    assert body["unknown"] == [unknown]
    assert unknown in body["detail"]
    assert "supported here" in body["detail"]


def test_declared_query_parameters_still_work(client, world, editor_key):
    api_call(client, "POST", "/datasets", editor_key, json={"name": "faq"})
    response = api_call(client, "GET", "/datasets?name=faq&limit=5&offset=0", editor_key)
    assert response.status_code == 200
    assert [d["name"] for d in response.json()] == ["faq"]


def test_the_gate_answers_before_the_parameters_are_judged(client, world):
    viewer = service_key_for(world.workspace, "Viewer")
    response = api_call(client, "GET", "/api-key?bogus=1", viewer)
    assert response.status_code == 403


def test_an_unknown_body_field_is_refused_and_nothing_is_written(client, editor_key):
    response = api_call(
        client, "POST", "/datasets", editor_key, json={"name": "faq", "tag_value_ids": ["x"]}
    )
    assert response.status_code == 422, response.content
    assert response.json()["error"] == "unknown_field"
    assert response.json()["unknown"] == ["tag_value_ids"]
    assert "tag_value_ids" in response.json()["detail"]
    assert not Dataset.objects.exists()


def test_an_unknown_field_in_a_list_body_names_its_position(client, world, editor_key):
    dataset = api_call(client, "POST", "/datasets", editor_key, json={"name": "faq"}).json()
    examples = [
        {"dataset_id": dataset["id"], "inputs": {"q": "a"}},
        {"dataset_id": dataset["id"], "inputs": {"q": "b"}, "weight": 2},
    ]
    response = api_call(client, "POST", "/examples/bulk", editor_key, json=examples)
    assert response.status_code == 422
    assert response.json()["unknown"] == ["1.weight"]
    assert not Example.objects.exists()


def test_other_apps_bodies_are_strict_too(client, world):
    admin = service_key_for(world.workspace, "Admin")
    response = api_call(
        client,
        "POST",
        "/api-key",
        admin,
        json={"name": "ci", "scopes": ["everything"]},
    )
    assert response.status_code == 422
    assert response.json()["unknown"] == ["scopes"]


@pytest.mark.parametrize(
    ("field", "value"),
    [("feedback_config", {"type": "continuous"}), ("error", True), ("extra", {"a": 1})],
)
def test_a_field_for_a_feature_we_lack_is_accepted_empty_and_refused_with_content(
    client, editor_key, field, value
):
    base = {"key": "helpful", "score": 1}
    empty = {"feedback_config": None, "error": False, "extra": {}}[field]
    accepted = api_call(client, "POST", "/feedback", editor_key, json={**base, field: empty})
    assert accepted.status_code == 201, accepted.content

    refused = api_call(client, "POST", "/feedback", editor_key, json={**base, field: value})
    assert refused.status_code == 422
    assert f"{field} is not supported by this server" in refused.content.decode()
    assert Feedback.objects.count() == 1


def test_feedback_lists_by_source_type(client, editor_key):
    for key, source in [("a", {"type": "api"}), ("b", {"type": "model"}), ("c", {"type": "app"})]:
        made = api_call(
            client, "POST", "/feedback", editor_key, json={"key": key, "feedback_source": source}
        )
        assert made.status_code == 201
    listed = api_call(client, "GET", "/feedback?source=model", editor_key).json()
    assert [f["key"] for f in listed] == ["b"]
    both = api_call(client, "GET", "/feedback?source=model&source=api", editor_key).json()
    assert sorted(f["key"] for f in both) == ["a", "b"]
