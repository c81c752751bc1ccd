"""The LangSmith-compatible resource endpoints (issue 5): who may call what, tenancy, validation.

Like tests/api/test_endpoints.py, the expectations are derived, not listed: a table of endpoints
with the permission each declares (checked against the code's declarations), the principals of
tests/factories.py with the permissions they should hold (checked against GET /auth/whoami), and
one rule turning the two into a status and an error body. Database snapshots, grouped by
workspace, prove that refused requests change nothing and that accepted writes land in the
caller's workspace and nowhere else.
"""

import copy
import dataclasses
import datetime
import json
import re
import uuid
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from django.db import connection, transaction
from django.db.models import F
from django.test.utils import CaptureQueriesContext, override_settings
from django.utils import timezone

from accesscontrol.resources import models
from tests.factories import PRINCIPALS as ALL_PRINCIPALS
from tests.factories import WS, Caller, PrincipalSpec, build_world, make_caller, service_key_for
from tests.support.api import api_call

V1 = "/api/v1"
RESOURCES_MODULE = "accesscontrol.resources.api"
T_PAST = datetime.datetime(2020, 1, 1, tzinfo=datetime.UTC)

# The callers of tests/factories.py that act in a workspace (the org-scoped keys and the org
# admin are left to tests/api/test_endpoints.py).
PRINCIPALS = [
    spec for spec in ALL_PRINCIPALS if spec.kind != "sk_org" and spec.persona != "org_admin"
]


def body_of(resp):
    return resp.json() if resp.content else None


# ---------------------------------------------------------------------------------------------
# Each workspace's resources, made with the ORM, and the database state grouped by workspace.


@dataclass
class Seed:
    workspace: Any
    tag: str
    project: models.Project
    root: models.Run  # queued in `queue`, has `feedback`
    child: models.Run
    spare: models.Run  # in no queue
    dataset: models.Dataset
    example: models.Example
    feedback: models.Feedback
    queue: models.AnnotationQueue
    prompt: models.Prompt
    commit: models.PromptCommit
    new: dict = field(default_factory=dict)  # ids a request may choose for what it creates

    def ids(self) -> dict:
        return {
            "session_id": self.project.pk,
            "run_id": self.root.pk,
            "dataset_id": self.dataset.pk,
            "example_id": self.example.pk,
            "feedback_id": self.feedback.pk,
            "queue_id": self.queue.pk,
            "prompt_id": self.prompt.pk,
            "index": 0,
        }

    def fresh(self) -> "Seed":
        """A copy whose model instances a test may refresh or change without the next seeing."""
        copied = {f.name: copy.copy(getattr(self, f.name)) for f in dataclasses.fields(self)}
        return Seed(**{**copied, "workspace": self.workspace, "new": dict(self.new)})

    def all_ids(self) -> list[str]:
        objects = [self.project, self.root, self.child, self.spare, self.dataset, self.example]
        objects += [self.feedback, self.queue, self.prompt, self.commit]
        return [str(o.pk) for o in objects]


def seed(workspace, tag) -> Seed:
    now = timezone.now()
    project = models.Project.objects.create(
        workspace=workspace, name=f"{tag} project", description=f"{tag} description"
    )

    def run(name, parent=None):
        run_id = uuid.uuid4()
        return models.Run.objects.create(
            id=run_id,
            workspace=workspace,
            project=project,
            trace_id=parent.trace_id if parent else run_id,
            parent_run_id=parent.pk if parent else None,
            name=f"{tag} {name}",
            run_type="chain",
            inputs={"question": tag},
            outputs={"answer": tag},
            start_time=now,
            end_time=now,
            tags=[tag],
            extra={"metadata": {"tag": tag}},
        )

    root = run("root")
    child = run("child", parent=root)
    spare = run("spare")
    dataset = models.Dataset.objects.create(workspace=workspace, name=f"{tag} dataset")
    example = models.Example.objects.create(
        workspace=workspace, dataset=dataset, inputs={"q": tag}, outputs={"a": tag}, split=["train"]
    )
    feedback = models.Feedback.objects.create(
        workspace=workspace,
        run_id=root.pk,
        trace_id=root.trace_id,
        project=project,
        key=f"{tag} correctness",
        score=1.0,
    )
    queue = models.AnnotationQueue.objects.create(workspace=workspace, name=f"{tag} queue")
    models.QueuedRun.objects.create(queue=queue, run=root)
    prompt = models.Prompt.objects.create(workspace=workspace, name=f"{tag} prompt")
    commit = models.PromptCommit.objects.create(
        prompt=prompt, template=f"Hello from {tag}, {{name}}"
    )
    new = {name: uuid.uuid4() for name in ("run", "batch_run", "example", "session", "dataset")}
    return Seed(
        workspace,
        tag,
        project,
        root,
        child,
        spare,
        dataset,
        example,
        feedback,
        queue,
        prompt,
        commit,
        new,
    )


SCOPE = {
    models.Project: "workspace_id",
    models.Run: "workspace_id",
    models.Dataset: "workspace_id",
    models.Example: "workspace_id",
    models.Feedback: "workspace_id",
    models.Prompt: "workspace_id",
    models.AnnotationQueue: "workspace_id",
    models.PromptCommit: "prompt__workspace_id",
    models.QueuedRun: "queue__workspace_id",
}


_SNAPSHOT_SQL: list = []


def snapshot() -> dict:
    """{workspace id: {model: sorted rows}}: every resource row, every field.

    The ORM compiles each query once; the snapshot then runs them raw (a test takes two).
    """
    if not _SNAPSHOT_SQL:
        for model, scope in SCOPE.items():
            fields = [f.attname for f in model._meta.concrete_fields]
            query = model.objects.values(*fields, scope_ws=F(scope)).order_by().query
            _SNAPSHOT_SQL.append((model.__name__, *query.sql_with_params()))
    state = defaultdict(lambda: defaultdict(list))
    with connection.cursor() as cursor:
        for name, sql, params in _SNAPSHOT_SQL:
            cursor.execute(sql, params)
            columns = [c[0] for c in cursor.description]
            at = columns.index("scope_ws")
            for row in cursor.fetchall():
                workspace = uuid.UUID(str(row[at]))
                state[workspace][name].append(repr(row[:at] + row[at + 1 :]))
    return {ws: {m: sorted(rows) for m, rows in models.items()} for ws, models in state.items()}


def assert_unchanged_except(before, after, workspace):
    """Every workspace but `workspace` is exactly as it was."""
    for ws in set(before) | set(after):
        if ws != workspace.pk:
            assert before.get(ws) == after.get(ws), f"workspace {ws} changed"


# ---------------------------------------------------------------------------------------------
# The endpoints: what each declares, a valid request, and what success must have done.


@dataclass
class Ctx:
    world: Any
    mine: Seed  # production's
    staging: Seed
    globex: Seed
    callers: dict  # principal name -> Caller, all acting in production
    keys: dict  # Admin service keys of production, staging and Globex's workspace
    caller: Caller | None = None

    @property
    def foreign(self):
        return [self.staging, self.globex]


def _no_foreign(ctx, body):
    text = json.dumps(body)
    for other in ctx.foreign:
        for value in other.all_ids():
            assert value not in text, f"{other.tag}'s {value} is visible: {text[:300]}"


def _listed(ctx, body, *objects):
    assert isinstance(body, list), body
    assert {str(o.pk) for o in objects} <= {item["id"] for item in body}, body
    _no_foreign(ctx, body)


def _in_production(ctx, obj):
    assert obj.workspace_id == ctx.world.workspace.pk


def _created(ctx, body, model):
    """The object the response names, made in production."""
    made = model.objects.get(pk=body["id"])
    _in_production(ctx, made)
    return made


# What a success must have done, for each endpoint (by its id in the table below).
CHECKS = {}


def checks(endpoint_id):
    def register(function):
        assert endpoint_id not in CHECKS, f"two checks for {endpoint_id}"
        CHECKS[endpoint_id] = function
        return function

    return register


def description_changed(name):
    """The check of a PATCH that changes the description of production's `name`."""

    def check(ctx, body):
        changed = getattr(ctx.mine, name)
        changed.refresh_from_db()
        assert changed.description == "changed by the matrix"

    return check


def lists(name):
    """The check of a listing that shows production's `name` and nothing of elsewhere."""

    def check(ctx, body):
        _listed(ctx, body, getattr(ctx.mine, name))

    return check


def reads(name, /, **fields):
    """The check of a read of production's `name`: its id, and these fields as they are."""

    def check(ctx, body):
        assert body["id"] == str(getattr(ctx.mine, name).pk)
        assert {key: body[key] for key in fields} == fields

    return check


def deletes(name, *children):
    """The check of a DELETE: production's `name` is gone, and its `children` with it."""

    def check(ctx, body):
        for attr in (name, *children):
            row = getattr(ctx.mine, attr)
            assert not type(row).objects.filter(pk=row.pk).exists(), f"{attr} still there"

    return check


