"""Regression tests for what the review of issues #18 and #19 found (each failed before its fix).

- a run filter comparing token counts with "nan" was a 500, and with 1.5 a wrong answer (the
  integer column rounded it);
- NaN and Infinity were accepted as feedback scores (JSON body, presigned token, token link)
  and then every JSON answer holding them was unreadable to clients;
- a shared child run whose client-written dotted_order did not end with its own id opened the
  runs above it; a shared root whose client-written trace_id was another trace's opened that
  trace.

And one guard: a single-use feedback token used twice at the same moment records one feedback.
"""

import threading
import uuid

import pytest
from django.db import connection
from django.test import Client

from accesscontrol.resources import models
from accesscontrol.resources import services as resources
from tests.factories import SYSTEM
from tests.support.api import api_call


@pytest.fixture
def project(world):
    return resources.create_project(actor=SYSTEM, workspace=world.workspace, name="bot")


def ingest(world, project, *posts):
    for post in posts:
        post.setdefault("session_id", project.pk)
        post.setdefault("run_type", "chain")
        post.setdefault("name", "run")
    resources.ingest_runs(actor=SYSTEM, workspace=world.workspace, posts=list(posts))


@pytest.fixture
def run(world, project):
    run_id = uuid.uuid4()
    usage = {"llm_output": {"token_usage": {"prompt_tokens": 1, "total_tokens": 1}}}
    ingest(world, project, {"id": run_id, "outputs": usage})
    return models.Run.objects.get(pk=run_id)


# The run filter


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('eq(total_tokens, "nan")', "finite number"),
        ('gt(feedback_score, "nan")', "finite number"),
        ("lt(feedback_score, 1e999)", "finite number"),
        ("gte(total_tokens, 1.5)", "whole numbers"),
    ],
)
@pytest.mark.parametrize("path", ["/runs/query", "/runs/stats"])
def test_filters_with_numbers_no_column_holds_are_refused(
    client, editor_key, run, text, message, path
):
    answer = api_call(client, "POST", path, editor_key, json={"filter": text})
    assert answer.status_code == 422, answer.content
    assert message in answer.json()["detail"]


def test_whole_token_counts_still_filter(client, editor_key, run):
    answer = api_call(
        client, "POST", "/runs/query", editor_key, json={"filter": "gte(total_tokens, 1)"}
    )
    assert [r["id"] for r in answer.json()["runs"]] == [str(run.pk)]


def _metadata_pairs_filter(keys, values):
    listed = lambda n: ",".join(f'"{i}"' for i in range(n))  # noqa: E731
    return f"and(in(metadata_key, [{listed(keys)}]), in(metadata_value, [{listed(values)}]))"


@pytest.mark.parametrize("field", ["filter", "trace_filter", "tree_filter"])
def test_a_filter_asking_for_millions_of_metadata_conditions_is_refused(
    client, editor_key, run, field
):
    """700 keys by 700 values fit in the 10,000 characters: a million conditions, minutes of
    CPU and a SQL text of hundreds of MB for one request (200 by 200 took 12 s)."""
    text = _metadata_pairs_filter(700, 700)
    assert len(text) < 10_000
    answer = api_call(client, "POST", "/runs/query", editor_key, json={field: text})
    assert answer.status_code == 422, answer.content
    assert "more than 1000 metadata key-value pairs" in answer.json()["detail"]
    # Pairs add up across entries of one filter.
    entry = _metadata_pairs_filter(20, 20)[4:-1]
    answer = api_call(
        client,
        "POST",
        "/runs/query",
        editor_key,
        json={field: f"or(and({entry}), and({entry}), and({entry}))"},
    )
    assert answer.status_code == 422, answer.content


def test_a_thousand_metadata_pairs_still_filter(client, editor_key, run):
    answer = api_call(
        client, "POST", "/runs/query", editor_key, json={"filter": _metadata_pairs_filter(25, 40)}
    )
    assert answer.status_code == 200, answer.content


