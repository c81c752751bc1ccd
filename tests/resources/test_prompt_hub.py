"""The prompt hub (`/repos`, `/commits`, `/settings`) as the langsmith SDK calls it (issue 18 §3).

Through the API with real keys: results asserted, refusals (permission, public prompts, unknown
fields, stale parents) change nothing, another workspace's prompt is a 404 whatever owner is
named. The real SDK against a live server is in tests/api/test_langsmith_sdk.py.
"""

import pytest

from accesscontrol.audit.models import AuditEvent
from accesscontrol.resources import hub, models
from accesscontrol.resources import services as resources
from tests.factories import PROMPT_MANIFEST as MANIFEST
from tests.factories import SYSTEM, langchain_prompt, service_key_for
from tests.support.api import api_call

CHAT = langchain_prompt(
    "chat.ChatPromptTemplate",
    input_variables=["question"],
    messages=[
        langchain_prompt(
            "chat.SystemMessagePromptTemplate",
            prompt=langchain_prompt(
                "prompt.PromptTemplate", input_variables=[], template="Be terse."
            ),
        )
    ],
)


@pytest.fixture
def viewer(world):
    return service_key_for(world.workspace, "Viewer")


def call(client, method, path, key, json=None, **kwargs):
    return api_call(client, method, path, key, json=json, **kwargs)


def make_repo(client, key, name="support-answer", **fields):
    resp = call(client, "POST", "/repos/", key, {"repo_handle": name, **fields})
    assert resp.status_code == 201, resp.content
    return resp.json()["repo"]


def push(client, key, name, manifest, parent=None, **fields):
    body = {"manifest": manifest, "parent_commit": parent, **fields}
    return call(client, "POST", f"/commits/-/{name}", key, body)


def test_settings_name_the_workspace_and_its_handle(client, world, editor_key):
    resp = call(client, "GET", "/settings", editor_key)
    assert resp.status_code == 200, resp.content
    assert resp.json() == {
        "id": str(world.workspace.pk),
        "display_name": world.workspace.name,
        "tenant_handle": world.workspace.slug,
        "created_at": resp.json()["created_at"],
    }


def test_create_read_change_and_delete_a_prompt(client, world, editor_key):
    repo = make_repo(client, editor_key, description="answers", readme="# hi", tags=["support"])
    assert repo["repo_handle"] == "support-answer"
    assert repo["full_name"] == f"{world.workspace.slug}/support-answer"
    assert repo["owner"] == world.workspace.slug
    assert repo["tenant_id"] == str(world.workspace.pk)
    assert (repo["description"], repo["readme"], repo["tags"]) == ("answers", "# hi", ["support"])
    assert (repo["is_public"], repo["is_archived"], repo["last_commit_hash"]) == (
        False,
        False,
        None,
    )

    # By "-" (the SDK's own workspace) and by the workspace's handle alike.
    for owner in ("-", world.workspace.slug):
        got = call(client, "GET", f"/repos/{owner}/support-answer", editor_key)
        assert got.status_code == 200, got.content
        assert got.json()["repo"]["id"] == repo["id"]

    changed = call(
        client,
        "PATCH",
        "/repos/-/support-answer",
        editor_key,
        {"description": "short answers", "tags": ["a", "b"], "is_archived": True},
    )
    assert changed.status_code == 200, changed.content
    prompt = models.Prompt.objects.get(pk=repo["id"])
    assert (prompt.description, prompt.tags, prompt.is_archived) == (
        "short answers",
        ["a", "b"],
        True,
    )
    assert prompt.readme == "# hi"  # left out of the patch: left alone

    gone = call(client, "DELETE", "/repos/-/support-answer", editor_key)
    assert gone.status_code == 204
    assert not models.Prompt.objects.filter(pk=repo["id"]).exists()
    event = AuditEvent.objects.get(action="prompt.deleted")
    assert event.target_id == repo["id"] and event.actor_kind == "service_key"
    assert call(client, "GET", "/repos/-/support-answer", editor_key).status_code == 404


def test_a_name_taken_is_a_conflict(client, editor_key):
    make_repo(client, editor_key)
    resp = call(client, "POST", "/repos/", editor_key, {"repo_handle": "support-answer"})
    assert resp.status_code == 409 and resp.json()["error"] == "duplicate"
    assert models.Prompt.objects.count() == 1


