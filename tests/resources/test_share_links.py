"""Share links (issue 18 §4): runs:share, datasets:share, prompts:share.

Making and revoking a link is audited; the public JSON and page show the shared object and what
is under it, nothing else of the workspace; a revoked link is refused on its very next request;
another workspace's object is a 404; a viewer cannot share.
"""

import uuid

import pytest
from django.test import Client

from accesscontrol.audit.models import AuditEvent
from accesscontrol.resources import models, sharing
from accesscontrol.resources import services as resources
from tests.factories import SYSTEM, service_key_for
from tests.support.api import api_call


@pytest.fixture
def trace(world):
    """A trace (root, child, grandchild) and an unrelated run, in one project of production."""
    project = resources.create_project(actor=SYSTEM, workspace=world.workspace, name="bot")
    root, child, grandchild, other = (uuid.uuid4() for _ in range(4))
    posts = [
        {"id": root, "name": "answer", "run_type": "chain", "dotted_order": "1" + root.hex},
        {
            "id": child,
            "trace_id": root,
            "parent_run_id": root,
            "name": "lookup",
            "run_type": "tool",
            "dotted_order": f"1{root.hex}.2{child.hex}",
        },
        {
            "id": grandchild,
            "trace_id": root,
            "parent_run_id": child,
            "name": "fetch",
            "run_type": "retriever",
            "dotted_order": f"1{root.hex}.2{child.hex}.3{grandchild.hex}",
        },
        {"id": other, "name": "unrelated secret", "run_type": "chain", "inputs": {"pw": "zz"}},
    ]
    for post in posts:
        post["session_id"] = project.pk
        post.setdefault("inputs", {"question": "q"})
    resources.ingest_runs(actor=SYSTEM, workspace=world.workspace, posts=posts)
    ids = {"root": root, "child": child, "grandchild": grandchild, "other": other}
    return {name: models.Run.objects.get(pk=pk) for name, pk in ids.items()}


def public(client, path, **kwargs):
    """A request with no key at all: what anyone holding the link can do."""
    return getattr(client, kwargs.pop("method", "get"))(f"/api/v1/public/{path}", **kwargs)


def test_share_a_run_read_it_publicly_and_revoke_it(client, world, editor_key, trace):
    root = trace["root"]
    made = api_call(
        client, "PUT", f"/runs/{root.pk}/share", editor_key, json={"run_id": str(root.pk)}
    )
    assert made.status_code == 200, made.content
    token = made.json()["share_token"]
    assert made.json()["url"] == f"http://testserver/public/{token}/r"
    again = api_call(client, "PUT", f"/runs/{root.pk}/share", editor_key, json={})
    assert again.json()["share_token"] == token  # one live link per run
    read = api_call(client, "GET", f"/runs/{root.pk}/share", editor_key)
    assert read.json()["share_token"] == token

    event = AuditEvent.objects.get(action="share_link.created")
    assert event.workspace_id == world.workspace.pk and event.target_label == "run answer"
    assert event.changes["after"] == {"kind": "run", "object_id": str(root.pk)}

    anyone = Client()
    shared = public(anyone, f"{token}/run")
    assert shared.status_code == 200, shared.content
    assert shared.json()["id"] == str(root.pk) and shared.json()["name"] == "answer"
    child = public(anyone, f"{token}/run/{trace['grandchild'].pk}")
    assert child.status_code == 200 and child.json()["name"] == "fetch"
    # Runs outside the shared trace are not reachable through the link.
    assert public(anyone, f"{token}/run/{trace['other'].pk}").status_code == 404
    listed = public(
        anyone, f"{token}/runs/query", method="post", data={}, content_type="application/json"
    )
    assert {r["name"] for r in listed.json()["runs"]} == {"answer", "lookup", "fetch"}
    page = anyone.get(f"/public/{token}/r")
    assert page.status_code == 200
    assert b"answer" in page.content and b"fetch" in page.content
    assert b"unrelated secret" not in page.content and world.workspace.name.encode() not in (
        page.content
    )
    assert page["Referrer-Policy"] == "no-referrer"

    revoked = api_call(client, "DELETE", f"/runs/{root.pk}/share", editor_key)
    assert revoked.status_code == 204
    assert AuditEvent.objects.filter(action="share_link.revoked").count() == 1
    # Dead on the very next request, JSON and page alike.
    assert public(anyone, f"{token}/run").status_code == 404
    assert anyone.get(f"/public/{token}/r").status_code == 404
    assert api_call(client, "GET", f"/runs/{root.pk}/share", editor_key).json() is None
    # Revoking what is not shared changes nothing and records nothing.
    assert api_call(client, "DELETE", f"/runs/{root.pk}/share", editor_key).status_code == 204
    assert AuditEvent.objects.filter(action="share_link.revoked").count() == 1
    # Sharing again makes a new token; the old one stays dead.
    renewed = api_call(client, "PUT", f"/runs/{root.pk}/share", editor_key, json={})
    assert renewed.json()["share_token"] != token
    assert public(anyone, f"{token}/run").status_code == 404


