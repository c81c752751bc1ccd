"""Every public member of the installed `langsmith.Client`, accounted for (issue 18).

SURFACE classifies each one. A method touching projects, runs, datasets, examples, feedback,
annotation queues or prompts either
- WORKS: a test below calls it against a live server and checks what it answers;
- REFUSED: a test checks it raises a LangSmith error with a 4xx status naming what this server
  does not serve (never a 200 with wrong data);
- WORKS and is TESTED IN a dedicated SDK test elsewhere (`elsewhere("path::name")`), which
  `test_methods_tested_elsewhere_have_their_test` checks exists.
Every other member is OUTSIDE, with the reason. `test_the_table_covers_every_public_member`
fails when the SDK gains a member, and `test_every_method_in_the_areas_has_a_test` when a
classified method has no test.

One live server and one set of committed rows serve the whole module (the server thread reads
committed data only, and a flush per test would cost more than every call here together); each
test makes its own uniquely named objects. docs/langsmith.md lists the table in words.
"""

import asyncio
import datetime
import gc
import pathlib
import re
import uuid

import langsmith
import pytest
from django.core.management import call_command
from langsmith.evaluation import EvaluationResult, RunEvaluator
from langsmith.utils import LangSmithError, LangSmithNotFoundError
from pytest_django.live_server_helper import LiveServer
from urllib3.util.retry import Retry

from tests.factories import build_world, service_key_for

pytestmark = [
    # Each test's own connection runs in a transaction it rolls back; the server thread's
    # connection reads and writes the module's committed rows (see `server`).
    pytest.mark.django_db,
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
    pytest.mark.filterwarnings("ignore::UserWarning"),
]

WORKS = "works"
REFUSED = "refused"


def elsewhere(test):
    """Works, and a dedicated SDK test (`path::name`) calls it against a live server;
    test_methods_tested_elsewhere_have_their_test checks that test exists."""
    return f"works: {test}"


RUN_URL_TEST = "tests/api/test_langsmith_sdk_hub.py::test_the_run_url_the_sdk_builds_opens_the_run"


def outside(reason):
    return f"outside: {reason}"


PLUMBING = outside("client plumbing: configuration, connections, background threads")
ACCESSOR = outside(
    "the generated v2 resource client (client.runs.query(...), /api/v2 and /v1/platform "
    "paths): a second API surface, not a method of Client; not served"
)
AGENTS = outside("the agent and skill hub: not one of the issue's areas")
FORMULAS = outside("composite feedback formulas: the SDK itself raises NotImplementedError")

