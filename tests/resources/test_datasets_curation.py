"""Datasets as LangSmith users curate them (issue #18): experiments linked to their dataset,
metadata filters, CSV upload, bulk update and delete, splits, versions read as of a time or a
tag, tags, and the multipart examples endpoints the JS SDK writes through.

Through the HTTP API, against the database; each test asserts what was answered and what is
stored, and that refused requests (bad input, another tenant's ids, a Viewer) change nothing.
"""

import datetime
import json
import re
import uuid
from dataclasses import dataclass

import pytest
from django.db import connection

from accesscontrol.resources import models
from tests.factories import service_key_for
from tests.support.api import api_call

pytestmark = pytest.mark.django_db
API_DATASETS = "accesscontrol.resources.api_datasets"


@dataclass
class Keys:
    editor: str
    viewer: str
    staging: str  # Admin of another workspace of the same organization
    globex: str  # Admin of another organization's workspace


@pytest.fixture
def keys(world) -> Keys:
    return Keys(
        editor=service_key_for(world.workspace, "Editor"),
        viewer=service_key_for(world.workspace, "Viewer"),
        staging=service_key_for(world.other_workspace, "Admin"),
        globex=service_key_for(world.other_workspace_of_other_org, "Admin"),
    )


def ok(resp, status=200):
    assert resp.status_code == status, resp.content
    return resp.json() if resp.content else None


def refused(resp, status, error=None, names=None):
    assert resp.status_code == status, resp.content
    body = resp.json()
    if error is not None:
        assert body["error"] == error, body
    if names is not None:
        assert names in json.dumps(body), body
    return body


def snapshot():
    """Every row a curation endpoint may write."""

    def rows(model, *fields):
        return sorted(map(repr, model.objects.values_list(*fields)))

    return {
        "datasets": rows(models.Dataset, "pk", "workspace", "name", "description", "metadata"),
        "examples": rows(models.Example, "pk", "dataset", "inputs", "outputs", "metadata", "split"),
        "versions": rows(models.DatasetVersion, "pk", "dataset", "as_of", "tags"),
        "revisions": models.ExampleRevision.objects.count(),
        "projects": rows(models.Project, "pk", "workspace", "name", "reference_dataset"),
    }


def make_dataset(client, key, name, **fields):
    return ok(api_call(client, "POST", "/datasets", key, json={"name": name, **fields}), 201)


def add_examples(client, key, dataset_id, *examples):
    body = [{"dataset_id": dataset_id, **e} for e in examples]
    return ok(api_call(client, "POST", "/examples/bulk", key, json=body), 201)


def examples_of(client, key, dataset_id, query=""):
    resp = api_call(client, "GET", f"/examples?dataset={dataset_id}&limit=100{query}", key)
    return ok(resp)


def by_q(examples):
    return {e["inputs"]["q"]: e for e in examples}


def multipart(parts, boundary=None):
    """A multipart/form-data body: parts are (name, bytes, content type, file name or None), as
    the Python SDK (no file name) and the JS SDK (Blobs: file name "blob") send them."""
    boundary = boundary or f"curation{uuid.uuid4().hex}"
    chunks = []
    for name, content, content_type, filename in parts:
        disposition = f'form-data; name="{name}"' + (f'; filename="{filename}"' if filename else "")
        head = f"--{boundary}\r\nContent-Disposition: {disposition}\r\n"
        if content_type:
            head += f"Content-Type: {content_type}\r\n"
        chunks.append(head.encode() + b"\r\n" + content + b"\r\n")
    chunks.append(f"--{boundary}--\r\n".encode())
    return b"".join(chunks), f"multipart/form-data; boundary={boundary}"


def send_multipart(client, method, path, key, parts, root=False):
    body, content_type = multipart(parts)
    url = path if root else f"/api/v1{path}"
    return client.generic(method, url, body, content_type=content_type, headers={"X-API-Key": key})


def example_parts(example_id, *, inputs=None, outputs=None, filename=None, **fields):
    parts = [(str(example_id), json.dumps(fields).encode(), "application/json", filename)]
    if inputs is not None:
        parts.append(
            (f"{example_id}.inputs", json.dumps(inputs).encode(), "application/json", filename)
        )
    if outputs is not None:
        parts.append(
            (f"{example_id}.outputs", json.dumps(outputs).encode(), "application/json", filename)
        )
    return parts


# ---------------------------------------------------------------------------------------------
# Experiments linked to their dataset