def test_a_shared_child_run_opens_only_what_is_under_it(client, editor_key, trace):
    child = trace["child"]
    token = api_call(client, "PUT", f"/runs/{child.pk}/share", editor_key, json={}).json()[
        "share_token"
    ]
    anyone = Client()
    assert public(anyone, f"{token}/run/{trace['grandchild'].pk}").status_code == 200
    assert public(anyone, f"{token}/run/{trace['root'].pk}").status_code == 404


def test_a_client_chosen_token_must_be_random(client, editor_key, trace):
    root = trace["root"]
    weak = api_call(
        client,
        "PUT",
        f"/runs/{root.pk}/share",
        editor_key,
        json={"share_token": "00000000-0000-0000-0000-000000000001"},
    )
    assert weak.status_code == 422 and "share_token" in weak.json()["fields"]
    chosen = uuid.uuid4()
    ok = api_call(
        client, "PUT", f"/runs/{root.pk}/share", editor_key, json={"share_token": str(chosen)}
    )
    assert ok.json()["share_token"] == str(chosen)
    other = trace["other"]
    taken = api_call(
        client, "PUT", f"/runs/{other.pk}/share", editor_key, json={"share_token": str(chosen)}
    )
    assert taken.status_code == 409
    mismatch = api_call(
        client, "PUT", f"/runs/{other.pk}/share", editor_key, json={"run_id": str(root.pk)}
    )
    assert mismatch.status_code == 422
    assert models.ShareLink.objects.count() == 1


def test_share_a_dataset_and_read_its_examples(client, world, editor_key):
    dataset = resources.create_dataset(actor=SYSTEM, workspace=world.workspace, name="qa")
    resources.create_examples(
        actor=SYSTEM,
        workspace=world.workspace,
        examples=[{"dataset_id": dataset.pk, "inputs": {"q": n}} for n in range(3)],
    )
    secret = resources.create_dataset(actor=SYSTEM, workspace=world.workspace, name="secret")
    assert api_call(client, "GET", f"/datasets/{dataset.pk}/share", editor_key).status_code == 404
    made = api_call(
        client,
        "PUT",
        f"/datasets/{dataset.pk}/share",
        editor_key,
        json={"dataset_id": str(dataset.pk)},
    )
    assert made.status_code == 200, made.content
    token = made.json()["share_token"]
    assert made.json()["dataset_id"] == str(dataset.pk)
    assert (
        api_call(client, "GET", f"/datasets/{dataset.pk}/share", editor_key).json()["share_token"]
        == token
    )

    anyone = Client()
    shared = public(anyone, f"{token}/datasets")
    assert shared.status_code == 200, shared.content
    assert (shared.json()["name"], shared.json()["example_count"]) == ("qa", 3)
    examples = public(anyone, f"{token}/examples").json()
    assert sorted(e["inputs"]["q"] for e in examples) == [0, 1, 2]
    assert len(public(anyone, f"{token}/examples", data={"limit": 2}).json()) == 2
    one = public(anyone, f"{token}/examples", data={"id": [examples[0]["id"]]}).json()
    assert [e["id"] for e in one] == [examples[0]["id"]]
    page = anyone.get(f"/public/{token}/d")
    assert page.status_code == 200 and b"qa" in page.content and b"secret" not in page.content
    # A dataset token opens no run, and a run token no dataset.
    assert public(anyone, f"{token}/run").status_code == 404
    assert anyone.get(f"/public/{token}/r").status_code == 404
    assert secret.pk  # never reachable: nothing names it

    assert (
        api_call(client, "DELETE", f"/datasets/{dataset.pk}/share", editor_key).status_code == 204
    )
    assert public(anyone, f"{token}/datasets").status_code == 404
    assert public(anyone, f"{token}/examples").status_code == 404
    shares = AuditEvent.objects.filter(action__startswith="share_link").order_by("created_at")
    actions = list(shares.values_list("action", flat=True))
    assert actions == ["share_link.created", "share_link.revoked"]