SURFACE = {
    # Projects
    "create_project": WORKS,
    "read_project": WORKS,
    "aread_project": WORKS,
    "has_project": WORKS,
    "list_projects": WORKS,
    "update_project": WORKS,
    "delete_project": WORKS,
    "create_comparative_experiment": REFUSED,
    "get_test_results": WORKS,  # an experiment's runs against its dataset's examples
    "get_experiment_results": REFUSED,
    "generate_insights": REFUSED,
    "get_insights_report": REFUSED,
    "poll_insights": REFUSED,
    "list_project_issues": REFUSED,
    # Runs
    "create_run": WORKS,
    "update_run": WORKS,
    "batch_ingest_runs": WORKS,
    "read_run": WORKS,
    "list_runs": WORKS,
    "multipart_ingest": WORKS,  # /runs/multipart is not served; the SDK falls back to batches
    "get_run_stats": WORKS,
    "list_threads": WORKS,
    "read_thread": REFUSED,  # filters on thread_id, not in the run filter language here
    "get_run_url": elsewhere(RUN_URL_TEST),
    "share_run": WORKS,
    "unshare_run": WORKS,
    "read_run_shared_link": WORKS,
    "run_is_shared": WORKS,
    "read_shared_run": WORKS,
    "list_shared_runs": WORKS,
    # Datasets
    "create_dataset": WORKS,
    "read_dataset": WORKS,
    "has_dataset": WORKS,
    "list_datasets": WORKS,
    "delete_dataset": WORKS,
    "read_dataset_openai_finetuning": REFUSED,
    "upload_csv": WORKS,
    "upload_dataframe": WORKS,
    "list_dataset_splits": WORKS,
    "update_dataset_splits": WORKS,
    "list_dataset_versions": WORKS,
    "read_dataset_version": WORKS,
    "diff_dataset_versions": WORKS,
    "update_dataset_tag": WORKS,
    "share_dataset": WORKS,
    "unshare_dataset": WORKS,
    "read_shared_dataset": WORKS,
    "read_dataset_shared_schema": WORKS,
    "list_shared_examples": WORKS,
    "list_shared_projects": REFUSED,
    "clone_public_dataset": WORKS,
    "evaluate": WORKS,  # its experiment names the dataset (sessions' reference_dataset_id)
    "aevaluate": WORKS,
    # Examples
    "create_example": WORKS,
    "create_examples": WORKS,
    "create_llm_example": WORKS,
    "create_chat_example": WORKS,
    "create_example_from_run": WORKS,
    "read_example": WORKS,
    "list_examples": WORKS,
    "update_example": WORKS,
    "delete_example": WORKS,
    "update_examples": WORKS,
    "delete_examples": WORKS,
    "upload_examples_multipart": WORKS,
    # The deprecated /v1/platform/examples/multipart is not served, and the info's flags say so:
    # the SDK itself refuses before sending anything.
    "upsert_examples_multipart": REFUSED,
    "update_examples_multipart": WORKS,
    # Feedback
    "create_feedback": WORKS,
    "read_feedback": WORKS,
    "list_feedback": WORKS,
    "update_feedback": WORKS,
    "delete_feedback": WORKS,
    "evaluate_run": WORKS,
    "aevaluate_run": WORKS,
    "create_feedback_config": REFUSED,
    "list_feedback_configs": REFUSED,
    "update_feedback_config": REFUSED,
    "delete_feedback_config": REFUSED,
    "add_feedback_categories": REFUSED,
    "remove_feedback_categories": REFUSED,
    "create_presigned_feedback_token": WORKS,
    "create_presigned_feedback_tokens": WORKS,
    "list_presigned_feedback_tokens": REFUSED,
    "create_feedback_from_token": WORKS,
    "create_feedback_formula": FORMULAS,
    "get_feedback_formula_by_id": FORMULAS,
    "list_feedback_formulas": FORMULAS,
    "update_feedback_formula": FORMULAS,
    "delete_feedback_formula": FORMULAS,
    # Annotation queues
    "create_annotation_queue": WORKS,
    "read_annotation_queue": WORKS,
    "list_annotation_queues": WORKS,
    "update_annotation_queue": WORKS,
    "delete_annotation_queue": WORKS,
    "add_runs_to_annotation_queue": WORKS,
    "list_runs_from_annotation_queue": WORKS,
    "get_run_from_annotation_queue": WORKS,
    "delete_run_from_annotation_queue": WORKS,
    # Prompts (the hub: /repos, /commits, /likes)
    "list_prompts": WORKS,
    "get_prompt": WORKS,
    "create_prompt": WORKS,
    "create_commit": WORKS,
    "update_prompt": WORKS,
    "delete_prompt": WORKS,
    "pull_prompt_commit": WORKS,
    "list_prompt_commits": WORKS,
    "pull_prompt": WORKS,
    "push_prompt": WORKS,
    "like_prompt": REFUSED,
    "unlike_prompt": REFUSED,
    # The server's own description, read by every other call.
    "info": WORKS,
    # Outside the areas.
    **dict.fromkeys(
        ["agent_exists", "delete_agent", "list_agents", "pull_agent", "push_agent"], AGENTS
    ),
    **dict.fromkeys(
        ["skill_exists", "delete_skill", "list_skills", "pull_skill", "push_skill"], AGENTS
    ),
    **dict.fromkeys(
        [
            "agents",
            "annotation_queues",
            "datasets",
            "evaluators",
            "public",
            "runs",
            "sandboxes",
            "sessions",
            "threads",
            "traces",
        ],
        ACCESSOR,
    ),
    **dict.fromkeys(
        [
            "api_key",
            "api_url",
            "cleanup",
            "close",
            "compressed_traces",
            "flush",
            "flush_compressed_traces",
            "headers",
            "otel_exporter",
            "request_with_retries",
            "retry_config",
            "session",
            "timeout_ms",
            "tracing_mode",
            "tracing_queue",
            "tracing_sample_rate",
            "workspace_id",
        ],
        PLUMBING,
    ),
}

COVERED: set[str] = set()


def covers(*names):
    """Mark a test as the one that exercises `names` (all of one status)."""
    statuses = {SURFACE[name] for name in names}
    assert len(statuses) == 1, f"{names} mix statuses {statuses}"
    (status,) = statuses
    assert status in (WORKS, REFUSED), names

    def mark(test):
        COVERED.update(names)
        return test

    return mark


def named_elsewhere():
    return {
        name: status.removeprefix("works: ")
        for name, status in SURFACE.items()
        if status.startswith("works: ")
    }


def public_members():
    return {name for name in dir(langsmith.Client) if not name.startswith("_")}


def test_the_table_covers_every_public_member():
    assert set(SURFACE) == public_members(), (
        f"not classified: {sorted(public_members() - set(SURFACE))}; "
        f"gone from the SDK: {sorted(set(SURFACE) - public_members())}"
    )


def test_every_method_in_the_areas_has_a_test():
    in_areas = {name for name, status in SURFACE.items() if not status.startswith("outside")}
    assert in_areas == COVERED | set(named_elsewhere()), sorted(in_areas ^ COVERED)


def test_methods_tested_elsewhere_have_their_test():
    import importlib

    assert named_elsewhere()
    for name, test in named_elsewhere().items():
        path, function = test.split("::")
        module = importlib.import_module(path.removesuffix(".py").replace("/", "."))
        assert callable(getattr(module, function, None)), (name, test)
        assert f"client.{name}(" in pathlib.Path(path).read_text(), (name, test)


# ---------------------------------------------------------------------------------------------
# One live server, one Editor key, for the module.


@pytest.fixture(scope="module")
def server(django_db_setup, django_db_blocker):
    # The blocker is process-wide: the server thread needs the database between tests too.
    with django_db_blocker.unblock():
        world = build_world()
        key = service_key_for(world.workspace, "Editor")
        live = LiveServer("localhost")
        try:
            yield live.url, key, world
        finally:
            live.stop()
            gc.collect()
            # Leave the database as a transactional test does: empty.
            call_command("flush", verbosity=0, interactive=False)