def test_an_experiment_is_linked_to_its_dataset_and_listed_under_it(client, world, keys):
    dataset = make_dataset(client, keys.editor, "qa")
    other = make_dataset(client, keys.editor, "other")
    experiment = ok(
        api_call(
            client,
            "POST",
            "/sessions",
            keys.editor,
            json={"name": "qa-exp-1", "reference_dataset_id": dataset["id"]},
        ),
        201,
    )
    assert experiment["reference_dataset_id"] == dataset["id"]
    assert models.Project.objects.get(pk=experiment["id"]).reference_dataset_id == uuid.UUID(
        dataset["id"]
    )
    plain = ok(api_call(client, "POST", "/sessions", keys.editor, json={"name": "prod"}), 201)
    assert plain["reference_dataset_id"] is None

    def names(query):
        return [p["name"] for p in ok(api_call(client, "GET", f"/sessions?{query}", keys.viewer))]

    assert names(f"reference_dataset={dataset['id']}") == ["qa-exp-1"]
    assert names(f"reference_dataset={other['id']}") == []
    assert names("reference_free=true") == ["prod"]
    assert names("reference_free=false") == ["qa-exp-1"]
    assert sorted(names("")) == ["prod", "qa-exp-1"]

    # Another workspace's dataset: not found, nothing created; listed under it: nothing.
    staging = make_dataset(client, keys.staging, "staging qa")
    before = snapshot()
    body = refused(
        api_call(
            client,
            "POST",
            "/sessions",
            keys.editor,
            json={"name": "sneaky", "reference_dataset_id": staging["id"]},
        ),
        404,
        "not_found",
        names="reference_dataset_id",
    )
    assert "staging qa" not in json.dumps(body)
    assert snapshot() == before
    assert names(f"reference_dataset={staging['id']}") == []
    # The staging key does not see production's experiment under production's dataset either.
    resp = api_call(client, "GET", f"/sessions?reference_dataset={dataset['id']}", keys.staging)
    assert ok(resp) == []


def test_session_list_refuses_what_it_does_not_honour(client, keys):
    for query, name in [
        ("filter=eq(name,'x')", "filter"),
        ("sort_by=latency_p50", "sort_by"),
        ("tag_value_id=" + str(uuid.uuid4()), "tag_value_id"),
        ("dataset_version=latest", "dataset_version"),
        ("reference_dataset=not-a-uuid", "reference_dataset"),
        ("metadata=[1]", "metadata"),
        ("metadata={bad", "metadata"),
    ]:
        refused(api_call(client, "GET", f"/sessions?{query}", keys.viewer), 422, names=name)


# ---------------------------------------------------------------------------------------------
# Metadata filters


def test_datasets_examples_and_sessions_filter_by_metadata_containment(client, keys):
    make_dataset(client, keys.editor, "a", extra={"metadata": {"team": "x", "tier": {"n": 1}}})
    make_dataset(client, keys.editor, "b", extra={"metadata": {"team": "y"}})
    make_dataset(client, keys.editor, "c")

    def datasets(metadata):
        query = json.dumps(metadata)
        return sorted(
            d["name"]
            for d in ok(api_call(client, "GET", f"/datasets?metadata={query}", keys.viewer))
        )

    assert datasets({"team": "x"}) == ["a"]
    if connection.vendor == "postgresql":
        assert datasets({"tier": {"n": 1}}) == ["a"]
        assert datasets({"team": "x", "tier": {"n": 2}}) == []
    assert datasets({}) == ["a", "b", "c"]

    dataset = make_dataset(client, keys.editor, "d")
    add_examples(
        client,
        keys.editor,
        dataset["id"],
        {"inputs": {"q": "1"}, "metadata": {"lang": "en", "tags": ["faq", "billing"]}},
        {"inputs": {"q": "2"}, "metadata": {"lang": "fr"}},
        {"inputs": {"q": "3"}},
    )

    def examples(metadata):
        query = "&metadata=" + json.dumps(metadata)
        return sorted(by_q(examples_of(client, keys.viewer, dataset["id"], query)))

    assert examples({"lang": "en"}) == ["1"]
    if connection.vendor == "postgresql":  # containment of a list: PostgreSQL's @>
        assert examples({"tags": ["billing"]}) == ["1"]
    else:
        query = "&metadata=" + json.dumps({"tags": ["billing"]})
        resp = api_call(client, "GET", f"/examples?dataset={dataset['id']}{query}", keys.viewer)
        refused(resp, 422, names="PostgreSQL")
    assert examples({"lang": "de"}) == []

    for name, extra in [("exp-en", {"metadata": {"lang": "en"}}), ("exp-fr", {})]:
        api_call(client, "POST", "/sessions", keys.editor, json={"name": name, "extra": extra})
    query = json.dumps({"lang": "en"})
    found = ok(api_call(client, "GET", f"/sessions?metadata={query}", keys.viewer))
    assert [s["name"] for s in found] == ["exp-en"]

    for path in ("/datasets", f"/examples?dataset={dataset['id']}&"):
        sep = "" if path.endswith("&") else "?"
        resp = api_call(client, "GET", f"{path}{sep}metadata=not-json", keys.viewer)
        refused(resp, 422, names="metadata")


