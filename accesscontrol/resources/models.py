"""The protected resources of a workspace, shaped like LangSmith's.

Every model carries its workspace, and every lookup goes through `in_workspace(ws)`: an object
of another workspace is simply not found. Ids are UUIDs the client may choose (the SDK does),
so they are unique across tenants; writes are always scoped, so a guessed id changes nothing.
"""

import uuid

from django.contrib.postgres.indexes import OpClass
from django.db import models
from django.db.models.fields.json import KeyTransform
from django.utils import timezone


class JsonbGinIndex(models.Index):
    """A GIN index (give it OpClass(expression, "jsonb_path_ops")): jsonb containment (@>).

    PostgreSQL only: its migration creates it there and nowhere else (SQLite has no GIN).
    """

    def create_sql(self, model, schema_editor, using="", **kwargs):
        return super().create_sql(model, schema_editor, using=" USING gin", **kwargs)


class ScopedQuerySet(models.QuerySet):
    def in_workspace(self, workspace):
        return self.filter(workspace=workspace)


class WorkspaceOwned(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    workspace = models.ForeignKey(
        "workspaces.Workspace", on_delete=models.CASCADE, related_name="+"
    )

    objects = ScopedQuerySet.as_manager()

    class Meta:
        abstract = True


class Project(WorkspaceOwned):
    """A tracing project (LangSmith: "session")."""

    name = models.CharField(max_length=255)
    description = models.TextField(blank=True)
    extra = models.JSONField(default=dict, blank=True)
    reference_dataset = models.ForeignKey(
        "Dataset", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    start_time = models.DateTimeField(default=timezone.now)
    end_time = models.DateTimeField(null=True, blank=True)  # an experiment's end, set by the SDK
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-start_time"]
        constraints = [
            models.UniqueConstraint(
                fields=["workspace", "name"], name="project_name_unique_in_workspace"
            )
        ]

    def __str__(self):
        return self.name


class Run(WorkspaceOwned):
    """One span of a trace. Parent and trace are plain ids: runs arrive in any order."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="runs")
    trace_id = models.UUIDField()
    parent_run_id = models.UUIDField(null=True, blank=True)
    dotted_order = models.CharField(max_length=4000, blank=True)
    name = models.CharField(max_length=255)
    run_type = models.CharField(max_length=32)
    inputs = models.JSONField(default=dict, blank=True)
    outputs = models.JSONField(null=True, blank=True)
    error = models.TextField(null=True, blank=True)  # noqa: DJ001  (null = no error, as LangSmith)
    start_time = models.DateTimeField()
    end_time = models.DateTimeField(null=True, blank=True)
    tags = models.JSONField(default=list, blank=True)
    extra = models.JSONField(default=dict, blank=True)
    events = models.JSONField(default=list, blank=True)
    reference_example_id = models.UUIDField(null=True, blank=True)
    # Token counts, read from the outputs/metadata at ingestion (see token_usage) so filters
    # and /runs/stats sum columns rather than parse JSON.
    prompt_tokens = models.BigIntegerField(null=True, blank=True)
    completion_tokens = models.BigIntegerField(null=True, blank=True)
    total_tokens = models.BigIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-start_time"]
        indexes = [
            models.Index(fields=["workspace", "project", "-start_time"]),
            models.Index(fields=["workspace", "trace_id"]),
            # POST /runs/query without a project, newest first; and children of a run.
            models.Index(fields=["workspace", "-start_time"], name="run_ws_start_time"),
            models.Index(fields=["workspace", "parent_run_id"], name="run_ws_parent"),
            # has(tags, ...) and metadata filters are jsonb containment (@>); PostgreSQL only
            # (migration 0003 creates them there, see its note).
            JsonbGinIndex(OpClass("tags", name="jsonb_path_ops"), name="run_tags_gin"),
            JsonbGinIndex(
                OpClass(KeyTransform("metadata", "extra"), name="jsonb_path_ops"),
                name="run_metadata_gin",
            ),
        ]

    def __str__(self):
        return f"{self.name} ({self.run_type})"

    @property
    def status(self) -> str:
        if self.error:
            return "error"
        return "success" if self.end_time else "pending"

    @property
    def metadata(self) -> dict:
        return (self.extra or {}).get("metadata", {})


def token_usage(outputs, extra) -> dict:
    """A run's prompt/completion/total tokens where the SDKs put them: `usage_metadata` in the
    outputs or the metadata (wrap_openai, @traceable), or LangChain's llm_output.token_usage.
    Counts that are not non-negative integers are ignored."""

    def count(value):
        return (
            value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None
        )

    outputs = outputs if isinstance(outputs, dict) else {}
    metadata = (extra or {}).get("metadata") if isinstance(extra, dict) else None
    for usage in (
        outputs.get("usage_metadata"),
        metadata.get("usage_metadata") if isinstance(metadata, dict) else None,
    ):
        if isinstance(usage, dict):
            prompt, completion = count(usage.get("input_tokens")), count(usage.get("output_tokens"))
            total = count(usage.get("total_tokens"))
            break
    else:
        llm_output = outputs.get("llm_output")
        usage = llm_output.get("token_usage") if isinstance(llm_output, dict) else None
        if not isinstance(usage, dict):
            return {"prompt_tokens": None, "completion_tokens": None, "total_tokens": None}
        prompt, completion = (
            count(usage.get("prompt_tokens")),
            count(usage.get("completion_tokens")),
        )
        total = count(usage.get("total_tokens"))
    if total is None and (prompt is not None or completion is not None):
        total = (prompt or 0) + (completion or 0)
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": total}


class Dataset(WorkspaceOwned):
    DATA_TYPES = [("kv", "Key-value"), ("llm", "LLM"), ("chat", "Chat")]

    name = models.CharField(max_length=255)
    description = models.TextField(blank=True)
    data_type = models.CharField(max_length=8, choices=DATA_TYPES, default="kv")
    metadata = models.JSONField(null=True, blank=True)
    inputs_schema_definition = models.JSONField(null=True, blank=True)
    outputs_schema_definition = models.JSONField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    modified_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["workspace", "name"], name="dataset_name_unique_in_workspace"
            )
        ]

    def __str__(self):
        return self.name


class Example(WorkspaceOwned):
    dataset = models.ForeignKey(Dataset, on_delete=models.CASCADE, related_name="examples")
    inputs = models.JSONField(default=dict)
    outputs = models.JSONField(null=True, blank=True)
    metadata = models.JSONField(null=True, blank=True)
    split = models.JSONField(default=list, blank=True)  # LangSmith: a list of split names
    source_run_id = models.UUIDField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    modified_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["created_at", "id"]
        indexes = [models.Index(fields=["workspace", "dataset", "created_at"])]

    def __str__(self):
        return f"example {self.id}"


class DatasetVersion(models.Model):
    """One state of a dataset's examples. Every change to its examples makes one (as LangSmith
    does); `tags` name it ("prod"), and a tag is on one version of a dataset at a time.

    Reached only through its dataset, which carries the workspace."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    dataset = models.ForeignKey(Dataset, on_delete=models.CASCADE, related_name="versions")
    as_of = models.DateTimeField()
    tags = models.JSONField(default=list, blank=True)

    class Meta:
        ordering = ["-as_of"]
        constraints = [
            models.UniqueConstraint(fields=["dataset", "as_of"], name="one_version_per_instant")
        ]

    def __str__(self):
        return f"{self.dataset_id} as of {self.as_of.isoformat()}"


class ExampleRevision(models.Model):
    """An example as a version left it (`deleted`: that version removed it).

    Reading a dataset as of a time takes, for each example, its newest revision at or before
    that time. The example id is a plain id: the revision outlives the example's row.
    """

    # What a revision keeps of its example, under the example's own names.
    KEPT = ("inputs", "outputs", "metadata", "split", "source_run_id", "created_at")

    version = models.ForeignKey(DatasetVersion, on_delete=models.CASCADE, related_name="revisions")
    dataset = models.ForeignKey(Dataset, on_delete=models.CASCADE, related_name="+")
    example_id = models.UUIDField()
    as_of = models.DateTimeField()  # the version's, here so one index serves the as-of read
    deleted = models.BooleanField(default=False)
    inputs = models.JSONField(default=dict)
    outputs = models.JSONField(null=True, blank=True)
    metadata = models.JSONField(null=True, blank=True)
    split = models.JSONField(default=list, blank=True)
    source_run_id = models.UUIDField(null=True, blank=True)
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["as_of", "id"]
        indexes = [models.Index(fields=["dataset", "example_id", "as_of"])]

    def __str__(self):
        return f"{self.example_id} as of {self.as_of.isoformat()}"

    def as_example(self) -> Example:
        """The example as it was (unsaved: it is read, never written back)."""
        return Example(
            id=self.example_id,
            workspace_id=self.dataset.workspace_id,
            dataset_id=self.dataset_id,
            modified_at=self.as_of,
            **{field: getattr(self, field) for field in self.KEPT},
        )


class Feedback(WorkspaceOwned):
    """A judgement on a run. The run may not be ingested yet, so it is referenced by id."""

    run_id = models.UUIDField(null=True, blank=True, db_index=True)
    trace_id = models.UUIDField(null=True, blank=True)
    project = models.ForeignKey(
        Project, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    key = models.CharField(max_length=255)
    score = models.FloatField(null=True, blank=True)
    value = models.JSONField(null=True, blank=True)
    comment = models.TextField(blank=True)
    correction = models.JSONField(null=True, blank=True)
    feedback_source = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    modified_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]
        # feedback_key/feedback_score filters: the runs with feedback of a key.
        indexes = [models.Index(fields=["workspace", "key", "run_id"], name="feedback_ws_key_run")]

    def __str__(self):
        return f"{self.key} on {self.run_id}"

    @property
    def source_label(self) -> str:
        """Who gave it: the SDK sends any shape of source, so nothing here may be assumed."""
        source = self.feedback_source if isinstance(self.feedback_source, dict) else {}
        return str(source.get("user") or source.get("type") or "api")


class Prompt(WorkspaceOwned):
    name = models.CharField(max_length=255)
    description = models.TextField(blank=True)
    # The prompt hub's fields (LangSmith "repos"). Prompts are never public: a share link is
    # the only way out of the workspace.
    readme = models.TextField(blank=True)
    tags = models.JSONField(default=list, blank=True)
    is_archived = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(
                fields=["workspace", "name"], name="prompt_name_unique_in_workspace"
            )
        ]

    def __str__(self):
        return self.name


