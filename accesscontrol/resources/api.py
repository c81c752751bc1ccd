"""LangSmith-compatible endpoints for a workspace's resources.

Paths, payloads and response shapes follow what the official `langsmith` SDK sends and reads
(see docs/langsmith.md). They are served under /api/v1/ and at the root paths the SDK uses when
LANGSMITH_ENDPOINT is the bare server URL. The workspace is the key's, or X-Tenant-Id.
"""

import datetime
import json
import uuid
from typing import Any

from django.db import connection
from django.db.models import Count, Q
from django.shortcuts import get_object_or_404
from ninja import Field, Query, Schema, Status
from pydantic import StrictBool, StrictFloat, StrictInt

from accesscontrol.api.router import GatedRouter
from accesscontrol.api.schemas import Body, UtcDateTime
from accesscontrol.rbac.gate import public, requires
from accesscontrol.resources import services
from accesscontrol.resources.models import (
    AnnotationQueue,
    Dataset,
    Example,
    Feedback,
    Project,
    Prompt,
    QueuedRun,
    Run,
)

router = GatedRouter(tags=["resources (LangSmith-compatible)"])

MAX_LIMIT = 100


class Page(Schema):
    limit: int = Field(MAX_LIMIT, ge=1, le=MAX_LIMIT)
    offset: int = Field(0, ge=0)


def page(qs, p: Page):
    return list(qs[p.offset : p.offset + p.limit])


def ws(request):
    return request.auth.workspace


# Server info


@router.get("/info", auth=None, summary="Server info (the SDK reads its batching config)")
@public
def info(request):
    # A complete batch_ingest_config: the SDK indexes every key, and multipart/zstd are off so
    # it sends plain JSON to /runs/batch.
    return {
        "version": "0.10.0",
        "instance_flags": {},
        "batch_ingest_config": {
            "use_multipart_endpoint": False,
            "size_limit": 100,
            "size_limit_bytes": None,
            "scale_up_nthreads_limit": 4,
            "scale_up_qsize_trigger": 1000,
            "scale_down_nempty_trigger": 4,
        },
    }


# Projects ("sessions")


class SessionOut(Schema):
    id: uuid.UUID
    tenant_id: uuid.UUID
    name: str
    description: str | None
    start_time: datetime.datetime
    end_time: datetime.datetime | None = None
    extra: dict | None
    reference_dataset_id: uuid.UUID | None
    run_count: int | None = None

    @staticmethod
    def resolve_tenant_id(p):
        return p.workspace_id


class SessionIn(Body):
    name: str = Field(min_length=1, max_length=255)
    id: uuid.UUID | None = None
    description: str | None = Field(None, max_length=10000)
    extra: dict | None = None


class SessionPatch(Body):
    name: str | None = Field(None, min_length=1, max_length=255)
    description: str | None = Field(None, max_length=10000)
    extra: dict | None = None


class SessionFilter(Page):
    name: str | None = None
    name_contains: str | None = None
    id: list[uuid.UUID] | None = None


def _projects(request):
    return Project.objects.in_workspace(ws(request)).annotate(run_count=Count("runs"))


@router.get("/sessions", response=list[SessionOut], summary="List projects")
@requires("projects:read")
def list_sessions(request, filters: Query[SessionFilter]):
    qs = _projects(request).order_by("-start_time", "id")
    if filters.name:
        qs = qs.filter(name=filters.name)
    if filters.name_contains:
        qs = qs.filter(name__icontains=filters.name_contains)
    if filters.id:
        qs = qs.filter(id__in=filters.id)
    return page(qs, filters)


@router.post("/sessions", response={201: SessionOut}, summary="Create a project")
@requires("projects:create")
def create_session(request, payload: SessionIn, upsert: bool = False):
    project = services.create_project(
        workspace=ws(request),
        name=payload.name,
        description=payload.description or "",
        extra=payload.extra,
        project_id=payload.id,
        upsert=upsert,
    )
    return Status(201, _projects(request).get(pk=project.pk))


@router.get("/sessions/{uuid:session_id}", response=SessionOut, summary="One project")
@requires("projects:read")
def read_session(request, session_id: uuid.UUID):
    return get_object_or_404(_projects(request), pk=session_id)