@pytest.mark.parametrize(
    "blob", ["[" * 4900 + "]" * 4900, '{"a": ' + "[" * 4000 + "]" * 4000 + "}"]
)
def test_metadata_with_deeply_nested_json_is_refused_or_text(client, editor_key, run, blob):
    answer = api_call(
        client, "POST", "/runs/query", editor_key, json={"filter": f"has(metadata, '{blob}')"}
    )
    assert answer.status_code == 422, answer.content
    # A metadata value is compared as text (and as the number it reads as): nested JSON is
    # just text to look for.
    text = f'and(eq(metadata_key, "k"), eq(metadata_value, "{blob}"))'.replace('"a"', "a")
    answer = api_call(client, "POST", "/runs/query", editor_key, json={"filter": text})
    assert answer.status_code == 200, answer.content
    assert answer.json()["runs"] == []


# NaN and Infinity


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity"])
def test_feedback_scores_must_be_json_numbers(client, editor_key, run, constant):
    body = f'{{"run_id": "{run.pk}", "key": "k", "score": {constant}}}'
    answer = client.post(
        "/api/v1/feedback", body, content_type="application/json", headers={"X-API-Key": editor_key}
    )
    assert answer.status_code == 422, answer.content
    assert constant in answer.json()["detail"]
    assert not models.Feedback.objects.exists()


def test_a_number_too_large_to_store_is_refused_in_a_body_and_changes_nothing(
    client, editor_key, run
):
    """1e400 is valid JSON that Python reads as infinity and jsonb refuses (was a 500)."""
    body = f'{{"run_id": "{run.pk}", "key": "k", "score": 1, "value": {{"x": 1e400}}}}'
    answer = client.post(
        "/api/v1/feedback", body, content_type="application/json", headers={"X-API-Key": editor_key}
    )
    assert answer.status_code == 422, answer.content
    assert "infinity" in answer.json()["detail"]
    assert not models.Feedback.objects.exists()


@pytest.mark.parametrize("value", ['"1e400"', "1e400"])
def test_a_metadata_filter_value_too_large_to_store_is_not_a_500(client, editor_key, run, value):
    """Found by the filter fuzzer: "1e400" as text was also looked for as the number it reads
    as (infinity), which PostgreSQL's jsonb refuses; a bare 1e400 is refused by the parser."""
    text = f'and(eq(metadata_key, "k"), eq(metadata_value, {value}))'
    answer = api_call(client, "POST", "/runs/query", editor_key, json={"filter": text})
    if value.startswith('"'):
        assert answer.status_code == 200, answer.content
        assert answer.json()["runs"] == []
    else:
        assert answer.status_code == 422, answer.content
        assert "finite number" in answer.json()["detail"]


def _token_path(client, editor_key, run):
    made = api_call(
        client,
        "POST",
        "/feedback/tokens",
        editor_key,
        json={"run_id": str(run.pk), "feedback_key": "k"},
    )
    assert made.status_code == 201, made.content
    return made.json()["url"].removeprefix("http://testserver")


def test_a_token_refuses_nan_in_its_body_and_stays_unused(client, editor_key, run):
    path = _token_path(client, editor_key, run)
    answer = Client().post(path, '{"score": NaN}', content_type="application/json")
    assert answer.status_code == 422, answer.content
    assert not models.Feedback.objects.exists()
    assert models.FeedbackToken.objects.get().used_at is None


@pytest.mark.parametrize("score", ["nan", "inf", "-inf", "1e999"])
def test_a_token_link_refuses_non_finite_scores_and_stays_unused(client, editor_key, run, score):
    path = _token_path(client, editor_key, run)
    answer = Client().get(path, {"score": score})
    assert answer.status_code == 422, answer.content
    assert not models.Feedback.objects.exists()
    assert models.FeedbackToken.objects.get().used_at is None
    assert Client().get(path, {"score": "0.5"}).status_code == 200


# Share links and client-written trace fields


def _share(client, editor_key, run):
    answer = api_call(client, "PUT", f"/runs/{run.pk}/share", editor_key, json={})
    assert answer.status_code == 200, answer.content
    return answer.json()["share_token"]


def _public_run_ids(token):
    answer = Client().post(
        f"/api/v1/public/{token}/runs/query", {}, content_type="application/json"
    )
    assert answer.status_code == 200, answer.content
    return {r["id"] for r in answer.json()["runs"]}


