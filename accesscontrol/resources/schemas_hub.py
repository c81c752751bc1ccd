"""Payloads of the prompt hub, share links and presigned feedback tokens (api_hub.py,
api_sharing.py), as the `langsmith` SDK sends and reads them. Bodies refuse fields they do not
know (422 naming the field): a field this server would not honour is never silently dropped.
"""

import datetime
import uuid
from typing import Any, Literal

from ninja import Field, Schema
from pydantic import (
    ConfigDict,
    PrivateAttr,
    RootModel,
    StrictBool,
    StrictFloat,
    StrictInt,
    model_validator,
)

from accesscontrol.api.schemas import Body, UtcDateTime
from accesscontrol.resources import hub
from accesscontrol.resources.schemas import MAX_LIMIT, MAX_OFFSET

NAME = r"^[a-z0-9][a-z0-9_.-]*$"  # LangSmith repo handles: lowercase, digits, - _ .


class StrictBody(Body):
    model_config = ConfigDict(extra="forbid")


# Prompt hub


class RepoIn(StrictBody):
    repo_handle: str = Field(min_length=1, max_length=255, pattern=NAME)
    description: str | None = Field(None, max_length=10000)
    readme: str | None = Field(None, max_length=100000)
    tags: list[str] = Field(default_factory=list, max_length=50)
    is_public: bool = False


class RepoPatch(StrictBody):
    description: str | None = Field(None, max_length=10000)
    readme: str | None = Field(None, max_length=100000)
    tags: list[str] | None = Field(None, max_length=50)
    is_public: bool | None = None
    is_archived: bool | None = None


class RepoFilter(Schema):
    limit: int = Field(MAX_LIMIT, ge=1, le=MAX_LIMIT)
    offset: int = Field(0, ge=0, le=MAX_OFFSET)
    is_public: bool | None = None
    is_archived: bool | None = None
    sort_field: Literal["updated_at", "num_likes", "num_downloads", "num_views"] = "updated_at"
    sort_direction: Literal["asc", "desc"] = "desc"
    query: str | None = Field(None, max_length=255)
    match_prefix: bool = False


class RepoOut(Schema):
    id: uuid.UUID
    repo_handle: str
    full_name: str
    owner: str
    tenant_id: uuid.UUID
    description: str
    readme: str
    tags: list[str]
    is_public: bool = False
    is_archived: bool
    created_at: datetime.datetime
    updated_at: datetime.datetime
    last_commit_hash: str | None
    num_commits: int
    # LangSmith counts these on its public hub; nothing here is public, so they stay 0.
    num_likes: int = 0
    num_downloads: int = 0
    num_views: int = 0
    liked_by_auth_user: bool = False
    original_repo_id: uuid.UUID | None = None
    upstream_repo_id: uuid.UUID | None = None

    @staticmethod
    def resolve_repo_handle(obj):
        return obj.name

    @staticmethod
    def resolve_owner(obj):
        return hub.handle_of(obj.workspace)

    @staticmethod
    def resolve_full_name(obj):
        return f"{hub.handle_of(obj.workspace)}/{obj.name}"

    @staticmethod
    def resolve_tenant_id(obj):
        return obj.workspace_id


class RepoEnvelope(Schema):
    repo: RepoOut


class RepoList(Schema):
    repos: list[RepoOut]
    total: int


class CommitPush(StrictBody):
    manifest: dict[str, Any]
    parent_commit: str | None = Field(None, max_length=64)
    description: str | None = Field(None, max_length=1000)


class CommitListed(Schema):
    id: uuid.UUID
    commit_hash: str
    repo_id: uuid.UUID
    parent_id: uuid.UUID | None
    parent_commit_hash: str | None
    manifest: dict[str, Any]
    description: str
    created_by: str
    created_at: datetime.datetime
    updated_at: datetime.datetime
    tags: list[str]
    example_run_ids: list[uuid.UUID] = []
    num_downloads: int = 0
    num_views: int = 0

    @staticmethod
    def resolve_manifest(obj):
        return hub.manifest_of(obj)

    @staticmethod
    def resolve_description(obj):
        return obj.message

    @staticmethod
    def resolve_repo_id(obj):
        return obj.prompt_id

    @staticmethod
    def resolve_updated_at(obj):
        return obj.created_at

    @staticmethod
    def resolve_parent_commit_hash(obj):
        return obj.parent.commit_hash if obj.parent_id else None

    @staticmethod
    def resolve_tags(obj):
        return sorted(tag.name for tag in obj.tags.all())


class CommitEnvelope(Schema):
    commit: CommitListed


class CommitList(Schema):
    commits: list[CommitListed]
    total: int


class CommitFilter(Schema):
    limit: int = Field(MAX_LIMIT, ge=1, le=MAX_LIMIT)
    offset: int = Field(0, ge=0, le=MAX_OFFSET)
    # Models are not stored with commits here: the manifest is all there is, either way.
    include_model: bool = False


class PulledCommit(Schema):
    """What the SDK's pull_prompt_commit reads."""

    commit_hash: str
    manifest: dict[str, Any]
    examples: list[Any] = []
    description: str