def test_dataset_and_example_lists_honour_or_refuse_each_langsmith_parameter(client, keys):
    for name in ("zeta", "alpha", "mid"):
        make_dataset(client, keys.editor, name, data_type="llm" if name == "mid" else "kv")
    listed = ok(api_call(client, "GET", "/datasets?sort_by=name&sort_by_desc=false", keys.viewer))
    assert [d["name"] for d in listed] == ["alpha", "mid", "zeta"]
    listed = ok(api_call(client, "GET", "/datasets?data_type=llm&data_type=chat", keys.viewer))
    assert [d["name"] for d in listed] == ["mid"]
    listed = ok(api_call(client, "GET", "/datasets?exclude=example_count", keys.viewer))
    assert {d["example_count"] for d in listed} == {None}
    for query, name in [
        ("tag_value_id=" + str(uuid.uuid4()), "tag_value_id"),
        ("sort_by=session_count", "sort_by"),
        ("exclude=name", "exclude"),
    ]:
        refused(api_call(client, "GET", f"/datasets?{query}", keys.viewer), 422, names=name)

    dataset = make_dataset(client, keys.editor, "texts")
    add_examples(
        client,
        keys.editor,
        dataset["id"],
        {"inputs": {"q": "opening hours"}, "outputs": {"a": "9 to 5"}},
        {"inputs": {"q": "refunds"}, "outputs": {"a": "within 30 days"}},
    )
    found = examples_of(client, keys.viewer, dataset["id"], "&full_text_contains=30 DAYS")
    assert list(by_q(found)) == ["refunds"]
    newest = examples_of(client, keys.viewer, dataset["id"], "&order=recently_created")
    assert len(newest) == 2
    selected = examples_of(client, keys.viewer, dataset["id"], "&select=outputs&select=metadata")
    assert len(selected) == 2
    for query, name in [
        ("&filter=has(metadata, '{\"a\": 1}')", "filter"),
        ("&random_seed=3", "random_seed"),
        ("&select=nonsense", "select"),
        ("&exclude_default_fields=true", "exclude_default_fields"),
        ("&order=sideways", "order"),
    ]:
        resp = api_call(client, "GET", f"/examples?dataset={dataset['id']}{query}", keys.viewer)
        refused(resp, 422, names=name)
    refused(api_call(client, "GET", "/examples?as_of=latest", keys.viewer), 422, names="as_of")


# ---------------------------------------------------------------------------------------------
# CSV upload


def upload(client, key, csv_text, *, input_keys=("q",), output_keys=("a",), **fields):
    parts = [("file", csv_text.encode(), "text/csv", "faq.csv")]
    parts += [("input_keys", k.encode(), None, None) for k in input_keys]
    parts += [("output_keys", k.encode(), None, None) for k in output_keys]
    parts += [(name, str(value).encode(), None, None) for name, value in fields.items()]
    return send_multipart(client, "POST", "/datasets/upload", key, parts)


def test_csv_upload_makes_a_dataset_with_one_example_per_row(client, world, keys):
    csv_text = 'q,a,note\r\nhours?,9-5,x\r\n"refunds, please",30 days,y\r\n'
    dataset = ok(
        upload(client, keys.editor, csv_text, name="faq", description="from csv", data_type="kv"),
        201,
    )
    assert (dataset["name"], dataset["description"], dataset["example_count"]) == (
        "faq",
        "from csv",
        2,
    )
    stored = models.Dataset.objects.get(pk=dataset["id"])
    assert stored.workspace == world.workspace
    examples = by_q(examples_of(client, keys.viewer, dataset["id"]))
    assert examples["refunds, please"]["outputs"] == {"a": "30 days"}
    assert examples["hours?"]["inputs"] == {"q": "hours?"}  # 'note' is neither: left out
    assert stored.versions.count() == 1

    # The file name is the name when none is given.
    unnamed = ok(upload(client, keys.editor, "q,a\nx,y\n"), 201)
    assert unnamed["name"] == "faq.csv"


@pytest.mark.parametrize(
    "csv_text,fields,status,names",
    [
        ("q,answer\nx,y\n", {}, 422, "'a'"),  # no such output column
        ("q,a\n", {}, 422, "no rows"),
        ("q,a\nx\n", {}, 422, "Line 2"),
        ("q,a\nx,y,z\n", {}, 422, "Line 2"),
        ("q,a\nx,y\n", {"name": "taken"}, 409, "duplicate"),
        ("q,a\nx,y\n", {"data_type": "table"}, 422, "data_type"),
        ("q,a\nx,y\n", {"metadata_keys": "q"}, 422, "metadata_keys"),
    ],
)
def test_a_csv_upload_refused_writes_nothing(client, keys, csv_text, fields, status, names):
    make_dataset(client, keys.editor, "taken")
    before = snapshot()
    refused(upload(client, keys.editor, csv_text, **{"name": "new", **fields}), status, names=names)
    assert snapshot() == before


def test_csv_upload_needs_a_file_multipart_and_datasets_create(client, keys):
    before = snapshot()
    resp = send_multipart(
        client, "POST", "/datasets/upload", keys.editor, [("name", b"x", None, None)]
    )
    refused(resp, 422, names="file")
    resp = api_call(client, "POST", "/datasets/upload", keys.editor, json={"name": "x"})
    refused(resp, 422, names="multipart")
    body = refused(upload(client, keys.viewer, "q,a\nx,y\n", name="v"), 403, "permission_denied")
    assert body["required"] == "datasets:create"
    assert snapshot() == before


# ---------------------------------------------------------------------------------------------
# Bulk update and delete


