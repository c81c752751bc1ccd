"""The real `langsmith` SDK against our server (pytest-django's live_server).

Nothing is mocked: the SDK speaks HTTP to a live server thread, the server writes to the test
database, and the assertions read back through the SDK and, where the SDK hides failures
(tracing never raises), through the database. Clients are built explicitly (the SDK caches its
environment variables) and closed after each test, so no connection outlives the server.

Each test costs a database flush (live_server needs a transactional database), so related
checks share a test rather than each having its own.
"""

import gc
import logging

import langsmith
import pytest
from langsmith import traceable
from langsmith.utils import LangSmithError, LangSmithNotFoundError, LangSmithUserError
from urllib3.util.retry import Retry

from accesscontrol.resources.models import (
    AnnotationQueue,
    Dataset,
    Example,
    Feedback,
    Project,
    QueuedRun,
    Run,
)
from tests.factories import pat_for, service_key_for

pytestmark = [
    pytest.mark.django_db(transaction=True),
    # list_runs is deprecated in favour of client.runs.query; it is still what users call.
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
]

API_V1 = "/api/v1"
PROJECT = "support-bot"


@pytest.fixture
def sdk(live_server):
    """Make SDK clients for live_server; every one is drained and closed at teardown."""
    clients = []

    def make(key, *, prefix="", workspace_id=None, batching=True):
        client = langsmith.Client(
            api_url=live_server.url + prefix,
            api_key=key,
            workspace_id=workspace_id,
            auto_batch_tracing=batching,
            timeout_ms=(5_000, 15_000),  # a hanging endpoint fails the test, not the run
            # Retry a dropped connection at once, never a 5xx: a server error fails fast.
            retry_config=Retry(total=2, backoff_factor=0, status_forcelist=()),
        )
        clients.append(client)
        return client

    yield make
    # An SDK error caught with `pytest.raises(...) as info` keeps its response, and so its
    # connection, alive in a reference cycle; free those before the server stops sharing the
    # in-memory SQLite connection with its request threads.
    gc.collect()
    for client in clients:
        client.close(timeout=5)


def trace_pipeline(client, project_name):
    """A parent @traceable calling a child @traceable; returns the parent's result."""

    @traceable(client=client, project_name=project_name, name="lookup", run_type="tool")
    def lookup(x):
        return {"doubled": x * 2}

    @traceable(client=client, project_name=project_name, name="answer")
    def answer(question, x):
        return {"answer": lookup(x)["doubled"] + 1}

    with langsmith.tracing_context(enabled=True):
        result = answer("What is 20 doubled, plus one?", 20)
    client.flush()
    return result


def trace_failure(client, project_name):
    @traceable(client=client, project_name=project_name, name="explode")
    def explode(x):
        raise ValueError(f"boom at {x}")

    with langsmith.tracing_context(enabled=True), pytest.raises(ValueError, match="boom at 7"):
        explode(7)
    client.flush()


def editor_client(world, sdk, credential, prefix, batching=True):
    if credential == "service_key":
        return sdk(service_key_for(world.workspace, "Editor"), prefix=prefix, batching=batching)
    # A personal access token names its workspace in X-Tenant-Id (the SDK's workspace_id).
    return sdk(
        pat_for(world.editor, world.org),
        prefix=prefix,
        workspace_id=str(world.workspace.pk),
        batching=batching,
    )


# (1) An Editor traces, builds a dataset, gives feedback and queues runs.