def test_share_a_prompt(client, world, editor_key):
    resources.create_prompt(
        actor=SYSTEM, workspace=world.workspace, name="greeting", template="Hi {name}"
    )
    made = api_call(client, "PUT", "/repos/-/greeting/share", editor_key, json={})
    assert made.status_code == 200, made.content
    token = made.json()["share_token"]
    assert made.json()["url"].endswith(f"/public/{token}/p")
    shared = public(Client(), f"{token}/prompt")
    assert shared.status_code == 200, shared.content
    assert shared.json()["repo_handle"] == "greeting"
    assert shared.json()["commit"]["manifest"]["kwargs"]["template"] == "Hi {name}"
    assert b"Hi {name}" in Client().get(f"/public/{token}/p").content
    assert api_call(client, "DELETE", "/repos/-/greeting/share", editor_key).status_code == 204
    assert public(Client(), f"{token}/prompt").status_code == 404
    assert api_call(client, "GET", "/repos/-/greeting/share", editor_key).status_code == 404


def test_a_viewer_cannot_share(client, world, trace):
    viewer = service_key_for(world.workspace, "Viewer")
    dataset = resources.create_dataset(actor=SYSTEM, workspace=world.workspace, name="qa")
    for path, required in [
        (f"/runs/{trace['root'].pk}/share", "runs:share"),
        (f"/datasets/{dataset.pk}/share", "datasets:share"),
    ]:
        for method in ("PUT", "GET", "DELETE"):
            resp = api_call(client, method, path, viewer, json={} if method == "PUT" else None)
            assert resp.status_code == 403, (method, path, resp.content)
            assert resp.json()["required"] == required
    assert not models.ShareLink.objects.exists()
    assert not AuditEvent.objects.filter(action__startswith="share_link").exists()


def test_the_service_refuses_without_the_share_permission(world, trace):
    from accesscontrol.rbac.actor import Denied
    from tests.factories import actor_with

    reader = actor_with({"runs:read"})
    with pytest.raises(Denied):
        sharing.share(actor=reader, obj=trace["root"])
    with pytest.raises(Denied):
        sharing.unshare(actor=reader, obj=trace["root"])


def test_another_workspaces_objects_are_not_found(client, world, editor_key):
    dataset = resources.create_dataset(actor=SYSTEM, workspace=world.other_workspace, name="x")
    run_id = uuid.uuid4()
    resources.ingest_runs(
        actor=SYSTEM,
        workspace=world.other_workspace,
        posts=[{"id": run_id, "name": "theirs", "run_type": "chain"}],
    )
    resources.create_prompt(actor=SYSTEM, workspace=world.other_workspace, name="theirs")
    for path in (
        f"/runs/{run_id}/share",
        f"/datasets/{dataset.pk}/share",
        "/repos/-/theirs/share",
        f"/repos/{world.other_workspace.slug}/theirs/share",
    ):
        for method in ("PUT", "GET", "DELETE"):
            resp = api_call(client, method, path, editor_key, json={} if method == "PUT" else None)
            assert resp.status_code == 404, (method, path, resp.content)
    assert not models.ShareLink.objects.exists()


def test_a_link_into_an_archived_workspace_is_dead(client, world, editor_key, trace):
    token = api_call(client, "PUT", f"/runs/{trace['root'].pk}/share", editor_key, json={}).json()[
        "share_token"
    ]
    type(world.workspace).objects.filter(pk=world.workspace.pk).update(archived=True)
    assert public(Client(), f"{token}/run").status_code == 404
    assert Client().get(f"/public/{token}/r").status_code == 404


def test_unknown_tokens_are_not_found(client, db):
    anyone = Client()
    assert public(anyone, f"{uuid.uuid4()}/run").status_code == 404
    assert public(anyone, "not-a-uuid/run").status_code == 404
    assert anyone.get(f"/public/{uuid.uuid4()}/d").status_code == 404
