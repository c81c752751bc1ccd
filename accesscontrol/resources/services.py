"""Writes to a workspace's resources. Each takes the workspace; nothing crosses it.

Resource writes are not access changes, so they are not in the audit log (who may write them
is; see rbac). Run ingest is bulk: a batch of N runs costs a constant number of queries.
"""

import uuid

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from accesscontrol.resources.models import (
    AnnotationQueue,
    Dataset,
    Example,
    Feedback,
    Project,
    Prompt,
    PromptCommit,
    QueuedRun,
    Run,
)

BULK_BATCH = 500
RUN_FIELDS = (
    "name",
    "run_type",
    "inputs",
    "outputs",
    "error",
    "start_time",
    "end_time",
    "tags",
    "extra",
    "events",
    "reference_example_id",
    "parent_run_id",
    "dotted_order",
)


def _duplicate(what, name):
    return ValidationError(
        f"A {what} named {name!r} already exists in this workspace.", code="duplicate"
    )


# Projects


def create_project(
    *, workspace, name, description="", extra=None, project_id=None, upsert=False
) -> Project:
    existing = Project.objects.in_workspace(workspace).filter(name=name).first()
    if existing is not None:
        if upsert:
            return existing
        raise _duplicate("project", name)
    try:
        with transaction.atomic():
            return Project.objects.create(
                id=project_id or uuid.uuid4(),
                workspace=workspace,
                name=name,
                description=description or "",
                extra=extra or {},
            )
    except IntegrityError:
        raise _duplicate("project", name) from None


def update_project(*, project, name=None, description=None, extra=None) -> Project:
    if name is not None and name != project.name:
        if Project.objects.in_workspace(project.workspace).filter(name=name).exists():
            raise _duplicate("project", name)
        project.name = name
    if description is not None:
        project.description = description
    if extra is not None:
        project.extra = extra
    project.save()
    return project


def _projects_for(workspace, names, ids):
    """Projects by name (created when missing, as LangSmith does on ingest) and by id."""
    by_name = {p.name: p for p in Project.objects.in_workspace(workspace).filter(name__in=names)}
    missing = [n for n in names if n not in by_name]
    if missing:
        Project.objects.bulk_create(
            [Project(workspace=workspace, name=n) for n in missing], ignore_conflicts=True
        )
        by_name.update(
            {p.name: p for p in Project.objects.in_workspace(workspace).filter(name__in=missing)}
        )
    by_id = (
        {p.id: p for p in Project.objects.in_workspace(workspace).filter(id__in=ids)} if ids else {}
    )
    return by_name, by_id


def ingest_runs(*, workspace, posts=(), patches=(), default_project="default") -> dict:
    """Create and complete runs in bulk. Runs are dicts of the API's validated fields.

    A patch of a run posted in the same batch is merged into the post. Posting an id that
    exists is ignored (the SDK retries), as is patching a run this workspace does not have.
    """
    posts = [dict(p) for p in posts]
    patches = [dict(p) for p in patches]
    posted = {p["id"]: p for p in posts}
    late_patches = []
    for patch in patches:
        target = posted.get(patch["id"])
        if target is None:
            late_patches.append(patch)
            continue
        target.update({k: v for k, v in patch.items() if v is not None and k in RUN_FIELDS})

    names = {p.get("session_name") or default_project for p in posts if not p.get("session_id")}
    ids = {p["session_id"] for p in posts if p.get("session_id")}
    with transaction.atomic():
        by_name, by_id = _projects_for(workspace, sorted(names), ids)
        unknown = ids - set(by_id)
        if unknown:
            raise ValidationError(
                {"session_id": f"No such project here: {sorted(map(str, unknown))[0]}"}
            )
        runs = []
        for p in posts:
            project = (
                by_id[p["session_id"]]
                if p.get("session_id")
                else by_name[p.get("session_name") or default_project]
            )
            runs.append(
                Run(
                    id=p["id"],
                    workspace=workspace,
                    project=project,
                    trace_id=p.get("trace_id") or p["id"],
                    parent_run_id=p.get("parent_run_id"),
                    dotted_order=p.get("dotted_order") or "",
                    name=p["name"],
                    run_type=p["run_type"],
                    inputs=p.get("inputs") or {},
                    outputs=p.get("outputs"),
                    error=p.get("error"),
                    start_time=p.get("start_time") or timezone.now(),
                    end_time=p.get("end_time"),
                    tags=p.get("tags") or [],
                    extra=p.get("extra") or {},
                    events=p.get("events") or [],
                    reference_example_id=p.get("reference_example_id"),
                )
            )
        Run.objects.bulk_create(runs, batch_size=BULK_BATCH, ignore_conflicts=True)
        updated = _apply_patches(workspace, late_patches)
    return {"created": len(runs), "updated": updated}