checks("GET /sessions/{session_id}")(reads("project", name="mine project", run_count=3))
checks("GET /datasets/{dataset_id}")(reads("dataset", example_count=1))
checks("GET /examples/{example_id}")(reads("example", inputs={"q": "mine"}))
checks("GET /feedback/{feedback_id}")(reads("feedback", score=1.0))
checks("GET /annotation-queues/{queue_id}")(reads("queue", run_count=1))
checks("GET /datasets")(lists("dataset"))
checks("GET /feedback")(lists("feedback"))
checks("GET /annotation-queues")(lists("queue"))
checks("PATCH /datasets/{dataset_id}")(description_changed("dataset"))
checks("PATCH /annotation-queues/{queue_id}")(description_changed("queue"))
checks("PATCH /prompts/{prompt_id}")(description_changed("prompt"))
checks("DELETE /datasets/{dataset_id}")(deletes("dataset", "example"))
checks("DELETE /examples/{example_id}")(deletes("example"))
checks("DELETE /feedback/{feedback_id}")(deletes("feedback"))
checks("DELETE /prompts/{prompt_id}")(deletes("prompt", "commit"))


@checks("GET /info")
def check_info(ctx, body):
    config = body["batch_ingest_config"]
    assert config["use_multipart_endpoint"] is False
    assert {"size_limit", "scale_up_nthreads_limit", "scale_down_nempty_trigger"} <= set(config)


@checks("GET /sessions")
def check_sessions_listed(ctx, body):
    _listed(ctx, body, ctx.mine.project)
    assert {item["tenant_id"] for item in body} == {str(ctx.world.workspace.pk)}


@checks("POST /sessions")
def check_session_created(ctx, body):
    project = _created(ctx, body, models.Project)
    assert project.pk == ctx.mine.new["session"]
    assert project.name == "matrix session"
    assert body["tenant_id"] == str(ctx.world.workspace.pk)


@checks("PATCH /sessions/{session_id}")
def check_session_updated(ctx, body):
    ctx.mine.project.refresh_from_db()
    assert ctx.mine.project.description == "changed by the matrix"
    assert body["description"] == "changed by the matrix"


@checks("DELETE /sessions/{session_id}")
def check_session_deleted(ctx, body):
    assert not models.Project.objects.filter(pk=ctx.mine.project.pk).exists()
    assert not models.Run.objects.filter(project_id=ctx.mine.project.pk).exists()


@checks("POST /runs")
def check_run_created(ctx, body):
    run = models.Run.objects.get(pk=ctx.mine.new["run"])
    _in_production(ctx, run)
    assert run.project_id == ctx.mine.project.pk
    assert run.inputs == {"question": "matrix"}
    assert run.trace_id == run.pk


@checks("PATCH /runs/{run_id}")
def check_run_patched(ctx, body):
    ctx.mine.root.refresh_from_db()
    assert ctx.mine.root.outputs == {"answer": "patched"}
    assert ctx.mine.root.inputs == {"question": "mine"}
    assert ctx.mine.root.end_time == datetime.datetime(2030, 1, 1, tzinfo=datetime.UTC)


@checks("POST /runs/batch")
def check_batch_ingested(ctx, body):
    run = models.Run.objects.get(pk=ctx.mine.new["batch_run"])
    _in_production(ctx, run)
    assert run.project_id == ctx.mine.project.pk
    assert run.outputs == {"answer": "merged"}  # its own patch, in the same batch
    ctx.mine.spare.refresh_from_db()
    assert ctx.mine.spare.outputs == {"answer": "patched in batch"}


@checks("GET /runs/{run_id}")
def check_run_read(ctx, body):
    assert body["id"] == str(ctx.mine.root.pk)
    assert body["session_id"] == str(ctx.mine.project.pk)
    assert body["inputs"] == {"question": "mine"}
    assert body["status"] == "success"


@checks("POST /runs/query")
def check_runs_queried(ctx, body):
    ids = {run["id"] for run in body["runs"]}
    assert ids == {str(r.pk) for r in (ctx.mine.root, ctx.mine.child, ctx.mine.spare)}
    assert body["cursors"]["next"] is None


@checks("POST /runs/stats")
def check_run_stats(ctx, body):
    assert body["run_count"] == 3  # root, child and spare: production's, nobody else's


@checks("POST /datasets")
def check_dataset_created(ctx, body):
    dataset = _created(ctx, body, models.Dataset)
    assert dataset.pk == ctx.mine.new["dataset"]
    assert (dataset.name, dataset.data_type) == ("matrix dataset", "llm")


@checks("GET /examples")
def check_examples_listed(ctx, body):
    assert [e["id"] for e in body] == [str(ctx.mine.example.pk)]
    _no_foreign(ctx, body)


@checks("POST /examples")
def check_example_created(ctx, body):
    example = _created(ctx, body, models.Example)
    assert example.pk == ctx.mine.new["example"]
    assert example.dataset_id == ctx.mine.dataset.pk
    assert example.split == ["test"]


@checks("POST /examples/bulk")
def check_examples_bulk_created(ctx, body):
    assert isinstance(body, list) and len(body) == 2
    examples = models.Example.objects.filter(pk__in=[e["id"] for e in body])
    assert len(examples) == 2
    for example in examples:
        _in_production(ctx, example)
        assert example.dataset_id == ctx.mine.dataset.pk


@checks("PATCH /examples/{example_id}")
def check_example_updated(ctx, body):
    ctx.mine.example.refresh_from_db()
    assert ctx.mine.example.outputs == {"a": "changed"}
    assert ctx.mine.example.inputs == {"q": "mine"}


@checks("POST /feedback")
def check_feedback_created(ctx, body):
    feedback = _created(ctx, body, models.Feedback)
    assert feedback.run_id == ctx.mine.root.pk
    assert feedback.project_id == ctx.mine.project.pk
    assert (feedback.key, feedback.score) == ("matrix", 0.5)
    assert body["session_id"] == str(ctx.mine.project.pk)


@checks("PATCH /feedback/{feedback_id}")
def check_feedback_updated(ctx, body):
    ctx.mine.feedback.refresh_from_db()
    assert ctx.mine.feedback.comment == "changed by the matrix"
    assert ctx.mine.feedback.score == 1.0


@checks("POST /annotation-queues")
def check_queue_created(ctx, body):
    queue = _created(ctx, body, models.AnnotationQueue)
    assert queue.name == "matrix queue"
    assert queue.rubric_items == [{"key": "correct"}]


@checks("DELETE /annotation-queues/{queue_id}")
def check_queue_deleted(ctx, body):
    assert not models.AnnotationQueue.objects.filter(pk=ctx.mine.queue.pk).exists()
    assert models.Run.objects.filter(pk=ctx.mine.root.pk).exists()


@checks("POST /annotation-queues/{queue_id}/runs")
def check_runs_queued(ctx, body):
    queued = set(
        models.QueuedRun.objects.filter(queue=ctx.mine.queue).values_list("run_id", flat=True)
    )
    assert queued == {ctx.mine.root.pk, ctx.mine.spare.pk}
    assert body["count"] == 1


@checks("GET /annotation-queues/{queue_id}/runs")
def check_queue_runs_listed(ctx, body):
    assert [r["id"] for r in body] == [str(ctx.mine.root.pk)]


@checks("GET /annotation-queues/{queue_id}/run/{index}")
def check_queue_run_at(ctx, body):
    assert body["id"] == str(ctx.mine.root.pk)
    assert body["added_at"] is not None


@checks("DELETE /annotation-queues/{queue_id}/runs/{run_id}")
def check_queue_run_removed(ctx, body):
    assert not models.QueuedRun.objects.filter(queue=ctx.mine.queue).exists()
    assert models.Run.objects.filter(pk=ctx.mine.root.pk).exists()


@checks("GET /prompts")
def check_prompts_listed(ctx, body):
    _listed(ctx, body, ctx.mine.prompt)
    mine = next(p for p in body if p["id"] == str(ctx.mine.prompt.pk))
    assert mine["latest_commit"] == ctx.mine.commit.commit_hash


@checks("POST /prompts")
def check_prompt_created(ctx, body):
    prompt = _created(ctx, body, models.Prompt)
    assert prompt.name == "matrix prompt"
    (commit,) = prompt.commits.all()
    assert commit.template == "Hi {name}"
    assert commit.created_by == ctx.caller.label
    assert body["latest_commit"] == commit.commit_hash


@checks("GET /prompts/{prompt_id}")
def check_prompt_read(ctx, body):
    assert body["id"] == str(ctx.mine.prompt.pk)
    assert body["template"] == ctx.mine.commit.template


@checks("GET /prompts/{prompt_id}/commits")
def check_commits_listed(ctx, body):
    assert [c["id"] for c in body] == [str(ctx.mine.commit.pk)]


@checks("POST /prompts/{prompt_id}/commits")
def check_commit_created(ctx, body):
    commit = models.PromptCommit.objects.get(pk=body["id"])
    assert commit.prompt_id == ctx.mine.prompt.pk
    assert commit.template == "Bye {name}"
    assert commit.created_by == ctx.caller.label
    assert ctx.mine.prompt.commits.count() == 2


END = "2030-01-01T00:00:00+00:00"
MINUTE = datetime.timedelta(minutes=1)


@dataclass(frozen=True)
class Endpoint:
    method: str
    path: str  # as declared, with ninja's parameter names (converters dropped)
    required: str | None  # None: public
    status: int
    body: Callable[[Seed], Any] | None = None  # a valid body, for the caller's own workspace
    query: str = ""

    @property
    def id(self):
        return f"{self.method} {self.path}"

    @property
    def check(self):
        return CHECKS[self.id]

    @property
    def is_write(self):
        return self.method != "GET" and self.path not in ("/runs/query", "/runs/stats")

    @property
    def id_addressed(self):
        return "{" in self.path

    def url(self, own: Seed, ids: dict | None = None):
        return self.path.format(**(ids or own.ids())) + self.query.format(**own.ids())