def test_bulk_update_changes_every_example_or_none(client, keys):
    dataset = make_dataset(client, keys.editor, "bulk")
    created = add_examples(
        client, keys.editor, dataset["id"], {"inputs": {"q": "1"}}, {"inputs": {"q": "2"}}
    )
    one, two = (e["id"] for e in created)
    body = ok(
        api_call(
            client,
            "PATCH",
            "/examples/bulk",
            keys.editor,
            json=[
                {"id": one, "outputs": {"a": "one"}, "metadata": {"checked": True}},
                {"id": two, "inputs": {"q": "2!"}, "split": "test"},
            ],
        )
    )
    assert body["count"] == 2 and set(body["example_ids"]) == {one, two}
    stored = {str(e.pk): e for e in models.Example.objects.filter(dataset_id=dataset["id"])}
    assert stored[one].outputs == {"a": "one"} and stored[one].inputs == {"q": "1"}
    assert stored[one].metadata == {"checked": True}
    assert stored[two].inputs == {"q": "2!"} and stored[two].split == ["test"]

    staging = make_dataset(client, keys.staging, "staging")
    (foreign,) = add_examples(client, keys.staging, staging["id"], {"inputs": {"q": "s"}})
    before = snapshot()
    for payload, status, names in [
        ([{"id": one, "outputs": {}}, {"id": foreign["id"], "outputs": {}}], 404, "example_ids"),
        ([{"id": str(uuid.uuid4()), "outputs": {}}], 404, "example_ids"),
        ([{"id": one}, {"id": one}], 422, "twice"),
        ([{"id": one, "dataset_id": staging["id"]}], 422, "dataset_id"),
        ([{"id": one, "attachments_operations": {"retain": []}}], 422, "attachments"),
        ([{"id": one, "inputs": "not an object"}], 422, "inputs"),
    ]:
        resp = api_call(client, "PATCH", "/examples/bulk", keys.editor, json=payload)
        refused(resp, status, names=names)
    refused(api_call(client, "PATCH", "/examples/bulk", keys.viewer, json=[]), 403)
    assert snapshot() == before


def test_bulk_delete_removes_the_examples_from_the_latest_version_only(client, keys):
    dataset = make_dataset(client, keys.editor, "deletions")
    created = add_examples(
        client,
        keys.editor,
        dataset["id"],
        *({"inputs": {"q": str(n)}} for n in range(3)),
    )
    before_delete = ok(
        api_call(client, "GET", f"/datasets/{dataset['id']}/version?tag=latest", keys.viewer)
    )
    ids = [created[0]["id"], created[1]["id"]]
    query = "&".join(f"example_ids={i}" for i in ids)
    body = ok(api_call(client, "DELETE", f"/examples?{query}", keys.editor))
    assert body["count"] == 2 and set(body["example_ids"]) == set(ids)
    assert list(by_q(examples_of(client, keys.viewer, dataset["id"]))) == ["2"]
    # As of the version before: all three, as they were.
    as_of = "&as_of=" + before_delete["as_of"].replace("+", "%2B")
    assert sorted(by_q(examples_of(client, keys.viewer, dataset["id"], as_of))) == ["0", "1", "2"]
    resp = api_call(
        client,
        "GET",
        f"/examples/{ids[0]}?as_of={before_delete['as_of'].replace('+', '%2B')}",
        keys.viewer,
    )
    assert ok(resp)["inputs"] == {"q": "0"}
    refused(api_call(client, "GET", f"/examples/{ids[0]}", keys.viewer), 404)

    staging = make_dataset(client, keys.staging, "staging")
    (foreign,) = add_examples(client, keys.staging, staging["id"], {"inputs": {"q": "s"}})
    before = snapshot()
    last = created[2]["id"]
    for query, status in [
        (f"example_ids={last}&example_ids={foreign['id']}", 404),
        (f"example_ids={ids[0]}", 404),  # deleted already
        ("example_ids=nope", 422),
        ("", 422),
    ]:
        refused(api_call(client, "DELETE", f"/examples?{query}", keys.editor), status)
    refused(api_call(client, "DELETE", f"/examples?example_ids={last}", keys.viewer), 403)
    assert snapshot() == before


def test_hard_delete_forgets_the_examples_history(client, keys):
    dataset = make_dataset(client, keys.editor, "purge")
    (example,) = add_examples(client, keys.editor, dataset["id"], {"inputs": {"q": "secret"}})
    version = ok(
        api_call(client, "GET", f"/datasets/{dataset['id']}/version?tag=latest", keys.viewer)
    )
    body = {"example_ids": [example["id"]], "hard_delete": True}
    ok(api_call(client, "POST", "/platform/datasets/examples/delete", keys.editor, json=body))
    assert not models.Example.objects.filter(pk=example["id"]).exists()
    assert not models.ExampleRevision.objects.filter(example_id=example["id"]).exists()
    as_of = "&as_of=" + version["as_of"].replace("+", "%2B")
    assert examples_of(client, keys.viewer, dataset["id"], as_of) == []
    resp = api_call(client, "POST", "/platform/datasets/examples/delete", keys.editor, json=body)
    refused(resp, 404, "not_found")


# ---------------------------------------------------------------------------------------------
# Versions, as_of and tags


def versions_of(client, key, dataset_id, query=""):
    return ok(api_call(client, "GET", f"/datasets/{dataset_id}/versions{query}", key))


def quoted(time):
    return time.replace("+", "%2B")


