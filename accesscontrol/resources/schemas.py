"""The payloads of the LangSmith-compatible resource API (resources/api.py), as the SDK
sends and reads them: `...In` bodies, `...Patch` changes, `...Filter` query strings, `...Out`
responses. Limits here are the input ranges; anything else is refused as a 422 at the edge.
"""

import datetime
import uuid
from typing import Any, Literal

from ninja import Field, Schema
from pydantic import ConfigDict, StrictBool, StrictFloat, StrictInt, field_validator

from accesscontrol.api.schemas import Body, Unsupported, UtcDateTime
from accesscontrol.resources.models import thread_of

MAX_LIMIT = 100
MAX_OFFSET = 2**63 - 1  # PostgreSQL's OFFSET is a bigint: a larger one fails in the database


class Page(Schema):
    limit: int = Field(MAX_LIMIT, ge=1, le=MAX_LIMIT)
    offset: int = Field(0, ge=0, le=MAX_OFFSET)


# What projects, datasets and annotation queues share: a name and a description in a workspace.


class InWorkspaceOut(Schema):
    id: uuid.UUID
    tenant_id: uuid.UUID

    @staticmethod
    def resolve_tenant_id(obj):
        return obj.workspace_id


class NamedIn(Body):
    name: str = Field(min_length=1, max_length=255)
    id: uuid.UUID | None = None
    description: str | None = Field(None, max_length=10000)


class NamedPatch(Body):
    name: str | None = Field(None, min_length=1, max_length=255)
    description: str | None = Field(None, max_length=10000)


class NamedFilter(Page):
    name: str | None = None
    name_contains: str | None = None


class SessionOut(InWorkspaceOut):
    name: str
    description: str | None
    start_time: datetime.datetime
    end_time: datetime.datetime | None = None
    extra: dict | None
    reference_dataset_id: uuid.UUID | None
    run_count: int | None = None


class SessionIn(NamedIn):
    extra: dict | None = None
    reference_dataset_id: uuid.UUID | None = None  # an experiment on that dataset
    # Ignored without changing any answer: evaluate() sends how many examples, repetitions and
    # evaluators the experiment will have, for LangSmith's progress bar, which this server has not.
    num_examples: int | None = None
    num_repetitions: int | None = None
    evaluator_keys: list[str] | None = None


class SessionPatch(NamedPatch):
    extra: dict | None = None
    end_time: UtcDateTime | None = None  # evaluate() closes its experiment with it


class SessionFilter(NamedFilter):
    id: list[uuid.UUID] | None = None
    reference_dataset: list[uuid.UUID] | None = None
    reference_free: bool | None = None
    metadata: str | None = None  # JSON: projects whose extra.metadata contains it
    # Ignored without changing the answer: it asks for aggregate statistics, and every project
    # is always answered with its run_count (the other statistics are left out, never wrong).
    include_stats: bool | None = None


class SessionRead(Schema):
    include_stats: bool | None = None  # as in SessionFilter
    # Ignored: the SDK reads one project by id with the query it uses to find one by name.
    limit: int | None = None


class RunFields(Body):
    """What a run's post and its patch may both carry."""

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
    attachments: Unsupported = None  # files on a run (the SDK sends {} when there are none)


class RunIn(RunFields):
    id: uuid.UUID = Field(default_factory=uuid.uuid4)
    trace_id: uuid.UUID | None = None
    session_name: str | None = Field(None, max_length=255)
    session_id: uuid.UUID | None = None
    # The JS SDK sends each run's children as [] (it posts them as runs of their own); nested
    # children with content are refused, never dropped.
    child_runs: Unsupported = None
    name: str = Field(min_length=1, max_length=255)
    run_type: str = Field(min_length=1, max_length=32)
    # Ignored without changing any answer: an LLM or prompt run's serialized constructor (its
    # manifest), which no endpoint here returns.
    serialized: dict | None = None


class RunPatch(RunFields):
    id: uuid.UUID
    name: str | None = Field(None, max_length=255)
    run_type: str | None = Field(None, max_length=32)
    # Ignored: the SDK repeats where the run lives; a run's trace and project are fixed when it
    # is created (as in LangSmith), and the patch finds the run by its id.
    trace_id: uuid.UUID | None = None
    session_id: uuid.UUID | None = None
    session_name: str | None = Field(None, max_length=255)


class RunPatchBody(RunPatch):
    id: uuid.UUID | None = None  # the path names the run


class RunBatch(Body):
    post: list[RunIn] | None = None
    patch: list[RunPatch] | None = None


class InProjectOut(Schema):
    """Runs and feedback belong to a project, which LangSmith calls a session."""

    @staticmethod
    def resolve_session_id(obj):
        return obj.project_id


class RunOut(InProjectOut):
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
    thread_id: str | None = None

    @staticmethod
    def resolve_thread_id(obj):
        return thread_of(obj.extra)