# The valid bodies too long for a row of the table.


def new_run(s):
    return {
        "id": str(s.new["run"]),
        "name": "matrix run",
        "run_type": "llm",
        "session_name": s.project.name,
        "inputs": {"question": "matrix"},
    }


def run_batch(s):
    new = {
        "id": str(s.new["batch_run"]),
        "name": "batched",
        "run_type": "tool",
        "session_id": str(s.project.pk),
    }
    return {
        "post": [new],
        "patch": [
            {"id": new["id"], "outputs": {"answer": "merged"}, "end_time": END},
            {"id": str(s.spare.pk), "outputs": {"answer": "patched in batch"}},
        ],
    }


def new_example(s):
    return {
        "id": str(s.new["example"]),
        "dataset_id": str(s.dataset.pk),
        "inputs": {"q": "new"},
        "outputs": {"a": "new"},
        "split": "test",
    }


def two_examples(s):
    return [
        {"dataset_id": str(s.dataset.pk), "inputs": {"q": "one"}},
        {"dataset_id": str(s.dataset.pk), "inputs": {"q": "two"}, "split": ["train"]},
    ]


CHANGED = {"description": "changed by the matrix"}


def crud(path, resource, id_name, *, create, update=lambda s: CHANGED):
    """The five operations of a resource: the two reads need `read`, each write the permission of
    its name."""
    one = f"{path}/{{{id_name}}}"
    return [
        Endpoint("GET", path, f"{resource}:read", 200),
        Endpoint("POST", path, f"{resource}:create", 201, body=create),
        Endpoint("GET", one, f"{resource}:read", 200),
        Endpoint("PATCH", one, f"{resource}:update", 200, body=update),
        Endpoint("DELETE", one, f"{resource}:delete", 202),
    ]


ENDPOINTS = [
    Endpoint("GET", "/info", None, 200),
    *crud(
        "/sessions",  # projects
        "projects",
        "session_id",
        create=lambda s: {"name": "matrix session", "id": str(s.new["session"])},
    ),
    # Runs
    Endpoint("POST", "/runs", "runs:create", 202, body=new_run),
    Endpoint(
        "PATCH",
        "/runs/{run_id}",
        "runs:create",
        202,
        body=lambda s: {"outputs": {"answer": "patched"}, "end_time": END},
    ),
    Endpoint("POST", "/runs/batch", "runs:create", 202, body=run_batch),
    Endpoint("GET", "/runs/{run_id}", "runs:read", 200),
    Endpoint(
        "POST", "/runs/query", "runs:read", 200, body=lambda s: {"session": [str(s.project.pk)]}
    ),
    Endpoint(
        "POST", "/runs/stats", "runs:read", 200, body=lambda s: {"session": [str(s.project.pk)]}
    ),
    *crud(
        "/datasets",
        "datasets",
        "dataset_id",
        create=lambda s: {
            "name": "matrix dataset",
            "data_type": "llm",
            "id": str(s.new["dataset"]),
        },
    ),
    # Examples: within their dataset, under its permissions
    Endpoint("GET", "/examples", "datasets:read", 200, query="?dataset={dataset_id}"),
    Endpoint("POST", "/examples", "datasets:update", 201, body=new_example),
    Endpoint("POST", "/examples/bulk", "datasets:update", 201, body=two_examples),
    Endpoint("GET", "/examples/{example_id}", "datasets:read", 200),
    Endpoint(
        "PATCH",
        "/examples/{example_id}",
        "datasets:update",
        200,
        body=lambda s: {"outputs": {"a": "changed"}},
    ),
    Endpoint("DELETE", "/examples/{example_id}", "datasets:update", 202),
    *crud(
        "/feedback",
        "feedback",
        "feedback_id",
        create=lambda s: {"run_id": str(s.root.pk), "key": "matrix", "score": 0.5},
        update=lambda s: {"comment": "changed by the matrix"},
    ),
    *crud(
        "/annotation-queues",
        "annotation-queues",
        "queue_id",
        create=lambda s: {"name": "matrix queue", "rubric_items": [{"key": "correct"}]},
    ),
    # A queue's runs: managing them is updating the queue
    Endpoint(
        "POST",
        "/annotation-queues/{queue_id}/runs",
        "annotation-queues:update",
        202,
        body=lambda s: [str(s.spare.pk)],
    ),
    Endpoint("GET", "/annotation-queues/{queue_id}/runs", "annotation-queues:read", 200),
    Endpoint("GET", "/annotation-queues/{queue_id}/run/{index}", "annotation-queues:read", 200),
    Endpoint(
        "DELETE", "/annotation-queues/{queue_id}/runs/{run_id}", "annotation-queues:update", 202
    ),
    *crud(
        "/prompts",
        "prompts",
        "prompt_id",
        create=lambda s: {"name": "matrix prompt", "template": "Hi {name}"},
    ),
    # A prompt's commits: a new commit updates the prompt
    Endpoint("GET", "/prompts/{prompt_id}/commits", "prompts:read", 200),
    Endpoint(
        "POST",
        "/prompts/{prompt_id}/commits",
        "prompts:update",
        201,
        body=lambda s: {"template": "Bye {name}", "message": "second"},
    ),
]
ENDPOINT_BY_ID = {e.id: e for e in ENDPOINTS}
ID_ADDRESSED = [e for e in ENDPOINTS if e.id_addressed]


def expectation(endpoint: Endpoint, spec: PrincipalSpec):
    """(status, error) this principal must get from this endpoint, from the two tables alone."""
    if endpoint.required is None or endpoint.required in spec.perms:
        return endpoint.status, None
    return 403, "permission_denied"


@pytest.fixture(scope="module")
def shared(django_db_setup, django_db_blocker):
    """The world of tests/conftest.py, each workspace's resources and every principal's key.

    Made once per module (per xdist worker) inside a transaction rolled back at the end. Each
    test runs in pytest-django's savepoint within it, so each still starts from exactly this
    state; what takes the time (users, roles, keys) is not redone 600 times.
    """
    hashers = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    with (
        django_db_blocker.unblock(),
        override_settings(PASSWORD_HASHERS=hashers),
        transaction.atomic(),
    ):
        world = build_world()
        callers = {spec.name: make_caller(world, spec) for spec in PRINCIPALS}
        yield Ctx(
            world=world,
            mine=seed(world.workspace, "mine"),
            staging=seed(world.other_workspace, "staging"),
            globex=seed(world.other_workspace_of_other_org, "globex"),
            callers=callers,
            keys={
                "production": callers["sk:Admin"].key,
                "staging": service_key_for(world.other_workspace, "Admin"),
                "globex": service_key_for(world.other_workspace_of_other_org, "Admin"),
            },
        )
        transaction.set_rollback(True)


@pytest.fixture
def ctx(db, shared) -> Ctx:
    return dataclasses.replace(
        shared,
        mine=shared.mine.fresh(),
        staging=shared.staging.fresh(),
        globex=shared.globex.fresh(),
    )


@pytest.fixture
def world(ctx):
    """Shadows conftest's `world`: this module's world is the shared one."""
    return ctx.world


@pytest.fixture
def keys(ctx) -> dict:
    return ctx.keys


@pytest.fixture
def editor_key(ctx) -> str:
    return ctx.callers["sk:Editor"].key


def send(client, endpoint, key, own: Seed, ids=None, root=False):
    body = endpoint.body(own) if endpoint.body else None
    return api_call(client, endpoint.method, endpoint.url(own, ids), key, json=body, root=root)


# ---------------------------------------------------------------------------------------------
# The tables themselves are checked, so the matrix cannot drift from the code.


def _declared_operations() -> dict:
    from accesscontrol.api.api import operations
    from accesscontrol.rbac.gate import rule_of

    declared, mounts = {}, defaultdict(int)
    for path, method, view in operations():
        if view.__module__ != RESOURCES_MODULE:
            continue
        rule = rule_of(view)
        assert rule is not None, f"{method} {path} declares nothing"
        template = re.sub(r"\{\w+:(\w+)\}", r"{\1}", path)  # {uuidstr:run_id} -> {run_id}
        name = f"{method} {template}"
        value = (rule.kind, rule.codes)
        assert declared.setdefault(name, value) == value, f"{name}: the mounts disagree"
        mounts[name] += 1
    assert set(mounts.values()) == {2}, f"not served at both mounts: {dict(mounts)}"
    return declared


def test_endpoint_table_matches_every_declared_resource_operation():
    declared = _declared_operations()
    table = {
        e.id: ("public", ()) if e.required is None else ("permission", (e.required,))
        for e in ENDPOINTS
    }
    assert table == declared
    assert len(ENDPOINTS) == len(ENDPOINT_BY_ID) == 44
    assert set(CHECKS) == set(ENDPOINT_BY_ID), "a check for no endpoint, or an endpoint unchecked"