def test_every_change_makes_a_version_readable_as_of_its_time_or_tag(client, keys):
    dataset = make_dataset(client, keys.editor, "versions")
    did = dataset["id"]
    first, second = add_examples(
        client,
        keys.editor,
        did,
        {"inputs": {"q": "a"}, "outputs": {"v": 1}},
        {"inputs": {"q": "b"}},
    )
    resp = api_call(
        client, "PATCH", f"/examples/{first['id']}", keys.editor, json={"outputs": {"v": 2}}
    )
    ok(resp)
    ok(api_call(client, "DELETE", f"/examples/{second['id']}", keys.editor), 202)
    add_examples(client, keys.editor, did, {"inputs": {"q": "c"}})

    versions = versions_of(client, keys.viewer, did)
    assert len(versions) == 4
    times = [v["as_of"] for v in reversed(versions)]  # oldest first
    assert times == sorted(times, key=datetime.datetime.fromisoformat)
    v1, v2, v3, v4 = times

    def state(as_of):
        return {
            q: e["outputs"]
            for q, e in by_q(
                examples_of(client, keys.viewer, did, f"&as_of={quoted(as_of)}")
            ).items()
        }

    assert state(v1) == {"a": {"v": 1}, "b": None}
    assert state(v2) == {"a": {"v": 2}, "b": None}
    assert state(v3) == {"a": {"v": 2}}
    assert state(v4) == {"a": {"v": 2}, "c": None}
    assert state("latest") == state(v4)
    early = (datetime.datetime.fromisoformat(v1) - datetime.timedelta(seconds=1)).isoformat()
    assert state(early) == {}

    # The version as of a time between two is the earlier one.
    between = (
        datetime.datetime.fromisoformat(v2)
        + (datetime.datetime.fromisoformat(v3) - datetime.datetime.fromisoformat(v2)) / 2
    )
    resp = api_call(
        client, "GET", f"/datasets/{did}/version?as_of={quoted(between.isoformat())}", keys.viewer
    )
    assert datetime.datetime.fromisoformat(ok(resp)["as_of"]) == datetime.datetime.fromisoformat(v2)

    # Tag v2 "prod": read by tag, listed with its tag; moving it leaves v2 untagged.
    tagged = ok(
        api_call(
            client, "PUT", f"/datasets/{did}/tags", keys.editor, json={"as_of": v2, "tag": "prod"}
        )
    )
    assert tagged["tags"] == ["prod"]
    assert state("prod") == state(v2)
    by_tag = ok(api_call(client, "GET", f"/datasets/{did}/version?tag=prod", keys.viewer))
    assert datetime.datetime.fromisoformat(by_tag["as_of"]) == datetime.datetime.fromisoformat(v2)
    assert [v["tags"] for v in versions_of(client, keys.viewer, did, "?search=pro")] == [["prod"]]
    ok(
        api_call(
            client, "PUT", f"/datasets/{did}/tags", keys.editor, json={"as_of": v3, "tag": "prod"}
        )
    )
    assert state("prod") == state(v3)
    assert [v["tags"] for v in versions_of(client, keys.viewer, did)] == [[], ["prod"], [], []]
    changed_first = versions_of(client, keys.viewer, did, f"?example={first['id']}")
    assert len(changed_first) == 2

    diff = ok(
        api_call(
            client,
            "GET",
            f"/datasets/{did}/versions/diff?from_version={quoted(v1)}&to_version=latest",
            keys.viewer,
        )
    )
    assert diff["examples_modified"] == [first["id"]]
    assert diff["examples_removed"] == [second["id"]]
    assert len(diff["examples_added"]) == 1

    # Refusals: nothing changes.
    before = snapshot()
    for method, path, body, status, names in [
        ("PUT", "tags", {"as_of": between.isoformat(), "tag": "x"}, 404, "as_of"),
        ("PUT", "tags", {"as_of": "yesterday", "tag": "x"}, 422, "as_of"),
        ("PUT", "tags", {"as_of": v2, "tag": ""}, 422, "tag"),
        ("GET", "version?tag=nope", None, 404, None),
        ("GET", "version", None, 422, "as_of"),
        ("GET", f"version?as_of={quoted(v1)}&tag=prod", None, 422, "as_of"),
    ]:
        resp = api_call(client, method, f"/datasets/{did}/{path}", keys.editor, json=body)
        refused(resp, status, names=names)
    resp = api_call(client, "GET", f"/examples?dataset={did}&as_of=no-such-tag", keys.viewer)
    refused(resp, 404, names="no-such-tag")
    resp = api_call(
        client, "PUT", f"/datasets/{did}/tags", keys.viewer, json={"as_of": v2, "tag": "x"}
    )
    refused(resp, 403, "permission_denied")
    assert snapshot() == before


def test_versions_follow_the_console_too(client, world, keys):
    """The console's example writes go through the same services: they make versions too."""
    from accesscontrol.rbac.actor import Actor
    from accesscontrol.resources import services

    dataset = make_dataset(client, keys.editor, "console")
    actor = Actor.for_user(world.editor, world.org, world.workspace)
    (example,) = services.create_examples(
        actor=actor,
        workspace=world.workspace,
        examples=[{"dataset_id": uuid.UUID(dataset["id"]), "inputs": {"q": 1}}],
    )
    services.update_example(actor=actor, example=example, outputs={"a": 1})
    services.delete_resource(actor=actor, resource=example)
    assert models.DatasetVersion.objects.filter(dataset_id=dataset["id"]).count() == 3
    assert list(
        models.ExampleRevision.objects.filter(example_id=example.pk).values_list(
            "deleted", flat=True
        )
    ) == [False, False, True]


# ---------------------------------------------------------------------------------------------
# Splits and bulk metadata