@router.patch("/sessions/{uuid:session_id}", response=SessionOut, summary="Change a project")
@requires("projects:update")
def update_session(request, session_id: uuid.UUID, payload: SessionPatch):
    project = get_object_or_404(Project.objects.in_workspace(ws(request)), pk=session_id)
    services.update_project(project=project, **payload.dict())
    return _projects(request).get(pk=project.pk)


@router.delete(
    "/sessions/{uuid:session_id}", response={202: None}, summary="Delete a project and its runs"
)
@requires("projects:delete")
def delete_session(request, session_id: uuid.UUID):
    get_object_or_404(Project.objects.in_workspace(ws(request)), pk=session_id).delete()
    return Status(202, None)


# Runs


class RunIn(Body):
    id: uuid.UUID = Field(default_factory=uuid.uuid4)
    trace_id: uuid.UUID | None = None
    parent_run_id: uuid.UUID | None = None
    dotted_order: str | None = Field(None, max_length=4000)
    session_name: str | None = Field(None, max_length=255)
    session_id: uuid.UUID | None = None
    name: str = Field(min_length=1, max_length=255)
    run_type: str = Field(min_length=1, max_length=32)
    inputs: dict | None = None
    outputs: dict | None = None
    error: str | None = None
    start_time: UtcDateTime | None = None
    end_time: UtcDateTime | None = None
    tags: list[str] | None = None
    extra: dict | None = None
    events: list[Any] | None = None
    reference_example_id: uuid.UUID | None = None


class RunPatch(Body):
    id: uuid.UUID
    name: str | None = Field(None, max_length=255)
    run_type: str | None = Field(None, max_length=32)
    parent_run_id: uuid.UUID | None = None
    dotted_order: str | None = Field(None, max_length=4000)
    inputs: dict | None = None
    outputs: dict | None = None
    error: str | None = None
    start_time: UtcDateTime | None = None
    end_time: UtcDateTime | None = None
    tags: list[str] | None = None
    extra: dict | None = None
    events: list[Any] | None = None
    reference_example_id: uuid.UUID | None = None


class RunPatchBody(RunPatch):
    id: uuid.UUID | None = None  # the path names the run


class RunBatch(Body):
    post: list[RunIn] | None = None
    patch: list[RunPatch] | None = None


class RunOut(Schema):
    id: uuid.UUID
    trace_id: uuid.UUID
    parent_run_id: uuid.UUID | None
    dotted_order: str
    session_id: uuid.UUID
    name: str
    run_type: str
    inputs: dict
    outputs: dict | None
    error: str | None
    start_time: datetime.datetime
    end_time: datetime.datetime | None
    tags: list[str]
    extra: dict
    events: list[Any]
    reference_example_id: uuid.UUID | None
    status: str

    @staticmethod
    def resolve_session_id(run):
        return run.project_id


@router.post("/runs", response={202: dict}, summary="Create a run")
@requires("runs:create")
def create_run(request, payload: RunIn):
    services.ingest_runs(workspace=ws(request), posts=[payload.dict()])
    return Status(202, {"message": "Run created"})


@router.patch("/runs/{uuid:run_id}", response={202: dict}, summary="Complete or change a run")
@requires("runs:create")
def update_run(request, run_id: uuid.UUID, payload: RunPatchBody):
    # Batches skip unknown runs (a patch may race its post); one run by id is a 404 like any other.
    get_object_or_404(Run.objects.in_workspace(ws(request)).only("pk"), pk=run_id)
    services.ingest_runs(workspace=ws(request), patches=[{**payload.dict(), "id": run_id}])
    return Status(202, {"message": "Run updated"})


@router.post("/runs/batch", response={202: dict}, summary="Create and complete runs in bulk")
@requires("runs:create")
def batch_runs(request, payload: RunBatch):
    result = services.ingest_runs(
        workspace=ws(request),
        posts=[r.dict() for r in payload.post or ()],
        patches=[r.dict() for r in payload.patch or ()],
    )
    return Status(202, {"message": "Runs batch ingested", **result})


@router.get("/runs/{uuid:run_id}", response=RunOut, summary="One run")
@requires("runs:read")
def read_run(request, run_id: uuid.UUID):
    return get_object_or_404(Run.objects.in_workspace(ws(request)), pk=run_id)