class RunFilterBody(Body):
    """Which runs: the fields LangSmith's POST /runs/query and /runs/stats share. Every field
    LangSmith defines is here and is either honoured or refused (a 422 naming it, see
    resources/selectors.py); a field LangSmith does not define is a 422 too."""

    model_config = ConfigDict(extra="forbid")

    session: list[uuid.UUID] | None = Field(None, max_length=1000)
    id: list[uuid.UUID] | None = Field(None, max_length=1000)
    trace: uuid.UUID | None = None
    parent_run: uuid.UUID | None = None
    run_type: str | None = Field(None, max_length=32)
    is_root: StrictBool | None = None
    error: StrictBool | None = None
    reference_example: list[uuid.UUID] | None = Field(None, max_length=1000)
    execution_order: int | None = Field(None, ge=1, le=2**31)
    start_time: UtcDateTime | None = None
    end_time: UtcDateTime | None = None
    filter: str | None = None
    trace_filter: str | None = None
    tree_filter: str | None = None
    # Defined by LangSmith, refused here when set (selectors.REFUSED says why).
    query: str | None = None
    search_filter: str | None = None
    data_source_type: str | None = Field(None, max_length=64)
    use_experimental_search: StrictBool | None = None
    skip_pagination: StrictBool | None = None
    reference_dataset_id: uuid.UUID | None = None


class RunQuery(RunFilterBody):
    limit: int = Field(MAX_LIMIT, ge=1, le=MAX_LIMIT)
    cursor: str | None = Field(None, pattern=r"^\d{1,9}$")
    select: list[str] | None = Field(None, max_length=100)
    order: Literal["asc", "desc"] = "desc"
    skip_prev_cursor: StrictBool | None = None

    @field_validator("limit", "order", mode="before")
    @classmethod
    def _null_is_default(cls, value, info):
        # The JS SDK sends null for what it was not given.
        return cls.model_fields[info.field_name].default if value is None else value


class RunQueryOut(Schema):
    runs: list[dict[str, Any]]
    cursors: dict[str, str | None]


class RunStatsQuery(RunFilterBody):
    select: list[str] | None = Field(None, max_length=100)
    group_by: dict | None = None
    groups: list[str | None] | None = None
    include_details: StrictBool | None = None


class DatasetOut(InWorkspaceOut):
    name: str
    description: str | None
    data_type: str | None
    created_at: datetime.datetime
    modified_at: datetime.datetime | None
    example_count: int | None = None
    metadata: dict | None
    inputs_schema_definition: dict | None
    outputs_schema_definition: dict | None


class DatasetIn(NamedIn):
    data_type: str | None = Field("kv", pattern="^(kv|llm|chat)$")
    transformations: Unsupported = None  # the SDK always sends it, null unless asked
    extra: dict | None = None
    inputs_schema_definition: dict | None = None
    outputs_schema_definition: dict | None = None


class DatasetPatch(NamedPatch):
    metadata: dict | None = None


class DatasetRead(Schema):
    # Ignored: the SDK reads one dataset by id with the query it uses to find one by name.
    limit: int | None = None


class DatasetFilter(NamedFilter):
    id: list[uuid.UUID] | None = None
    data_type: list[str] | None = None
    metadata: str | None = None  # JSON: datasets whose metadata contains it
    sort_by: str = Field("created_at", pattern="^(name|created_at|modified_at|example_count)$")
    sort_by_desc: bool = True
    exclude: list[str] | None = None  # "example_count": leave the count out
    exclude_corrections_datasets: bool = False  # there are none here to exclude


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
    # Sent by the SDK on every example, false/null unless asked: copying the source run's
    # inputs, outputs or files into the example, and files, which this server does not do.
    use_source_run_io: Unsupported = None
    use_source_run_attachments: Unsupported = None
    attachments: Unsupported = None


class ExamplePatch(Body):
    inputs: dict | None = None
    outputs: dict | None = None
    metadata: dict | None = None
    split: str | list[str] | None = None
    # The SDK repeats the example's id and dataset: the path names the example, and an example
    # never moves to another dataset (a different dataset_id is refused by the handler).
    id: uuid.UUID | None = None
    dataset_id: uuid.UUID | None = None
    attachments: Unsupported = None
    attachments_operations: Unsupported = None


EXAMPLE_FIELDS = (
    "id",
    "created_at",
    "modified_at",
    "name",
    "dataset_id",
    "source_run_id",
    "metadata",
    "inputs",
    "outputs",
    "attachment_urls",
)


class ExampleFilter(Page):
    dataset: uuid.UUID | None = None
    id: list[uuid.UUID] | None = None
    splits: list[str] | None = None
    as_of: str | None = Field(None, max_length=255)  # a time, "latest" or a version's tag
    metadata: str | None = None  # JSON: examples whose metadata contains it
    full_text_contains: list[str] | None = None
    order: str | None = Field(None, pattern="^(id|recent|recently_created|random)$")
    descending: bool | None = None
    # Every field is in the answer already (there are no attachments): any may be selected.
    select: list[str] | None = None
    inline_s3_urls: bool = True  # no attachments, so nothing to inline either way
    exclude_default_fields: bool = False