def test_splits_are_listed_changed_and_read_as_of_a_version(client, keys):
    dataset = make_dataset(client, keys.editor, "splits")
    did = dataset["id"]
    a, b, c = add_examples(
        client,
        keys.editor,
        did,
        {"inputs": {"q": "a"}},
        {"inputs": {"q": "b"}, "split": "train"},
        {"inputs": {"q": "c"}},
    )
    assert ok(api_call(client, "GET", f"/datasets/{did}/splits", keys.viewer)) == ["base", "train"]
    before_change = ok(api_call(client, "GET", f"/datasets/{did}/version?tag=latest", keys.viewer))

    body = {"split_name": "test", "examples": [a["id"], c["id"]]}
    assert sorted(
        ok(api_call(client, "PUT", f"/datasets/{did}/splits", keys.editor, json=body))
    ) == sorted([a["id"], c["id"]])
    assert ok(api_call(client, "GET", f"/datasets/{did}/splits", keys.viewer)) == [
        "base",
        "test",
        "train",
    ]
    test_split = examples_of(client, keys.viewer, did, "&splits=test")
    assert sorted(by_q(test_split)) == ["a", "c"]
    assert by_q(test_split)["a"]["split"] == ["base", "test"]
    body = {"split_name": "base", "examples": [a["id"]], "remove": True}
    ok(api_call(client, "PUT", f"/datasets/{did}/splits", keys.editor, json=body))
    assert models.Example.objects.get(pk=a["id"]).split == ["test"]
    old = quoted(before_change["as_of"])
    assert ok(api_call(client, "GET", f"/datasets/{did}/splits?as_of={old}", keys.viewer)) == [
        "base",
        "train",
    ]

    # LangSmith's bulk metadata endpoint (update_dataset_splits uses it): unknown ids NOT_FOUND.
    missing = str(uuid.uuid4())
    body = {
        "example_ids": [b["id"], missing],
        "operations": [
            {"key": "dataset_split", "operation": "array_add", "values": ["eval"]},
            {"key": "owner", "operation": "SET", "value": {"team": "qa"}},
            {"key": "labels", "operation": "ARRAY_ADD", "values": ["x", "y"]},
            {"key": "labels", "operation": "ARRAY_REMOVE", "values": ["x"]},
        ],
    }
    result = ok(
        api_call(
            client, "PATCH", f"/platform/datasets/{did}/examples/metadata", keys.editor, json=body
        )
    )
    assert [(s["id"], s["status"]) for s in result["statuses"]] == [
        (b["id"], "UPDATED"),
        (missing, "NOT_FOUND"),
    ]
    stored = models.Example.objects.get(pk=b["id"])
    assert stored.split == ["train", "eval"]
    assert stored.metadata == {"owner": {"team": "qa"}, "labels": ["y"]}

    staging = make_dataset(client, keys.staging, "staging")
    (foreign,) = add_examples(client, keys.staging, staging["id"], {"inputs": {"q": "s"}})
    before = snapshot()
    for body, status, names in [
        ({"split_name": "x", "examples": [foreign["id"]]}, 404, "example_ids"),
        ({"split_name": "", "examples": [a["id"]]}, 422, "split_name"),
        ({"examples": [a["id"]]}, 422, "split_name"),
    ]:
        refused(
            api_call(client, "PUT", f"/datasets/{did}/splits", keys.editor, json=body),
            status,
            names=names,
        )
    body = {"example_ids": [a["id"]], "operations": [{"key": "k", "operation": "DROP"}]}
    refused(
        api_call(
            client, "PATCH", f"/platform/datasets/{did}/examples/metadata", keys.editor, json=body
        ),
        422,
        names="operation",
    )
    body = {"split_name": "x", "examples": [a["id"]]}
    refused(api_call(client, "PUT", f"/datasets/{did}/splits", keys.viewer, json=body), 403)
    assert snapshot() == before


# ---------------------------------------------------------------------------------------------
# The multipart examples endpoints (JS SDK) and /info


def test_info_advertises_the_multipart_examples_endpoints(client):
    flags = ok(api_call(client, "GET", "/info"))["instance_flags"]
    assert flags["dataset_examples_multipart_enabled"] is True


@pytest.mark.parametrize("filename", [None, "blob"], ids=["python-parts", "js-blobs"])
@pytest.mark.parametrize("root", [False, True], ids=["api-v1", "root-v1"])
def test_multipart_examples_are_created_and_updated(client, world, keys, filename, root):
    dataset = make_dataset(client, keys.editor, "multipart")
    did = dataset["id"]
    path = f"{'/v1' if root else ''}/platform/datasets/{did}/examples"
    one, two = uuid.uuid4(), uuid.uuid4()
    parts = example_parts(
        one,
        inputs={"q": "1"},
        outputs={"a": "one"},
        filename=filename,
        metadata={"m": 1},
        split=["train"],
    ) + example_parts(two, inputs={"q": "2"}, filename=filename, created_at="2026-01-02T03:04:05Z")
    body = ok(send_multipart(client, "POST", path, keys.editor, parts, root=root), 201)
    assert body["count"] == 2 and set(body["example_ids"]) == {str(one), str(two)}
    assert body["as_of"] is not None
    first = models.Example.objects.get(pk=one)
    assert (first.inputs, first.outputs, first.metadata, first.split) == (
        {"q": "1"},
        {"a": "one"},
        {"m": 1},
        ["train"],
    )
    assert first.workspace == world.workspace
    assert models.Example.objects.get(pk=two).created_at == datetime.datetime(
        2026, 1, 2, 3, 4, 5, tzinfo=datetime.UTC
    )

    parts = example_parts(one, outputs={"a": "uno"}, filename=filename, split="test")
    body = ok(send_multipart(client, "PATCH", path, keys.editor, parts, root=root))
    assert body["example_ids"] == [str(one)]
    first.refresh_from_db()
    assert (first.inputs, first.outputs, first.split) == ({"q": "1"}, {"a": "uno"}, ["test"])
    assert models.DatasetVersion.objects.filter(dataset_id=did).count() == 2