@pytest.fixture(scope="module")
def client(server):
    url, key, _ = server
    made = langsmith.Client(
        api_url=url,
        api_key=key,
        auto_batch_tracing=False,  # every write is sent before the call returns
        timeout_ms=(5_000, 15_000),
        retry_config=Retry(total=2, backoff_factor=0, status_forcelist=()),
    )
    yield made
    gc.collect()
    made.close(timeout=5)


def unique(prefix):
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def refused(call, *names, status=None):
    """`call` raises a LangSmith error whose HTTP status is 4xx and whose message names each
    of `names`; returns the message."""
    with pytest.raises(LangSmithError) as info:
        call()
    message = str(info.value)
    found = re.search(r"\b(4\d\d) Client Error", message)
    assert found, message
    if status is not None:
        assert found.group(1) == str(status), message
    for name in names:
        assert name in message, (name, message)
    return message


@pytest.fixture(scope="module")
def traced(client):
    """A project with a parent run, a child run and a failed run, made through create_run."""
    project = unique("traced")
    parent, child, failed = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    start = datetime.datetime.now(datetime.UTC)
    client.create_run(
        "answer", {"q": "2+2?"}, "chain", id=parent, project_name=project, start_time=start
    )
    client.create_run(
        "lookup",
        {"x": 2},
        "tool",
        id=child,
        parent_run_id=parent,
        project_name=project,
        start_time=start,
    )
    client.update_run(child, outputs={"y": 4}, end_time=start)
    client.update_run(parent, outputs={"a": 4}, end_time=start, tags=["done"])
    client.create_run("explode", {"x": 0}, "chain", id=failed, project_name=project)
    client.update_run(failed, error="ZeroDivisionError")
    return {"project": project, "parent": parent, "child": child, "failed": failed}


# ---------------------------------------------------------------------------------------------
# Works.


@covers("info")
def test_info(client):
    assert client.info.version
    assert client.info.batch_ingest_config["size_limit"] == 100


@covers(
    "create_project",
    "read_project",
    "aread_project",
    "has_project",
    "list_projects",
    "update_project",
    "delete_project",
)
def test_projects(client, server):
    _, _, world = server
    name = unique("proj")
    made = client.create_project(name, description="d", metadata={"team": "a"})
    assert (made.name, made.description, made.tenant_id) == (name, "d", world.workspace.pk)
    assert client.read_project(project_name=name).id == made.id
    assert client.read_project(project_id=made.id, include_stats=True).name == name
    assert asyncio.run(client.aread_project(project_name=name)).id == made.id
    assert client.has_project(name) and not client.has_project(unique("nope"))
    assert [p.id for p in client.list_projects(name=name)] == [made.id]
    assert made.id in {p.id for p in client.list_projects(name_contains=name[-8:])}
    assert [p.id for p in client.list_projects(project_ids=[made.id])] == [made.id]
    upserted = client.create_project(name, upsert=True)
    assert upserted.id == made.id

    ended = datetime.datetime(2026, 1, 2, 3, 4, 5, tzinfo=datetime.UTC)
    changed = client.update_project(
        made.id, name=name + "-x", description="e", metadata={"team": "b"}, end_time=ended
    )
    assert (changed.name, changed.description) == (name + "-x", "e")
    assert changed.extra["metadata"] == {"team": "b"}
    assert changed.end_time == ended

    client.delete_project(project_id=made.id)
    assert not client.has_project(name + "-x")


@covers(
    "create_run", "update_run", "batch_ingest_runs", "multipart_ingest", "read_run", "list_runs"
)
def test_runs(client, traced):
    project, parent, child, failed = (traced[k] for k in ("project", "parent", "child", "failed"))
    read = client.read_run(child)
    assert (read.name, read.parent_run_id, read.outputs) == ("lookup", parent, {"y": 4})
    assert client.read_run(parent).tags == ["done"]

    def ids(**filters):
        return {r.id for r in client.list_runs(project_name=project, **filters)}

    assert ids() == {parent, child, failed}
    assert ids(is_root=True) == {parent, failed}
    assert ids(run_type="tool") == {child}
    assert ids(error=True) == {failed}
    assert ids(error=False) == {parent, child}
    assert ids(parent_run_id=parent) == {child}
    assert ids(trace_id=parent) == {parent, child}
    assert ids(run_ids=[child, failed]) == {child, failed}
    assert ids(limit=1) <= {parent, child, failed} and len(ids(limit=1)) == 1

    batched, patched = uuid.uuid4(), uuid.uuid4()
    now = datetime.datetime.now(datetime.UTC)
    run = {"name": "b", "run_type": "llm", "inputs": {}, "session_name": project}
    client.batch_ingest_runs(
        create=[
            {**run, "id": batched, "start_time": now, "trace_id": batched,
             "dotted_order": f"{now:%Y%m%dT%H%M%S%fZ}{batched}"},
            {**run, "id": patched, "start_time": now, "trace_id": patched,
             "dotted_order": f"{now:%Y%m%dT%H%M%S%fZ}{patched}"},
        ],
        update=[
            {"id": patched, "trace_id": patched, "outputs": {"o": 1}, "end_time": now,
             "dotted_order": f"{now:%Y%m%dT%H%M%S%fZ}{patched}"}
        ],
    )  # fmt: skip
    assert client.read_run(patched).outputs == {"o": 1}
    assert {batched, patched} <= ids()

    # /runs/multipart is not served (404): the SDK sends the same runs as a JSON batch.
    multi = uuid.uuid4()
    client.multipart_ingest(
        create=[{**run, "id": multi, "trace_id": multi, "start_time": now,
                 "dotted_order": f"{now:%Y%m%dT%H%M%S%fZ}{multi}"}]
    )  # fmt: skip
    assert client.read_run(multi).name == "b"