class RunQuery(Body):
    session: list[uuid.UUID] | None = None
    id: list[uuid.UUID] | None = None
    trace: uuid.UUID | None = None
    parent_run: uuid.UUID | None = None
    run_type: str | None = None
    is_root: bool | None = None
    error: bool | None = None
    reference_example: list[uuid.UUID] | None = None
    limit: int = Field(MAX_LIMIT, ge=1, le=MAX_LIMIT)
    cursor: str | None = Field(None, pattern=r"^\d{1,9}$")


class RunQueryOut(Schema):
    runs: list[RunOut]
    cursors: dict[str, str | None]


@router.post("/runs/query", response=RunQueryOut, summary="Query runs (cursor pagination)")
@requires("runs:read")
def query_runs(request, payload: RunQuery):
    qs = Run.objects.in_workspace(ws(request)).order_by("-start_time", "id")
    if payload.session:
        qs = qs.filter(project_id__in=payload.session)
    if payload.id:
        qs = qs.filter(id__in=payload.id)
    if payload.trace:
        qs = qs.filter(trace_id=payload.trace)
    if payload.parent_run:
        qs = qs.filter(parent_run_id=payload.parent_run)
    if payload.run_type:
        qs = qs.filter(run_type=payload.run_type)
    if payload.is_root is not None:
        qs = qs.filter(parent_run_id__isnull=payload.is_root)
    if payload.error is not None:
        qs = (
            qs.exclude(error__isnull=payload.error)
            if payload.error is False
            else qs.filter(error__isnull=False)
        )
    if payload.reference_example:
        qs = qs.filter(reference_example_id__in=payload.reference_example)
    offset = int(payload.cursor or 0)
    runs = list(qs[offset : offset + payload.limit + 1])
    more = len(runs) > payload.limit
    return {
        "runs": runs[: payload.limit],
        "cursors": {"next": str(offset + payload.limit) if more else None},
    }


# Datasets


class DatasetOut(Schema):
    id: uuid.UUID
    name: str
    description: str | None
    data_type: str | None
    created_at: datetime.datetime
    modified_at: datetime.datetime | None
    example_count: int | None = None
    metadata: dict | None
    inputs_schema_definition: dict | None
    outputs_schema_definition: dict | None
    tenant_id: uuid.UUID

    @staticmethod
    def resolve_tenant_id(d):
        return d.workspace_id


class DatasetIn(Body):
    name: str = Field(min_length=1, max_length=255)
    id: uuid.UUID | None = None
    description: str | None = Field(None, max_length=10000)
    data_type: str | None = Field("kv", pattern="^(kv|llm|chat)$")
    extra: dict | None = None
    inputs_schema_definition: dict | None = None
    outputs_schema_definition: dict | None = None


class DatasetPatch(Body):
    name: str | None = Field(None, min_length=1, max_length=255)
    description: str | None = Field(None, max_length=10000)
    metadata: dict | None = None


class DatasetFilter(Page):
    name: str | None = None
    name_contains: str | None = None
    id: list[uuid.UUID] | None = None
    data_type: str | None = None


def _datasets(request):
    return Dataset.objects.in_workspace(ws(request)).annotate(example_count=Count("examples"))


@router.get("/datasets", response=list[DatasetOut], summary="List datasets")
@requires("datasets:read")
def list_datasets(request, filters: Query[DatasetFilter]):
    qs = _datasets(request).order_by("-created_at", "id")
    if filters.name:
        qs = qs.filter(name=filters.name)
    if filters.name_contains:
        qs = qs.filter(name__icontains=filters.name_contains)
    if filters.id:
        qs = qs.filter(id__in=filters.id)
    if filters.data_type:
        qs = qs.filter(data_type=filters.data_type)
    return page(qs, filters)


@router.post("/datasets", response={201: DatasetOut}, summary="Create a dataset")
@requires("datasets:create")
def create_dataset(request, payload: DatasetIn):
    metadata = (payload.extra or {}).get("metadata")
    dataset = services.create_dataset(
        workspace=ws(request),
        name=payload.name,
        description=payload.description or "",
        data_type=payload.data_type,
        metadata=metadata,
        dataset_id=payload.id,
        inputs_schema=payload.inputs_schema_definition,
        outputs_schema=payload.outputs_schema_definition,
    )
    return Status(201, _datasets(request).get(pk=dataset.pk))


@router.get("/datasets/{uuid:dataset_id}", response=DatasetOut, summary="One dataset")
@requires("datasets:read")
def read_dataset(request, dataset_id: uuid.UUID):
    return get_object_or_404(_datasets(request), pk=dataset_id)