@pytest.mark.parametrize("spec", PRINCIPALS, ids=lambda s: s.name)
def test_whoami_states_the_expected_workspace_permissions(client, ctx, spec):
    caller = ctx.callers[spec.name]
    resp = api_call(client, "GET", "/auth/whoami", caller.key)
    assert resp.status_code == 200, resp.content
    body = resp.json()
    assert set(body["permissions"]) & WS == spec.perms & WS
    assert body["role"] == spec.role
    assert body["principal"] == caller.label
    assert body["workspace"]["id"] == str(ctx.world.workspace.pk)


# ---------------------------------------------------------------------------------------------
# (1) The matrix: every resource endpoint x every principal.


def assert_denied(resp, *, required, caller, workspace):
    """The self-explaining 403 of ARCHITECTURE §6."""
    body = resp.json()
    assert resp.status_code == 403, body
    assert body["error"] == "permission_denied", body
    assert body["required"] == required, body
    assert body["principal"] == caller.label, body
    assert body["role"] == caller.spec.role, body
    assert body["workspace"] == str(workspace.pk), body
    assert required in body["detail"], body


@pytest.mark.parametrize("spec", PRINCIPALS, ids=lambda s: s.name)
@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=lambda e: e.id)
def test_matrix(client, ctx, endpoint, spec):
    ctx.caller = caller = ctx.callers[spec.name]
    before = snapshot()
    resp = send(client, endpoint, caller.key, ctx.mine)
    status, error = expectation(endpoint, spec)
    assert resp.status_code == status, resp.content
    after = snapshot()

    if error is not None:
        assert after == before, "a refused request changed something"
        assert_denied(
            resp, required=endpoint.required, caller=caller, workspace=ctx.world.workspace
        )
        return
    endpoint.check(ctx, body_of(resp))
    if endpoint.is_write:
        production = ctx.world.workspace.pk
        assert after.get(production) != before.get(production), "a write that changed nothing"
        assert_unchanged_except(before, after, ctx.world.workspace)
    else:
        assert after == before, "a read changed something"


@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=lambda e: e.id)
def test_every_endpoint_refuses_requests_without_a_valid_key(client, ctx, endpoint):
    before = snapshot()
    for key, error in [(None, "missing_api_key"), ("not a key at all", "invalid_api_key")]:
        resp = send(client, endpoint, key, ctx.mine)
        if endpoint.required is None:  # GET /info is public
            assert resp.status_code == 200, resp.content
            continue
        assert resp.status_code == 401, (key, resp.content)
        assert resp.json()["error"] == error
    assert snapshot() == before


# ---------------------------------------------------------------------------------------------
# (2) Both mounts: the SDK calls /<path> when LANGSMITH_ENDPOINT has no /api/v1.

MOUNT_SAMPLE = [
    "GET /info",
    "GET /sessions",
    "GET /sessions/{session_id}",
    "GET /runs/{run_id}",
    "POST /runs/query",
    "GET /datasets/{dataset_id}",
    "GET /examples",
    "GET /feedback",
    "GET /annotation-queues/{queue_id}/runs",
    "GET /annotation-queues/{queue_id}/run/{index}",
    "GET /prompts/{prompt_id}/commits",
]


@pytest.mark.parametrize("endpoint_id", MOUNT_SAMPLE)
def test_both_mounts_answer_the_same(client, ctx, endpoint_id):
    endpoint = ENDPOINT_BY_ID[endpoint_id]
    key = ctx.callers["sk:Viewer"].key
    v1 = send(client, endpoint, key, ctx.mine)
    root = send(client, endpoint, key, ctx.mine, root=True)
    assert v1.status_code == root.status_code == endpoint.status, (v1.content, root.content)
    assert v1.json() == root.json()
    endpoint.check(ctx, root.json())
    if endpoint.id_addressed:  # another tenant's id: the same 404 at both
        ids = ctx.globex.ids()
        v1 = send(client, endpoint, key, ctx.mine, ids=ids)
        root = send(client, endpoint, key, ctx.mine, ids=ids, root=True)
        assert v1.status_code == root.status_code == 404, (v1.content, root.content)
        assert v1.json() == root.json() == {"error": "not_found", "detail": "Not found."}


def test_both_mounts_refuse_the_same(client, ctx):
    viewer = ctx.callers["sk:Viewer"].key
    before = snapshot()
    for method, path, key, body, status, error in [
        ("POST", "/datasets", viewer, {"name": "nope"}, 403, "permission_denied"),
        ("DELETE", f"/sessions/{ctx.mine.project.pk}", viewer, None, 403, "permission_denied"),
        ("GET", "/sessions?limit=101", viewer, None, 422, "validation_error"),
        ("POST", "/runs/query", viewer, "{not json", 422, "invalid_json"),
        ("GET", "/sessions", None, None, 401, "missing_api_key"),
    ]:
        v1 = api_call(client, method, path, key, json=body)
        root = api_call(client, method, path, key, json=body, root=True)
        assert v1.status_code == root.status_code == status, (path, v1.content, root.content)
        assert v1.json()["error"] == root.json()["error"] == error
        if status == 403:
            assert v1.json() == root.json()
    assert snapshot() == before


def test_writes_at_either_mount_reach_the_same_data(client, ctx):
    key = ctx.callers["sk:Editor"].key
    created = api_call(client, "POST", "/sessions", key, json={"name": "both mounts"}, root=True)
    assert created.status_code == 201, created.content
    again = api_call(client, "POST", "/sessions", key, json={"name": "both mounts"})
    assert again.status_code == 409 and again.json()["error"] == "duplicate"
    run_id = str(uuid.uuid4())
    post = {"id": run_id, "name": "r", "run_type": "chain", "session_name": "both mounts"}
    resp = api_call(client, "POST", "/runs/batch", key, json={"post": [post]}, root=True)
    assert resp.status_code == 202, resp.content
    read = api_call(client, "GET", f"/runs/{run_id}", key)
    assert read.status_code == 200, read.content
    assert read.json()["session_id"] == created.json()["id"]
    assert models.Run.objects.get(pk=run_id).workspace_id == ctx.world.workspace.pk


# ---------------------------------------------------------------------------------------------
# (3) Tenancy: another workspace's ids are not found, both ways, and nothing changes.


def _attempts(ctx, keys):
    """(who, key, own seed, the ids it points at) for every cross-tenant direction."""
    return [
        ("production key -> staging ids", keys["production"], ctx.mine, ctx.staging),
        ("production key -> globex ids", keys["production"], ctx.mine, ctx.globex),
        ("staging key -> production ids", keys["staging"], ctx.staging, ctx.mine),
        ("globex key -> production ids", keys["globex"], ctx.globex, ctx.mine),
    ]


@pytest.mark.parametrize("endpoint", ID_ADDRESSED, ids=lambda e: e.id)
def test_ids_of_other_workspaces_are_not_found(client, ctx, keys, endpoint):
    ctx.caller = ctx.callers["sk:Admin"]
    for who, key, own, target in _attempts(ctx, keys):
        before = snapshot()
        resp = send(client, endpoint, key, own, ids=target.ids())
        if endpoint.id == "PATCH /runs/{run_id}":
            # Ingest accepts patches of runs it does not have (the SDK may patch before the
            # post lands): another tenant's run must look exactly like one that does not exist.
            unknown = send(client, endpoint, key, own, ids={**target.ids(), "run_id": uuid.uuid4()})
            assert (resp.status_code, body_of(resp)) == (unknown.status_code, body_of(unknown))
            assert resp.status_code in {202, 404}, (who, resp.content)
        else:
            assert resp.status_code == 404, (who, resp.content)
            assert resp.json()["error"] == "not_found", (who, resp.content)
            _no_foreign_text(resp, target)
        assert snapshot() == before, f"{who}: changed something"
    # The control: the same request with the caller's own ids succeeds.
    before = snapshot()
    resp = send(client, endpoint, keys["production"], ctx.mine)
    assert resp.status_code == endpoint.status, resp.content
    endpoint.check(ctx, body_of(resp))
    assert_unchanged_except(before, snapshot(), ctx.world.workspace)


def _no_foreign_text(resp, target):
    text = resp.content.decode()
    assert target.tag not in text, text


def test_a_queue_takes_no_runs_of_another_workspace(client, ctx, keys):
    before = snapshot()
    url = f"/annotation-queues/{ctx.mine.queue.pk}/runs"
    for foreign in (ctx.staging.spare.pk, ctx.globex.spare.pk):
        for payload in ([str(foreign)], [str(ctx.mine.spare.pk), str(foreign)]):
            resp = api_call(client, "POST", url, keys["production"], json=payload)
            assert resp.status_code == 404, resp.content
            assert resp.json()["error"] == "not_found"
        resp = api_call(client, "DELETE", f"{url}/{ctx.globex.root.pk}", keys["production"])
        assert resp.status_code == 404, resp.content
    assert snapshot() == before


def test_taking_a_run_out_of_a_queue_touches_the_queue_as_the_console_does(client, ctx, keys):
    """Drift fixed: the API's dequeue once left the queue's updated_at alone."""
    queue = ctx.mine.queue
    models.AnnotationQueue.objects.filter(pk=queue.pk).update(updated_at=T_PAST)
    url = f"/annotation-queues/{queue.pk}/runs/{ctx.mine.root.pk}"
    resp = api_call(client, "DELETE", url, keys["production"])
    assert resp.status_code == 202, resp.content
    queue.refresh_from_db()
    assert queue.updated_at > T_PAST
    assert not models.QueuedRun.objects.filter(queue=queue, run=ctx.mine.root).exists()