def _apply_patches(workspace, patches) -> int:
    if not patches:
        return 0
    runs = {
        r.id: r
        for r in Run.objects.in_workspace(workspace).filter(id__in=[p["id"] for p in patches])
    }
    changed, fields = [], set()
    for patch in patches:
        run = runs.get(patch["id"])
        if run is None:
            continue
        for field in RUN_FIELDS:
            value = patch.get(field)
            if value is not None:  # the SDK sends null for "not provided"
                setattr(run, field, value)
                fields.add(field)
        changed.append(run)
    if changed and fields:
        Run.objects.bulk_update(changed, sorted(fields), batch_size=BULK_BATCH)
    return len(changed)


# Datasets and examples


def create_dataset(
    *,
    workspace,
    name,
    description="",
    data_type="kv",
    metadata=None,
    inputs_schema=None,
    outputs_schema=None,
    dataset_id=None,
) -> Dataset:
    if Dataset.objects.in_workspace(workspace).filter(name=name).exists():
        raise _duplicate("dataset", name)
    try:
        with transaction.atomic():
            return Dataset.objects.create(
                id=dataset_id or uuid.uuid4(),
                workspace=workspace,
                name=name,
                description=description or "",
                data_type=data_type or "kv",
                metadata=metadata,
                inputs_schema_definition=inputs_schema,
                outputs_schema_definition=outputs_schema,
            )
    except IntegrityError:
        raise _duplicate("dataset", name) from None


def update_dataset(*, dataset, name=None, description=None, metadata=None) -> Dataset:
    if name is not None and name != dataset.name:
        if Dataset.objects.in_workspace(dataset.workspace).filter(name=name).exists():
            raise _duplicate("dataset", name)
        dataset.name = name
    if description is not None:
        dataset.description = description
    if metadata is not None:
        dataset.metadata = metadata
    dataset.save()
    return dataset


def _splits(split):
    if split is None:
        return ["base"]
    return [split] if isinstance(split, str) else list(split)


def create_examples(*, workspace, examples) -> list[Example]:
    """Examples of one or more datasets of this workspace, in one insert."""
    dataset_ids = {e["dataset_id"] for e in examples}
    found = set(
        Dataset.objects.in_workspace(workspace)
        .filter(id__in=dataset_ids)
        .values_list("id", flat=True)
    )
    if dataset_ids - found:
        # The code goes on the inner error: Django drops it from a dict-shaped one.
        raise ValidationError(
            {"dataset_id": ValidationError("No such dataset in this workspace.", code="not_found")}
        )
    now = timezone.now()
    rows = [
        Example(
            id=e.get("id") or uuid.uuid4(),
            workspace=workspace,
            dataset_id=e["dataset_id"],
            inputs=e.get("inputs") or {},
            outputs=e.get("outputs"),
            metadata=e.get("metadata"),
            split=_splits(e.get("split")),
            source_run_id=e.get("source_run_id"),
            created_at=e.get("created_at") or now,
        )
        for e in examples
    ]
    try:
        with transaction.atomic():
            Example.objects.bulk_create(rows, batch_size=BULK_BATCH)
    except IntegrityError:
        raise ValidationError(
            "An example with one of these ids exists already.", code="duplicate"
        ) from None
    return rows


def update_example(*, example, inputs=None, outputs=None, metadata=None, split=None) -> Example:
    if inputs is not None:
        example.inputs = inputs
    if outputs is not None:
        example.outputs = outputs
    if metadata is not None:
        example.metadata = metadata
    if split is not None:
        example.split = _splits(split)
    example.save()
    return example


# Prompts


def commit_prompt(*, prompt, template, message="", author="") -> PromptCommit:
    if not (template or "").strip():
        raise ValidationError({"template": "The template is empty."})
    with transaction.atomic():
        commit = PromptCommit.objects.create(
            prompt=prompt, template=template, message=message or "", created_by=author
        )
        prompt.save(update_fields=["updated_at"])
    return commit


# Annotation queues