@pytest.mark.parametrize("dotted_order", ["1", "x", "20250101T000000000000Z"])
def test_a_shared_child_with_a_malformed_dotted_order_opens_nothing_above_it(
    client, world, editor_key, project, dotted_order
):
    root, child, sibling = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    ingest(
        world,
        project,
        {"id": root, "dotted_order": f"1{root}", "inputs": {"secret": "root"}},
        {"id": child, "trace_id": root, "parent_run_id": root, "dotted_order": dotted_order},
        {
            "id": sibling,
            "trace_id": root,
            "parent_run_id": root,
            "dotted_order": f"1{root}.2{sibling}",
        },
    )
    token = _share(client, editor_key, models.Run.objects.get(pk=child))
    assert _public_run_ids(token) == {str(child)}
    for other in (root, sibling):
        assert Client().get(f"/api/v1/public/{token}/run/{other}").status_code == 404
    page = Client().get(f"/public/{token}/r")
    assert page.status_code == 200
    assert b"root" not in page.content.split(b"Runs in this trace")[1]


def test_a_shared_child_opens_whole_segments_below_it_only(client, world, editor_key, project):
    root, child, grandchild = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    lookalike = uuid.UUID(str(child)[:-1] + ("0" if str(child)[-1] != "0" else "1"))
    ingest(
        world,
        project,
        {"id": root, "dotted_order": f"1Z{root}"},
        {
            "id": child,
            "trace_id": root,
            "parent_run_id": root,
            "dotted_order": f"1Z{root}.2Z{child}",
        },
        {
            "id": grandchild,
            "trace_id": root,
            "parent_run_id": child,
            "dotted_order": f"1Z{root}.2Z{child}.3Z{grandchild}",
        },
        # Not under the child, but its client-written dotted_order starts with the child's.
        {
            "id": lookalike,
            "trace_id": root,
            "parent_run_id": root,
            "dotted_order": f"1Z{root}.2Z{child}0",
        },
    )
    token = _share(client, editor_key, models.Run.objects.get(pk=child))
    assert _public_run_ids(token) == {str(child), str(grandchild)}


def test_a_shared_root_opens_its_own_trace_only(client, world, editor_key, project):
    victim_root, victim_child, other_root = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    ingest(
        world,
        project,
        {"id": victim_root, "inputs": {"secret": "s"}},
        {"id": victim_child, "trace_id": victim_root, "parent_run_id": victim_root},
        # A root run whose client-written trace_id names the other trace.
        {"id": other_root, "trace_id": victim_root},
    )
    shared = models.Run.objects.get(pk=other_root)
    assert shared.parent_run_id is None and shared.trace_id == victim_root
    token = _share(client, editor_key, shared)
    assert _public_run_ids(token) == {str(other_root)}
    assert Client().get(f"/api/v1/public/{token}/run/{victim_child}").status_code == 404


# Guard: single use under concurrency