# Each listing, unfiltered and by each of its filters; then the run query, by each of its own.
FILTERS = {
    "/sessions": ["", "?name=mine%20project", "?id={session_id}"],
    "/datasets": ["", "?name=mine%20dataset"],
    "/examples": ["", "?dataset={dataset_id}", "?id={example_id}"],
    "/feedback": ["", "?run={run_id}"],
    "/annotation-queues": ["", "?ids={queue_id}"],
    "/prompts": [""],
}
RUN_QUERIES = [
    {},
    {"session": ["{session_id}"]},
    {"id": ["{run_id}"]},
    {"trace": "{run_id}"},
    {"filter": 'or(eq(id, "{run_id}"), eq(run_type, "chain"))', "tree_filter": "eq(is_root, true)"},
]
LISTINGS = [
    *[("GET", path + query, None) for path, queries in FILTERS.items() for query in queries],
    *[("POST", "/runs/query", body) for body in RUN_QUERIES],
]


@pytest.mark.parametrize("who", ["globex", "staging"])
def test_listings_of_another_tenant_show_none_of_productions_objects(client, ctx, keys, who):
    own = ctx.globex if who == "globex" else ctx.staging
    acme = [*ctx.mine.all_ids(), "mine project", "mine dataset", "mine queue", "mine prompt"]
    ids = {k: str(v) for k, v in ctx.mine.ids().items()}
    before = snapshot()
    for method, path, body in LISTINGS:
        payload = None if body is None else _fill(body, ids)
        resp = api_call(client, method, path.format(**ids), keys[who], json=payload)
        assert resp.status_code == 200, (path, resp.content)
        text = resp.content.decode()
        assert not [value for value in acme if value in text], (path, text[:300])
    # Sanity: the same key lists its own workspace's objects.
    mine = api_call(client, "GET", "/sessions", keys[who]).json()
    assert [p["id"] for p in mine] == [str(own.project.pk)]
    assert snapshot() == before


def _fill(value, ids):
    if isinstance(value, str):
        return value.format(**ids)
    if isinstance(value, list):
        return [_fill(v, ids) for v in value]
    if isinstance(value, dict):
        return {k: _fill(v, ids) for k, v in value.items()}
    return value


def test_objects_created_with_a_staging_key_stay_in_staging(client, ctx, keys):
    """Made through the API by a staging key: in staging, and invisible from production."""
    staging = keys["staging"]
    made = {
        "/sessions": api_call(client, "POST", "/sessions", staging, json={"name": "stg"}),
        "/datasets": api_call(client, "POST", "/datasets", staging, json={"name": "stg"}),
        "/annotation-queues": api_call(
            client, "POST", "/annotation-queues", staging, json={"name": "stg"}
        ),
        "/prompts": api_call(client, "POST", "/prompts", staging, json={"name": "stg"}),
    }
    for path, resp in made.items():
        assert resp.status_code == 201, (path, resp.content)
        object_id = resp.json()["id"]
        for model in (models.Project, models.Dataset, models.AnnotationQueue, models.Prompt):
            obj = model.objects.filter(pk=object_id).first()
            if obj is not None:
                assert obj.workspace_id == ctx.world.other_workspace.pk
        seen = api_call(client, "GET", f"{path}/{object_id}", keys["production"])
        assert seen.status_code == 404, seen.content
        assert object_id not in api_call(client, "GET", path, keys["production"]).content.decode()
        assert api_call(client, "GET", f"{path}/{object_id}", staging).status_code == 200


@pytest.mark.parametrize("path", ["/runs", "/runs/batch"])
@pytest.mark.parametrize("target", ["staging", "globex"])
def test_ingest_into_another_tenants_project_is_refused(client, ctx, keys, path, target):
    foreign = getattr(ctx, target).project
    good = {"id": str(uuid.uuid4()), "name": "ok", "run_type": "chain"}
    bad = {"id": str(uuid.uuid4()), "name": "x", "run_type": "chain", "session_id": str(foreign.pk)}
    payload = bad if path == "/runs" else {"post": [good, bad]}
    before = snapshot()
    resp = api_call(client, "POST", path, keys["production"], json=payload)
    assert resp.status_code in {404, 422}, resp.content
    assert resp.json()["error"] in {"not_found", "invalid", "validation_error"}
    assert snapshot() == before, "a refused ingest wrote something"
    assert not models.Run.objects.filter(pk__in=[good["id"], bad["id"]]).exists()


@pytest.mark.parametrize("path", ["/runs", "/runs/batch"])
def test_posting_a_run_id_of_another_tenant_leaves_its_run_alone(client, ctx, keys, path):
    victim = ctx.globex.root
    post = {
        "id": str(victim.pk),
        "trace_id": str(uuid.uuid4()),
        "name": "hijacked",
        "run_type": "llm",
        "session_name": "mine project",
        "inputs": {"stolen": True},
        "outputs": {"stolen": True},
        "error": "overwritten",
    }
    patch = {"id": str(victim.pk), "outputs": {"stolen": True}, "end_time": END}
    payload = post if path == "/runs" else {"post": [post], "patch": [patch]}
    before = snapshot()
    resp = api_call(client, "POST", path, keys["production"], json=payload)
    assert resp.status_code in {202, 409}, resp.content
    after = snapshot()
    assert after[victim.workspace_id] == before[victim.workspace_id], "globex's run changed"
    assert_unchanged_except(before, after, ctx.world.workspace)
    seen = api_call(client, "GET", f"/runs/{victim.pk}", keys["production"])
    assert seen.status_code == 404, seen.content
    owner = api_call(client, "GET", f"/runs/{victim.pk}", keys["globex"])
    assert owner.json()["inputs"] == {"question": "globex"}
    assert owner.json()["session_id"] == str(ctx.globex.project.pk)


@pytest.mark.parametrize("target", ["staging", "globex"])
def test_patching_another_tenants_run_changes_nothing(client, ctx, keys, target):
    victim = getattr(ctx, target).root
    patch = {"outputs": {"stolen": True}, "end_time": END, "name": "renamed", "tags": ["x"]}
    before = snapshot()
    resp = api_call(client, "PATCH", f"/runs/{victim.pk}", keys["production"], json=patch)
    assert resp.status_code in {202, 404}, resp.content
    resp = api_call(
        client,
        "POST",
        "/runs/batch",
        keys["production"],
        json={"patch": [{**patch, "id": str(victim.pk)}]},
    )
    assert resp.status_code in {202, 404}, resp.content
    assert snapshot() == before


CLIENT_CHOSEN_IDS = {  # path: (the Globex object whose id is reused, a body with that id)
    "/sessions": (lambda s: s.project, lambda i, own: {"name": "same id", "id": i}),
    "/datasets": (lambda s: s.dataset, lambda i, own: {"name": "same id", "id": i}),
    "/annotation-queues": (lambda s: s.queue, lambda i, own: {"name": "same id", "id": i}),
    "/feedback": (lambda s: s.feedback, lambda i, own: {"key": "same id", "id": i}),
    "/examples": (
        lambda s: s.example,
        lambda i, own: {"id": i, "dataset_id": str(own.dataset.pk), "inputs": {"q": "same id"}},
    ),
}


@pytest.mark.parametrize("path", CLIENT_CHOSEN_IDS)
def test_creating_with_an_id_another_tenant_uses_is_a_409_that_changes_nothing(
    client, ctx, keys, path
):
    """Ids are chosen by the client: one taken elsewhere is a conflict, never a 500."""
    client.raise_request_exception = False  # a 500 is reported as a status, not a traceback
    victim, body = CLIENT_CHOSEN_IDS[path]
    payload = body(str(victim(ctx.globex).pk), ctx.mine)
    before = snapshot()
    resp = api_call(client, "POST", path, keys["production"], json=payload)
    assert resp.status_code == 409, resp.content
    assert resp.json()["error"] == "duplicate"
    assert snapshot() == before


@pytest.mark.parametrize("target", ["staging", "globex"])
def test_feedback_never_links_to_another_tenants_run_or_project(client, ctx, keys, target):
    other = getattr(ctx, target)
    body = {"key": "k", "run_id": str(other.root.pk), "session_id": str(other.project.pk)}
    before = snapshot()
    resp = api_call(client, "POST", "/feedback", keys["production"], json=body)
    assert resp.status_code == 201, resp.content
    assert resp.json()["session_id"] is None
    feedback = models.Feedback.objects.get(pk=resp.json()["id"])
    assert feedback.workspace_id == ctx.world.workspace.pk
    assert feedback.project_id is None
    assert_unchanged_except(before, snapshot(), ctx.world.workspace)


# ---------------------------------------------------------------------------------------------
# (4) Invalid payloads: a 422 that writes nothing, never a 500.

NOT_A_UUID = "not-a-uuid"
RUN = {"name": "r", "run_type": "chain"}