def check_tracing(world, client):
    """Trace a parent calling a child, and a failing function; returns the runs by name."""
    project = client.create_project(PROJECT, description="prod traffic")
    assert project.name == PROJECT
    assert project.tenant_id == world.workspace.pk

    assert trace_pipeline(client, PROJECT) == {"answer": 41}

    runs = {run.name: run for run in client.list_runs(project_name=PROJECT)}
    assert set(runs) == {"answer", "lookup"}
    parent, child = runs["answer"], runs["lookup"]
    assert parent.parent_run_id is None
    assert child.parent_run_id == parent.id
    assert parent.trace_id == child.trace_id == parent.id
    assert child.dotted_order.startswith(parent.dotted_order + ".")
    assert parent.session_id == child.session_id == project.id
    assert (parent.run_type, child.run_type) == ("chain", "tool")
    assert parent.inputs == {"question": "What is 20 doubled, plus one?", "x": 20}
    assert child.inputs == {"x": 20}
    assert parent.outputs == {"answer": 41}
    assert child.outputs == {"doubled": 40}
    assert parent.error is None and child.error is None
    assert parent.end_time is not None and child.end_time is not None
    assert parent.status == child.status == "success"

    # The query filters the SDK offers: roots only, children of a run, one trace, one run.
    assert [r.id for r in client.list_runs(project_name=PROJECT, is_root=True)] == [parent.id]
    children = client.list_runs(project_name=PROJECT, parent_run_id=parent.id)
    assert [r.id for r in children] == [child.id]
    assert {r.id for r in client.list_runs(trace_id=parent.id)} == {parent.id, child.id}
    assert client.read_run(child.id).parent_run_id == parent.id

    # An exception inside a traced function is the run's error.
    trace_failure(client, PROJECT)
    (failed,) = client.list_runs(project_name=PROJECT, error=True)
    assert failed.name == "explode"
    assert failed.inputs == {"x": 7}
    assert "ValueError" in failed.error and "boom at 7" in failed.error
    assert failed.status == "error"
    assert failed.end_time is not None
    assert failed.parent_run_id is None and failed.trace_id == failed.id
    ok = client.list_runs(project_name=PROJECT, error=False)
    assert {r.id for r in ok} == {parent.id, child.id}

    # Stored in this workspace, in this project, nowhere else.
    stored = Run.objects.filter(id__in=[parent.id, child.id, failed.id])
    assert {(r.workspace_id, r.project_id) for r in stored} == {(world.workspace.pk, project.id)}
    assert Run.objects.count() == 3
    return {**runs, "explode": failed}


def check_datasets(world, client):
    """Create a dataset and examples, in bulk and one at a time, and read them back."""
    dataset = client.create_dataset("faq", description="frequent questions")
    assert (dataset.name, dataset.description) == ("faq", "frequent questions")
    client.create_examples(
        dataset_id=dataset.id,
        examples=[
            {"inputs": {"q": "hours?"}, "outputs": {"a": "9-5"}},
            {"inputs": {"q": "refunds?"}, "outputs": {"a": "30 days"}, "metadata": {"src": "kb"}},
        ],
    )
    single = client.create_example(
        dataset_id=dataset.id, inputs={"q": "phone?"}, outputs={"a": "555-0100"}
    )
    assert single.dataset_id == dataset.id
    assert single.inputs == {"q": "phone?"}

    examples = list(client.list_examples(dataset_id=dataset.id))
    assert len(examples) == 3
    assert sorted((e.inputs["q"], e.outputs["a"]) for e in examples) == [
        ("hours?", "9-5"),
        ("phone?", "555-0100"),
        ("refunds?", "30 days"),
    ]
    assert {e.dataset_id for e in examples} == {dataset.id}
    assert single.id in {e.id for e in examples}
    assert [e.metadata for e in examples if e.inputs["q"] == "refunds?"] == [{"src": "kb"}]

    read = client.read_dataset(dataset_name="faq")
    assert read.id == dataset.id
    assert read.example_count == 3
    assert client.read_dataset(dataset_id=dataset.id).name == "faq"

    assert Dataset.objects.get(pk=dataset.id).workspace == world.workspace
    assert Example.objects.filter(workspace=world.workspace, dataset_id=dataset.id).count() == 3