def at_once(n, call):
    """`call`'s answers when `n` threads make it together (each on its own connection)."""
    barrier = threading.Barrier(n)
    answers = []

    def one():
        try:
            barrier.wait()
            answers.append(call())
        finally:
            connection.close()

    threads = [threading.Thread(target=one) for _ in range(n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return answers


@pytest.mark.django_db(transaction=True)
def test_two_simultaneous_uses_of_a_token_record_one_feedback(world, editor_key, run):
    if connection.vendor != "postgresql":
        pytest.skip("row locks are PostgreSQL's")
    path = _token_path(Client(), editor_key, run)
    answers = at_once(4, lambda: Client().post(path, {"score": 1}, content_type="application/json"))
    assert sorted(a.status_code for a in answers) == [201, 410, 410, 410]
    assert models.Feedback.objects.count() == 1


@pytest.mark.django_db(transaction=True)
def test_using_a_token_does_not_lock_its_workspace(world, editor_key, run):
    """The public token request locked the workspace's row too (FOR UPDATE of the join): it
    waited on, and blocked, anything holding that row."""
    if connection.vendor != "postgresql":
        pytest.skip("row locks are PostgreSQL's")
    from django.db import transaction

    from accesscontrol.workspaces.models import Workspace

    path = _token_path(Client(), editor_key, run)
    held, release = threading.Event(), threading.Event()

    def hold_the_workspace():
        try:
            with transaction.atomic():
                # What an UPDATE of the workspace (a rename) holds; inserts referencing the
                # workspace (the feedback) do not wait on it, a FOR UPDATE of its row does.
                Workspace.objects.select_for_update(no_key=True).get(pk=world.workspace.pk)
                held.set()
                release.wait(10)
        finally:
            connection.close()

    holder = threading.Thread(target=hold_the_workspace)
    holder.start()
    try:
        assert held.wait(10)
        with connection.cursor() as cursor:
            cursor.execute("SET lock_timeout = '1s'")
        answer = Client().post(path, {"score": 1}, content_type="application/json")
    finally:
        release.set()
        holder.join()
        with connection.cursor() as cursor:
            cursor.execute("RESET lock_timeout")
    assert answer.status_code == 201, answer.content


@pytest.mark.django_db(transaction=True)
def test_sharing_one_run_twice_at_once_gives_one_link(world, editor_key, run):
    """The second of two simultaneous shares hit the one-live-link constraint and answered
    'That token is taken' for a token it had not chosen."""
    if connection.vendor != "postgresql":
        pytest.skip("row locks are PostgreSQL's")
    answers = at_once(
        4, lambda: api_call(Client(), "PUT", f"/runs/{run.pk}/share", editor_key, json={})
    )
    assert [a.status_code for a in answers] == [200] * 4, [a.content for a in answers]
    assert len({a.json()["share_token"] for a in answers}) == 1
    assert models.ShareLink.objects.count() == 1


# A token's feedback_config was stored and never applied: its holder could score anything.


def _token_with_config(client, editor_key, run, config):
    body = {"run_id": str(run.pk), "feedback_key": "k", "feedback_config": config}
    made = api_call(client, "POST", "/feedback/tokens", editor_key, json=body)
    assert made.status_code == 201, made.content
    return made.json()["url"].removeprefix("http://testserver")


@pytest.mark.parametrize(
    ("config", "refused", "accepted"),
    [
        ({"type": "continuous", "min": 0, "max": 1}, [1000, -0.5], 0.5),
        (
            {"type": "categorical", "categories": [{"value": 0}, {"value": 1, "label": "ok"}]},
            [2],
            1,
        ),
        ({"type": "freeform", "min": None, "max": None, "categories": None}, [], 1e9),
    ],
)
def test_a_tokens_feedback_config_bounds_its_score(
    client, editor_key, run, config, refused, accepted
):
    path = _token_with_config(client, editor_key, run, config)
    for score in refused:
        answer = Client().post(path, {"score": score}, content_type="application/json")
        assert answer.status_code == 422, answer.content
        assert answer.json()["fields"]["score"]
        assert Client().get(path, {"score": score}).status_code == 422
    assert not models.Feedback.objects.exists()
    answer = Client().post(path, {"score": accepted}, content_type="application/json")
    assert answer.status_code == 201, answer.content
    assert models.Feedback.objects.get().score == accepted


@pytest.mark.parametrize(
    "config",
    [
        {"type": "stars"},
        {"type": "continuous", "min": "a"},
        {"type": "continuous", "bounds": [0, 1]},
        {"type": "categorical", "categories": [{"label": "no value"}]},
        {"type": "categorical", "allows_multiple_categories": True},
    ],
)
def test_a_feedback_config_this_server_cannot_apply_is_refused(client, editor_key, run, config):
    body = {"run_id": str(run.pk), "feedback_key": "k", "feedback_config": config}
    answer = api_call(client, "POST", "/feedback/tokens", editor_key, json=body)
    assert answer.status_code == 422, answer.content
    assert not models.FeedbackToken.objects.exists()


def test_a_shared_page_is_not_kept_by_caches(client, editor_key, run):
    """Revoking a link must end it everywhere: no cache between may keep the page."""
    token = _share(client, editor_key, run)
    page = Client().get(f"/public/{token}/r")
    assert page.status_code == 200
    assert page["Cache-Control"] == "no-store"