@pytest.mark.parametrize(
    "query",
    [
        {"filter": 'eq(name, "lookup")'},
        {"trace_filter": 'eq(name, "answer")', "filter": 'eq(run_type, "tool")'},
        {"tree_filter": 'eq(name, "lookup")', "is_root": True},
    ],
    ids=["filter", "trace_filter", "tree_filter"],
)
def test_list_runs_by_the_filter_language(client, traced, query):
    found = {r.id for r in client.list_runs(project_name=traced["project"], **query)}
    expected = {traced["parent"]} if "tree_filter" in query else {traced["child"]}
    assert found == expected


def test_list_runs_since_a_start_time(client, traced):
    later = datetime.datetime.now(datetime.UTC) + datetime.timedelta(days=1)
    assert list(client.list_runs(project_name=traced["project"], start_time=later)) == []


@pytest.mark.parametrize("unknown", ["query", "select_bogus"])
def test_list_runs_refuses_what_it_does_not_know(client, traced, unknown):
    # Refused now, and still after the run filter work: never answered unfiltered.
    kwargs = {"query": "lookup"} if unknown == "query" else {"select_bogus": ["x"]}
    refused(lambda: list(client.list_runs(project_name=traced["project"], **kwargs)), unknown)


@covers("create_dataset", "read_dataset", "has_dataset", "list_datasets", "delete_dataset")
def test_datasets(client):
    name = unique("ds")
    made = client.create_dataset(name, description="faq", data_type=langsmith.schemas.DataType.kv)
    assert (made.name, made.description) == (name, "faq")
    assert client.read_dataset(dataset_name=name).id == made.id
    assert client.read_dataset(dataset_id=made.id).name == name
    assert client.has_dataset(dataset_name=name)
    assert [d.id for d in client.list_datasets(dataset_name=name)] == [made.id]
    assert made.id in {d.id for d in client.list_datasets(dataset_name_contains=name[-8:])}
    assert [d.id for d in client.list_datasets(dataset_ids=[made.id], data_type="kv")] == [made.id]
    assert list(client.list_datasets(dataset_ids=[made.id], data_type="chat")) == []
    client.delete_dataset(dataset_id=made.id)
    assert not client.has_dataset(dataset_name=name)


def test_list_datasets_by_metadata(client):
    name = unique("ds")
    client.create_dataset(name, metadata={"tier": "gold"})
    client.create_dataset(unique("ds"), metadata={"tier": "lead"})
    assert [d.name for d in client.list_datasets(metadata={"tier": "gold"})] == [name]


@covers(
    "create_example",
    "create_examples",
    "create_llm_example",
    "create_chat_example",
    "create_example_from_run",
    "read_example",
    "list_examples",
    "update_example",
    "delete_example",
)
def test_examples(client, traced):
    dataset = client.create_dataset(unique("ex"))
    one = client.create_example(
        inputs={"q": "a"}, outputs={"r": 1}, dataset_id=dataset.id, split="train"
    )
    client.create_examples(
        dataset_id=dataset.id,
        examples=[{"inputs": {"q": "b"}, "metadata": {"m": 1}}, {"inputs": {"q": "c"}}],
    )
    llm = client.create_llm_example("prompt?", generation="answer", dataset_id=dataset.id)
    assert (llm.inputs, llm.outputs) == ({"input": "prompt?"}, {"output": "answer"})
    chat = client.create_chat_example(
        [{"type": "human", "data": {"content": "hi"}}],
        {"type": "ai", "data": {"content": "hello"}},
        dataset_id=dataset.id,
    )
    assert chat.inputs["input"][0]["data"]["content"] == "hi"
    from_run = client.create_example_from_run(client.read_run(traced["child"]), dataset.id)
    assert (from_run.inputs, from_run.outputs) == ({"x": 2}, {"y": 4})
    assert client.read_example(from_run.id).inputs == {"x": 2}  # the SDK sends no source_run_id

    listed = {e.id: e for e in client.list_examples(dataset_id=dataset.id)}
    assert len(listed) == 6 and one.id in listed
    assert [e.id for e in client.list_examples(dataset_id=dataset.id, splits=["train"])] == [one.id]
    assert [e.id for e in client.list_examples(example_ids=[one.id])] == [one.id]
    assert client.read_example(one.id).outputs == {"r": 1}

    client.update_example(one.id, outputs={"r": 2}, metadata={"checked": True}, split="test")
    updated = client.read_example(one.id)
    assert (updated.outputs, updated.metadata) == ({"r": 2}, {"checked": True})
    assert [e.id for e in client.list_examples(dataset_id=dataset.id, splits=["test"])] == [one.id]
    client.delete_example(one.id)
    with pytest.raises(LangSmithNotFoundError):
        client.read_example(one.id)