INVALID = [
    # Projects
    ("POST", "/sessions", {}),
    ("POST", "/sessions", {"name": ""}),
    ("POST", "/sessions", {"name": 5}),
    ("POST", "/sessions", {"name": "x", "id": NOT_A_UUID}),
    ("POST", "/sessions", {"name": "x", "extra": "not an object"}),
    ("POST", "/sessions", "{not json"),
    ("POST", "/sessions", '{"name": "truncated'),
    ("POST", "/sessions", ["a", "list"]),
    ("PATCH", "/sessions/{session_id}", {"name": ""}),
    # Drift fixed: a name of spaces, refused in the console (and for workspaces, roles, keys).
    ("POST", "/sessions", {"name": "   "}),
    ("PATCH", "/sessions/{session_id}", {"name": " "}),
    ("PATCH", "/sessions/{session_id}", "{not json"),
    ("GET", "/sessions?limit=101", None),
    ("GET", "/sessions?limit=0", None),
    ("GET", "/sessions?offset=-1", None),
    ("GET", "/sessions?limit=ten", None),
    ("GET", f"/sessions?id={NOT_A_UUID}", None),
    # Runs
    ("POST", "/runs", {"name": "r"}),
    ("POST", "/runs", {"run_type": "chain"}),
    ("POST", "/runs", {**RUN, "name": ""}),
    ("POST", "/runs", {**RUN, "id": NOT_A_UUID}),
    ("POST", "/runs", {**RUN, "session_id": NOT_A_UUID}),
    ("POST", "/runs", {**RUN, "parent_run_id": NOT_A_UUID}),
    ("POST", "/runs", {**RUN, "inputs": "text"}),
    ("POST", "/runs", {**RUN, "start_time": "yesterday"}),
    ("POST", "/runs", {**RUN, "tags": "one"}),
    ("POST", "/runs", "{not json"),
    ("PATCH", "/runs/{run_id}", {"outputs": "text"}),
    ("PATCH", "/runs/{run_id}", {"end_time": "later"}),
    ("PATCH", "/runs/{run_id}", "{not json"),
    ("POST", "/runs/batch", {"post": {"name": "r", "run_type": "chain"}}),
    ("POST", "/runs/batch", {"post": [RUN, {"name": "no type"}]}),
    ("POST", "/runs/batch", {"post": [RUN], "patch": [{"outputs": {}}]}),
    ("POST", "/runs/batch", {"post": [RUN], "patch": [{"id": NOT_A_UUID}]}),
    ("POST", "/runs/batch", "[1, 2"),
    ("POST", "/runs/query", {"limit": 101}),
    ("POST", "/runs/query", {"limit": 0}),
    ("POST", "/runs/query", {"cursor": "abc"}),
    ("POST", "/runs/query", {"cursor": "-1"}),
    ("POST", "/runs/query", {"session": [NOT_A_UUID]}),
    ("POST", "/runs/query", {"trace": NOT_A_UUID}),
    ("POST", "/runs/query", "{not json"),
    # Datasets
    ("POST", "/datasets", {}),
    ("POST", "/datasets", {"name": "d", "data_type": "table"}),
    ("POST", "/datasets", {"name": "d", "data_type": "KV"}),
    ("POST", "/datasets", {"name": "d", "id": NOT_A_UUID}),
    ("POST", "/datasets", "{not json"),
    ("PATCH", "/datasets/{dataset_id}", {"name": ""}),
    ("POST", "/datasets", {"name": "   "}),
    ("PATCH", "/datasets/{dataset_id}", {"name": "\t"}),
    ("PATCH", "/datasets/{dataset_id}", {"metadata": "text"}),
    ("GET", "/datasets?limit=1000", None),
    ("GET", "/datasets?offset=-1", None),
    # Examples
    ("POST", "/examples", {"dataset_id": NOT_A_UUID, "inputs": {}}),
    ("POST", "/examples", {"dataset_id": "{dataset_id}"}),
    ("POST", "/examples", {"dataset_id": "{dataset_id}", "inputs": [1, 2]}),
    ("POST", "/examples", {"dataset_id": "{dataset_id}", "inputs": {}, "split": 5}),
    ("POST", "/examples", {"inputs": {"q": 1}}),
    ("POST", "/examples/bulk", {"dataset_id": "{dataset_id}", "inputs": {}}),
    ("POST", "/examples/bulk", [{"dataset_id": "{dataset_id}", "inputs": {}}, {"inputs": {}}]),
    ("POST", "/examples/bulk", "[{"),
    ("PATCH", "/examples/{example_id}", {"inputs": "text"}),
    ("GET", "/examples?offset=-5", None),
    ("GET", "/examples?limit=101", None),
    ("GET", f"/examples?dataset={NOT_A_UUID}", None),
    ("GET", f"/examples?id={NOT_A_UUID}", None),
    # Feedback
    ("POST", "/feedback", {"score": 1}),
    ("POST", "/feedback", {"key": ""}),
    ("POST", "/feedback", {"key": "   "}),  # drift fixed: refused in the console
    ("POST", "/feedback", {"key": "k", "score": "high"}),
    ("POST", "/feedback", {"key": "k", "score": "0.5"}),
    ("POST", "/feedback", {"key": "k", "score": "true"}),
    ("POST", "/feedback", {"key": "k", "score": [1]}),
    ("POST", "/feedback", {"key": "k", "run_id": NOT_A_UUID}),
    ("PATCH", "/feedback/{feedback_id}", {"score": "great"}),
    ("PATCH", "/feedback/{feedback_id}", {"score": "1"}),
    ("GET", "/feedback?limit=101", None),
    ("GET", f"/feedback?run={NOT_A_UUID}", None),
    # Annotation queues
    ("POST", "/annotation-queues", {}),
    ("POST", "/annotation-queues", {"name": ""}),
    ("POST", "/annotation-queues", {"name": "q", "rubric_items": "text"}),
    ("PATCH", "/annotation-queues/{queue_id}", {"name": ""}),
    ("POST", "/annotation-queues", {"name": "   "}),
    ("PATCH", "/annotation-queues/{queue_id}", {"name": " "}),
    ("POST", "/annotation-queues/{queue_id}/runs", [NOT_A_UUID]),
    ("POST", "/annotation-queues/{queue_id}/runs", {"run_ids": []}),
    ("GET", "/annotation-queues?limit=101", None),
    ("GET", "/annotation-queues/{queue_id}/runs?offset=-1", None),
    ("GET", "/annotation-queues/{queue_id}/run/first", None),
    # Prompts
    ("POST", "/prompts", {}),
    ("POST", "/prompts", {"name": ""}),
    ("POST", "/prompts", {"name": "p", "template": 5}),
    # Drift fixed: a blank template was refused but its prompt was kept.
    ("POST", "/prompts", {"name": "p", "template": "   "}),
    ("PATCH", "/prompts/{prompt_id}", {"name": ""}),
    ("POST", "/prompts", {"name": "   "}),
    ("PATCH", "/prompts/{prompt_id}", {"name": " "}),
    ("POST", "/prompts/{prompt_id}/commits", {}),
    ("POST", "/prompts/{prompt_id}/commits", {"template": ""}),
    ("POST", "/prompts/{prompt_id}/commits", {"template": "   "}),
    ("GET", "/prompts?offset=-1", None),
    ("GET", "/prompts/{prompt_id}/commits?limit=101", None),
]


@pytest.mark.parametrize(
    "method,path,body", INVALID, ids=[f"{m} {p} {json.dumps(b)[:60]}" for m, p, b in INVALID]
)
def test_invalid_input_is_a_422_that_writes_nothing(client, ctx, keys, method, path, body):
    ids = {k: str(v) for k, v in ctx.mine.ids().items()}
    payload = _fill(body, ids) if not isinstance(body, str) else body
    before = snapshot()
    resp = api_call(client, method, path.format(**ids), keys["production"], json=payload)
    assert resp.status_code == 422, resp.content
    data = resp.json()
    assert data["error"] in {"validation_error", "invalid", "invalid_json"}, data
    assert data["detail"], data
    assert snapshot() == before


@pytest.mark.parametrize(
    "method,path",
    [
        ("GET", "/sessions/{bad}"),
        ("PATCH", "/sessions/{bad}"),
        ("DELETE", "/datasets/{bad}"),
        ("GET", "/runs/{bad}"),
        ("PATCH", "/runs/{bad}"),
        ("DELETE", "/examples/{bad}"),
        ("PATCH", "/feedback/{bad}"),
        ("GET", "/annotation-queues/{bad}/runs"),
        ("DELETE", "/annotation-queues/{queue_id}/runs/{bad}"),
        ("POST", "/prompts/{bad}/commits"),
    ],
)
def test_a_malformed_uuid_in_the_path_is_refused_without_a_500(client, ctx, keys, method, path):
    url = path.format(bad=NOT_A_UUID, queue_id=ctx.mine.queue.pk)
    before = snapshot()
    for root in (False, True):
        resp = api_call(client, method, url, keys["production"], json={}, root=root)
        assert resp.status_code in {404, 422}, resp.content[:300]
    assert snapshot() == before


@pytest.mark.parametrize("target", ["staging", "globex"])
def test_examples_for_a_dataset_of_another_workspace_are_404_and_write_nothing(
    client, ctx, keys, target
):
    foreign = str(getattr(ctx, target).dataset.pk)
    own = str(ctx.mine.dataset.pk)
    before = snapshot()
    for path, payload in [
        ("/examples", {"dataset_id": foreign, "inputs": {"q": 1}}),
        ("/examples/bulk", [{"dataset_id": foreign, "inputs": {"q": 1}}]),
        (
            "/examples/bulk",
            [{"dataset_id": own, "inputs": {"q": 1}}, {"dataset_id": foreign, "inputs": {}}],
        ),
    ]:
        resp = api_call(client, "POST", path, keys["production"], json=payload)
        assert resp.status_code == 404, resp.content
        assert resp.json()["error"] == "not_found"
    assert snapshot() == before


