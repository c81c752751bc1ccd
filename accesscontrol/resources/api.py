"""LangSmith-compatible endpoints for a workspace's resources.

Paths, payloads and response shapes follow what the official `langsmith` SDK sends and reads
(see docs/langsmith.md; the payloads are in resources/schemas.py). They are served under /api/v1/
and at the root paths the SDK uses when LANGSMITH_ENDPOINT is the bare server URL. The workspace
is the key's, or X-Tenant-Id. Handlers parse, read inside the workspace, and make every change
through resources/services.py with the request's actor.
"""

import json
import uuid

from django.core.exceptions import ValidationError
from django.db import connection
from django.db.models import Count, Q, TextField
from django.db.models.functions import Cast
from django.shortcuts import get_object_or_404
from ninja import Query, Status

from accesscontrol.api.router import GatedRouter
from accesscontrol.rbac.gate import ApiError, public, requires
from accesscontrol.resources import models, selectors, services
from accesscontrol.resources.schemas import (
    EXAMPLE_FIELDS,
    CommitIn,
    CommitOut,
    DatasetFilter,
    DatasetIn,
    DatasetOut,
    DatasetPatch,
    DatasetRead,
    ExampleAsOf,
    ExampleFilter,
    ExampleIn,
    ExampleOut,
    ExamplePatch,
    FeedbackFilter,
    FeedbackIn,
    FeedbackOut,
    FeedbackPatch,
    Page,
    PromptIn,
    PromptOut,
    PromptPatch,
    QueuedRunOut,
    QueueFilter,
    QueueIn,
    QueueOut,
    QueuePatch,
    RunBatch,
    RunIn,
    RunOut,
    RunPatchBody,
    RunQuery,
    RunQueryOut,
    RunStatsQuery,
    SessionFilter,
    SessionIn,
    SessionOut,
    SessionPatch,
    SessionRead,
)

router = GatedRouter(tags=["resources (LangSmith-compatible)"])

DELETED = Status(202, None)


def page(qs, p: Page):
    return list(qs[p.offset : p.offset + p.limit])


def filtered(qs, filters, **lookups):
    """`qs` narrowed by each filter the request gave: `name=lookup` maps it to the ORM."""
    for name, lookup in lookups.items():
        value = getattr(filters, name)
        if value:
            qs = qs.filter(**{lookup: value})
    return qs


def ws(request):
    return request.auth.workspace


def one(request, model, pk):
    """An object of the request's workspace; any other id is a 404."""
    return get_object_or_404(model.objects.in_workspace(ws(request)), pk=pk)


# What a project, dataset or queue counts, shown alike in its list and on its own.
COUNTS = {
    models.Project: {"run_count": Count("runs")},
    models.Dataset: {"example_count": Count("examples")},
    models.AnnotationQueue: {"run_count": Count("items")},
}


def counted(request, model):
    """The request's workspace's objects of `model`, with their counts."""
    return model.objects.in_workspace(ws(request)).annotate(**COUNTS[model])


def as_listed(request, resource):
    """`resource` read again with its counts, as a list shows it (after a create or change)."""
    return counted(request, type(resource)).get(pk=resource.pk)


def delete(request, model, pk):
    services.delete_resource(actor=request.actor, resource=one(request, model, pk))
    return DELETED


# Server info