@router.patch("/datasets/{uuid:dataset_id}", response=DatasetOut, summary="Change a dataset")
@requires("datasets:update")
def update_dataset(request, dataset_id: uuid.UUID, payload: DatasetPatch):
    dataset = get_object_or_404(Dataset.objects.in_workspace(ws(request)), pk=dataset_id)
    services.update_dataset(dataset=dataset, **payload.dict())
    return _datasets(request).get(pk=dataset.pk)


@router.delete(
    "/datasets/{uuid:dataset_id}", response={202: None}, summary="Delete a dataset and its examples"
)
@requires("datasets:delete")
def delete_dataset(request, dataset_id: uuid.UUID):
    get_object_or_404(Dataset.objects.in_workspace(ws(request)), pk=dataset_id).delete()
    return Status(202, None)


# Examples


class ExampleOut(Schema):
    id: uuid.UUID
    dataset_id: uuid.UUID
    inputs: dict
    outputs: dict | None
    metadata: dict | None
    split: list[str] | None = None
    source_run_id: uuid.UUID | None
    created_at: datetime.datetime
    modified_at: datetime.datetime | None


class ExampleIn(Body):
    dataset_id: uuid.UUID
    id: uuid.UUID | None = None
    inputs: dict
    outputs: dict | None = None
    metadata: dict | None = None
    split: str | list[str] | None = None
    source_run_id: uuid.UUID | None = None
    created_at: UtcDateTime | None = None


class ExamplePatch(Body):
    inputs: dict | None = None
    outputs: dict | None = None
    metadata: dict | None = None
    split: str | list[str] | None = None


class ExampleFilter(Page):
    dataset: uuid.UUID | None = None
    id: list[uuid.UUID] | None = None
    splits: list[str] | None = None


@router.get("/examples", response=list[ExampleOut], summary="List examples")
@requires("datasets:read")
def list_examples(request, filters: Query[ExampleFilter]):
    qs = Example.objects.in_workspace(ws(request)).order_by("created_at", "id")
    if filters.dataset:
        qs = qs.filter(dataset_id=filters.dataset)
    if filters.id:
        qs = qs.filter(id__in=filters.id)
    if filters.splits:
        split_filter = Q()
        for split in filters.splits:
            if connection.features.supports_json_field_contains:
                split_filter |= Q(split__contains=[split])
            else:  # SQLite: match the name as a JSON string inside the stored list
                split_filter |= Q(split__icontains=json.dumps(split))
        qs = qs.filter(split_filter)
    return page(qs, filters)


@router.post("/examples", response={201: ExampleOut}, summary="Create an example")
@requires("datasets:update")
def create_example(request, payload: ExampleIn):
    (example,) = services.create_examples(workspace=ws(request), examples=[payload.dict()])
    return Status(201, example)


@router.post("/examples/bulk", response={201: list[ExampleOut]}, summary="Create many examples")
@requires("datasets:update")
def create_examples(request, payload: list[ExampleIn]):
    return Status(
        201, services.create_examples(workspace=ws(request), examples=[e.dict() for e in payload])
    )


@router.get("/examples/{uuid:example_id}", response=ExampleOut, summary="One example")
@requires("datasets:read")
def read_example(request, example_id: uuid.UUID):
    return get_object_or_404(Example.objects.in_workspace(ws(request)), pk=example_id)


@router.patch("/examples/{uuid:example_id}", response=ExampleOut, summary="Change an example")
@requires("datasets:update")
def update_example(request, example_id: uuid.UUID, payload: ExamplePatch):
    example = get_object_or_404(Example.objects.in_workspace(ws(request)), pk=example_id)
    return services.update_example(example=example, **payload.dict())


@router.delete("/examples/{uuid:example_id}", response={202: None}, summary="Delete an example")
@requires("datasets:update")
def delete_example(request, example_id: uuid.UUID):
    get_object_or_404(Example.objects.in_workspace(ws(request)), pk=example_id).delete()
    return Status(202, None)


# Feedback


class FeedbackOut(Schema):
    id: uuid.UUID
    run_id: uuid.UUID | None
    trace_id: uuid.UUID | None
    session_id: uuid.UUID | None
    key: str
    score: float | None
    value: Any = None
    comment: str | None
    correction: Any = None
    feedback_source: dict | None
    created_at: datetime.datetime
    modified_at: datetime.datetime

    @staticmethod
    def resolve_session_id(f):
        return f.project_id