def test_an_example_does_not_move_to_another_dataset(client):
    first, second = client.create_dataset(unique("a")), client.create_dataset(unique("b"))
    example = client.create_example(inputs={"q": 1}, dataset_id=first.id)
    refused(
        # The SDK sends it as a multipart update of `second`'s examples: not one of them.
        lambda: client.update_example(example.id, inputs={"q": 2}, dataset_id=second.id),
        "example_ids",
        status=404,
    )
    assert client.read_example(example.id).inputs == {"q": 1}


def test_list_examples_by_metadata_and_as_of(client):
    dataset = client.create_dataset(unique("ex"))
    client.create_examples(
        dataset_id=dataset.id, examples=[{"inputs": {"q": 1}, "metadata": {"k": "v"}}]
    )
    found = list(client.list_examples(dataset_id=dataset.id, metadata={"k": "v"}))
    assert [e.inputs for e in found] == [{"q": 1}]
    before = datetime.datetime(2000, 1, 1, tzinfo=datetime.UTC)
    assert list(client.list_examples(dataset_id=dataset.id, as_of=before)) == []


class Exact(RunEvaluator):
    def evaluate_run(self, run, example=None, evaluator_run_id=None):
        return EvaluationResult(key="exact", score=run.outputs == {"y": 4}, comment="checked")


@covers(
    "create_feedback",
    "read_feedback",
    "list_feedback",
    "update_feedback",
    "delete_feedback",
    "evaluate_run",
    "aevaluate_run",
)
def test_feedback(client, traced):
    child, parent = traced["child"], traced["parent"]
    made = client.create_feedback(
        run_id=child, trace_id=parent, key=unique("k"), score=0.5, comment="ok"
    )
    read = client.read_feedback(made.id)
    assert (read.run_id, read.score, read.comment) == (child, 0.5, "ok")
    assert [f.id for f in client.list_feedback(run_ids=[child], feedback_key=[made.key])] == [
        made.id
    ]
    client.update_feedback(made.id, score=1, comment="better")
    assert (client.read_feedback(made.id).score, client.read_feedback(made.id).comment) == (
        1,
        "better",
    )

    result = client.evaluate_run(child, Exact())
    assert (result.key, result.score) == ("exact", True)
    asyncio.run(client.aevaluate_run(child, Exact()))
    exact = [f for f in client.list_feedback(run_ids=[child], feedback_key=["exact"])]
    assert [f.score for f in exact] == [1, 1]
    assert {f.feedback_source.type for f in exact} == {"model"}
    model_made = client.list_feedback(run_ids=[child], feedback_source_type=["model"])
    assert {f.key for f in model_made} == {"exact"}

    client.delete_feedback(made.id)
    with pytest.raises(LangSmithNotFoundError):
        client.read_feedback(made.id)


@covers(
    "create_annotation_queue",
    "read_annotation_queue",
    "list_annotation_queues",
    "update_annotation_queue",
    "delete_annotation_queue",
    "add_runs_to_annotation_queue",
    "list_runs_from_annotation_queue",
    "get_run_from_annotation_queue",
    "delete_run_from_annotation_queue",
)
def test_annotation_queues(client, traced):
    name = unique("queue")
    queue = client.create_annotation_queue(name=name, description="d")
    assert client.read_annotation_queue(queue.id).name == name
    assert [q.id for q in client.list_annotation_queues(name=name)] == [queue.id]
    assert [q.id for q in client.list_annotation_queues(queue_ids=[queue.id])] == [queue.id]
    assert queue.id in {q.id for q in client.list_annotation_queues(name_contains=name[-8:])}
    client.update_annotation_queue(queue.id, name=name + "-x", rubric_instructions="be fair")
    changed = client.read_annotation_queue(queue.id)
    assert (changed.name, changed.rubric_instructions) == (name + "-x", "be fair")

    client.add_runs_to_annotation_queue(queue.id, run_ids=[traced["child"], traced["failed"]])
    queued = {r.id for r in client.list_runs_from_annotation_queue(queue.id)}
    assert queued == {traced["child"], traced["failed"]}
    assert client.get_run_from_annotation_queue(queue.id, index=0).id in queued
    client.delete_run_from_annotation_queue(queue.id, run_id=traced["child"])
    assert [r.id for r in client.list_runs_from_annotation_queue(queue.id)] == [traced["failed"]]

    client.delete_annotation_queue(queue.id)
    with pytest.raises(LangSmithNotFoundError):
        client.read_annotation_queue(queue.id)


# ---------------------------------------------------------------------------------------------
# Refused with a 4xx naming what is not served.


@covers("read_dataset_openai_finetuning")
def test_openai_finetuning_export(client):
    dataset = client.create_dataset(unique("ft"))
    refused(lambda: client.read_dataset_openai_finetuning(dataset.id), "openai_ft", status=404)