# ---------------------------------------------------------------------------------------------
# (5) The semantics the SDK relies on.


def test_sessions_by_name_is_a_list_and_empty_when_none(client, ctx, editor_key):
    models.Project.objects.create(workspace=ctx.world.workspace, name="mine project 2")
    found = api_call(client, "GET", "/sessions?name=mine%20project", editor_key)
    assert found.status_code == 200
    assert [p["id"] for p in found.json()] == [str(ctx.mine.project.pk)]
    none = api_call(client, "GET", "/sessions?name=nothing%20like%20it", editor_key)
    assert (none.status_code, none.json()) == (200, [])
    other_tenant = api_call(client, "GET", "/sessions?name=globex%20project", editor_key)
    assert (other_tenant.status_code, other_tenant.json()) == (200, [])
    contains = api_call(client, "GET", "/sessions?name_contains=MINE", editor_key)
    assert {p["name"] for p in contains.json()} == {"mine project", "mine project 2"}


def test_creating_a_session_twice_is_a_409_and_upsert_returns_the_existing(client, ctx, editor_key):
    first = api_call(client, "POST", "/sessions", editor_key, json={"name": "twice"})
    assert first.status_code == 201, first.content
    before = snapshot()
    second = api_call(client, "POST", "/sessions", editor_key, json={"name": "twice"})
    assert second.status_code == 409, second.content
    assert second.json()["error"] == "duplicate"
    assert snapshot() == before
    for flag in ("True", "true"):
        upserted = api_call(
            client,
            "POST",
            f"/sessions?upsert={flag}",
            editor_key,
            json={"name": "twice", "description": "ignored"},
        )
        assert upserted.status_code == 201, upserted.content
        assert upserted.json()["id"] == first.json()["id"]
    assert snapshot() == before
    # Upsert creates when the name is new; the same name in another workspace is no conflict.
    new = api_call(client, "POST", "/sessions?upsert=true", editor_key, json={"name": "fresh"})
    assert new.status_code == 201
    assert models.Project.objects.get(pk=new.json()["id"]).workspace_id == ctx.world.workspace.pk
    same_name = api_call(client, "POST", "/sessions", editor_key, json={"name": "globex project"})
    assert same_name.status_code == 201, same_name.content


def _run(run_id, **fields):
    return {"id": str(run_id), "name": "r", "run_type": "chain", **fields}


def test_a_batch_merges_the_post_and_patch_of_the_same_run(client, ctx, editor_key):
    run_id = uuid.uuid4()
    post = _run(
        run_id,
        session_name="merged",
        inputs={"question": "q"},
        start_time="2030-01-01T00:00:00Z",
        tags=["a"],
        extra={"metadata": {"k": "v"}},
    )
    patch = {
        "id": str(run_id),
        "outputs": {"answer": "a"},
        "end_time": "2030-01-01T00:00:05Z",
        "inputs": None,
        "tags": None,
        "extra": None,
        "error": None,
    }
    # The SDK may send the patch first in the list; the order must not matter.
    resp = api_call(
        client, "POST", "/runs/batch", editor_key, json={"patch": [patch], "post": [post]}
    )
    assert resp.status_code == 202, resp.content
    body = api_call(client, "GET", f"/runs/{run_id}", editor_key).json()
    assert body["inputs"] == {"question": "q"}
    assert body["outputs"] == {"answer": "a"}
    assert body["tags"] == ["a"]
    assert body["extra"] == {"metadata": {"k": "v"}}
    assert body["end_time"].startswith("2030-01-01T00:00:05")
    assert body["status"] == "success"
    assert models.Run.objects.filter(pk=run_id).count() == 1


@pytest.mark.parametrize("via", ["PATCH /runs/{id}", "POST /runs/batch"])
def test_a_patch_with_null_fields_erases_nothing(client, ctx, editor_key, via):
    run_id = uuid.uuid4()
    post = _run(
        run_id,
        inputs={"question": "q"},
        outputs={"partial": True},
        tags=["keep"],
        extra={"metadata": {"keep": 1}},
        start_time="2030-01-01T00:00:00Z",
        error="first error",
    )
    assert api_call(client, "POST", "/runs", editor_key, json=post).status_code == 202
    nulls = {
        "name": None,
        "run_type": None,
        "inputs": None,
        "outputs": None,
        "tags": None,
        "extra": None,
        "error": None,
        "start_time": None,
        "events": None,
        "end_time": "2030-01-01T00:00:09Z",
    }
    if via == "PATCH /runs/{id}":
        resp = api_call(client, "PATCH", f"/runs/{run_id}", editor_key, json=nulls)
    else:
        resp = api_call(
            client,
            "POST",
            "/runs/batch",
            editor_key,
            json={"patch": [{**nulls, "id": str(run_id)}]},
        )
    assert resp.status_code == 202, resp.content
    body = api_call(client, "GET", f"/runs/{run_id}", editor_key).json()
    assert (body["name"], body["run_type"]) == ("r", "chain")
    assert body["inputs"] == {"question": "q"}
    assert body["outputs"] == {"partial": True}
    assert body["tags"] == ["keep"]
    assert body["extra"] == {"metadata": {"keep": 1}}
    assert body["error"] == "first error"
    assert body["start_time"].startswith("2030-01-01T00:00:00")
    assert body["end_time"].startswith("2030-01-01T00:00:09")


def test_runs_query_cursor_walks_every_run_exactly_once(client, ctx, editor_key):
    project = models.Project.objects.create(workspace=ctx.world.workspace, name="paged")
    base = datetime.datetime(2030, 1, 1, tzinfo=datetime.UTC)
    # Seven distinct start times: most runs share one with others, so the order needs its
    # tie-breaker to be stable across pages.
    posts = [
        _run(
            uuid.uuid4(), session_id=str(project.pk), start_time=(base + i % 7 * MINUTE).isoformat()
        )
        for i in range(250)
    ]
    resp = api_call(client, "POST", "/runs/batch", editor_key, json={"post": posts})
    assert resp.status_code == 202, resp.content
    seen, cursors, sizes = [], [], []
    cursor = None
    while True:
        query = {"session": [str(project.pk)], "limit": 100}
        if cursor is not None:
            query["cursor"] = cursor
        page = api_call(client, "POST", "/runs/query", editor_key, json=query)
        assert page.status_code == 200, page.content
        body = page.json()
        sizes.append(len(body["runs"]))
        seen += [r["id"] for r in body["runs"]]
        cursor = body["cursors"]["next"]
        cursors.append(cursor)
        if cursor is None or len(sizes) > 5:
            break
    assert sizes == [100, 100, 50]
    assert cursors[-1] is None and all(cursors[:-1])
    assert len(seen) == len(set(seen)) == 250
    assert set(seen) == {p["id"] for p in posts}
    starts = [models.Run.objects.get(pk=i).start_time for i in seen]
    assert starts == sorted(starts, reverse=True)


def _five_of_each(world):
    """Five more objects of every listed kind in production (plus one in staging)."""
    ws = world.workspace
    queue = models.AnnotationQueue.objects.create(workspace=ws, name="paged queue")
    prompt = models.Prompt.objects.create(workspace=ws, name="paged prompt")
    dataset = models.Dataset.objects.create(workspace=ws, name="paged dataset")
    project = models.Project.objects.create(workspace=ws, name="paged project")
    now = timezone.now()
    for i in range(5):
        models.Project.objects.create(workspace=ws, name=f"p{i}")
        models.Dataset.objects.create(workspace=ws, name=f"d{i}")
        models.Example.objects.create(workspace=ws, dataset=dataset, inputs={"i": i})
        models.Feedback.objects.create(workspace=ws, key=f"f{i}")
        models.AnnotationQueue.objects.create(workspace=ws, name=f"q{i}")
        models.Prompt.objects.create(workspace=ws, name=f"pr{i}")
        models.PromptCommit.objects.create(prompt=prompt, template=f"t{i}")
        run = models.Run.objects.create(
            workspace=ws,
            project=project,
            trace_id=uuid.uuid4(),
            name=f"r{i}",
            run_type="llm",
            start_time=now,
        )
        models.QueuedRun.objects.create(queue=queue, run=run)
    return {"queue_id": queue.pk, "prompt_id": prompt.pk, "dataset_id": dataset.pk}


LISTS = [
    ("/sessions", ""),
    ("/datasets", ""),
    ("/examples", "dataset={dataset_id}&"),
    ("/feedback", ""),
    ("/annotation-queues", ""),
    ("/prompts", ""),
    ("/annotation-queues/{queue_id}/runs", ""),
    ("/prompts/{prompt_id}/commits", ""),
]