class ExampleAsOf(Schema):
    as_of: str | None = Field(None, max_length=255)
    dataset: uuid.UUID | None = None


class ExampleBulkPatch(Body):
    """One example's change in PATCH /examples/bulk: null or left out leaves a field alone."""

    id: uuid.UUID
    dataset_id: uuid.UUID | None = None
    inputs: dict | None = None
    outputs: dict | None = None
    metadata: dict | None = None
    split: str | list[str] | None = None
    attachments_operations: Any = None  # refused when given: there are no attachments
    overwrite: bool = False


class ExamplesChanged(Schema):
    message: str
    count: int
    example_ids: list[uuid.UUID]
    as_of: datetime.datetime | None = None


class DatasetVersionOut(Schema):
    as_of: datetime.datetime
    tags: list[str] | None = None


class VersionFilter(Page):
    search: str | None = Field(None, max_length=255)  # versions with a tag containing it
    example: uuid.UUID | None = None  # versions that changed this example


class VersionQuery(Schema):
    as_of: str | None = Field(None, max_length=255)
    tag: str | None = Field(None, max_length=255)


class VersionDiffQuery(Schema):
    from_version: str = Field(max_length=255)
    to_version: str = Field(max_length=255)


class VersionDiffOut(Schema):
    examples_added: list[uuid.UUID]
    examples_modified: list[uuid.UUID]
    examples_removed: list[uuid.UUID]


class TagIn(Body):
    as_of: UtcDateTime
    tag: str = Field(min_length=1, max_length=255)


class SplitsIn(Body):
    split_name: str = Field(min_length=1, max_length=255)
    examples: list[uuid.UUID] = Field(max_length=10000)
    remove: bool = False


class MetadataOperation(Body):
    key: str = Field(min_length=1, max_length=255)
    # Upper case as LangSmith documents it; lower case as the SDK first sent it.
    operation: str = Field(pattern="^(SET|ARRAY_ADD|ARRAY_REMOVE|set|array_add|array_remove)$")
    value: Any = None
    values: list[str] | None = Field(None, max_length=1000)


class MetadataPatch(Body):
    example_ids: list[uuid.UUID] = Field(min_length=1, max_length=10000)
    operations: list[MetadataOperation] = Field(min_length=1, max_length=50)


class MetadataStatus(Schema):
    id: uuid.UUID
    status: str
    description: str | None = None


class MetadataPatched(Schema):
    statuses: list[MetadataStatus]


class HardDeleteIn(Body):
    example_ids: list[uuid.UUID] = Field(min_length=1, max_length=10000)
    hard_delete: bool = True


class FeedbackOut(InProjectOut):
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
    # Ignored: the server stamps its own times; retention is not limited here, so there is no
    # trace retention to extend.
    created_at: UtcDateTime | None = None
    modified_at: UtcDateTime | None = None
    extend_trace_retention: bool | None = None
    # Ignored: when an evaluator began judging (evaluate_run sends it); informational, and no
    # answer here carries it.
    start_time: UtcDateTime | None = None
    # Features this server does not have (score rules, comparative experiments, feedback
    # groups, evaluator errors, extra data): accepted only empty.
    feedback_config: Unsupported = None
    comparative_experiment_id: Unsupported = None
    feedback_group_id: Unsupported = None
    extra: Unsupported = None
    error: Unsupported = None


class FeedbackPatch(Body):
    score: StrictBool | StrictInt | StrictFloat | None = None  # as strict as the SDK
    value: Any = None
    comment: str | None = Field(None, max_length=10000)
    correction: Any = None


class FeedbackFilter(Page):
    run: list[uuid.UUID] | None = None
    key: list[str] | None = None
    source: list[str] | None = None  # the feedback_source's type: "api", "model", ...


class QueueOut(InWorkspaceOut):
    name: str
    description: str | None
    rubric_instructions: str | None
    rubric_items: list[Any] | None
    created_at: datetime.datetime
    updated_at: datetime.datetime
    run_count: int | None = None


class QueueIn(NamedIn):
    rubric_instructions: str | None = Field(None, max_length=10000)
    rubric_items: list[Any] | None = None


class QueuePatch(NamedPatch):
    rubric_instructions: str | None = Field(None, max_length=10000)
    rubric_items: list[Any] | None = None


class QueueFilter(NamedFilter):
    ids: list[uuid.UUID] | None = None


class QueuedRunOut(RunOut):
    added_at: datetime.datetime | None = None
    last_reviewed_time: datetime.datetime | None = None


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


class PromptPatch(NamedPatch):
    """A prompt's name and description; its template changes by a new commit."""


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