@covers("create_comparative_experiment")
def test_comparative_experiments(client):
    a, b = client.create_project(unique("e")), client.create_project(unique("e"))
    dataset = client.create_dataset(unique("cmp"))
    refused(
        lambda: client.create_comparative_experiment(
            unique("cmp"), [a.id, b.id], reference_dataset=dataset.id
        ),
        "/datasets/comparative",
        status=404,
    )


@covers("get_experiment_results")
def test_experiment_results(client):
    project = client.create_project(unique("exp"))
    results = client.get_experiment_results(project_id=project.id)
    assert results["run_stats"]["run_count"] == 0
    # The examples with their runs come from an endpoint not served here.
    refused(lambda: list(results["examples_with_runs"]), "/runs", status=404)


@covers("generate_insights", "get_insights_report", "poll_insights", "list_project_issues")
def test_insights_and_issues(client):
    project = client.create_project(unique("ins"))
    job = uuid.uuid4()
    refused(
        lambda: client.get_insights_report(id=job, project_id=project.id), "insights", status=404
    )
    refused(
        lambda: client.poll_insights(id=job, project_id=project.id, timeout=1),
        "insights",
        status=404,
    )
    refused(lambda: client.list_project_issues(project.name), "404")
    refused(
        lambda: client.generate_insights(
            chat_histories=[[{"role": "user", "content": "hi"}]], openai_api_key="sk-none"
        ),
        "/workspaces/current/secrets",  # where it first stores the model key
        status=404,
    )


@covers(
    "create_feedback_config",
    "list_feedback_configs",
    "update_feedback_config",
    "delete_feedback_config",
    "add_feedback_categories",
    "remove_feedback_categories",
)
def test_feedback_configs(client):
    config = {"type": "continuous", "min": 0, "max": 1}
    refused(
        lambda: client.create_feedback_config("k", feedback_config=config),
        "/feedback-configs",
        status=404,
    )
    refused(lambda: list(client.list_feedback_configs()), "/feedback-configs", status=404)
    refused(
        lambda: client.update_feedback_config("k", feedback_config=config),
        "/feedback-configs",
    )
    refused(lambda: client.delete_feedback_config("k"), "/feedback-configs")
    refused(
        lambda: client.add_feedback_categories("k", [{"value": 1, "label": "a"}]),
        "/feedback-configs",
    )
    refused(lambda: client.remove_feedback_categories("k", [1]), "/feedback-configs")


def test_feedback_formulas_are_refused_by_the_sdk_itself(client):
    for call in [
        lambda: client.list_feedback_formulas(),
        lambda: client.get_feedback_formula_by_id(uuid.uuid4()),
        lambda: client.create_feedback_formula(
            feedback_key="k", aggregation_type="sum", formula_parts=[]
        ),
        lambda: client.update_feedback_formula(
            uuid.uuid4(), feedback_key="k", aggregation_type="sum", formula_parts=[]
        ),
        lambda: client.delete_feedback_formula(uuid.uuid4()),
    ]:
        with pytest.raises(NotImplementedError):
            result = call()
            list(result)  # a generator raises on its first step


@pytest.mark.parametrize(
    ("call", "name"),
    [
        (lambda c: c.create_project(unique("p"), tag_value_ids=[uuid.uuid4()]), "tag_value_ids"),
        (lambda c: c.create_dataset(unique("d"), transformations=[{"x": 1}]), "transformations"),
        (lambda c: list(c.list_projects(dataset_version="latest")), "dataset_version"),
    ],
    ids=["project-tags", "dataset-transformations", "dataset_version"],
)
def test_parameters_of_working_methods_we_do_not_serve_are_refused(client, call, name):
    refused(lambda: call(client), name, status=422)


def test_list_projects_by_metadata_and_reference_free(client):
    name = unique("meta")
    client.create_project(name, metadata={"team": name})
    assert [p.name for p in client.list_projects(metadata={"team": name})] == [name]
    assert name in {p.name for p in client.list_projects(reference_free=True, name=name)}
    assert list(client.list_projects(reference_free=False, name=name)) == []


def test_queue_runs_by_review_status_are_refused(client):
    queue = client.create_annotation_queue(name=unique("q"))
    refused(
        lambda: list(client.list_runs_from_annotation_queue(queue.id, status="needs_my_review")),
        "status",
        status=422,
    )


# ---------------------------------------------------------------------------------------------
# The run filter language and /runs/stats.


@covers("get_run_stats")
def test_get_run_stats(client):
    project = unique("stats")
    for name, error in [("a", None), ("b", None), ("c", "boom")]:
        run_id = uuid.uuid4()
        client.create_run(name, {}, "chain", id=run_id, project_name=project)
        client.update_run(run_id, outputs={}, error=error)
    stats = client.get_run_stats(project_names=[project])
    assert stats["run_count"] == 3
    assert stats["error_rate"] == pytest.approx(1 / 3)


@covers("list_threads")
def test_list_threads(client):
    project = unique("threads")
    for turn in range(2):
        client.create_run(
            f"turn{turn}",
            {"q": turn},
            "chain",
            project_name=project,
            extra={"metadata": {"thread_id": "t1"}},
        )
    client.create_run("alone", {}, "chain", project_name=project)  # in no thread
    (thread,) = client.list_threads(project_name=project)
    assert thread["thread_id"] == "t1"
    assert sorted(r.name for r in thread["runs"]) == ["turn0", "turn1"]