@pytest.mark.parametrize("path,filters", LISTS, ids=[p for p, _ in LISTS])
def test_lists_page_with_limit_and_offset_and_return_bare_arrays(
    client, ctx, editor_key, path, filters
):
    ids = _five_of_each(ctx.world)
    url, filters = path.format(**ids), filters.format(**ids)
    everything = api_call(client, "GET", f"{url}?{filters}", editor_key)
    assert everything.status_code == 200, everything.content
    full = everything.json()
    assert isinstance(full, list) and len(full) >= 5
    _no_foreign(ctx, full)
    full_ids = [item["id"] for item in full]
    offsets = range(0, len(full) + 3, 2)  # the last page is past the end
    pages = []
    for offset in offsets:
        resp = api_call(client, "GET", f"{url}?{filters}limit=2&offset={offset}", editor_key)
        assert resp.status_code == 200, resp.content
        assert isinstance(resp.json(), list), resp.json()
        pages.append([item["id"] for item in resp.json()])
    assert pages == [full_ids[o : o + 2] for o in offsets], "pages overlap, skip or reorder"
    assert pages[-1] == []
    one = api_call(client, "GET", f"{url}?{filters}limit=1&offset=1", editor_key).json()
    assert [item["id"] for item in one] == [full[1]["id"]]


@pytest.mark.parametrize(
    "score,stored", [(1, 1.0), (0.25, 0.25), (0, 0.0), (True, 1.0), (False, 0.0), (None, None)]
)
def test_feedback_scores_that_are_numbers_are_stored(client, ctx, editor_key, score, stored):
    resp = api_call(client, "POST", "/feedback", editor_key, json={"key": "k", "score": score})
    assert resp.status_code == 201, resp.content
    assert models.Feedback.objects.get(pk=resp.json()["id"]).score == stored


def test_examples_bulk_without_ids_generates_them(client, ctx, editor_key):
    dataset = str(ctx.mine.dataset.pk)
    payload = [
        {"dataset_id": dataset, "inputs": {"i": i}, "outputs": {"o": i}, "metadata": {"m": i}}
        for i in range(3)
    ]
    resp = api_call(client, "POST", "/examples/bulk", editor_key, json=payload)
    assert resp.status_code == 201, resp.content
    body = resp.json()
    assert isinstance(body, list) and len(body) == 3
    ids = [uuid.UUID(item["id"]) for item in body]
    assert len(set(ids)) == 3
    assert [item["inputs"] for item in body] == [{"i": i} for i in range(3)]
    stored = {e.pk: e for e in models.Example.objects.filter(pk__in=ids)}
    assert set(stored) == set(ids)
    for i, example_id in enumerate(ids):
        example = stored[example_id]
        assert example.workspace_id == ctx.world.workspace.pk
        assert str(example.dataset_id) == dataset
        assert (example.outputs, example.metadata, example.split) == ({"o": i}, {"m": i}, ["base"])


def test_examples_filter_by_splits(client, ctx, editor_key):
    dataset = models.Dataset.objects.create(workspace=ctx.world.workspace, name="split dataset")
    splits = {"train": "train", "test": ["test"], "both": ["train", "validation"], "none": None}
    payload = [
        {"dataset_id": str(dataset.pk), "inputs": {"name": name}, "split": split}
        for name, split in splits.items()
    ]
    created = api_call(client, "POST", "/examples/bulk", editor_key, json=payload)
    assert created.status_code == 201, created.content

    def names(query):
        resp = api_call(client, "GET", f"/examples?dataset={dataset.pk}&{query}", editor_key)
        assert resp.status_code == 200, resp.content
        return sorted(e["inputs"]["name"] for e in resp.json())

    assert names("splits=train") == ["both", "train"]
    assert names("splits=train&splits=test") == ["both", "test", "train"]
    assert names("splits=validation") == ["both"]
    assert names("splits=base") == ["none"]
    assert names("splits=nope") == []
    assert names("") == ["both", "none", "test", "train"]


# ---------------------------------------------------------------------------------------------
# (6) Query budget: batch ingest is bulk, whatever the batch size (ARCHITECTURE §9).

BULK_BATCH = 500  # services.BULK_BATCH, restated: 1,000 runs are two INSERTs (or UPDATEs)
# Measured on SQLite and PostgreSQL alike, with the key's principal cached by the warm-up calls
# (no key lookup): SAVEPOINT, project lookup, 2 x INSERT, RELEASE SAVEPOINT.
POSTS_1000_QUERIES = 5
# SAVEPOINT, runs lookup, 2 x UPDATE (bulk_update), RELEASE SAVEPOINT.
PATCHES_1000_QUERIES = 5


def _posts(n, session_name):
    return [
        _run(uuid.uuid4(), session_name=session_name, inputs={"i": i}, tags=["budget"])
        for i in range(n)
    ]


def _count(client, key, payload):
    with CaptureQueriesContext(connection) as queries:
        resp = api_call(client, "POST", "/runs/batch", key, json=payload)
    assert resp.status_code == 202, resp.content
    return len(queries.captured_queries)


def test_batch_ingest_of_1000_runs_uses_a_bounded_number_of_queries(
    client, world, editor_key, django_assert_num_queries
):
    models.Project.objects.create(workspace=world.workspace, name="budget")
    # A fresh last_used_at: the key is not touched again during the measured requests.
    assert api_call(client, "GET", "/info", editor_key).status_code == 200
    assert api_call(client, "GET", "/sessions", editor_key).status_code == 200

    n100 = _count(client, editor_key, {"post": _posts(100, "budget")})
    n1000 = _count(client, editor_key, {"post": _posts(1000, "budget")})
    assert n1000 <= n100 + 2, (
        f"100 posts: {n100} queries, 1,000 posts: {n1000} queries (bulk batch {BULK_BATCH})"
    )
    assert n1000 == POSTS_1000_QUERIES, (
        f"1,000 posts took {n1000} queries (100 took {n100}); pinned {POSTS_1000_QUERIES}"
    )
    with django_assert_num_queries(POSTS_1000_QUERIES):
        resp = api_call(
            client, "POST", "/runs/batch", editor_key, json={"post": _posts(1000, "budget")}
        )
    assert resp.status_code == 202, resp.content
    assert (
        models.Run.objects.filter(workspace=world.workspace, project__name="budget").count() == 2100
    )

    # A batch that creates its project costs its two queries (insert, read back) once.
    n_new = _count(client, editor_key, {"post": _posts(1000, "brand new project")})
    assert n_new <= n1000 + 2, f"1,000 posts to a new project: {n_new} queries, else {n1000}"
    # Posts with their patches in the same batch are merged: no more queries than posts alone.
    posts = _posts(1000, "budget")
    patches = [{"id": p["id"], "outputs": {"o": 1}, "end_time": END} for p in posts]
    n_merged = _count(client, editor_key, {"post": posts, "patch": patches})
    assert n_merged == n1000, f"1,000 posts + their patches: {n_merged} queries, posts {n1000}"
    assert models.Run.objects.filter(pk=posts[-1]["id"], outputs={"o": 1}).exists()


def test_batch_of_1000_patches_uses_a_bounded_number_of_queries(
    client, world, editor_key, django_assert_num_queries
):
    project = models.Project.objects.create(workspace=world.workspace, name="budget")
    now = timezone.now()
    runs = models.Run.objects.bulk_create(
        [
            models.Run(
                workspace=world.workspace,
                project=project,
                trace_id=uuid.uuid4(),
                name=f"r{i}",
                run_type="chain",
                start_time=now,
                inputs={"i": i},
            )
            for i in range(2100)
        ]
    )
    assert api_call(client, "GET", "/sessions", editor_key).status_code == 200

    def patches(chunk, answer):
        return {
            "patch": [
                {"id": str(r.pk), "outputs": {"answer": answer}, "end_time": END} for r in chunk
            ]
        }

    n100 = _count(client, editor_key, patches(runs[:100], "a"))
    n1000 = _count(client, editor_key, patches(runs[100:1100], "b"))
    assert n1000 <= n100 + 2, (
        f"100 patches: {n100} queries, 1,000 patches: {n1000} queries (bulk batch {BULK_BATCH})"
    )
    assert n1000 == PATCHES_1000_QUERIES, (
        f"1,000 patches took {n1000} queries (100 took {n100}); pinned {PATCHES_1000_QUERIES}"
    )
    with django_assert_num_queries(PATCHES_1000_QUERIES):
        resp = api_call(client, "POST", "/runs/batch", editor_key, json=patches(runs[1100:], "c"))
    assert resp.status_code == 202, resp.content
    stored = models.Run.objects.filter(project=project)
    assert stored.filter(outputs={"answer": "c"}).count() == 1000
    assert stored.filter(outputs={"answer": "b"}).count() == 1000
    assert stored.filter(end_time__isnull=True).count() == 0
    assert stored.get(pk=runs[-1].pk).inputs == {"i": 2099}


def test_a_refused_caller_hears_the_permission_before_anything_about_its_input(client, world):
    """The gate speaks first: a Viewer key sending a bad body is told what it lacks (403),
    not what is wrong with a request it could never make (422)."""
    viewer_key = service_key_for(world.workspace, "Viewer")
    for body in ({}, {"name": 42}, {"name": "fine"}):
        response = api_call(client, "POST", "/datasets", viewer_key, json=body)
        assert response.status_code == 403, response.content
        assert response.json()["required"] == "datasets:create"
    editor_key = service_key_for(world.workspace, "Editor")
    assert api_call(client, "POST", "/datasets", editor_key, json={}).status_code == 422