def test_push_pull_by_latest_hash_and_tag(client, editor_key):
    make_repo(client, editor_key)
    first = push(client, editor_key, "support-answer", MANIFEST, description="first")
    assert first.status_code == 201, first.content
    first = first.json()["commit"]
    assert first["parent_commit_hash"] is None and first["description"] == "first"
    assert len(first["commit_hash"]) == 8

    second = push(client, editor_key, "support-answer", CHAT, parent=first["commit_hash"])
    assert second.status_code == 201, second.content
    second = second.json()["commit"]
    assert second["parent_commit_hash"] == first["commit_hash"]
    assert second["parent_id"] == first["id"]

    latest = call(client, "GET", "/commits/-/support-answer/latest", editor_key).json()
    assert latest == {
        "commit_hash": second["commit_hash"],
        "manifest": CHAT,
        "examples": [],
        "description": "",
    }
    by_hash = call(client, "GET", f"/commits/-/support-answer/{first['commit_hash']}", editor_key)
    assert by_hash.json()["manifest"] == MANIFEST
    prefix = call(
        client, "GET", f"/commits/-/support-answer/{first['commit_hash'][:5]}", editor_key
    )
    assert prefix.json()["commit_hash"] == first["commit_hash"]

    tagged = call(
        client,
        "POST",
        "/repos/-/support-answer/tags",
        editor_key,
        {"tag_name": "prod", "commit_id": first["id"]},
    )
    assert tagged.status_code == 201, tagged.content
    assert tagged.json()["commit_hash"] == first["commit_hash"]
    prod = call(client, "GET", "/commits/-/support-answer/prod", editor_key).json()
    assert prod["manifest"] == MANIFEST

    listed = call(client, "GET", "/commits/-/support-answer/?limit=1&offset=0", editor_key).json()
    assert listed["total"] == 2
    assert [c["commit_hash"] for c in listed["commits"]] == [second["commit_hash"]]
    older = call(client, "GET", "/commits/-/support-answer/?limit=1&offset=1", editor_key).json()
    assert older["commits"][0]["tags"] == ["prod"]

    repo = call(client, "GET", "/repos/-/support-answer", editor_key).json()["repo"]
    assert repo["last_commit_hash"] == second["commit_hash"] and repo["num_commits"] == 2
    # The console shows each message of a chat prompt.
    assert models.PromptCommit.objects.get(pk=second["id"]).template == "system: Be terse."


def test_pushing_on_a_stale_parent_is_a_conflict(client, editor_key):
    make_repo(client, editor_key)
    first = push(client, editor_key, "support-answer", MANIFEST).json()["commit"]
    push(client, editor_key, "support-answer", CHAT, parent=first["commit_hash"])
    stale = push(client, editor_key, "support-answer", MANIFEST, parent=first["commit_hash"])
    assert stale.status_code == 409 and stale.json()["error"] == "conflict"
    unknown = push(client, editor_key, "support-answer", MANIFEST, parent="deadbeef")
    assert unknown.status_code == 404, unknown.content
    assert models.PromptCommit.objects.count() == 2


@pytest.mark.parametrize(
    "body, field",
    [
        ({"manifest": {"template": "not a LangChain object"}}, "manifest"),
        ({"manifest": MANIFEST, "examples": [{"a": 1}]}, "examples"),
        ({"manifest": MANIFEST, "description": "x" * 1001}, "description"),
    ],
)
def test_bad_commits_are_refused_naming_the_field(client, editor_key, body, field):
    make_repo(client, editor_key)
    resp = call(client, "POST", "/commits/-/support-answer", editor_key, body)
    assert resp.status_code == 422, resp.content
    assert field in str(resp.json()["detail"]) or field in resp.json().get("fields", {})
    assert not models.PromptCommit.objects.exists()


def test_public_prompts_are_refused(client, editor_key):
    resp = call(client, "POST", "/repos/", editor_key, {"repo_handle": "p", "is_public": True})
    assert resp.status_code == 422 and "is_public" in resp.json()["fields"]
    assert not models.Prompt.objects.exists()
    make_repo(client, editor_key, name="p")
    patched = call(client, "PATCH", "/repos/-/p", editor_key, {"is_public": True})
    assert patched.status_code == 422 and "share link" in patched.json()["detail"]


def test_unknown_fields_and_filters_are_refused(client, editor_key):
    resp = call(client, "POST", "/repos/", editor_key, {"repo_handle": "p", "forked_from": "x"})
    assert resp.status_code == 422 and "forked_from" in str(resp.json()["detail"])
    bad_sort = call(client, "GET", "/repos/?sort_field=popularity", editor_key)
    assert bad_sort.status_code == 422
    assert not models.Prompt.objects.exists()