class FeedbackIn(Body):
    key: str = Field(min_length=1, max_length=255)
    id: uuid.UUID | None = None
    run_id: uuid.UUID | None = None
    trace_id: uuid.UUID | None = None
    session_id: uuid.UUID | None = None
    score: StrictBool | StrictInt | StrictFloat | None = None  # as strict as the SDK
    value: Any = None
    comment: str | None = Field(None, max_length=10000)
    correction: Any = None
    feedback_source: dict | None = None


class FeedbackPatch(Body):
    score: StrictBool | StrictInt | StrictFloat | None = None  # as strict as the SDK
    value: Any = None
    comment: str | None = Field(None, max_length=10000)
    correction: Any = None


class FeedbackFilter(Page):
    run: list[uuid.UUID] | None = None
    key: list[str] | None = None


@router.post("/feedback", response={201: FeedbackOut}, summary="Add feedback to a run")
@requires("feedback:create")
def create_feedback(request, payload: FeedbackIn):
    workspace = ws(request)
    run_id = payload.run_id or payload.trace_id
    project_id = payload.session_id
    if (
        project_id is not None
        and not Project.objects.in_workspace(workspace).filter(pk=project_id).exists()
    ):
        project_id = None
    if project_id is None and run_id is not None:
        project_id = (
            Run.objects.in_workspace(workspace)
            .filter(pk=run_id)
            .values_list("project_id", flat=True)
            .first()
        )
    feedback = services.record_feedback(
        workspace=workspace,
        run_id=run_id,
        trace_id=payload.trace_id or run_id,
        project_id=project_id,
        key=payload.key,
        score=None if payload.score is None else float(payload.score),
        value=payload.value,
        comment=payload.comment,
        correction=payload.correction,
        source=payload.feedback_source,
        feedback_id=payload.id,
    )
    return Status(201, feedback)


@router.get("/feedback", response=list[FeedbackOut], summary="List feedback")
@requires("feedback:read")
def list_feedback(request, filters: Query[FeedbackFilter]):
    qs = Feedback.objects.in_workspace(ws(request)).order_by("-created_at", "id")
    if filters.run:
        qs = qs.filter(run_id__in=filters.run)
    if filters.key:
        qs = qs.filter(key__in=filters.key)
    return page(qs, filters)


@router.get("/feedback/{uuid:feedback_id}", response=FeedbackOut, summary="One piece of feedback")
@requires("feedback:read")
def read_feedback(request, feedback_id: uuid.UUID):
    return get_object_or_404(Feedback.objects.in_workspace(ws(request)), pk=feedback_id)


@router.patch("/feedback/{uuid:feedback_id}", response=FeedbackOut, summary="Change feedback")
@requires("feedback:update")
def update_feedback(request, feedback_id: uuid.UUID, payload: FeedbackPatch):
    feedback = get_object_or_404(Feedback.objects.in_workspace(ws(request)), pk=feedback_id)
    for field, value in payload.dict(exclude_unset=True).items():
        if field == "score" and value is not None:
            value = float(value)
        if field == "comment":
            value = value or ""
        setattr(feedback, field, value)
    feedback.save()
    return feedback


@router.delete("/feedback/{uuid:feedback_id}", response={202: None}, summary="Delete feedback")
@requires("feedback:delete")
def delete_feedback(request, feedback_id: uuid.UUID):
    get_object_or_404(Feedback.objects.in_workspace(ws(request)), pk=feedback_id).delete()
    return Status(202, None)


# Annotation queues


class QueueOut(Schema):
    id: uuid.UUID
    tenant_id: uuid.UUID
    name: str
    description: str | None
    rubric_instructions: str | None
    rubric_items: list[Any] | None
    created_at: datetime.datetime
    updated_at: datetime.datetime
    run_count: int | None = None

    @staticmethod
    def resolve_tenant_id(q):
        return q.workspace_id


class QueueIn(Body):
    name: str = Field(min_length=1, max_length=255)
    id: uuid.UUID | None = None
    description: str | None = Field(None, max_length=10000)
    rubric_instructions: str | None = Field(None, max_length=10000)
    rubric_items: list[Any] | None = None


class QueuePatch(Body):
    name: str | None = Field(None, min_length=1, max_length=255)
    description: str | None = Field(None, max_length=10000)
    rubric_instructions: str | None = Field(None, max_length=10000)
    rubric_items: list[Any] | None = None