@covers("read_thread")
def test_read_thread(client):
    # It filters on thread_id, which the run filter language here does not have.
    project = client.create_project(unique("threads"))
    refused(
        lambda: list(client.read_thread(thread_id="t1", project_name=project.name)),
        "thread_id",
        status=422,
    )


# ---------------------------------------------------------------------------------------------
# Dataset curation.


@covers("upload_csv")
def test_upload_csv(client, tmp_path):
    path = tmp_path / "faq.csv"
    path.write_text("q,a\nhours?,9-5\nrefunds?,30 days\n")
    dataset = client.upload_csv(str(path), input_keys=["q"], output_keys=["a"], name=unique("c"))
    found = client.list_examples(dataset_id=dataset.id)
    assert sorted((e.inputs["q"], e.outputs["a"]) for e in found) == [
        ("hours?", "9-5"),
        ("refunds?", "30 days"),
    ]


@covers("upload_dataframe")
def test_upload_dataframe(client):
    pandas = pytest.importorskip("pandas")  # the SDK's optional dependency, not ours
    frame = pandas.DataFrame({"q": ["x?"], "a": ["y"]})
    dataset = client.upload_dataframe(frame, unique("df"), input_keys=["q"], output_keys=["a"])
    assert [e.inputs for e in client.list_examples(dataset_id=dataset.id)] == [{"q": "x?"}]


@covers("update_examples", "delete_examples")
def test_update_and_delete_examples_in_bulk(client):
    dataset = client.create_dataset(unique("bulk"))
    made = client.create_examples(
        dataset_id=dataset.id, examples=[{"inputs": {"q": 1}}, {"inputs": {"q": 2}}]
    )
    first, second = made["example_ids"]
    client.update_examples(dataset_id=dataset.id, updates=[{"id": first, "outputs": {"a": 1}}])
    assert client.read_example(first).outputs == {"a": 1}
    client.delete_examples([first, second])
    assert list(client.list_examples(dataset_id=dataset.id)) == []


@covers("list_dataset_splits", "update_dataset_splits")
def test_dataset_splits(client):
    dataset = client.create_dataset(unique("splits"))
    example = client.create_example(inputs={"q": 1}, dataset_id=dataset.id)
    client.update_dataset_splits(dataset_id=dataset.id, split_name="gold", example_ids=[example.id])
    assert "gold" in client.list_dataset_splits(dataset_id=dataset.id)


@covers(
    "list_dataset_versions", "read_dataset_version", "diff_dataset_versions", "update_dataset_tag"
)
def test_dataset_versions(client):
    dataset = client.create_dataset(unique("versions"))
    client.create_example(inputs={"q": 1}, dataset_id=dataset.id)
    client.create_example(inputs={"q": 2}, dataset_id=dataset.id)
    versions = list(client.list_dataset_versions(dataset_id=dataset.id))
    assert len(versions) >= 2
    newest, older = versions[0].as_of, versions[-1].as_of
    client.update_dataset_tag(dataset_id=dataset.id, as_of=older, tag="prod")
    assert client.read_dataset_version(dataset_id=dataset.id, tag="prod").as_of == older
    diff = client.diff_dataset_versions(dataset.id, from_version=older, to_version=newest)
    assert len(diff.examples_added) >= 1


@covers("upload_examples_multipart", "update_examples_multipart")
def test_multipart_examples(client):
    from langsmith.schemas import ExampleCreate, ExampleUpdate

    dataset = client.create_dataset(unique("mp"))
    uploaded = client.upload_examples_multipart(
        dataset_id=dataset.id, uploads=[ExampleCreate(inputs={"q": 1})]
    )
    (example_id,) = uploaded["example_ids"]
    client.update_examples_multipart(
        dataset_id=dataset.id, updates=[ExampleUpdate(id=example_id, outputs={"a": 1})]
    )
    assert client.read_example(example_id).outputs == {"a": 1}
    assert len(list(client.list_examples(dataset_id=dataset.id))) == 1


@covers("upsert_examples_multipart")
def test_upsert_examples_multipart_is_refused_by_the_sdk(client):
    from langsmith.schemas import ExampleUpsertWithAttachments

    dataset = client.create_dataset(unique("ups"))
    with pytest.raises(ValueError, match="multipart examples endpoint"):
        client.upsert_examples_multipart(
            upserts=[ExampleUpsertWithAttachments(dataset_id=dataset.id, inputs={"q": 2})]
        )
    assert list(client.list_examples(dataset_id=dataset.id)) == []


@covers("evaluate", "aevaluate")
def test_evaluate_links_the_experiment_to_its_dataset(client):
    dataset = client.create_dataset(unique("eval"))
    client.create_examples(
        dataset_id=dataset.id, examples=[{"inputs": {"x": 1}, "outputs": {"y": 2}}]
    )

    def doubled(inputs):
        return {"y": inputs["x"] * 2}

    def right(outputs, reference_outputs):
        return outputs == reference_outputs

    results = client.evaluate(doubled, data=dataset.name, evaluators=[right])
    results.wait()
    experiment = client.read_project(project_name=results.experiment_name)
    assert experiment.reference_dataset_id == dataset.id

    async def adoubled(inputs):
        return doubled(inputs)

    asyncio.run(client.aevaluate(adoubled, data=dataset.name, evaluators=[right]))
    linked = list(client.list_projects(reference_dataset_id=dataset.id))
    assert len(linked) == 2