def test_multipart_examples_stay_in_the_dataset_the_path_names(client, keys):
    """A part's own dataset_id (the SDK repeats it) gives way to the path's, creating and
    changing alike: an example lands in, and stays in, the path's dataset."""
    dataset = make_dataset(client, keys.editor, "multipart")
    other = make_dataset(client, keys.editor, "other")
    path = f"/platform/datasets/{dataset['id']}/examples"
    new = uuid.uuid4()
    parts = example_parts(new, inputs={"q": 1}, dataset_id=other["id"])
    ok(send_multipart(client, "POST", path, keys.editor, parts), 201)
    assert str(models.Example.objects.get(pk=new).dataset_id) == dataset["id"]
    parts = example_parts(new, outputs={"a": 2}, dataset_id=other["id"])
    ok(send_multipart(client, "PATCH", path, keys.editor, parts))
    example = models.Example.objects.get(pk=new)
    assert (str(example.dataset_id), example.outputs) == (dataset["id"], {"a": 2})


def test_multipart_refusals_write_nothing(client, keys):
    dataset = make_dataset(client, keys.editor, "multipart")
    did = dataset["id"]
    (existing,) = add_examples(client, keys.editor, did, {"inputs": {"q": "x"}})
    staging = make_dataset(client, keys.staging, "staging")
    path = f"/platform/datasets/{did}/examples"
    new = uuid.uuid4()
    before = snapshot()
    cases = [
        (
            "POST",
            path,
            [
                *example_parts(new, inputs={"q": 1}),
                (f"{new}.attachment.img", b"\x89PNG", "image/png; length=4", "blob"),
            ],
            422,
            "ttachment",
        ),
        (
            "POST",
            path,
            example_parts(new, inputs={"q": 1}, use_source_run_io=True),
            422,
            "use_source_run_io",
        ),
        ("POST", path, [(str(new), b"{not json", "application/json", None)], 422, str(new)),
        ("POST", path, example_parts(new, inputs=["not", "an", "object"]), 422, "inputs"),
        ("POST", path, example_parts("not-a-uuid", inputs={"q": 1}), 422, "id"),
        ("POST", path, example_parts(existing["id"], inputs={"q": 1}), 409, "duplicate"),
        ("POST", path, [], 422, "body"),
        (
            "POST",
            f"/platform/datasets/{staging['id']}/examples",
            example_parts(new, inputs={"q": 1}),
            404,
            "not_found",
        ),
        ("PATCH", path, example_parts(new, inputs={"q": 1}), 404, "example_ids"),
        (
            "PATCH",
            f"/platform/datasets/{staging['id']}/examples",
            example_parts(existing["id"], inputs={"q": 1}),
            404,
            "not_found",
        ),
    ]
    for method, url, parts, status, names in cases:
        resp = send_multipart(client, method, url, keys.editor, parts)
        refused(resp, status, names=names)
    # A JSON body where multipart is expected, and a Viewer.
    resp = api_call(client, "POST", path, keys.editor, json={"inputs": {}})
    refused(resp, 422, names="multipart")
    resp = send_multipart(client, "POST", path, keys.viewer, example_parts(new, inputs={"q": 1}))
    assert refused(resp, 403, "permission_denied")["required"] == "datasets:update"
    assert snapshot() == before


# ---------------------------------------------------------------------------------------------
# Tenancy and the endpoint table


# (method, path, permission, body): every operation of resources/api_datasets.py.
ENDPOINTS = [
    ("POST", "/datasets/upload", "datasets:create", None),
    ("GET", "/datasets/{dataset_id}/versions", "datasets:read", None),
    ("GET", "/datasets/{dataset_id}/version", "datasets:read", None),
    ("GET", "/datasets/{dataset_id}/versions/diff", "datasets:read", None),
    ("PUT", "/datasets/{dataset_id}/tags", "datasets:update", {"as_of": "{as_of}", "tag": "t"}),
    ("GET", "/datasets/{dataset_id}/splits", "datasets:read", None),
    (
        "PUT",
        "/datasets/{dataset_id}/splits",
        "datasets:update",
        {"split_name": "s", "examples": []},
    ),
    ("PATCH", "/examples/bulk", "datasets:update", None),
    ("DELETE", "/examples", "datasets:update", None),
    ("POST", "/platform/datasets/{dataset_id}/examples", "datasets:update", None),
    ("PATCH", "/platform/datasets/{dataset_id}/examples", "datasets:update", None),
    (
        "PATCH",
        "/platform/datasets/{dataset_id}/examples/metadata",
        "datasets:update",
        {"example_ids": ["{example_id}"], "operations": [{"key": "k", "operation": "SET"}]},
    ),
    ("POST", "/platform/datasets/examples/delete", "datasets:update", None),
]