def check_feedback_and_queues(world, client, runs):
    """Feedback on a traced run, the project read by name, and an annotation queue."""
    parent, child = runs["answer"], runs["lookup"]
    client.create_feedback(
        run_id=child.id,
        trace_id=child.trace_id,
        session_id=child.session_id,
        key="correctness",
        score=1,
        comment="right",
    )
    (feedback,) = client.list_feedback(run_ids=[child.id])
    assert (feedback.run_id, feedback.key, feedback.score) == (child.id, "correctness", 1)
    assert feedback.comment == "right"
    assert feedback.session_id == child.session_id
    assert list(client.list_feedback(run_ids=[parent.id])) == []
    assert Feedback.objects.get(pk=feedback.id).workspace == world.workspace

    project = client.read_project(project_name=PROJECT)
    assert project.id == child.session_id
    assert project.run_count == 3

    queue = client.create_annotation_queue(name="needs review", description="low scores")
    assert (queue.name, queue.description) == ("needs review", "low scores")
    client.add_runs_to_annotation_queue(queue.id, run_ids=[child.id, runs["explode"].id])
    queued = list(client.list_runs_from_annotation_queue(queue.id))
    assert {(r.id, r.name, r.parent_run_id) for r in queued} == {
        (child.id, "lookup", parent.id),
        (runs["explode"].id, "explode", None),
    }
    assert len(queued) == 2
    assert AnnotationQueue.objects.get(pk=queue.id).workspace == world.workspace


# Both URL forms with the service key, a personal access token once, and both tracing
# transports (POST /runs/batch; POST /runs + PATCH /runs/{id}).
@pytest.mark.parametrize(
    ("credential", "prefix", "batching"),
    [
        pytest.param("service_key", "", True, id="service_key-root-batched"),
        pytest.param("service_key", API_V1, False, id="service_key-api_v1-sync"),
        pytest.param("pat", API_V1, True, id="pat-api_v1-batched"),
    ],
)
def test_editor_traces_builds_a_dataset_gives_feedback_and_queues_runs(
    world, sdk, credential, prefix, batching
):
    client = editor_client(world, sdk, credential, prefix, batching)
    runs = check_tracing(world, client)
    check_datasets(world, client)
    check_feedback_and_queues(world, client, runs)


def test_list_examples_by_split(world, sdk):
    # Apart from the workflow above: a failure here must not hide everything after it.
    client = sdk(service_key_for(world.workspace, "Editor"))
    dataset = client.create_dataset("faq")
    client.create_examples(
        dataset_id=dataset.id,
        examples=[
            {"inputs": {"q": "hours?"}, "split": "train"},
            {"inputs": {"q": "refunds?"}, "split": "test"},
            {"inputs": {"q": "phone?"}, "split": ["train", "test"]},
            {"inputs": {"q": "address?"}},  # the "base" split
        ],
    )

    def questions(splits):
        found = client.list_examples(dataset_id=dataset.id, splits=splits)
        return sorted(e.inputs["q"] for e in found)

    assert questions(["test"]) == ["phone?", "refunds?"]
    assert questions(["train"]) == ["hours?", "phone?"]
    assert questions(["base"]) == ["address?"]
    assert questions(["test", "base"]) == ["address?", "phone?", "refunds?"]


# (2) A Viewer reads but writes nothing.


@pytest.fixture
def acme_data(world, sdk):
    """What an Editor of Acme/production wrote through the SDK: a trace, a dataset, feedback."""
    client = sdk(service_key_for(world.workspace, "Editor"))
    project = client.create_project(PROJECT)
    trace_pipeline(client, PROJECT)
    runs = {run.name: run for run in client.list_runs(project_name=PROJECT)}
    assert set(runs) == {"answer", "lookup"}
    dataset = client.create_dataset("faq")
    client.create_examples(
        dataset_id=dataset.id,
        examples=[{"inputs": {"q": "hours?"}, "outputs": {"a": "9-5"}}],
    )
    client.create_example(dataset_id=dataset.id, inputs={"q": "phone?"}, outputs={"a": "555"})
    feedback = client.create_feedback(
        run_id=runs["answer"].id,
        trace_id=runs["answer"].trace_id,
        session_id=project.id,
        key="helpful",
        score=0.5,
    )
    return {
        "editor": client,
        "project": project,
        "runs": runs,
        "dataset": dataset,
        "feedback": feedback,
    }