def queue_runs(*, queue, run_ids) -> int:
    """Add runs of the queue's workspace; any id it does not have makes the whole call fail."""
    run_ids = set(run_ids)
    runs = list(
        Run.objects.in_workspace(queue.workspace)
        .filter(id__in=run_ids)
        .values_list("id", flat=True)
    )
    if len(runs) != len(run_ids):
        raise ValidationError(
            {"run_ids": ValidationError("No such run in this workspace.", code="not_found")}
        )
    with transaction.atomic():
        QueuedRun.objects.bulk_create(
            [QueuedRun(queue=queue, run_id=r) for r in runs], ignore_conflicts=True
        )
        AnnotationQueue.objects.filter(pk=queue.pk).update(updated_at=timezone.now())
    return len(runs)


# For the console: the writes its pages make that the API above does not need a service for.


def create_prompt(*, workspace, name, description="", template="", author="") -> Prompt:
    """A prompt and, when a template is given, its first version."""
    if Prompt.objects.in_workspace(workspace).filter(name=name).exists():
        raise _duplicate("prompt", name)
    try:
        with transaction.atomic():
            prompt = Prompt.objects.create(
                workspace=workspace, name=name, description=description or ""
            )
            if (template or "").strip():
                commit_prompt(
                    prompt=prompt, template=template, message="first version", author=author
                )
    except IntegrityError:
        raise _duplicate("prompt", name) from None
    return prompt


def update_prompt(*, prompt, name=None, description=None) -> Prompt:
    if name is not None and name != prompt.name:
        if Prompt.objects.in_workspace(prompt.workspace).filter(name=name).exists():
            raise _duplicate("prompt", name)
        prompt.name = name
    if description is not None:
        prompt.description = description
    prompt.save()
    return prompt


def create_annotation_queue(
    *, workspace, name, description="", rubric_instructions="", rubric_items=None, queue_id=None
) -> AnnotationQueue:
    try:
        with transaction.atomic():
            return AnnotationQueue.objects.create(
                id=queue_id or uuid.uuid4(),
                workspace=workspace,
                name=name,
                description=description or "",
                rubric_instructions=rubric_instructions or "",
                rubric_items=rubric_items or [],
            )
    except IntegrityError:
        raise ValidationError("That queue id is taken.", code="duplicate") from None


def update_annotation_queue(
    *, queue, name=None, description=None, rubric_instructions=None, rubric_items=None
) -> AnnotationQueue:
    for field, value in (
        ("name", name),
        ("description", description),
        ("rubric_instructions", rubric_instructions),
        ("rubric_items", rubric_items),
    ):
        if value is not None:
            setattr(queue, field, value)
    queue.save()
    return queue


def dequeue_run(*, queue, run_id) -> int:
    """Take a run out of a queue; returns how many entries went (0 or 1)."""
    with transaction.atomic():
        removed, _ = QueuedRun.objects.filter(queue=queue, run_id=run_id).delete()
        if removed:
            AnnotationQueue.objects.filter(pk=queue.pk).update(updated_at=timezone.now())
    return removed


def add_feedback(*, run, key, score=None, value=None, comment="", source=None) -> Feedback:
    """Feedback on a run of this workspace, from the console."""
    return record_feedback(
        workspace=run.workspace,
        run_id=run.id,
        trace_id=run.trace_id,
        project_id=run.project_id,
        key=key,
        score=score,
        value=value,
        comment=comment,
        source=source or {"type": "app"},
    )


def record_feedback(
    *,
    workspace,
    run_id,
    trace_id,
    project_id,
    key,
    score=None,
    value=None,
    comment="",
    correction=None,
    source=None,
    feedback_id=None,
) -> Feedback:
    """Feedback in this workspace. The run may not be ingested yet (the SDK allows that)."""
    try:
        with transaction.atomic():
            return Feedback.objects.create(
                id=feedback_id or uuid.uuid4(),
                workspace=workspace,
                run_id=run_id,
                trace_id=trace_id,
                project_id=project_id,
                key=key,
                score=score,
                value=value,
                comment=comment or "",
                correction=correction,
                feedback_source=source or {"type": "api"},
            )
    except IntegrityError:
        raise ValidationError("That feedback id is taken.", code="duplicate") from None


def delete_resource(resource) -> None:
    """Delete a project, dataset, example, prompt or queue and what hangs off it (cascades)."""
    if not isinstance(resource, (Project, Dataset, Example, Prompt, AnnotationQueue)):
        raise TypeError(f"not a deletable resource: {type(resource).__name__}")
    with transaction.atomic():
        resource.delete()