class CommitTagIn(StrictBody):
    tag_name: str = Field(min_length=1, max_length=255, pattern=r"^[A-Za-z0-9_.-]+$")
    commit_id: uuid.UUID


class CommitTagOut(Schema):
    id: int
    tag_name: str
    commit_id: uuid.UUID
    commit_hash: str
    created_at: datetime.datetime

    @staticmethod
    def resolve_tag_name(obj):
        return obj.name

    @staticmethod
    def resolve_commit_hash(obj):
        return obj.commit.commit_hash


class SettingsOut(Schema):
    """What the SDK reads from GET /settings: the workspace, and its handle for prompts."""

    id: uuid.UUID
    display_name: str
    tenant_handle: str
    created_at: datetime.datetime


# Share links


class RunShareIn(StrictBody):
    run_id: uuid.UUID | None = None
    share_token: uuid.UUID | None = None


class DatasetShareIn(StrictBody):
    dataset_id: uuid.UUID | None = None
    share_token: uuid.UUID | None = None


class PromptShareIn(StrictBody):
    share_token: uuid.UUID | None = None


class ShareOut(Schema):
    share_token: uuid.UUID
    created_at: datetime.datetime
    url: str


class RunShareOut(ShareOut):
    run_id: uuid.UUID


class DatasetShareOut(ShareOut):
    dataset_id: uuid.UUID


class PromptShareOut(ShareOut):
    repo_id: uuid.UUID


class SharedRunsQuery(StrictBody):
    id: list[uuid.UUID] | None = Field(None, max_length=MAX_LIMIT)
    limit: int = Field(MAX_LIMIT, ge=1, le=MAX_LIMIT)
    cursor: str | None = Field(None, pattern=r"^\d{1,9}$")


class SharedExamplesFilter(Schema):
    id: list[uuid.UUID] | None = None
    limit: int = Field(MAX_LIMIT, ge=1, le=MAX_LIMIT)
    offset: int = Field(0, ge=0, le=MAX_OFFSET)


class SharedPromptOut(Schema):
    repo_handle: str
    description: str
    readme: str
    tags: list[str]
    commit: PulledCommit | None


# Presigned feedback tokens


class TimeDelta(StrictBody):
    days: int = Field(0, ge=0, le=365)
    hours: int = Field(0, ge=0, le=24 * 365)
    minutes: int = Field(0, ge=0, le=60 * 24 * 365)

    def as_timedelta(self) -> datetime.timedelta:
        return datetime.timedelta(days=self.days, hours=self.hours, minutes=self.minutes)


class FeedbackCategory(StrictBody):
    value: StrictFloat | StrictInt = Field(allow_inf_nan=False)
    label: str | None = Field(None, max_length=255)


class FeedbackConfig(StrictBody):
    """What the token's feedback may be (the SDK's FeedbackConfig): checked when it is used."""

    type: Literal["continuous", "categorical", "freeform"]
    min: StrictFloat | StrictInt | None = Field(None, allow_inf_nan=False)
    max: StrictFloat | StrictInt | None = Field(None, allow_inf_nan=False)
    categories: list[FeedbackCategory] | None = Field(None, max_length=100)
    allows_multiple_categories: Literal[False] = False  # a score is one number here


class FeedbackTokenIn(StrictBody):
    run_id: uuid.UUID
    feedback_key: str = Field(min_length=1, max_length=255)
    feedback_config: FeedbackConfig | None = None
    id: uuid.UUID | None = None  # the id the feedback will have
    expires_in: TimeDelta | None = None
    expires_at: UtcDateTime | None = None


class FeedbackTokenRequests(RootModel[list[FeedbackTokenIn]]):
    """One token request (the SDK's create_presigned_feedback_token sends an object) or many
    (create_presigned_feedback_tokens sends a list); answered in the shape asked. Validated as
    a list either way, so an error names its place the same way: [0, "expires_at"]."""

    root: list[FeedbackTokenIn] = Field(min_length=1, max_length=100)
    _single: bool = PrivateAttr(False)

    @model_validator(mode="wrap")
    @classmethod
    def _one_or_many(cls, data, handler):
        data = getattr(data, "_obj", data)  # ninja may hand over its DjangoGetter wrapper
        single = isinstance(data, dict)
        made = handler([data] if single else data)
        made._single = single
        return made

    @property
    def single(self) -> bool:
        return self._single


class FeedbackTokenOut(Schema):
    id: uuid.UUID  # the token itself, as LangSmith's: the last part of `url`
    url: str
    expires_at: datetime.datetime
    run_id: uuid.UUID
    feedback_key: str


class FromTokenIn(StrictBody):
    score: StrictFloat | StrictInt | StrictBool | None = None
    value: StrictFloat | StrictInt | StrictBool | str | dict | None = None
    comment: str | None = Field(None, max_length=10000)
    correction: dict | None = None
    metadata: dict | None = None


class FromTokenQuery(Schema):
    """The token's URL opened with GET (a link in a page): the simple fields, as a query."""

    score: float | None = Field(None, allow_inf_nan=False)  # NaN would make the JSON unreadable
    value: str | None = Field(None, max_length=10000)
    comment: str | None = Field(None, max_length=10000)