def test_the_endpoint_table_is_every_operation_of_the_module():
    from accesscontrol.api.api import operations
    from accesscontrol.rbac.gate import rule_of

    declared = {}
    for path, method, view in operations():
        if view.__module__ != API_DATASETS:
            continue
        template = re.sub(r"\{\w+:(\w+)\}", r"{\1}", path)
        template = "/" + template.lstrip("/").removeprefix("v1/")  # the root API's /v1 mount
        declared.setdefault(f"{method} {template}", set()).add(rule_of(view).codes)
    assert declared == {f"{m} {p}": {(perm,)} for m, p, perm, _ in ENDPOINTS}
    assert len(ENDPOINTS) == 13


def _fill(value, ids):
    text = json.dumps(value)
    for name, replacement in ids.items():
        text = text.replace("{" + name + "}", str(replacement))
    return json.loads(text)


DATASET_ADDRESSED = [e for e in ENDPOINTS if "{dataset_id}" in e[1]]


@pytest.mark.parametrize("endpoint", DATASET_ADDRESSED, ids=lambda e: f"{e[0]} {e[1]}")
def test_another_tenants_dataset_is_not_found_and_left_alone(client, keys, endpoint):
    method, path, _, body = endpoint
    for owner, intruder in [
        (keys.staging, keys.editor),
        (keys.globex, keys.editor),
        (keys.editor, keys.staging),
    ]:
        dataset = make_dataset(client, owner, f"owned {uuid.uuid4().hex[:6]}")
        (example,) = add_examples(client, owner, dataset["id"], {"inputs": {"q": "secret"}})
        version = ok(
            api_call(client, "GET", f"/datasets/{dataset['id']}/version?tag=latest", owner)
        )
        ids = {"dataset_id": dataset["id"], "example_id": example["id"], "as_of": version["as_of"]}
        query = {
            "version": "?tag=latest",
            "versions/diff": "?from_version=latest&to_version=latest",
        }
        url = _fill(path, ids) + next(
            (q for suffix, q in query.items() if path.endswith(suffix)), ""
        )
        before = snapshot()
        if method in ("POST", "PATCH") and body is None:  # multipart
            parts = example_parts(
                example["id"] if method == "PATCH" else uuid.uuid4(), inputs={"q": 1}
            )
            resp = send_multipart(client, method, url, intruder, parts)
        else:
            resp = api_call(client, method, url, intruder, json=_fill(body, ids) if body else None)
        body_out = refused(resp, 404, "not_found")
        assert "secret" not in json.dumps(body_out)
        assert snapshot() == before
        # The owner's own request succeeds (the control).
        if method == "GET":
            ok(api_call(client, method, url, owner))


def test_a_viewer_reads_but_changes_nothing(client, keys):
    dataset = make_dataset(client, keys.editor, "viewer")
    (example,) = add_examples(client, keys.editor, dataset["id"], {"inputs": {"q": "x"}})
    version = ok(
        api_call(client, "GET", f"/datasets/{dataset['id']}/version?tag=latest", keys.viewer)
    )
    ids = {"dataset_id": dataset["id"], "example_id": example["id"], "as_of": version["as_of"]}
    before = snapshot()
    for method, path, permission, body in ENDPOINTS:
        url = _fill(path, ids)
        if path.endswith("/version"):
            url += "?tag=latest"
        if path.endswith("/diff"):
            url += "?from_version=latest&to_version=latest"
        resp = api_call(client, method, url, keys.viewer, json=_fill(body, ids) if body else None)
        if permission == "datasets:read":
            ok(resp)
        else:
            assert refused(resp, 403, "permission_denied")["required"] == permission
    assert snapshot() == before


def test_history_reads_cost_the_same_whatever_the_number_of_examples(client, keys):
    from django.db import connection as db
    from django.test.utils import CaptureQueriesContext

    def cost(size):
        dataset = make_dataset(client, keys.editor, f"size {size}")
        add_examples(
            client, keys.editor, dataset["id"], *({"inputs": {"q": n}} for n in range(size))
        )
        version = ok(
            api_call(client, "GET", f"/datasets/{dataset['id']}/version?tag=latest", keys.viewer)
        )
        add_examples(client, keys.editor, dataset["id"], {"inputs": {"q": "later"}})
        counts = []
        for path in (
            f"/examples?dataset={dataset['id']}&as_of={quoted(version['as_of'])}",
            f"/datasets/{dataset['id']}/versions",
            f"/datasets/{dataset['id']}/splits?as_of={quoted(version['as_of'])}",
        ):
            ok(api_call(client, "GET", path, keys.viewer))  # the key is known from here on
            with CaptureQueriesContext(db) as queries:
                listed = ok(api_call(client, "GET", path, keys.viewer))
            counts.append(len(queries))
            if path.startswith("/examples"):
                assert len(listed) == size
        return counts

    small, large = cost(2), cost(40)
    assert small == large, (small, large)
    assert max(large) <= 6, large


def test_a_revision_keeps_each_of_its_examples_fields_it_has_a_column_for():
    """ExampleRevision.KEPT is what versioning copies from an example and as_example() gives
    back: a column added to the revision but not to KEPT would stay empty in every version."""
    own = {"id", "version", "dataset", "example_id", "as_of", "deleted"}
    revision_fields = {f.name for f in models.ExampleRevision._meta.concrete_fields}
    example_fields = {f.name for f in models.Example._meta.concrete_fields}
    assert set(models.ExampleRevision.KEPT) == revision_fields - own
    assert set(models.ExampleRevision.KEPT) <= example_fields