@router.get("/info", auth=None, summary="Server info (the SDK reads its batching config)")
@public
def info(request):
    # A complete batch_ingest_config: the SDK indexes every key, and multipart/zstd are off so
    # it sends plain JSON to /runs/batch.
    return {
        "version": "0.10.0",
        # The JS SDK writes examples only through the multipart endpoints, and only when this
        # says they are served (resources/api_datasets.py); the Python SDK then uses them too.
        "instance_flags": {"dataset_examples_multipart_enabled": True},
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


@router.get("/sessions", response=list[SessionOut], summary="List projects")
@requires("projects:read")
def list_sessions(request, filters: Query[SessionFilter]):
    qs = counted(request, models.Project).order_by("-start_time", "id")
    qs = filtered(
        qs,
        filters,
        name="name",
        name_contains="name__icontains",
        id="id__in",
        reference_dataset="reference_dataset_id__in",
    )
    if filters.reference_free is not None:
        qs = qs.filter(reference_dataset__isnull=filters.reference_free)
    metadata = selectors.json_object_param(filters.metadata, "metadata")
    qs = selectors.json_contains(qs, "extra__metadata", metadata)
    return page(qs, filters)


@router.post("/sessions", response={201: SessionOut}, summary="Create a project")
@requires("projects:create")
def create_session(request, payload: SessionIn, upsert: bool = False):
    project = services.create_project(
        actor=request.actor,
        workspace=ws(request),
        name=payload.name,
        description=payload.description or "",
        extra=payload.extra,
        project_id=payload.id,
        upsert=upsert,
        reference_dataset_id=payload.reference_dataset_id,
    )
    return Status(201, as_listed(request, project))


@router.get("/sessions/{uuid:session_id}", response=SessionOut, summary="One project")
@requires("projects:read")
def read_session(request, session_id: uuid.UUID, options: Query[SessionRead]):
    return get_object_or_404(counted(request, models.Project), pk=session_id)


@router.patch("/sessions/{uuid:session_id}", response=SessionOut, summary="Change a project")
@requires("projects:update")
def update_session(request, session_id: uuid.UUID, payload: SessionPatch):
    project = one(request, models.Project, session_id)
    services.update_project(actor=request.actor, project=project, **payload.dict())
    return as_listed(request, project)


@router.delete(
    "/sessions/{uuid:session_id}", response={202: None}, summary="Delete a project and its runs"
)
@requires("projects:delete")
def delete_session(request, session_id: uuid.UUID):
    return delete(request, models.Project, session_id)


# Runs


def _ingest(request, posts=(), patches=()):
    return services.ingest_runs(
        actor=request.actor, workspace=ws(request), posts=posts, patches=patches
    )


@router.post("/runs", response={202: dict}, summary="Create a run")
@requires("runs:create")
def create_run(request, payload: RunIn):
    _ingest(request, posts=[payload.dict()])
    return Status(202, {"message": "Run created"})


@router.patch("/runs/{uuid:run_id}", response={202: dict}, summary="Complete or change a run")
@requires("runs:create")
def update_run(request, run_id: uuid.UUID, payload: RunPatchBody):
    # Batches skip unknown runs (a patch may race its post); one run by id is a 404 like any other.
    get_object_or_404(models.Run.objects.in_workspace(ws(request)).only("pk"), pk=run_id)
    _ingest(request, patches=[{**payload.dict(), "id": run_id}])
    return Status(202, {"message": "Run updated"})


@router.post("/runs/batch", response={202: dict}, summary="Create and complete runs in bulk")
@requires("runs:create")
def batch_runs(request, payload: RunBatch):
    result = _ingest(
        request,
        posts=[r.dict() for r in payload.post or ()],
        patches=[r.dict() for r in payload.patch or ()],
    )
    return Status(202, {"message": "Runs batch ingested", **result})


@router.get("/runs/{uuid:run_id}", response=RunOut, summary="One run")
@requires("runs:read")
def read_run(request, run_id: uuid.UUID):
    return one(request, models.Run, run_id)


def _refused(exc: selectors.RunQueryRefused):
    return ApiError(422, "invalid_query", str(exc), field=exc.field)


@router.post("/runs/query", response=RunQueryOut, summary="Query runs (filter language, cursor)")
@requires("runs:read")
def query_runs(request, payload: RunQuery):
    try:
        return selectors.query_runs(actor=request.actor, workspace=ws(request), body=payload)
    except selectors.RunQueryRefused as exc:
        raise _refused(exc) from None


@router.post("/runs/stats", response=dict, summary="Statistics over the runs a query names")
@requires("runs:read")
def run_stats(request, payload: RunStatsQuery):
    try:
        return selectors.run_stats(actor=request.actor, workspace=ws(request), body=payload)
    except selectors.RunQueryRefused as exc:
        raise _refused(exc) from None


# Datasets


@router.get("/datasets", response=list[DatasetOut], summary="List datasets")
@requires("datasets:read")
def list_datasets(request, filters: Query[DatasetFilter]):
    if set(filters.exclude or ()) - {"example_count"}:
        raise ValidationError({"exclude": "Only example_count may be excluded."})
    order = ("-" if filters.sort_by_desc else "") + filters.sort_by
    qs = counted(request, models.Dataset).order_by(order, "id")
    qs = filtered(
        qs,
        filters,
        name="name",
        name_contains="name__icontains",
        id="id__in",
        data_type="data_type__in",
    )
    metadata = selectors.json_object_param(filters.metadata, "metadata")
    datasets = page(selectors.json_contains(qs, "metadata", metadata), filters)
    if "example_count" in (filters.exclude or ()):
        for dataset in datasets:
            dataset.example_count = None
    return datasets


@router.post("/datasets", response={201: DatasetOut}, summary="Create a dataset")
@requires("datasets:create")
def create_dataset(request, payload: DatasetIn):
    dataset = services.create_dataset(
        actor=request.actor,
        workspace=ws(request),
        name=payload.name,
        description=payload.description or "",
        data_type=payload.data_type,
        metadata=(payload.extra or {}).get("metadata"),
        dataset_id=payload.id,
        inputs_schema=payload.inputs_schema_definition,
        outputs_schema=payload.outputs_schema_definition,
    )
    return Status(201, as_listed(request, dataset))


@router.get("/datasets/{uuid:dataset_id}", response=DatasetOut, summary="One dataset")
@requires("datasets:read")
def read_dataset(request, dataset_id: uuid.UUID, options: Query[DatasetRead]):
    return get_object_or_404(counted(request, models.Dataset), pk=dataset_id)


@router.patch("/datasets/{uuid:dataset_id}", response=DatasetOut, summary="Change a dataset")
@requires("datasets:update")
def update_dataset(request, dataset_id: uuid.UUID, payload: DatasetPatch):
    dataset = one(request, models.Dataset, dataset_id)
    services.update_dataset(actor=request.actor, dataset=dataset, **payload.dict())
    return as_listed(request, dataset)


@router.delete(
    "/datasets/{uuid:dataset_id}", response={202: None}, summary="Delete a dataset and its examples"
)
@requires("datasets:delete")
def delete_dataset(request, dataset_id: uuid.UUID):
    return delete(request, models.Dataset, dataset_id)


# Examples


def _split_filter(splits):
    split_filter = Q()
    for split in splits:
        if connection.features.supports_json_field_contains:
            split_filter |= Q(split__contains=[split])
        else:  # SQLite: match the name as a JSON string inside the stored list
            split_filter |= Q(split__icontains=json.dumps(split))
    return split_filter


@router.get("/examples", response=list[ExampleOut], summary="List examples")
@requires("datasets:read")
def list_examples(request, filters: Query[ExampleFilter]):
    if filters.exclude_default_fields:
        raise ValidationError({"exclude_default_fields": "Every example field is always sent."})
    unknown = set(filters.select or ()) - set(EXAMPLE_FIELDS)
    if unknown:
        raise ValidationError({"select": f"No such example field: {sorted(unknown)[0]}."})
    when = None
    if filters.as_of is not None:
        if filters.dataset is None:
            raise ValidationError({"as_of": "Reading as of a version needs the dataset."})
        dataset = one(request, models.Dataset, filters.dataset)
        when = selectors.resolve_version(dataset, filters.as_of)
    if when is None:
        qs = models.Example.objects.in_workspace(ws(request))
        qs = filtered(qs, filters, dataset="dataset_id", id="id__in")
        key = "id"
    else:  # the dataset's examples as that version left them
        qs = selectors.revisions_as_of(dataset, when)
        qs = filtered(qs, filters, id="example_id__in")
        key = "example_id"
    if filters.splits:
        qs = qs.filter(_split_filter(filters.splits))
    metadata = selectors.json_object_param(filters.metadata, "metadata")
    qs = selectors.json_contains(qs, "metadata", metadata)
    for number, text in enumerate(filters.full_text_contains or ()):
        inputs, outputs = f"_inputs_text_{number}", f"_outputs_text_{number}"
        qs = qs.annotate(
            **{inputs: Cast("inputs", TextField()), outputs: Cast("outputs", TextField())}
        ).filter(Q(**{f"{inputs}__icontains": text}) | Q(**{f"{outputs}__icontains": text}))
    qs = qs.order_by(*_example_order(filters, key))
    rows = page(qs, filters)
    return rows if when is None else [revision.as_example() for revision in rows]


def _example_order(filters, key):
    """LangSmith's orders; `descending` flips each one's natural direction."""
    if filters.order == "random":
        return ("?",)
    newest_first = {"recent": "modified_at", "recently_created": "created_at"}
    if filters.order in newest_first:
        first = filters.descending is not False
        return (("-" if first else "") + newest_first[filters.order], key)
    if filters.order == "id":
        return (("-" if filters.descending else "") + key,)
    return ("-created_at" if filters.descending else "created_at", key)


def _create_examples(request, payloads):
    return services.create_examples(
        actor=request.actor, workspace=ws(request), examples=[e.dict() for e in payloads]
    )


@router.post("/examples", response={201: ExampleOut}, summary="Create an example")
@requires("datasets:update")
def create_example(request, payload: ExampleIn):
    (example,) = _create_examples(request, [payload])
    return Status(201, example)


@router.post("/examples/bulk", response={201: list[ExampleOut]}, summary="Create many examples")
@requires("datasets:update")
def create_examples(request, payload: list[ExampleIn]):
    return Status(201, _create_examples(request, payload))


@router.get("/examples/{uuid:example_id}", response=ExampleOut, summary="One example")
@requires("datasets:read")
def read_example(request, example_id: uuid.UUID, filters: Query[ExampleAsOf]):
    if filters.as_of is None:
        qs = models.Example.objects.in_workspace(ws(request))
        if filters.dataset is not None:
            qs = qs.filter(dataset_id=filters.dataset)
        return get_object_or_404(qs, pk=example_id)
    # As of a version: the example as its dataset's version left it (gone then: a 404).
    if filters.dataset is not None:
        dataset = one(request, models.Dataset, filters.dataset)
    else:
        dataset = _dataset_that_had(request, example_id)
    when = selectors.resolve_version(dataset, filters.as_of)
    if when is None:
        return get_object_or_404(
            models.Example.objects.in_workspace(ws(request)).filter(dataset=dataset), pk=example_id
        )
    revisions = selectors.revisions_as_of(dataset, when)
    return get_object_or_404(revisions, example_id=example_id).as_example()


def _dataset_that_had(request, example_id):
    """The workspace's dataset that holds, or held, this example."""
    revision = (
        models.ExampleRevision.objects.filter(example_id=example_id, dataset__workspace=ws(request))
        .select_related("dataset")
        .first()
    )
    return revision.dataset if revision else get_object_or_404(models.Dataset.objects.none())


@router.patch("/examples/{uuid:example_id}", response=ExampleOut, summary="Change an example")
@requires("datasets:update")
def update_example(request, example_id: uuid.UUID, payload: ExamplePatch):
    example = one(request, models.Example, example_id)
    if payload.id not in (None, example.pk) or payload.dataset_id not in (None, example.dataset_id):
        raise ApiError(
            422,
            "invalid",
            "id and dataset_id, when sent, must be the example's own: an "
            "example keeps its id and never moves to another dataset.",
        )
    changes = payload.dict(include={"inputs", "outputs", "metadata", "split"})
    return services.update_example(actor=request.actor, example=example, **changes)


@router.delete("/examples/{uuid:example_id}", response={202: None}, summary="Delete an example")
@requires("datasets:update")
def delete_example(request, example_id: uuid.UUID):
    return delete(request, models.Example, example_id)


# Feedback


@router.post("/feedback", response={201: FeedbackOut}, summary="Add feedback to a run")
@requires("feedback:create")
def create_feedback(request, payload: FeedbackIn):
    run_id = payload.run_id or payload.trace_id
    feedback = services.record_feedback(
        actor=request.actor,
        workspace=ws(request),
        run_id=run_id,
        trace_id=payload.trace_id or run_id,
        project_id=payload.session_id,
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
    qs = models.Feedback.objects.in_workspace(ws(request)).order_by("-created_at", "id")
    qs = filtered(qs, filters, run="run_id__in", key="key__in", source="feedback_source__type__in")
    return page(qs, filters)


@router.get("/feedback/{uuid:feedback_id}", response=FeedbackOut, summary="One piece of feedback")
@requires("feedback:read")
def read_feedback(request, feedback_id: uuid.UUID):
    return one(request, models.Feedback, feedback_id)


@router.patch("/feedback/{uuid:feedback_id}", response=FeedbackOut, summary="Change feedback")
@requires("feedback:update")
def update_feedback(request, feedback_id: uuid.UUID, payload: FeedbackPatch):
    return services.update_feedback(
        actor=request.actor,
        feedback=one(request, models.Feedback, feedback_id),
        changes=payload.dict(exclude_unset=True),
    )


@router.delete("/feedback/{uuid:feedback_id}", response={202: None}, summary="Delete feedback")
@requires("feedback:delete")
def delete_feedback(request, feedback_id: uuid.UUID):
    return delete(request, models.Feedback, feedback_id)


# Annotation queues


@router.get("/annotation-queues", response=list[QueueOut], summary="List annotation queues")
@requires("annotation-queues:read")
def list_queues(request, filters: Query[QueueFilter]):
    qs = counted(request, models.AnnotationQueue).order_by("-created_at", "id")
    qs = filtered(qs, filters, ids="id__in", name="name", name_contains="name__icontains")
    return page(qs, filters)


@router.post("/annotation-queues", response={201: QueueOut}, summary="Create a queue")
@requires("annotation-queues:create")
def create_queue(request, payload: QueueIn):
    queue = services.create_annotation_queue(
        actor=request.actor,
        workspace=ws(request),
        name=payload.name,
        description=payload.description,
        rubric_instructions=payload.rubric_instructions,
        rubric_items=payload.rubric_items,
        queue_id=payload.id,
    )
    return Status(201, as_listed(request, queue))


@router.get("/annotation-queues/{uuid:queue_id}", response=QueueOut, summary="One queue")
@requires("annotation-queues:read")
def read_queue(request, queue_id: uuid.UUID):
    return get_object_or_404(counted(request, models.AnnotationQueue), pk=queue_id)


@router.patch("/annotation-queues/{uuid:queue_id}", response=QueueOut, summary="Change a queue")
@requires("annotation-queues:update")
def update_queue(request, queue_id: uuid.UUID, payload: QueuePatch):
    queue = one(request, models.AnnotationQueue, queue_id)
    services.update_annotation_queue(actor=request.actor, queue=queue, **payload.dict())
    return as_listed(request, queue)


@router.delete("/annotation-queues/{uuid:queue_id}", response={202: None}, summary="Delete a queue")
@requires("annotation-queues:delete")
def delete_queue(request, queue_id: uuid.UUID):
    return delete(request, models.AnnotationQueue, queue_id)


@router.post(
    "/annotation-queues/{uuid:queue_id}/runs",
    response={202: dict},
    summary="Queue runs for annotation",
)
@requires("annotation-queues:update")
def add_runs_to_queue(request, queue_id: uuid.UUID, payload: list[uuid.UUID]):
    queue = one(request, models.AnnotationQueue, queue_id)
    added = services.queue_runs(actor=request.actor, queue=queue, run_ids=payload)
    return Status(202, {"message": "Runs added", "count": added})


def _queued_runs(queue):
    items = models.QueuedRun.objects.filter(queue=queue).select_related("run")
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
    queue = one(request, models.AnnotationQueue, queue_id)
    return _queued_runs(queue)[p.offset : p.offset + p.limit]


@router.get(
    "/annotation-queues/{uuid:queue_id}/run/{index}",
    response=QueuedRunOut,
    summary="The run at a position in a queue",
)
@requires("annotation-queues:read")
def queue_run_at(request, queue_id: uuid.UUID, index: int):
    runs = _queued_runs(one(request, models.AnnotationQueue, queue_id))
    if not 0 <= index < len(runs):
        return get_object_or_404(models.Run.objects.none())
    return runs[index]


@router.delete(
    "/annotation-queues/{uuid:queue_id}/runs/{uuid:run_id}",
    response={202: None},
    summary="Take a run out of a queue",
)
@requires("annotation-queues:update")
def remove_queue_run(request, queue_id: uuid.UUID, run_id: uuid.UUID):
    queue = one(request, models.AnnotationQueue, queue_id)
    get_object_or_404(models.QueuedRun.objects.filter(queue=queue), run_id=run_id)
    services.dequeue_run(actor=request.actor, queue=queue, run_id=run_id)
    return DELETED


# Prompts (ours; the SDK's prompt hub API is not served)


def _prompt_out(prompt):
    latest = prompt.commits.first()
    prompt.latest_commit = latest.commit_hash if latest else None
    prompt.template = latest.template if latest else None
    return prompt


@router.get("/prompts", response=list[PromptOut], summary="List prompts")
@requires("prompts:read")
def list_prompts(request, p: Query[Page]):
    prompts = (
        models.Prompt.objects.in_workspace(ws(request)).prefetch_related("commits").order_by("name")
    )
    return [_prompt_out(x) for x in page(prompts, p)]


@router.post("/prompts", response={201: PromptOut}, summary="Create a prompt")
@requires("prompts:create")
def create_prompt(request, payload: PromptIn):
    prompt = services.create_prompt(
        actor=request.actor,
        workspace=ws(request),
        name=payload.name,
        description=payload.description,
        template=payload.template or None,  # "" or left out: a prompt with no version yet
    )
    return Status(201, _prompt_out(prompt))


@router.get("/prompts/{uuid:prompt_id}", response=PromptOut, summary="One prompt")
@requires("prompts:read")
def read_prompt(request, prompt_id: uuid.UUID):
    return _prompt_out(one(request, models.Prompt, prompt_id))


@router.patch("/prompts/{uuid:prompt_id}", response=PromptOut, summary="Rename or describe")
@requires("prompts:update")
def update_prompt(request, prompt_id: uuid.UUID, payload: PromptPatch):
    prompt = one(request, models.Prompt, prompt_id)
    services.update_prompt(actor=request.actor, prompt=prompt, **payload.dict())
    return _prompt_out(prompt)


@router.delete("/prompts/{uuid:prompt_id}", response={202: None}, summary="Delete a prompt")
@requires("prompts:delete")
def delete_prompt(request, prompt_id: uuid.UUID):
    return delete(request, models.Prompt, prompt_id)


@router.get(
    "/prompts/{uuid:prompt_id}/commits",
    response=list[CommitOut],
    summary="A prompt's versions, newest first",
)
@requires("prompts:read")
def list_commits(request, prompt_id: uuid.UUID, p: Query[Page]):
    return page(one(request, models.Prompt, prompt_id).commits.all(), p)


@router.post(
    "/prompts/{uuid:prompt_id}/commits",
    response={201: CommitOut},
    summary="Save a new version of a prompt",
)
@requires("prompts:update")
def create_commit(request, prompt_id: uuid.UUID, payload: CommitIn):
    commit = services.commit_prompt(
        actor=request.actor,
        prompt=one(request, models.Prompt, prompt_id),
        template=payload.template,
        message=payload.message,
    )
    return Status(201, commit)