class PromptCommit(models.Model):
    """One version of a prompt's template; the newest is the prompt's current version."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    prompt = models.ForeignKey(Prompt, on_delete=models.CASCADE, related_name="commits")
    template = models.TextField()
    # The LangChain manifest pushed through the prompt hub; None for a commit made from a
    # plain template (its manifest is then a PromptTemplate built from the template).
    manifest = models.JSONField(null=True, blank=True)
    parent = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    message = models.CharField(max_length=1000, blank=True)
    created_by = models.CharField(max_length=255, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self):
        return f"{self.prompt_id}:{self.commit_hash}"

    @property
    def commit_hash(self) -> str:
        return self.id.hex[:8]


class PromptTag(models.Model):
    """A name for one commit of a prompt (pull `name:tag`); moving a tag re-points it."""

    prompt = models.ForeignKey(Prompt, on_delete=models.CASCADE, related_name="tags_of_commits")
    name = models.CharField(max_length=255)
    commit = models.ForeignKey(PromptCommit, on_delete=models.CASCADE, related_name="tags")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]
        constraints = [models.UniqueConstraint(fields=["prompt", "name"], name="prompt_tag_unique")]

    def __str__(self):
        return f"{self.prompt_id}:{self.name}"


class ShareLink(WorkspaceOwned):
    """A public, read-only link to one run, dataset or prompt.

    The token is the capability and is shown again to whoever may share the object (the SDK
    reads it back with GET .../share), so it is stored as it is; revoking sets `revoked_at`,
    and a revoked link is refused on its next request. One live link per object.
    """

    RUN, DATASET, PROMPT = "run", "dataset", "prompt"
    KINDS = [(RUN, "Run"), (DATASET, "Dataset"), (PROMPT, "Prompt")]

    kind = models.CharField(max_length=16, choices=KINDS)
    object_id = models.UUIDField()
    token = models.UUIDField(unique=True)
    created_by = models.CharField(max_length=255, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["workspace", "kind", "object_id"],
                condition=models.Q(revoked_at__isnull=True),
                name="one_live_share_link_per_object",
            )
        ]

    def __str__(self):
        return f"{self.kind} {self.object_id} share link"


class FeedbackToken(WorkspaceOwned):
    """A presigned URL that records one piece of feedback on one run, without an API key.

    Only the SHA-256 digest of the token is stored; the token is shown once, in its URL. It is
    single-use: the feedback it records carries `feedback_id`, so a second use is refused.
    """

    digest = models.CharField(max_length=64, unique=True)
    run_id = models.UUIDField()
    feedback_key = models.CharField(max_length=255)
    feedback_config = models.JSONField(null=True, blank=True)
    feedback_id = models.UUIDField(default=uuid.uuid4)
    created_by = models.CharField(max_length=255, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self):
        return f"feedback token for {self.feedback_key} on {self.run_id}"


class AnnotationQueue(WorkspaceOwned):
    name = models.CharField(max_length=255)
    description = models.TextField(blank=True)
    rubric_instructions = models.TextField(blank=True)
    rubric_items = models.JSONField(default=list, blank=True)
    runs = models.ManyToManyField(Run, through="QueuedRun", related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self):
        return self.name


class QueuedRun(models.Model):
    queue = models.ForeignKey(AnnotationQueue, on_delete=models.CASCADE, related_name="items")
    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="+")
    added_at = models.DateTimeField(auto_now_add=True)
    last_reviewed_time = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["added_at", "id"]
        constraints = [models.UniqueConstraint(fields=["queue", "run"], name="run_queued_once")]

    def __str__(self):
        return f"{self.run_id} in {self.queue_id}"


# LangSmith's thread of a run: its metadata names it by one of these keys, first found wins.
THREAD_KEYS = ("thread_id", "session_id", "conversation_id")


def thread_of(extra) -> str | None:
    """The thread a run's `extra` names (list_threads groups runs by it), or None."""
    metadata = extra.get("metadata") if isinstance(extra, dict) else None
    if not isinstance(metadata, dict):
        return None
    for key in THREAD_KEYS:
        value = metadata.get(key)
        if isinstance(value, str | int) and not isinstance(value, bool):
            return str(value)
    return None