class QueueFilter(Page):
    ids: list[uuid.UUID] | None = None
    name: str | None = None
    name_contains: str | None = None


class QueuedRunOut(RunOut):
    added_at: datetime.datetime | None = None
    last_reviewed_time: datetime.datetime | None = None


def _queues(request):
    return AnnotationQueue.objects.in_workspace(ws(request)).annotate(run_count=Count("items"))


def _queue(request, queue_id):
    return get_object_or_404(AnnotationQueue.objects.in_workspace(ws(request)), pk=queue_id)


@router.get("/annotation-queues", response=list[QueueOut], summary="List annotation queues")
@requires("annotation-queues:read")
def list_queues(request, filters: Query[QueueFilter]):
    qs = _queues(request).order_by("-created_at", "id")
    if filters.ids:
        qs = qs.filter(id__in=filters.ids)
    if filters.name:
        qs = qs.filter(name=filters.name)
    if filters.name_contains:
        qs = qs.filter(name__icontains=filters.name_contains)
    return page(qs, filters)


@router.post("/annotation-queues", response={201: QueueOut}, summary="Create a queue")
@requires("annotation-queues:create")
def create_queue(request, payload: QueueIn):
    queue = services.create_annotation_queue(
        workspace=ws(request),
        name=payload.name,
        description=payload.description,
        rubric_instructions=payload.rubric_instructions,
        rubric_items=payload.rubric_items,
        queue_id=payload.id,
    )
    return Status(201, _queues(request).get(pk=queue.pk))


@router.get("/annotation-queues/{uuid:queue_id}", response=QueueOut, summary="One queue")
@requires("annotation-queues:read")
def read_queue(request, queue_id: uuid.UUID):
    return get_object_or_404(_queues(request), pk=queue_id)


@router.patch("/annotation-queues/{uuid:queue_id}", response=QueueOut, summary="Change a queue")
@requires("annotation-queues:update")
def update_queue(request, queue_id: uuid.UUID, payload: QueuePatch):
    queue = _queue(request, queue_id)
    for field, value in payload.dict(exclude_none=True).items():
        setattr(queue, field, value)
    queue.save()
    return _queues(request).get(pk=queue.pk)


@router.delete("/annotation-queues/{uuid:queue_id}", response={202: None}, summary="Delete a queue")
@requires("annotation-queues:delete")
def delete_queue(request, queue_id: uuid.UUID):
    _queue(request, queue_id).delete()
    return Status(202, None)


@router.post(
    "/annotation-queues/{uuid:queue_id}/runs",
    response={202: dict},
    summary="Queue runs for annotation",
)
@requires("annotation-queues:update")
def add_runs_to_queue(request, queue_id: uuid.UUID, payload: list[uuid.UUID]):
    added = services.queue_runs(queue=_queue(request, queue_id), run_ids=payload)
    return Status(202, {"message": "Runs added", "count": added})


def _queued_runs(queue):
    items = QueuedRun.objects.filter(queue=queue).select_related("run")
    runs = []
    for item in items:
        item.run.added_at, item.run.last_reviewed_time = item.added_at, item.last_reviewed_time
        runs.append(item.run)
    return runs


@router.get(
    "/annotation-queues/{uuid:queue_id}/runs",
    response=list[QueuedRunOut],
    summary="The runs in a queue",
)
@requires("annotation-queues:read")
def list_queue_runs(request, queue_id: uuid.UUID, p: Query[Page]):
    queue = _queue(request, queue_id)
    return _queued_runs(queue)[p.offset : p.offset + p.limit]


@router.get(
    "/annotation-queues/{uuid:queue_id}/run/{index}",
    response=QueuedRunOut,
    summary="The run at a position in a queue",
)
@requires("annotation-queues:read")
def queue_run_at(request, queue_id: uuid.UUID, index: int):
    runs = _queued_runs(_queue(request, queue_id))
    if not 0 <= index < len(runs):
        return get_object_or_404(Run.objects.none())
    return runs[index]


@router.delete(
    "/annotation-queues/{uuid:queue_id}/runs/{uuid:run_id}",
    response={202: None},
    summary="Take a run out of a queue",
)
@requires("annotation-queues:update")
def remove_queue_run(request, queue_id: uuid.UUID, run_id: uuid.UUID):
    get_object_or_404(
        QueuedRun.objects.filter(queue=_queue(request, queue_id)), run_id=run_id
    ).delete()
    return Status(202, None)