@covers("get_test_results")
def test_get_test_results(client):
    pytest.importorskip("pandas")  # it answers a pandas DataFrame
    dataset = client.create_dataset(unique("tr"))
    client.create_examples(dataset_id=dataset.id, examples=[{"inputs": {"x": 1}}])
    results = client.evaluate(lambda inputs: {"y": 1}, data=dataset.name)
    results.wait()
    frame = client.get_test_results(project_name=results.experiment_name)
    assert len(frame) == 1


# ---------------------------------------------------------------------------------------------
# The prompt hub, share links and presigned feedback tokens.


@covers(
    "create_prompt",
    "get_prompt",
    "list_prompts",
    "update_prompt",
    "create_commit",
    "list_prompt_commits",
    "pull_prompt_commit",
    "delete_prompt",
)
def test_prompt_hub(client):
    from langchain_core.prompts import ChatPromptTemplate

    name = unique("prompt")
    client.create_prompt(name, description="d")
    assert client.get_prompt(name).repo_handle == name
    assert name in {p.repo_handle for p in client.list_prompts().repos}
    client.update_prompt(name, description="e")
    assert client.get_prompt(name).description == "e"
    template = ChatPromptTemplate.from_messages([("human", "Hello {name}")])
    client.create_commit(name, template)
    commits = list(client.list_prompt_commits(name))
    assert len(commits) == 1
    assert client.pull_prompt_commit(name).commit_hash == commits[0].commit_hash
    client.delete_prompt(name)
    assert client.get_prompt(name) is None


@covers("like_prompt", "unlike_prompt")
def test_likes_are_refused_naming_the_path(client):
    from langchain_core.prompts import ChatPromptTemplate

    name = unique("liked")
    client.push_prompt(name, object=ChatPromptTemplate.from_messages([("human", "Hi {x}")]))
    refused(lambda: client.like_prompt(name), f"/likes/-/{name}", status=404)
    refused(lambda: client.unlike_prompt(name), f"/likes/-/{name}", status=404)


@covers("push_prompt", "pull_prompt")
def test_push_pull(client):
    from langchain_core.prompts import ChatPromptTemplate

    name = unique("pp")
    client.push_prompt(name, object=ChatPromptTemplate.from_messages([("human", "Hi {x}")]))
    pulled = client.pull_prompt(name)
    assert pulled.invoke({"x": "you"}).messages[0].content == "Hi you"


@covers(
    "share_run",
    "read_run_shared_link",
    "run_is_shared",
    "read_shared_run",
    "list_shared_runs",
    "unshare_run",
)
def test_run_share_links(client, traced):
    url = client.share_run(traced["parent"])
    assert client.run_is_shared(traced["parent"])
    assert client.read_run_shared_link(traced["parent"]) == url
    token = url.rstrip("/").split("/")[-2]
    assert client.read_shared_run(token).id == traced["parent"]
    assert traced["parent"] in {r.id for r in client.list_shared_runs(token)}
    client.unshare_run(traced["parent"])
    assert not client.run_is_shared(traced["parent"])


@covers(
    "share_dataset",
    "read_shared_dataset",
    "read_dataset_shared_schema",
    "list_shared_examples",
    "clone_public_dataset",
    "unshare_dataset",
)
@covers("list_shared_projects")  # experiments over a shared dataset: not served
def test_dataset_share_links(client, server):
    dataset = client.create_dataset(unique("shared"))
    client.create_example(inputs={"q": 1}, dataset_id=dataset.id)
    share = client.share_dataset(dataset.id)
    token = share["share_token"]
    assert client.read_dataset_shared_schema(dataset.id)["share_token"] == token
    assert client.read_shared_dataset(token).id == dataset.id
    assert [e.inputs for e in client.list_shared_examples(token)] == [{"q": 1}]
    refused(
        lambda: list(client.list_shared_projects(dataset_share_token=token)),
        f"/public/{token}/datasets/sessions",
        status=404,
    )
    clone = client.clone_public_dataset(token, source_api_url=server[0], dataset_name=unique("c"))
    assert [e.inputs for e in client.list_examples(dataset_id=clone.id)] == [{"q": 1}]
    client.unshare_dataset(dataset.id)
    with pytest.raises(LangSmithError):
        client.read_shared_dataset(token)


@covers(
    "create_presigned_feedback_token",
    "create_presigned_feedback_tokens",
    "create_feedback_from_token",
)
@covers("list_presigned_feedback_tokens")  # GET /feedback/tokens: not served
def test_presigned_feedback_tokens(client, traced):
    token = client.create_presigned_feedback_token(traced["child"], "thumbs")
    tokens = client.create_presigned_feedback_tokens(traced["child"], ["a", "b"])
    assert len(tokens) == 2
    refused(
        lambda: list(client.list_presigned_feedback_tokens(traced["child"])),
        "/feedback/tokens",
        status=405,
    )
    client.create_feedback_from_token(token.url, score=1)
    assert [
        f.score for f in client.list_feedback(run_ids=[traced["child"]], feedback_key=["thumbs"])
    ] == [1]
