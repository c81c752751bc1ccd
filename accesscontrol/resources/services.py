"""Every write to a workspace's resources, for the console, the API and fixtures alike.

Each service takes the acting `actor` (ARCHITECTURE §11) and checks its own permission in the
resource's workspace: the gate's check is the first, coarse one, this is the authority. Nothing
crosses the workspace. Resource writes are data, not access, so only deleting a whole resource
(a project, dataset, prompt or queue, with everything under it) is in the audit log. Run ingest
is bulk: a batch of N runs costs a constant number of queries.
"""

import csv
import datetime
import io
import uuid

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from accesscontrol import writes
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


def _check_name(name) -> None:
    """A name must say something: the console's form refuses one of only spaces, as the
    services of workspaces, roles and keys do; the API's schemas only count characters."""
    if name is not None and not name.strip():
        raise ValidationError({"name": "A name is required."})


def _check_name_free(model, workspace, name, what) -> None:
    if model.objects.in_workspace(workspace).filter(name=name).exists():
        raise _duplicate(what, name)


def _create_named(model, what, workspace, name, description, pk=None, **fields):
    """Insert a named resource (with the client's id, if it chose one); a name or id already
    taken is a duplicate."""
    _check_name(name)
    _check_name_free(model, workspace, name, what)
    with writes.unique_or(_duplicate(what, name)):
        return model.objects.create(
            id=pk or uuid.uuid4(),
            workspace=workspace,
            name=name,
            description=description or "",
            **fields,
        )


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
    _check_name(name)
    if name is not None and name != resource.name:
        _check_name_free(type(resource), resource.workspace, name, what)
    return _set(resource, name=name, **changes)


# Projects


def create_project(
    *,
    actor,
    workspace,
    name,
    description="",
    extra=None,
    project_id=None,
    upsert=False,
    reference_dataset_id=None,
) -> models.Project:
    """A project; with `reference_dataset_id`, an experiment on that dataset of this workspace
    (another workspace's dataset is not found)."""
    actor.require("projects:create", workspace=workspace)
    reference_dataset = None
    if reference_dataset_id is not None:
        reference_dataset = (
            models.Dataset.objects.in_workspace(workspace).filter(pk=reference_dataset_id).first()
        )
        if reference_dataset is None:
            raise _no_such("reference_dataset_id", "dataset")
    if upsert:
        existing = models.Project.objects.in_workspace(workspace).filter(name=name).first()
        if existing is not None:
            return existing
    return _create_named(
        models.Project,
        "project",
        workspace,
        name,
        description,
        project_id,
        extra=extra or {},
        reference_dataset=reference_dataset,
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
    """Examples of one or more datasets of this workspace, in one insert; each dataset they
    go to gets a new version."""
    actor.require("datasets:update", workspace=workspace)
    dataset_ids = {e["dataset_id"] for e in examples}
    datasets = models.Dataset.objects.in_workspace(workspace).filter(id__in=dataset_ids)
    if len(datasets) != len(dataset_ids):
        raise _no_such("dataset_id", "dataset")
    with transaction.atomic():
        return _insert_examples(workspace, examples)


def _no_such(field, what):
    # The code goes on the inner error: Django drops it from a dict-shaped one.
    return ValidationError(
        {field: ValidationError(f"No such {what} in this workspace.", code="not_found")}
    )


def _insert_examples(workspace, examples) -> list[models.Example]:
    """Insert examples of datasets already checked to be the workspace's, and version them.
    The caller holds the transaction."""
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
            modified_at=now,
        )
        for e in examples
    ]
    with writes.unique_or(
        ValidationError("An example with one of these ids exists already.", code="duplicate")
    ):
        models.Example.objects.bulk_create(rows, batch_size=BULK_BATCH)
    _version(rows)
    return rows


def update_example(
    *, actor, example, inputs=None, outputs=None, metadata=None, split=None
) -> models.Example:
    actor.require("datasets:update", workspace=example.workspace)
    split = None if split is None else _splits(split)
    with transaction.atomic():
        _set(example, inputs=inputs, outputs=outputs, metadata=metadata, split=split)
        _version([example])
    return example


# Dataset curation: bulk changes, splits, versions and tags, CSV upload.

EXAMPLE_CHANGES = ("inputs", "outputs", "metadata", "split")