# Prompts (ours; the SDK's prompt hub API is not served)


class PromptOut(Schema):
    id: uuid.UUID
    name: str
    description: str
    created_at: datetime.datetime
    updated_at: datetime.datetime
    latest_commit: str | None = None
    template: str | None = None


class PromptIn(Body):
    name: str = Field(min_length=1, max_length=255)
    description: str = Field("", max_length=10000)
    template: str | None = Field(None, max_length=200000)


class PromptPatch(Body):
    name: str | None = Field(None, min_length=1, max_length=255)
    description: str | None = Field(None, max_length=10000)


class CommitIn(Body):
    template: str = Field(min_length=1, max_length=200000)
    message: str = Field("", max_length=255)


class CommitOut(Schema):
    id: uuid.UUID
    commit_hash: str
    template: str
    message: str
    created_by: str
    created_at: datetime.datetime


def _prompt_out(prompt):
    latest = prompt.commits.first()
    prompt.latest_commit = latest.commit_hash if latest else None
    prompt.template = latest.template if latest else None
    return prompt


def _prompt(request, prompt_id):
    return get_object_or_404(Prompt.objects.in_workspace(ws(request)), pk=prompt_id)


@router.get("/prompts", response=list[PromptOut], summary="List prompts")
@requires("prompts:read")
def list_prompts(request, p: Query[Page]):
    return [
        _prompt_out(x)
        for x in page(
            Prompt.objects.in_workspace(ws(request)).prefetch_related("commits").order_by("name"), p
        )
    ]


@router.post("/prompts", response={201: PromptOut}, summary="Create a prompt")
@requires("prompts:create")
def create_prompt(request, payload: PromptIn):
    workspace = ws(request)
    if Prompt.objects.in_workspace(workspace).filter(name=payload.name).exists():
        return _conflict(f"A prompt named {payload.name!r} already exists in this workspace.")
    prompt = Prompt.objects.create(
        workspace=workspace, name=payload.name, description=payload.description
    )
    if payload.template:
        services.commit_prompt(
            prompt=prompt,
            template=payload.template,
            message="first version",
            author=request.auth.label,
        )
    return Status(201, _prompt_out(prompt))


def _conflict(detail):
    from accesscontrol.rbac.gate import api_error

    return api_error(409, "duplicate", detail)


@router.get("/prompts/{uuid:prompt_id}", response=PromptOut, summary="One prompt")
@requires("prompts:read")
def read_prompt(request, prompt_id: uuid.UUID):
    return _prompt_out(_prompt(request, prompt_id))


@router.patch("/prompts/{uuid:prompt_id}", response=PromptOut, summary="Rename or describe")
@requires("prompts:update")
def update_prompt(request, prompt_id: uuid.UUID, payload: PromptPatch):
    prompt = _prompt(request, prompt_id)
    if payload.name and payload.name != prompt.name:
        if Prompt.objects.in_workspace(prompt.workspace).filter(name=payload.name).exists():
            return _conflict(f"A prompt named {payload.name!r} already exists.")
        prompt.name = payload.name
    if payload.description is not None:
        prompt.description = payload.description
    prompt.save()
    return _prompt_out(prompt)


@router.delete("/prompts/{uuid:prompt_id}", response={202: None}, summary="Delete a prompt")
@requires("prompts:delete")
def delete_prompt(request, prompt_id: uuid.UUID):
    _prompt(request, prompt_id).delete()
    return Status(202, None)


@router.get(
    "/prompts/{uuid:prompt_id}/commits",
    response=list[CommitOut],
    summary="A prompt's versions, newest first",
)
@requires("prompts:read")
def list_commits(request, prompt_id: uuid.UUID, p: Query[Page]):
    return page(_prompt(request, prompt_id).commits.all(), p)


@router.post(
    "/prompts/{uuid:prompt_id}/commits",
    response={201: CommitOut},
    summary="Save a new version of a prompt",
)
@requires("prompts:update")
def create_commit(request, prompt_id: uuid.UUID, payload: CommitIn):
    commit = services.commit_prompt(
        prompt=_prompt(request, prompt_id),
        template=payload.template,
        message=payload.message,
        author=request.auth.label,
    )
    return Status(201, commit)