def test_commits_of_plain_templates_pull_as_prompt_templates(client, world, editor_key):
    resources.create_prompt(
        actor=SYSTEM, workspace=world.workspace, name="greeting", template="Hi {name}, {obj.x}!"
    )
    pulled = call(client, "GET", "/commits/-/greeting/latest", editor_key).json()
    assert pulled["manifest"]["id"][-1] == "PromptTemplate"
    assert pulled["manifest"]["kwargs"]["template"] == "Hi {name}, {obj.x}!"
    assert pulled["manifest"]["kwargs"]["input_variables"] == ["name", "obj"]
    assert hub.template_of(pulled["manifest"]) == "Hi {name}, {obj.x}!"


def test_list_filters_sorts_and_pages(client, world, editor_key, django_assert_max_num_queries):
    for name in ("alpha", "beta", "alphabet"):
        make_repo(client, editor_key, name=name)
    call(client, "PATCH", "/repos/-/beta", editor_key, {"is_archived": True})
    push(client, editor_key, "alpha", MANIFEST)

    def names(query):
        resp = call(client, "GET", f"/repos/?{query}", editor_key)
        assert resp.status_code == 200, resp.content
        return [r["repo_handle"] for r in resp.json()["repos"]], resp.json()["total"]

    assert names("is_archived=false&sort_direction=asc") == (["alphabet", "alpha"], 2)
    assert names("is_archived=true") == (["beta"], 1)
    assert names("query=alpha&match_prefix=true&sort_direction=desc") == (
        ["alpha", "alphabet"],
        2,
    )
    assert names("query=pha") == (["alpha", "alphabet"], 2)
    assert names("is_public=true") == ([], 0)
    assert names("limit=1&offset=1") == (["beta"], 3)  # newest change first: alpha, beta, …
    with django_assert_max_num_queries(8):
        call(client, "GET", "/repos/?limit=100", editor_key)


def test_a_viewer_reads_but_cannot_write(client, world, editor_key, viewer):
    make_repo(client, editor_key)
    assert call(client, "GET", "/repos/-/support-answer", viewer).status_code == 200
    assert call(client, "GET", "/commits/-/support-answer/", viewer).status_code == 200
    for method, path, body, required in [
        ("POST", "/repos/", {"repo_handle": "x"}, "prompts:create"),
        ("PATCH", "/repos/-/support-answer", {"description": "x"}, "prompts:update"),
        ("DELETE", "/repos/-/support-answer", None, "prompts:delete"),
        ("POST", "/commits/-/support-answer", {"manifest": MANIFEST}, "prompts:update"),
    ]:
        resp = call(client, method, path, viewer, body)
        assert resp.status_code == 403, (path, resp.content)
        assert resp.json()["error"] == "permission_denied"
        assert resp.json()["required"] == required
    prompt = models.Prompt.objects.get()
    assert (prompt.description, prompt.commits.count()) == ("", 0)


def test_another_workspaces_prompt_is_not_found(client, world, editor_key):
    theirs = resources.create_prompt(
        actor=SYSTEM, workspace=world.other_workspace, name="secret", template="s {x}"
    )
    for owner in ("-", world.workspace.slug, world.other_workspace.slug):
        for method, path in [
            ("GET", f"/repos/{owner}/secret"),
            ("DELETE", f"/repos/{owner}/secret"),
            ("GET", f"/commits/{owner}/secret/latest"),
            ("GET", f"/commits/{owner}/secret/"),
        ]:
            resp = call(client, method, path, editor_key)
            assert resp.status_code == 404, (method, path, resp.content)
            assert resp.json()["error"] == "not_found"
        pushed = call(
            client, "POST", f"/commits/{owner}/secret", editor_key, {"manifest": MANIFEST}
        )
        assert pushed.status_code == 404
    listed = call(client, "GET", "/repos/", editor_key).json()
    assert listed == {"repos": [], "total": 0}
    assert models.Prompt.objects.filter(pk=theirs.pk).exists()
    assert theirs.commits.count() == 1


def test_served_at_the_sdk_root_too(client, editor_key):
    resp = api_call(client, "POST", "/repos/", editor_key, json={"repo_handle": "r"}, root=True)
    assert resp.status_code == 201, resp.content
    got = api_call(client, "GET", "/commits/-/r/", editor_key, root=True)
    assert got.json() == {"commits": [], "total": 0}
