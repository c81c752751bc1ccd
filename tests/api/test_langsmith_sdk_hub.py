"""The real `langsmith` SDK against a live server: the prompt hub, share links, presigned
feedback, the run URL it builds, and unknown paths (issue 18 §3-5).

The live server fixture (`sdk`) is tests/api/test_langsmith_sdk.py's; results are asserted
through the SDK and, where it matters, in the database.
"""

import datetime
import urllib.parse
import uuid

import pytest
import requests
from django.test import Client
from langsmith.utils import LangSmithError, LangSmithNotFoundError

from accesscontrol.resources.models import Feedback, Prompt, PromptCommit, ShareLink
from tests.api.test_langsmith_sdk import API_V1, sdk  # noqa: F401  (the live-server fixture)
from tests.factories import PROMPT_MANIFEST as MANIFEST
from tests.factories import service_key_for

pytestmark = [
    pytest.mark.django_db(transaction=True),
    # share_run & co. are deprecated in favour of client.runs.share; still what users call.
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
    pytest.mark.filterwarnings("ignore::PendingDeprecationWarning"),
    pytest.mark.filterwarnings("ignore::UserWarning"),
]


def path_of(url):
    parsed = urllib.parse.urlsplit(url)
    return parsed.path + (f"?{parsed.query}" if parsed.query else "")


@pytest.mark.parametrize("prefix", ["", API_V1], ids=["root", "api-v1"])
def test_push_pull_list_and_delete_prompts(world, sdk, prefix):  # noqa: F811
    client = sdk(service_key_for(world.workspace, "Editor"), prefix=prefix)

    # Pushed as a manifest (no LangChain object needed), created on the way.
    url = client.push_prompt(
        "support-answer", object=MANIFEST, description="answers", tags=["support"]
    )
    first = PromptCommit.objects.get()
    assert url.endswith(
        f"/prompts/support-answer/{first.commit_hash}?organizationId={world.workspace.pk}"
    )
    prompt = client.get_prompt("support-answer")
    assert (prompt.repo_handle, prompt.description, prompt.tags) == (
        "support-answer",
        "answers",
        ["support"],
    )
    assert prompt.owner == world.workspace.slug and prompt.last_commit_hash == first.commit_hash
    assert client.get_prompt("no-such-prompt") is None

    pulled = client.pull_prompt_commit("support-answer", skip_cache=True)
    assert (pulled.commit_hash, pulled.manifest, pulled.examples) == (
        first.commit_hash,
        MANIFEST,
        [],
    )

    # A LangChain prompt object, a tagged commit on top of the first.
    from langchain_core.prompts import ChatPromptTemplate

    chat = ChatPromptTemplate.from_messages([("system", "Be terse."), ("human", "{question}")])
    client.push_prompt("support-answer", object=chat, commit_tags=["prod"])
    second = PromptCommit.objects.exclude(pk=first.pk).get()
    assert second.parent_id == first.pk
    loaded = client.pull_prompt("support-answer", skip_cache=True)
    assert loaded.format_messages(question="hours?")[1].content == "hours?"
    assert client.pull_prompt_commit("support-answer:prod", skip_cache=True).commit_hash == (
        second.commit_hash
    )
    by_hash = client.pull_prompt_commit(f"support-answer:{first.commit_hash}", skip_cache=True)
    assert by_hash.manifest == MANIFEST
    assert (
        client.pull_prompt(f"support-answer:{first.commit_hash}", skip_cache=True).format(
            question="x"
        )
        == "Answer briefly: x"
    )

    commits = list(client.list_prompt_commits("support-answer"))
    assert [c.commit_hash for c in commits] == [second.commit_hash, first.commit_hash]

    client.push_prompt("faq", object=MANIFEST)
    listed = client.list_prompts()
    assert listed.total == 2
    assert [p.repo_handle for p in listed.repos] == ["faq", "support-answer"]
    assert [p.repo_handle for p in client.list_prompts(query="supp").repos] == ["support-answer"]

    client.update_prompt("support-answer", description="short answers", is_archived=True)
    assert Prompt.objects.get(name="support-answer").description == "short answers"
    assert [p.repo_handle for p in client.list_prompts().repos] == ["faq"]  # archived: hidden
    assert [p.repo_handle for p in client.list_prompts(is_archived=True).repos] == [
        "support-answer"
    ]

    # Public prompts are refused by the server, naming the field; nothing changes.
    with pytest.raises(LangSmithError, match=r"422.*is_public"):
        client.update_prompt("faq", is_public=True)
    assert not Prompt.objects.filter(name="faq", is_archived=True).exists()

    client.delete_prompt("support-answer")
    assert client.get_prompt("support-answer") is None
    assert list(Prompt.objects.values_list("name", flat=True)) == ["faq"]


def test_a_viewer_pulls_but_cannot_push(world, sdk):  # noqa: F811
    editor = sdk(service_key_for(world.workspace, "Editor"))
    editor.push_prompt("greeting", object=MANIFEST)
    viewer = sdk(service_key_for(world.workspace, "Viewer"))
    assert viewer.pull_prompt_commit("greeting").manifest == MANIFEST
    with pytest.raises(LangSmithError, match="prompts:create"):
        viewer.push_prompt("other", object=MANIFEST)
    with pytest.raises(LangSmithError, match="403"):
        viewer.push_prompt("greeting", object={**MANIFEST, "kwargs": {"template": "x"}})
    assert PromptCommit.objects.count() == 1 and Prompt.objects.count() == 1
    # Another workspace's prompt is not there at all.
    staging = sdk(service_key_for(world.other_workspace, "Admin"))
    assert staging.get_prompt("greeting") is None
    with pytest.raises(LangSmithNotFoundError):
        staging.pull_prompt_commit("greeting", skip_cache=True)


