"""Every write to a workspace's resources, for the console, the API and fixtures alike.

Each service takes the acting `actor` (ARCHITECTURE §11) and checks its own permission in the
resource's workspace: the gate's check is the first, coarse one, this is the authority. Nothing
crosses the workspace. Resource writes are data, not access, so only deleting a whole resource
(a project, dataset, prompt or queue, with everything under it) is in the audit log. Run ingest
is bulk: a batch of N runs costs a constant number of queries.
"""

import uuid

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from accesscontrol.audit import services as audit
from accesscontrol.resources import models

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


def _check_name_free(model, workspace, name, what) -> None:
    if model.objects.in_workspace(workspace).filter(name=name).exists():
        raise _duplicate(what, name)


def _create_named(model, what, workspace, name, description, pk=None, **fields):
    """Insert a named resource (with the client's id, if it chose one); a name or id already
    taken is a duplicate."""
    _check_name_free(model, workspace, name, what)
    try:
        with transaction.atomic():
            return model.objects.create(
                id=pk or uuid.uuid4(),
                workspace=workspace,
                name=name,
                description=description or "",
                **fields,
            )
    except IntegrityError:
        raise _duplicate(what, name) from None


def _set(resource, **changes):
    """Set the fields given (None: left as it is) and save. In a savepoint of its own: a value
    the database refuses must not leave a caller's transaction unusable."""
    for field, value in changes.items():
        if value is not None:
            setattr(resource, field, value)
    with transaction.atomic():
        resource.save()
    return resource


def _change(resource, what, *, name=None, **changes):
    """`_set`, where a new name must be free in the workspace."""
    if name is not None and name != resource.name:
        _check_name_free(type(resource), resource.workspace, name, what)
    return _set(resource, name=name, **changes)


# Projects


def create_project(
    *, actor, workspace, name, description="", extra=None, project_id=None, upsert=False
) -> models.Project:
    actor.require("projects:create", workspace=workspace)
    if upsert:
        existing = models.Project.objects.in_workspace(workspace).filter(name=name).first()
        if existing is not None:
            return existing
    return _create_named(
        models.Project, "project", workspace, name, description, project_id, extra=extra or {}
    )


def update_project(
    *, actor, project, name=None, description=None, extra=None, end_time=None
) -> models.Project:
    actor.require("projects:update", workspace=project.workspace)
    return _change(
        project, "project", name=name, description=description, extra=extra, end_time=end_time
    )


def _projects_for(workspace, names, ids):
    """Projects by name (created when missing, as LangSmith does on ingest) and by id."""
    by_name = {
        p.name: p for p in models.Project.objects.in_workspace(workspace).filter(name__in=names)
    }
    missing = [n for n in names if n not in by_name]
    if missing:
        models.Project.objects.bulk_create(
            [models.Project(workspace=workspace, name=n) for n in missing], ignore_conflicts=True
        )
        by_name.update(
            {
                p.name: p
                for p in models.Project.objects.in_workspace(workspace).filter(name__in=missing)
            }
        )
    by_id = (
        {p.id: p for p in models.Project.objects.in_workspace(workspace).filter(id__in=ids)}
        if ids
        else {}
    )
    return by_name, by_id


def ingest_runs(*, actor, workspace, posts=(), patches=(), default_project="default") -> dict:
    """Create and complete runs in bulk. Runs are dicts of the API's validated fields.

    A patch of a run posted in the same batch is merged into the post. Posting an id that
    exists is ignored (the SDK retries), as is patching a run this workspace does not have.
    """
    actor.require("runs:create", workspace=workspace)
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

    _inherit_traces(workspace, posts)
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
                models.Run(
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
                    **models.token_usage(p.get("outputs"), p.get("extra")),
                )
            )
        models.Run.objects.bulk_create(runs, batch_size=BULK_BATCH, ignore_conflicts=True)
        updated = _apply_patches(workspace, late_patches)
    return {"created": len(runs), "updated": updated}


def _inherit_traces(workspace, posts) -> None:
    """A child posted without its trace_id (the SDK's create_run sends none) belongs to its
    parent's trace, not to a trace of its own: from a parent in the same batch, or stored."""
    orphans = [p for p in posts if not p.get("trace_id") and p.get("parent_run_id")]
    if not orphans:
        return
    in_batch = {p["id"]: p for p in posts}
    stored = dict(
        models.Run.objects.in_workspace(workspace)
        .filter(id__in={p["parent_run_id"] for p in orphans})
        .values_list("id", "trace_id")
    )

    def trace_of(post, seen):
        parent = post.get("parent_run_id")
        if post.get("trace_id") or parent is None:
            return post.get("trace_id") or post["id"]
        if parent in in_batch and parent not in seen:
            return trace_of(in_batch[parent], seen | {parent})
        return stored.get(parent, post["id"])

    for post in orphans:
        post["trace_id"] = trace_of(post, {post["id"]})