def test_viewer_reads_the_editors_data_but_cannot_create_a_dataset(world, sdk, acme_data):
    viewer = sdk(service_key_for(world.workspace, "Viewer"), prefix=API_V1)
    dataset, runs = acme_data["dataset"], acme_data["runs"]

    examples = viewer.list_examples(dataset_id=dataset.id)
    assert sorted((e.inputs["q"], e.outputs["a"]) for e in examples) == [
        ("hours?", "9-5"),
        ("phone?", "555"),
    ]
    assert viewer.read_dataset(dataset_name="faq").id == dataset.id
    assert viewer.read_project(project_name=PROJECT).id == acme_data["project"].id
    viewed = {r.name: r for r in viewer.list_runs(project_name=PROJECT)}
    assert {name: r.id for name, r in viewed.items()} == {n: r.id for n, r in runs.items()}
    assert viewed["lookup"].parent_run_id == runs["answer"].id
    assert viewed["lookup"].outputs == {"doubled": 40}
    assert [f.id for f in viewer.list_feedback(run_ids=[runs["answer"].id])] == [
        acme_data["feedback"].id
    ]

    with pytest.raises(LangSmithError) as denied:
        viewer.create_dataset("viewer's dataset")
    message = str(denied.value)
    assert "403" in message
    assert "datasets:create" in message
    assert "Viewer" in message
    assert not Dataset.objects.filter(name="viewer's dataset").exists()

    with pytest.raises(LangSmithError, match="datasets:update"):
        viewer.create_example(dataset_id=dataset.id, inputs={"q": "sneaky?"})
    assert Example.objects.filter(dataset_id=dataset.id).count() == 2


def test_tracing_with_a_viewer_key_writes_no_runs(world, sdk, caplog):
    viewer_key = service_key_for(world.workspace, "Viewer")
    batched = sdk(viewer_key, batching=True)  # POST /runs/batch
    direct = sdk(viewer_key, prefix=API_V1, batching=False)  # POST /api/v1/runs + PATCH

    with caplog.at_level(logging.WARNING, logger="langsmith"):
        # The SDK swallows the refusal (tracing must never break the application) ...
        assert trace_pipeline(batched, "viewer-project") == {"answer": 41}
        assert trace_pipeline(direct, "viewer-project") == {"answer": 41}
    # ... but it did send the runs, and got our explanatory 403 for them.
    refusals = [r.getMessage() for r in caplog.records if "runs:create" in r.getMessage()]
    assert any("/runs/batch" in m for m in refusals), [r.getMessage() for r in caplog.records]
    assert any("/api/v1/runs" in m for m in refusals), [r.getMessage() for r in caplog.records]
    assert all("403" in m and "Viewer" in m for m in refusals)

    assert not Run.objects.exists()
    assert not Project.objects.filter(name="viewer-project").exists()
    with pytest.raises(LangSmithNotFoundError):
        batched.read_project(project_name="viewer-project")

    # The same trace with an Editor key of the same workspace is written: nothing above was
    # the tracing setup failing to send.
    editor = sdk(service_key_for(world.workspace, "Editor"), batching=True)
    trace_pipeline(editor, "viewer-project")
    assert Run.objects.filter(workspace=world.workspace).count() == 2
    assert {r.name for r in editor.list_runs(project_name="viewer-project")} == {"answer", "lookup"}


# (3) Another organization's key sees none of Acme's data and cannot touch it.


@pytest.fixture
def globex(world, sdk):
    """An Admin key of Globex, which already has a dataset and a project of its own."""
    client = sdk(service_key_for(world.other_workspace_of_other_org, "Admin"))
    client.create_dataset("globex faq")
    client.create_project("globex project")
    return client