def test_share_a_run_and_a_dataset_then_revoke(world, sdk, live_server):  # noqa: F811
    client = sdk(service_key_for(world.workspace, "Editor"), batching=False)
    run_id = uuid.uuid4()
    client.create_run(
        "answer", inputs={"q": "hours?"}, run_type="chain", id=run_id, project_name="bot"
    )
    client.update_run(run_id, outputs={"a": "9-5"}, end_time=datetime.datetime.now(datetime.UTC))

    url = client.share_run(run_id)
    token = ShareLink.objects.get().token
    assert path_of(url) == f"/public/{token}/r"
    assert client.read_run_shared_link(run_id) == url
    assert client.run_is_shared(run_id)
    shared = client.read_shared_run(url)
    assert (shared.id, shared.name, shared.outputs) == (run_id, "answer", {"a": "9-5"})
    assert [r.id for r in client.list_shared_runs(str(token))] == [run_id]
    # The page the link opens, to anyone.
    page = requests.get(live_server.url + path_of(url), timeout=10)
    assert page.status_code == 200 and "answer" in page.text

    client.unshare_run(run_id)
    assert not client.run_is_shared(run_id)
    with pytest.raises(LangSmithNotFoundError):
        client.read_shared_run(url)
    assert requests.get(live_server.url + path_of(url), timeout=10).status_code == 404

    dataset = client.create_dataset("faq")
    client.create_examples(dataset_id=dataset.id, inputs=[{"q": "a"}, {"q": "b"}])
    schema = client.share_dataset(dataset.id)
    assert schema["dataset_id"] == str(dataset.id)
    assert client.read_dataset_shared_schema(dataset.id)["share_token"] == schema["share_token"]
    read = client.read_shared_dataset(schema["share_token"])
    assert (read.id, read.name, read.example_count) == (dataset.id, "faq", 2)
    examples = list(client.list_shared_examples(schema["share_token"]))
    assert sorted(e.inputs["q"] for e in examples) == ["a", "b"]
    client.unshare_dataset(dataset.id)
    with pytest.raises(LangSmithNotFoundError):
        client.read_shared_dataset(schema["share_token"])


def test_presigned_feedback(world, sdk):  # noqa: F811
    client = sdk(service_key_for(world.workspace, "Editor"), batching=False)
    run_id = uuid.uuid4()
    client.create_run("answer", inputs={"q": "?"}, run_type="chain", id=run_id, project_name="b")

    token = client.create_presigned_feedback_token(
        run_id, "thumbs", expiration=datetime.timedelta(hours=1)
    )
    assert token.expires_at > datetime.datetime.now(datetime.UTC) + datetime.timedelta(minutes=59)
    # The token's holder needs no key: a client without one records the feedback.
    keyless = sdk(None)
    keyless.create_feedback_from_token(token.url, score=1, comment="great")
    feedback = Feedback.objects.get()
    assert (feedback.run_id, feedback.key, feedback.score, feedback.comment) == (
        run_id,
        "thumbs",
        1.0,
        "great",
    )
    with pytest.raises(LangSmithError, match="410"):
        keyless.create_feedback_from_token(token.url, score=0)  # single-use

    tokens = client.create_presigned_feedback_tokens(run_id, ["helpful", "accurate"])
    assert len(tokens) == 2
    for each, score in zip(tokens, (0.5, 0.0), strict=True):
        client.create_feedback_from_token(each.id, score=score)
    scores = dict(Feedback.objects.values_list("key", "score"))
    assert scores == {"thumbs": 1.0, "helpful": 0.5, "accurate": 0.0}
    assert [f.key for f in client.list_feedback(run_ids=[run_id], feedback_key=["helpful"])] == [
        "helpful"
    ]


def test_the_run_url_the_sdk_builds_opens_the_run(world, sdk):  # noqa: F811
    client = sdk(service_key_for(world.workspace, "Editor"), batching=False)
    run_id = uuid.uuid4()
    client.create_run("answer", inputs={}, run_type="chain", id=run_id, project_name="bot")
    run = client.read_run(run_id)
    url = client.get_run_url(run=run, project_name="bot")
    path = path_of(url)
    assert path.startswith(f"/o/{world.workspace.pk}/projects/p/{run.session_id}/r/{run_id}")

    member = Client()
    member.force_login(world.editor)
    opened = member.get(path)
    assert opened.status_code == 200
    assert opened.context["run"].pk == run_id  # the run's own page, as the console shows it
    assert b"answer" in opened.content
    outsider = Client()
    outsider.force_login(world.outsider)
    assert outsider.get(path).status_code == 404


def test_unknown_paths_answer_json_404_naming_them(world, sdk, live_server):  # noqa: F811
    client = sdk(service_key_for(world.workspace, "Editor"))
    with pytest.raises(LangSmithNotFoundError, match="No API operation at POST /likes/-/x"):
        client.like_prompt("x")
    for path in ("/api/v1/no/such/thing", "/runs/not-a-run/share/extra", "/repos/-/x/forks"):
        resp = requests.get(live_server.url + path, timeout=10)
        assert resp.status_code == 404
        assert resp.json()["error"] == "not_found" and path in resp.json()["detail"]