def _apply_patches(workspace, patches) -> int:
    if not patches:
        return 0
    runs = {
        r.id: r
        for r in models.Run.objects.in_workspace(workspace).filter(
            id__in=[p["id"] for p in patches]
        )
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
        if patch.get("outputs") is not None or patch.get("extra") is not None:
            counts = models.token_usage(run.outputs, run.extra)
            for field, value in counts.items():
                setattr(run, field, value)
            fields.update(counts)
        changed.append(run)
    if changed and fields:
        models.Run.objects.bulk_update(changed, sorted(fields), batch_size=BULK_BATCH)
    return len(changed)


# Datasets and examples


def create_dataset(
    *,
    actor,
    workspace,
    name,
    description="",
    data_type="kv",
    metadata=None,
    inputs_schema=None,
    outputs_schema=None,
    dataset_id=None,
) -> models.Dataset:
    actor.require("datasets:create", workspace=workspace)
    return _create_named(
        models.Dataset,
        "dataset",
        workspace,
        name,
        description,
        dataset_id,
        data_type=data_type or "kv",
        metadata=metadata,
        inputs_schema_definition=inputs_schema,
        outputs_schema_definition=outputs_schema,
    )


def update_dataset(*, actor, dataset, name=None, description=None, metadata=None) -> models.Dataset:
    actor.require("datasets:update", workspace=dataset.workspace)
    return _change(dataset, "dataset", name=name, description=description, metadata=metadata)


def _splits(split):
    if split is None:
        return ["base"]
    return [split] if isinstance(split, str) else list(split)


def create_examples(*, actor, workspace, examples) -> list[models.Example]:
    """Examples of one or more datasets of this workspace, in one insert."""
    actor.require("datasets:update", workspace=workspace)
    dataset_ids = {e["dataset_id"] for e in examples}
    found = set(
        models.Dataset.objects.in_workspace(workspace)
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
        models.Example(
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
            models.Example.objects.bulk_create(rows, batch_size=BULK_BATCH)
    except IntegrityError:
        raise ValidationError(
            "An example with one of these ids exists already.", code="duplicate"
        ) from None
    return rows


def update_example(
    *, actor, example, inputs=None, outputs=None, metadata=None, split=None
) -> models.Example:
    actor.require("datasets:update", workspace=example.workspace)
    split = None if split is None else _splits(split)
    return _set(example, inputs=inputs, outputs=outputs, metadata=metadata, split=split)


# Prompts


def _check_template(template) -> None:
    if not (template or "").strip():
        raise ValidationError({"template": "The template is empty."})


def _commit(actor, prompt, template, message) -> models.PromptCommit:
    commit = models.PromptCommit.objects.create(
        prompt=prompt, template=template, message=message or "", created_by=actor.label
    )
    prompt.save(update_fields=["updated_at"])
    return commit


def commit_prompt(*, actor, prompt, template, message="") -> models.PromptCommit:
    """A new version of the prompt, written by the actor."""
    actor.require("prompts:update", workspace=prompt.workspace)
    _check_template(template)
    with transaction.atomic():
        return _commit(actor, prompt, template, message)


def create_prompt(*, actor, workspace, name, description="", template=None) -> models.Prompt:
    """A prompt and, when a template is given, its first version; a blank template writes
    nothing (the API once kept the prompt while refusing its template)."""
    actor.require("prompts:create", workspace=workspace)
    if template is not None:
        _check_template(template)
    with transaction.atomic():
        prompt = _create_named(models.Prompt, "prompt", workspace, name, description)
        if template is not None:
            _commit(actor, prompt, template, "first version")
    return prompt


def update_prompt(*, actor, prompt, name=None, description=None) -> models.Prompt:
    actor.require("prompts:update", workspace=prompt.workspace)
    return _change(prompt, "prompt", name=name, description=description)


# Annotation queues


def _touch(queue) -> None:
    models.AnnotationQueue.objects.filter(pk=queue.pk).update(updated_at=timezone.now())


def queue_runs(*, actor, queue, run_ids) -> int:
    """Add runs of the queue's workspace; any id it does not have makes the whole call fail."""
    actor.require("annotation-queues:update", workspace=queue.workspace)
    run_ids = set(run_ids)
    runs = list(
        models.Run.objects.in_workspace(queue.workspace)
        .filter(id__in=run_ids)
        .values_list("id", flat=True)
    )
    if len(runs) != len(run_ids):
        raise ValidationError(
            {"run_ids": ValidationError("No such run in this workspace.", code="not_found")}
        )
    with transaction.atomic():
        models.QueuedRun.objects.bulk_create(
            [models.QueuedRun(queue=queue, run_id=r) for r in runs], ignore_conflicts=True
        )
        _touch(queue)
    return len(runs)


def dequeue_run(*, actor, queue, run_id) -> int:
    """Take a run out of a queue; returns how many entries went (0 or 1)."""
    actor.require("annotation-queues:update", workspace=queue.workspace)
    with transaction.atomic():
        removed, _ = models.QueuedRun.objects.filter(queue=queue, run_id=run_id).delete()
        if removed:
            _touch(queue)
    return removed


def create_annotation_queue(
    *,
    actor,
    workspace,
    name,
    description="",
    rubric_instructions="",
    rubric_items=None,
    queue_id=None,
) -> models.AnnotationQueue:
    actor.require("annotation-queues:create", workspace=workspace)
    try:
        with transaction.atomic():
            return models.AnnotationQueue.objects.create(
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
    *, actor, queue, name=None, description=None, rubric_instructions=None, rubric_items=None
) -> models.AnnotationQueue:
    """Queue names need not be unique (LangSmith allows twins)."""
    actor.require("annotation-queues:update", workspace=queue.workspace)
    return _set(
        queue,
        name=name,
        description=description,
        rubric_instructions=rubric_instructions,
        rubric_items=rubric_items,
    )


# Feedback


def add_feedback(*, actor, run, key, score=None, value=None, comment="") -> models.Feedback:
    """Feedback on a run of this workspace, from the console: the source names the person."""
    actor.require("feedback:create", workspace=run.workspace)
    return _save_feedback(
        workspace=run.workspace,
        run_id=run.id,
        trace_id=run.trace_id,
        project_id=run.project_id,
        key=key,
        score=score,
        value=value,
        comment=comment,
        source={"type": "app"} if actor.is_system else {"type": "app", "user": actor.label},
    )


def record_feedback(
    *,
    actor,
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
) -> models.Feedback:
    """Feedback in this workspace. The run may not be ingested yet (the SDK allows that).

    It never links to another workspace's project: one not here is dropped, and the project
    is then the run's, when the run is here.
    """
    actor.require("feedback:create", workspace=workspace)
    if (
        project_id is not None
        and not models.Project.objects.in_workspace(workspace).filter(pk=project_id).exists()
    ):
        project_id = None
    if project_id is None and run_id is not None:
        project_id = (
            models.Run.objects.in_workspace(workspace)
            .filter(pk=run_id)
            .values_list("project_id", flat=True)
            .first()
        )
    return _save_feedback(
        workspace=workspace,
        run_id=run_id,
        trace_id=trace_id,
        project_id=project_id,
        key=key,
        score=score,
        value=value,
        comment=comment,
        correction=correction,
        source=source or {"type": "api"},
        feedback_id=feedback_id,
    )


def _save_feedback(*, feedback_id=None, comment="", source, **fields) -> models.Feedback:
    try:
        with transaction.atomic():
            return models.Feedback.objects.create(
                id=feedback_id or uuid.uuid4(),
                comment=comment or "",
                feedback_source=source,
                **fields,
            )
    except IntegrityError:
        raise ValidationError("That feedback id is taken.", code="duplicate") from None


def update_feedback(*, actor, feedback, changes: dict) -> models.Feedback:
    """Set the fields in `changes` (null clears a score, value or correction)."""
    actor.require("feedback:update", workspace=feedback.workspace)
    for field, value in changes.items():
        if field == "score" and value is not None:
            value = float(value)
        if field == "comment":
            value = value or ""
        setattr(feedback, field, value)
    with transaction.atomic():
        feedback.save()
    return feedback


# Deleting

# What deleting each kind of resource needs, and its audit event (None: data, not audited).
DELETION = {
    models.Project: ("projects:delete", "project.deleted"),
    models.Dataset: ("datasets:delete", "dataset.deleted"),
    models.Example: ("datasets:update", None),
    models.Prompt: ("prompts:delete", "prompt.deleted"),
    models.AnnotationQueue: ("annotation-queues:delete", "annotation_queue.deleted"),
    models.Feedback: ("feedback:delete", None),
}


def delete_resource(*, actor, resource) -> None:
    """Delete a resource and what hangs off it (cascades); whole resources are audited."""
    if type(resource) not in DELETION:
        raise TypeError(f"not a deletable resource: {type(resource).__name__}")
    permission, action = DELETION[type(resource)]
    actor.require(permission, workspace=resource.workspace)
    with transaction.atomic():
        if action is not None:
            audit.record(actor, action, resource, workspace=resource.workspace)
        resource.delete()