def test_another_organizations_key_sees_nothing_of_acme(world, acme_data, globex):
    dataset, run, project = acme_data["dataset"], acme_data["runs"]["answer"], acme_data["project"]

    # Its own data is there, so "empty" below is not "this key sees nothing at all".
    assert [d.name for d in globex.list_datasets()] == ["globex faq"]
    assert [p.name for p in globex.list_projects()] == ["globex project"]

    with pytest.raises(LangSmithNotFoundError):
        globex.read_dataset(dataset_id=dataset.id)
    with pytest.raises(LangSmithNotFoundError):
        globex.read_dataset(dataset_name="faq")
    with pytest.raises(LangSmithNotFoundError):
        globex.read_project(project_name=PROJECT)
    with pytest.raises(LangSmithNotFoundError):
        globex.read_project(project_id=project.id)
    with pytest.raises(LangSmithNotFoundError):
        globex.read_run(run.id)
    assert list(globex.list_examples(dataset_id=dataset.id)) == []
    assert list(globex.list_runs(run_ids=[run.id])) == []
    assert list(globex.list_runs(trace_id=run.trace_id)) == []
    assert list(globex.list_feedback(run_ids=[run.id])) == []

    # Feedback naming Acme's run and Acme's project, as someone who guessed the ids would send
    # it, is Globex's own and changes nothing of Acme's.
    acme_feedback = list(Feedback.objects.filter(workspace=world.workspace).values().order_by("id"))
    assert len(acme_feedback) == 1
    made = globex.create_feedback(
        run_id=run.id, trace_id=run.trace_id, session_id=project.id, key="sabotage", score=0
    )
    stored = Feedback.objects.get(pk=made.id)
    assert stored.workspace == world.other_workspace_of_other_org
    assert stored.project is None  # neither Acme's project nor the run's was attached
    assert (
        list(Feedback.objects.filter(workspace=world.workspace).values().order_by("id"))
        == acme_feedback
    )
    editor = acme_data["editor"]
    assert [f.key for f in editor.list_feedback(run_ids=[run.id])] == ["helpful"]
    assert [f.key for f in globex.list_feedback(run_ids=[run.id])] == ["sabotage"]

    # And Acme, in turn, sees none of Globex's.
    assert [d.name for d in editor.list_datasets()] == ["faq"]
    assert [p.name for p in editor.list_projects()] == [PROJECT]


def test_another_organization_cannot_add_examples_to_acmes_dataset(world, acme_data, globex):
    dataset = acme_data["dataset"]
    with pytest.raises(LangSmithNotFoundError):
        globex.create_example(dataset_id=dataset.id, inputs={"q": "injected?"})
    with pytest.raises(LangSmithNotFoundError):
        globex.create_examples(dataset_id=dataset.id, examples=[{"inputs": {"q": "bulk?"}}])
    assert Example.objects.filter(dataset_id=dataset.id).count() == 2
    assert not Example.objects.filter(workspace=world.other_workspace_of_other_org).exists()


def test_another_organization_cannot_queue_acmes_runs(world, acme_data, globex):
    queue = globex.create_annotation_queue(name="globex queue")
    with pytest.raises(LangSmithNotFoundError):
        globex.add_runs_to_annotation_queue(queue.id, run_ids=[acme_data["runs"]["answer"].id])
    assert not QueuedRun.objects.exists()
    assert list(globex.list_runs_from_annotation_queue(queue.id)) == []


# (4) An org-scoped key needs the workspace.


def test_an_org_scoped_key_needs_a_workspace_id(world, sdk):
    key = service_key_for(world.workspace, "Editor", org_scoped=True)

    without = sdk(key)
    # The SDK knows the 403's code (org_scoped_key_requires_workspace) and says what to set.
    with pytest.raises(LangSmithUserError, match="requires workspace specification") as refused:
        list(without.list_datasets())
    assert "LANGSMITH_WORKSPACE_ID" in str(refused.value)
    with pytest.raises(LangSmithUserError, match="workspace_id"):
        without.create_dataset("nowhere")
    assert not Dataset.objects.exists()

    with_workspace = sdk(key, prefix=API_V1, workspace_id=str(world.workspace.pk))
    created = with_workspace.create_dataset("scoped")
    assert [d.id for d in with_workspace.list_datasets()] == [created.id]
    assert Dataset.objects.get(pk=created.id).workspace == world.workspace

    # The same key acts in the organization's other workspace when it names it ...
    staging = sdk(key, workspace_id=str(world.other_workspace.pk))
    assert list(staging.list_datasets()) == []
    staging.create_project("staging project")
    assert Project.objects.get(name="staging project").workspace == world.other_workspace

    # ... but not in another organization's.
    elsewhere = sdk(key, workspace_id=str(world.other_workspace_of_other_org.pk))
    with pytest.raises(LangSmithError, match="workspace_not_accessible"):
        list(elsewhere.list_datasets())
    with pytest.raises(LangSmithError, match="workspace_not_accessible"):
        elsewhere.create_dataset("smuggled")
    assert not Dataset.objects.filter(workspace=world.other_workspace_of_other_org).exists()