def _version(changed=(), deleted=()) -> dict:
    """A new version of each dataset the changed or deleted examples belong to, holding what
    they are now; {dataset id: version}. In the caller's transaction.

    Versions are made at whole milliseconds, the precision the API writes times with, so a
    client that sends back a version's `as_of` (to tag it, or to read as of it) names it
    exactly; the changed examples' `modified_at` is their version's. The dataset rows are
    locked, so concurrent changes to a dataset get versions one after the other, each later
    than the last (a clock that did not move is nudged by a millisecond).
    """
    by_dataset = {}
    for example in changed:
        by_dataset.setdefault(example.dataset_id, ([], []))[0].append(example)
    for example in deleted:
        by_dataset.setdefault(example.dataset_id, ([], []))[1].append(example)
    if not by_dataset:
        return {}
    list(models.Dataset.objects.select_for_update().filter(pk__in=by_dataset).order_by("pk"))
    latest = dict(
        models.DatasetVersion.objects.filter(dataset_id__in=by_dataset)
        .values("dataset_id")
        .annotate(last=Max("as_of"))
        .values_list("dataset_id", "last")
    )
    now = timezone.now()
    now = now.replace(microsecond=now.microsecond // 1000 * 1000)
    versions, revisions = {}, []
    for dataset_id, (changed_here, deleted_here) in by_dataset.items():
        last = latest.get(dataset_id)
        as_of = now if last is None or now > last else last + datetime.timedelta(milliseconds=1)
        version = models.DatasetVersion(dataset_id=dataset_id, as_of=as_of)
        versions[dataset_id] = version
        for example in changed_here:
            example.modified_at = as_of
        models.Example.objects.filter(pk__in=[e.pk for e in changed_here]).update(modified_at=as_of)
        for example, gone in [(e, False) for e in changed_here] + [(e, True) for e in deleted_here]:
            revisions.append(
                models.ExampleRevision(
                    version=version,
                    dataset_id=dataset_id,
                    example_id=example.pk,
                    as_of=as_of,
                    deleted=gone,
                    **{field: getattr(example, field) for field in models.ExampleRevision.KEPT},
                )
            )
    models.DatasetVersion.objects.bulk_create(versions.values())
    models.ExampleRevision.objects.bulk_create(revisions, batch_size=BULK_BATCH)
    models.Dataset.objects.filter(pk__in=by_dataset).update(modified_at=now)
    return versions


def _examples_by_id(workspace, example_ids, dataset=None) -> list[models.Example]:
    """The workspace's examples with these ids (of `dataset`, if given), locked for the change;
    any id it does not have makes the whole call a 404 that changes nothing."""
    wanted = set(example_ids)
    qs = models.Example.objects.in_workspace(workspace).filter(id__in=wanted)
    if dataset is not None:
        qs = qs.filter(dataset=dataset)
    found = list(qs.select_for_update().order_by("pk"))
    if len(found) != len(wanted):
        raise _no_such("example_ids", "example" if dataset is None else "example in this dataset")
    return found


def update_examples(*, actor, workspace, updates, dataset=None) -> list[models.Example]:
    """Change many examples at once (`updates`: dicts with `id` and the fields to set; a field
    left out or null is left as it is). All of them change, or none."""
    actor.require("datasets:update", workspace=workspace)
    ids = [u["id"] for u in updates]
    if len(set(ids)) != len(ids):
        raise ValidationError({"id": "An example appears twice in the same update."})
    with transaction.atomic():
        examples = {e.pk: e for e in _examples_by_id(workspace, ids, dataset)}
        now = timezone.now()
        for update in updates:
            example = examples[update["id"]]
            moved_to = update.get("dataset_id")
            if moved_to is not None and moved_to != example.dataset_id:
                raise ValidationError(
                    {"dataset_id": "Moving an example to another dataset is not supported."}
                )
            for field in EXAMPLE_CHANGES:
                value = update.get(field)
                if value is not None:
                    setattr(example, field, _splits(value) if field == "split" else value)
            example.modified_at = now
        changed = list(examples.values())
        models.Example.objects.bulk_update(
            changed, [*EXAMPLE_CHANGES, "modified_at"], batch_size=BULK_BATCH
        )
        _version(changed)
    return [examples[i] for i in ids]


def delete_examples(*, actor, workspace, example_ids, dataset=None) -> int:
    """Delete examples: the latest version of their dataset no longer has them, earlier ones
    still do (reading as of an earlier time shows them)."""
    actor.require("datasets:update", workspace=workspace)
    with transaction.atomic():
        examples = _examples_by_id(workspace, example_ids, dataset)
        _version(deleted=examples)
        models.Example.objects.filter(pk__in=[e.pk for e in examples]).delete()
    return len(examples)


def purge_examples(*, actor, workspace, example_ids) -> int:
    """Delete examples and every version of them (LangSmith's hard delete): no read as of any
    time shows them again. Ids of examples deleted earlier, whose history remains, count."""
    actor.require("datasets:update", workspace=workspace)
    wanted = set(example_ids)
    history = models.ExampleRevision.objects.filter(
        dataset__workspace=workspace, example_id__in=wanted
    )
    with transaction.atomic():
        present = set(
            models.Example.objects.in_workspace(workspace)
            .filter(id__in=wanted)
            .values_list("id", flat=True)
        )
        if wanted - present - set(history.values_list("example_id", flat=True)):
            raise _no_such("example_ids", "example")
        models.Example.objects.in_workspace(workspace).filter(id__in=present).delete()
        history.delete()
    return len(wanted)


def change_split(*, actor, dataset, split_name, example_ids, remove=False) -> list[str]:
    """Put examples of the dataset into a split, or take them out; returns their ids."""
    return [
        status["id"]
        for status in change_example_metadata(
            actor=actor,
            dataset=dataset,
            example_ids=example_ids,
            operations=[
                {
                    "key": SPLIT_KEY,
                    "operation": "ARRAY_REMOVE" if remove else "ARRAY_ADD",
                    "values": [split_name],
                }
            ],
            missing_is_an_error=True,
        )
    ]


SPLIT_KEY = "dataset_split"  # LangSmith keeps an example's splits under this metadata key


def _apply_operation(example, operation) -> None:
    key, kind = operation["key"], operation["operation"].upper()
    if key == SPLIT_KEY:
        current = list(example.split or ["base"])
    else:
        metadata = dict(example.metadata or {})
        current = metadata.get(key)
        current = list(current) if isinstance(current, list) else []
    if kind == "SET":
        if key == SPLIT_KEY:
            example.split = _splits(operation.get("value"))
        else:
            example.metadata = {**(example.metadata or {}), key: operation.get("value")}
        return
    values = operation.get("values") or []
    if kind == "ARRAY_ADD":
        current += [v for v in values if v not in current]
    else:  # ARRAY_REMOVE
        current = [v for v in current if v not in values]
    if key == SPLIT_KEY:
        example.split = current
    else:
        example.metadata = {**(example.metadata or {}), key: current}


def change_example_metadata(
    *, actor, dataset, example_ids, operations, missing_is_an_error=False
) -> list[dict]:
    """Apply metadata operations (SET, ARRAY_ADD, ARRAY_REMOVE of a key; `dataset_split` is
    the example's splits) to examples of the dataset, in one version. Ids it does not have are
    reported NOT_FOUND, as LangSmith does, or refused when `missing_is_an_error`."""
    actor.require("datasets:update", workspace=dataset.workspace)
    with transaction.atomic():
        qs = models.Example.objects.in_workspace(dataset.workspace).filter(
            dataset=dataset, id__in=set(example_ids)
        )
        examples = {e.pk: e for e in qs.select_for_update().order_by("pk")}
        if missing_is_an_error and len(examples) != len(set(example_ids)):
            raise _no_such("example_ids", "example in this dataset")
        now = timezone.now()
        for example in examples.values():
            for operation in operations:
                _apply_operation(example, operation)
            example.modified_at = now
        models.Example.objects.bulk_update(
            list(examples.values()), ["metadata", "split", "modified_at"], batch_size=BULK_BATCH
        )
        _version(list(examples.values()))
    return [
        {"id": i, "status": "UPDATED"}
        if i in examples
        else {"id": i, "status": "NOT_FOUND", "description": "Not an example of this dataset."}
        for i in example_ids
    ]


def tag_version(*, actor, dataset, as_of, tag) -> models.DatasetVersion:
    """Put `tag` on the dataset's version made exactly at `as_of`, moving it from any other."""
    actor.require("datasets:update", workspace=dataset.workspace)
    with transaction.atomic():
        versions = list(models.DatasetVersion.objects.select_for_update().filter(dataset=dataset))
        target = next((v for v in versions if v.as_of == as_of), None)
        if target is None:
            raise ValidationError(
                {
                    "as_of": ValidationError(
                        "This dataset has no version made at exactly that time: read one with "
                        "GET /datasets/{id}/version?as_of=... and tag its as_of.",
                        code="not_found",
                    )
                }
            )
        for version in versions:
            tags = [t for t in version.tags if t != tag]
            if version is target:
                tags.append(tag)
            if tags != version.tags:
                version.tags = tags
                version.save(update_fields=["tags"])
    return target


def upload_csv(
    *,
    actor,
    workspace,
    content: bytes,
    input_keys,
    output_keys,
    name,
    description="",
    data_type="kv",
    dataset_id=None,
) -> models.Dataset:
    """A dataset whose examples are the rows of a CSV file: `input_keys` columns are the
    inputs, `output_keys` the outputs (as text). Nothing is written unless every row is."""
    actor.require("datasets:create", workspace=workspace)
    rows = _csv_rows(content, input_keys, output_keys)
    with transaction.atomic():
        dataset = create_dataset(
            actor=actor,
            workspace=workspace,
            name=name,
            description=description,
            data_type=data_type,
            dataset_id=dataset_id,
        )
        _insert_examples(
            workspace,
            [
                {
                    "dataset_id": dataset.pk,
                    "inputs": {k: row[k] for k in input_keys},
                    "outputs": {k: row[k] for k in output_keys},
                }
                for row in rows
            ],
        )
    return dataset


def _csv_rows(content: bytes, input_keys, output_keys) -> list[dict]:
    try:
        text = content.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ValidationError({"file": "The file is not UTF-8 text."}) from None
    if "\x00" in text:
        raise ValidationError({"file": "The file holds a NUL character."})
    try:
        reader = csv.DictReader(io.StringIO(text, newline=""))
        columns = reader.fieldnames or []
        rows = list(reader)
    except csv.Error as exc:
        raise ValidationError({"file": f"Not a readable CSV file: {exc}"}) from None
    if not input_keys:
        raise ValidationError({"input_keys": "Name at least one input column."})
    keys = [*input_keys, *output_keys]
    if len(set(keys)) != len(keys):
        raise ValidationError({"input_keys": "A column is named twice in input and output keys."})
    missing = [k for k in keys if k not in columns]
    if missing:
        raise ValidationError(
            {
                "input_keys" if missing[0] in input_keys else "output_keys": (
                    f"The file has no column {missing[0]!r} (its columns: {', '.join(columns)})."
                )
            }
        )
    if not rows:
        raise ValidationError({"file": "The file has a header but no rows."})
    for number, row in enumerate(rows, start=2):
        if None in row or any(row[k] is None for k in keys):
            raise ValidationError({"file": f"Line {number} does not have one value per column."})
    return rows


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
    _check_name(name)
    with writes.unique_or(ValidationError("That queue id is taken.", code="duplicate")):
        return models.AnnotationQueue.objects.create(
            id=queue_id or uuid.uuid4(),
            workspace=workspace,
            name=name,
            description=description or "",
            rubric_instructions=rubric_instructions or "",
            rubric_items=rubric_items or [],
        )


def update_annotation_queue(
    *, actor, queue, name=None, description=None, rubric_instructions=None, rubric_items=None
) -> models.AnnotationQueue:
    """Queue names need not be unique (LangSmith allows twins)."""
    actor.require("annotation-queues:update", workspace=queue.workspace)
    _check_name(name)
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


def _check_feedback_key(key, *, field="key") -> None:
    """What is judged must be named (the console's form insists): every feedback write, and
    every presigned token that will make one (sharing.py), passes here. `field`: the caller's
    name for it. Not a write, so private here (this module's public names are its writes)."""
    if not (key or "").strip():
        raise ValidationError({field: "Name what is judged, e.g. “correctness”."})


def _save_feedback(*, feedback_id=None, comment="", source, **fields) -> models.Feedback:
    _check_feedback_key(fields["key"])
    with writes.unique_or(ValidationError("That feedback id is taken.", code="duplicate")):
        return models.Feedback.objects.create(
            id=feedback_id or uuid.uuid4(),
            comment=comment or "",
            feedback_source=source,
            **fields,
        )


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
    if isinstance(resource, models.Example):  # the dataset's versions keep it
        delete_examples(actor=actor, workspace=resource.workspace, example_ids=[resource.pk])
        return
    permission, action = DELETION[type(resource)]
    actor.require(permission, workspace=resource.workspace)
    with transaction.atomic():
        if action is not None:
            audit.record(actor, action, resource, workspace=resource.workspace)
        resource.delete()
