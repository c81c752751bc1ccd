"""Reads of a workspace's resources that take more than a lookup.

Runs as LangSmith's POST /runs/query and POST /runs/stats define them: which runs a body names
(its fields and its filter language, compiled by resources/run_filter.py to one SQL query), which
fields it may select, which statistics it may ask for. A field that cannot be honoured is refused
(RunQueryRefused, a 422 naming it), never dropped.

A dataset's history: every change to a dataset's examples makes a DatasetVersion and one
ExampleRevision per example it touched (resources/services.py `_version`); the examples as of a
time are, per example, the newest revision at or before it, unless that revision deleted it. The
dataset passed in was found in the caller's workspace, so nothing here crosses it.
"""

import datetime
import uuid

from django.core.exceptions import ValidationError
from django.db import connection
from django.db.models import Aggregate, Avg, Count, DurationField, Max, OuterRef, Q, Subquery, Sum
from django.db.models.fields.json import KeyTransform
from django.db.models.functions import Coalesce
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from accesscontrol import storable
from accesscontrol.resources import models, run_filter

# LangSmith fields of the body that are not served here, and why.
REFUSED = {
    "query": "natural-language queries are not supported; write the condition in `filter`",
    "search_filter": "not supported; use search(...) in `filter`",
    "reference_dataset_id": "not supported here; list the experiment sessions in `session`",
}
DATA_SOURCES = {"current", "historical"}  # one store holds both: the answer is the same


class RunQueryRefused(ValueError):
    def __init__(self, field: str, detail: str):
        super().__init__(f"{field}: {detail}")
        self.field, self.detail = field, detail


# --- which runs ---


def _filter_q(text, field, workspace):
    try:
        return run_filter.compile_filter(text, field, workspace)
    except run_filter.FilterError as exc:
        raise RunQueryRefused(exc.field, str(exc).split(": ", 1)[1]) from None


def _refuse_unsupported(body) -> None:
    for field, why in REFUSED.items():
        if getattr(body, field) is not None:
            raise RunQueryRefused(field, why)
    if body.data_source_type is not None and body.data_source_type not in DATA_SOURCES:
        raise RunQueryRefused(
            "data_source_type", f"only {', '.join(sorted(DATA_SOURCES))} are served here"
        )
    if body.use_experimental_search:
        raise RunQueryRefused("use_experimental_search", "experimental search is not supported")
    if body.skip_pagination:
        raise RunQueryRefused("skip_pagination", "results are always paginated; follow the cursor")
    if body.execution_order not in (None, 1):
        raise RunQueryRefused("execution_order", "only 1 (the root runs) is supported")


def matching_runs(*, actor, workspace, body):
    """The workspace's runs that the body's fields and filters name: one queryset, one query."""
    actor.require("runs:read", workspace=workspace)
    _refuse_unsupported(body)
    runs = models.Run.objects.in_workspace(workspace).alias(**run_filter.aliases())
    lookups = {
        "project_id__in": body.session,
        "id__in": body.id,
        "trace_id": body.trace,
        "parent_run_id": body.parent_run,
        "run_type": body.run_type,
        "reference_example_id__in": body.reference_example,
        "start_time__gte": body.start_time,
        "start_time__lte": body.end_time,  # a window on start_time, as LangSmith's v2 bounds
    }
    runs = runs.filter(**{k: v for k, v in lookups.items() if v is not None})
    is_root = True if body.execution_order == 1 else body.is_root
    if is_root is not None:
        runs = runs.filter(parent_run_id__isnull=is_root)
    if body.error is not None:
        has_error = Q(error__isnull=False) & ~Q(error="")
        runs = runs.filter(has_error if body.error else ~has_error)
    own = _filter_q(body.filter, "filter", workspace)
    if own is not None:
        runs = runs.filter(own)
    # trace_filter: the trace's root run matches (its id is the trace id); tree_filter: some
    # run of the same trace matches. Uncorrelated IN subqueries: PostgreSQL can start from the
    # few matching traces (or hash them once) rather than probe every run's trace in turn.
    for field in ("trace_filter", "tree_filter"):
        condition = _filter_q(getattr(body, field), field, workspace)
        if condition is None:
            continue
        related = (
            models.Run.objects.in_workspace(workspace)
            .alias(**run_filter.aliases())
            .filter(condition)
        )
        if field == "trace_filter":
            traces = related.filter(parent_run_id__isnull=True).values("id")
        else:
            traces = related.values("trace_id")
        runs = runs.filter(trace_id__in=traces)
    return runs


# --- which fields ---

# Read from the run's columns (their column names where they differ).
COLUMN_FIELDS = {
    "id": "id",
    "name": "name",
    "run_type": "run_type",
    "start_time": "start_time",
    "end_time": "end_time",
    "error": "error",
    "extra": "extra",
    "events": "events",
    "inputs": "inputs",
    "outputs": "outputs",
    "parent_run_id": "parent_run_id",
    "trace_id": "trace_id",
    "dotted_order": "dotted_order",
    "tags": "tags",
    "reference_example_id": "reference_example_id",
    "session_id": "project_id",
    "total_tokens": "total_tokens",
    "prompt_tokens": "prompt_tokens",
    "completion_tokens": "completion_tokens",
}
# Worked out from columns or one query per page.
DERIVED_FIELDS = {"status", "parent_run_ids", "child_run_ids", "feedback_stats", "thread_id"}
# LangSmith fields this server does not record (no pricing, no attachments store, no
# streaming timings): selectable, and null - as LangSmith answers for a run without them.
NOT_RECORDED = {
    "app_path",
    "completion_cost",
    "completion_cost_details",
    "completion_token_details",
    "first_token_time",
    "in_dataset",
    "inputs_s3_urls",
    "manifest_id",
    "manifest_s3_id",
    "outputs_s3_urls",
    "price_model_id",
    "prompt_cost",
    "prompt_cost_details",
    "prompt_token_details",
    "s3_urls",
    "serialized",
    "share_token",
    "total_cost",
    "trace_tier",
}
SELECTABLE = set(COLUMN_FIELDS) | DERIVED_FIELDS | NOT_RECORDED
# Always answered: the SDK cannot build a Run without them.
ALWAYS = ("id", "name", "run_type", "start_time", "trace_id")
DEFAULT_SELECT = (*COLUMN_FIELDS, "status", "parent_run_ids")


def _selected(select) -> list[str]:
    if select is None:
        return list(DEFAULT_SELECT)
    unknown = [name for name in select if name not in SELECTABLE]
    if unknown:
        raise RunQueryRefused(
            "select", f"unknown field {unknown[0]!r}; selectable: {', '.join(sorted(SELECTABLE))}"
        )
    return list(dict.fromkeys((*ALWAYS, *select)))


def _ancestors(dotted_order: str, parent_run_id) -> list[str]:
    # Each segment of dotted_order is <time>Z<run id>, root first and the run itself last. The
    # client writes it: one that does not read so falls back to the parent alone.
    segments = dotted_order.split(".") if dotted_order else []
    try:
        ancestors = [str(uuid.UUID(segment[-36:])) for segment in segments[:-1]]
    except ValueError:
        ancestors = []
    if ancestors:
        return ancestors
    return [str(parent_run_id)] if parent_run_id else []


def query_runs(*, actor, workspace, body) -> dict:
    """A page of runs as POST /runs/query answers it: the selected fields of each run."""
    fields = _selected(body.select)
    runs = matching_runs(actor=actor, workspace=workspace, body=body)
    columns = {COLUMN_FIELDS[f] for f in fields if f in COLUMN_FIELDS}
    if "status" in fields:
        columns |= {"error", "end_time"}
    if "parent_run_ids" in fields:
        columns |= {"dotted_order", "parent_run_id"}
    if "thread_id" in fields:
        columns |= {"extra"}
    order = "start_time" if body.order == "asc" else "-start_time"
    offset = int(body.cursor or 0)
    page = list(
        runs.order_by(order, "id").values(*sorted(columns))[offset : offset + body.limit + 1]
    )
    more = len(page) > body.limit
    page = page[: body.limit]
    ids = [row["id"] for row in page]
    feedback = _feedback_stats(workspace, ids) if "feedback_stats" in fields and ids else {}
    children = _children(workspace, ids) if "child_run_ids" in fields and ids else {}
    out = []
    for row in page:
        run = {}
        for name in fields:
            if name in COLUMN_FIELDS:
                run[name] = row[COLUMN_FIELDS[name]]
            elif name == "status":
                run[name] = _status(row["error"], row["end_time"])
            elif name == "parent_run_ids":
                run[name] = _ancestors(row["dotted_order"], row["parent_run_id"])
            elif name == "thread_id":
                run[name] = models.thread_of(row["extra"])
            elif name == "feedback_stats":
                run[name] = feedback.get(row["id"], {})
            elif name == "child_run_ids":
                run[name] = children.get(row["id"], [])
            else:
                run[name] = None
        out.append(run)
    return {
        "runs": out,
        "cursors": {
            "next": str(offset + body.limit) if more else None,
            "prev": None
            if body.skip_prev_cursor or offset == 0
            else str(max(0, offset - body.limit)),
        },
    }


def _status(error, end_time) -> str:
    if error:
        return "error"
    return "success" if end_time else "pending"


def _feedback_stats(workspace, run_ids) -> dict:
    stats = {}
    rows = (
        models.Feedback.objects.in_workspace(workspace)
        .filter(run_id__in=run_ids)
        .values("run_id", "key")
        .annotate(n=Count("id"), avg=Avg("score"))
        .order_by()
    )
    for row in rows:
        stats.setdefault(row["run_id"], {})[row["key"]] = {"n": row["n"], "avg": row["avg"]}
    return stats


def _children(workspace, run_ids) -> dict:
    children = {}
    rows = (
        models.Run.objects.in_workspace(workspace)
        .filter(parent_run_id__in=run_ids)
        .order_by("start_time", "id")
        .values_list("parent_run_id", "id")
    )
    for parent, child in rows:
        children.setdefault(parent, []).append(child)
    return children


# --- statistics ---


class Percentile(Aggregate):
    """PostgreSQL's percentile_cont: an interpolated percentile of the values (nulls skipped)."""

    function = "PERCENTILE_CONT"
    template = "%(function)s(%(fraction)s) WITHIN GROUP (ORDER BY %(expressions)s)"

    def __init__(self, expression, fraction, **extra):
        super().__init__(expression, fraction=float(fraction), **extra)


STATS = (
    "run_count",
    "error_rate",
    "latency_p50",
    "latency_p99",
    "latency_avg",
    "first_token_p50",
    "first_token_p99",
    "total_tokens",
    "prompt_tokens",
    "completion_tokens",
    "median_tokens",
    "tokens_p99",
    "last_run_start_time",
    "feedback_stats",
    "total_cost",
    "prompt_cost",
    "completion_cost",
)
NOT_RECORDED_STATS = {
    "first_token_p50",
    "first_token_p99",
    "total_cost",
    "prompt_cost",
    "completion_cost",
}


def run_stats(*, actor, workspace, body) -> dict:
    """LangSmith's RunStats over the runs the body names: one aggregate query on PostgreSQL
    (percentiles included), and one grouped query for the feedback. Latencies in seconds."""
    if body.group_by is not None or body.groups is not None:
        raise RunQueryRefused("group_by", "grouped statistics are not supported")
    if body.include_details:
        raise RunQueryRefused("include_details", "detailed statistics are not supported")
    wanted = STATS if body.select is None else tuple(dict.fromkeys(body.select))
    unknown = [name for name in wanted if name not in STATS]
    if unknown:
        raise RunQueryRefused(
            "select", f"unknown statistic {unknown[0]!r}; available: {', '.join(STATS)}"
        )
    runs = matching_runs(actor=actor, workspace=workspace, body=body)
    has_error = Q(error__isnull=False) & ~Q(error="")
    aggregates = {
        "run_count": Count("id"),
        "errors": Count("id", filter=has_error),
        "latency_avg": Avg(run_filter.latency(), output_field=DurationField()),
        # Named apart from the columns: an aggregate may not shadow what others aggregate.
        "sum_total_tokens": Coalesce(Sum("total_tokens"), 0),
        "sum_prompt_tokens": Coalesce(Sum("prompt_tokens"), 0),
        "sum_completion_tokens": Coalesce(Sum("completion_tokens"), 0),
        "last_run_start_time": Max("start_time"),
    }
    postgres = connection.vendor == "postgresql"
    if postgres:
        aggregates |= {
            "latency_p50": Percentile(run_filter.latency(), 0.5, output_field=DurationField()),
            "latency_p99": Percentile(run_filter.latency(), 0.99, output_field=DurationField()),
            "median_tokens": Percentile("total_tokens", 0.5),
            "tokens_p99": Percentile("total_tokens", 0.99),
        }
    row = runs.aggregate(**aggregates)
    if not postgres:  # nearest rank, in the database, where percentile_cont is missing
        row["latency_p50"] = _nearest_rank(runs, "latency", 0.5)
        row["latency_p99"] = _nearest_rank(runs, "latency", 0.99)
        row["median_tokens"] = _nearest_rank(runs, "total_tokens", 0.5)
        row["tokens_p99"] = _nearest_rank(runs, "total_tokens", 0.99)
    count = row["run_count"]
    stats = {
        "run_count": count,
        "error_rate": row["errors"] / count if count else None,
        "latency_p50": _seconds(row["latency_p50"]),
        "latency_p99": _seconds(row["latency_p99"]),
        "latency_avg": _seconds(row["latency_avg"]),
        "total_tokens": row["sum_total_tokens"],
        "prompt_tokens": row["sum_prompt_tokens"],
        "completion_tokens": row["sum_completion_tokens"],
        "median_tokens": row["median_tokens"],
        "tokens_p99": row["tokens_p99"],
        "last_run_start_time": row["last_run_start_time"],
        **dict.fromkeys(NOT_RECORDED_STATS),
    }
    if "feedback_stats" in wanted:
        stats["feedback_stats"] = _feedback_over(workspace, runs) if count else {}
    return {name: stats[name] for name in wanted}


def _seconds(value):
    if value is None:
        return None
    if isinstance(value, datetime.timedelta):
        return value.total_seconds()
    return float(value)


def _nearest_rank(runs, field, fraction):
    if field == "latency":
        runs = runs.annotate(measured=run_filter.latency())
        field = "measured"
    present = runs.filter(**{f"{field}__isnull": False})
    count = present.count()
    if not count:
        return None
    index = max(0, -(-int(fraction * 1000) * count // 1000) - 1)
    return present.order_by(field).values_list(field, flat=True)[index]


def _feedback_over(workspace, runs) -> dict:
    rows = (
        models.Feedback.objects.in_workspace(workspace)
        .filter(run_id__in=runs.values("id"))
        .values("key")
        .annotate(n=Count("id"), avg=Avg("score"))
        .order_by("key")
    )
    return {row["key"]: {"n": row["n"], "avg": row["avg"]} for row in rows}


# --- a dataset's history ---

LATEST = "latest"


def _not_found(field, message):
    return ValidationError({field: ValidationError(message, code="not_found")})


def parse_time(value: str, field: str) -> datetime.datetime | None:
    """An ISO 8601 time (naive: UTC), or None when `value` is not one."""
    try:
        parsed = parse_datetime(value.strip().replace(" ", "T", 1) if value else "")
    except ValueError:
        parsed = None
    if parsed is None:
        return None
    if timezone.is_naive(parsed):
        parsed = parsed.replace(tzinfo=datetime.UTC)
    try:
        return storable.check_datetime(parsed)
    except ValueError as exc:
        raise ValidationError({field: f"{field} {exc}"}) from None


def resolve_version(dataset, value: str | None, field: str = "as_of"):
    """What a client's `as_of` names: None for the latest state, else the time to read at.
    It is a time, "latest", or a tag of one of the dataset's versions (a tag it does not have
    is a 404 naming it)."""
    if value is None or value == "" or value == LATEST:
        return None
    when = parse_time(value, field)
    if when is not None:
        return when
    tagged = version_tagged(dataset, value)
    if tagged is None:
        raise _not_found(field, f"No version of this dataset is tagged {value!r}.")
    return tagged.as_of


def version_tagged(dataset, tag):
    qs = models.DatasetVersion.objects.filter(dataset=dataset)
    if connection.features.supports_json_field_contains:
        return qs.filter(tags__contains=[tag]).first()
    # Elsewhere the tagged versions (few: a tag is on one version) are looked through here.
    return next((v for v in qs.exclude(tags=[]) if tag in v.tags), None)


def version_at(dataset, when) -> models.DatasetVersion | None:
    """The newest version at or before `when` (None: the latest)."""
    qs = models.DatasetVersion.objects.filter(dataset=dataset)
    if when is not None:
        qs = qs.filter(as_of__lte=when)
    return qs.order_by("-as_of").first()


def revisions_as_of(dataset, when):
    """The dataset's examples as of `when`, as ExampleRevision rows (`example_id` is the
    example's id): one correlated subquery picks each example's newest revision."""
    newest = (
        models.ExampleRevision.objects.filter(
            dataset=dataset, example_id=OuterRef("example_id"), as_of__lte=when
        )
        .order_by("-as_of", "-id")
        .values("id")[:1]
    )
    return (
        models.ExampleRevision.objects.filter(dataset=dataset, as_of__lte=when, deleted=False)
        .filter(id=Subquery(newest))
        .select_related("dataset")
    )


def _state(dataset, when) -> dict:
    """{example id: (inputs, outputs, metadata, split)} as of `when` (None: now)."""
    if when is None:
        rows = models.Example.objects.filter(dataset=dataset).values_list(
            "id", "inputs", "outputs", "metadata", "split"
        )
    else:
        rows = revisions_as_of(dataset, when).values_list(
            "example_id", "inputs", "outputs", "metadata", "split"
        )
    return {row[0]: row[1:] for row in rows}


def diff(dataset, before, after) -> dict:
    """Which examples a later version added, changed and removed against an earlier one."""
    old, new = _state(dataset, before), _state(dataset, after)
    return {
        "examples_added": sorted(str(i) for i in new.keys() - old.keys()),
        "examples_removed": sorted(str(i) for i in old.keys() - new.keys()),
        "examples_modified": sorted(str(i) for i in new.keys() & old.keys() if new[i] != old[i]),
    }


def splits_as_of(dataset, when) -> list[str]:
    """The names of the dataset's splits (its examples' splits) as of `when`."""
    if when is None:
        lists = models.Example.objects.filter(dataset=dataset).values_list("split", flat=True)
    else:
        lists = revisions_as_of(dataset, when).values_list("split", flat=True)
    return sorted({name for names in lists for name in (names or [])})


def json_object_param(value: str | None, field: str) -> dict | None:
    """A query parameter holding a JSON object (LangSmith's `metadata=`), or a 422 naming it."""
    if value is None:
        return None
    try:
        parsed = storable.load_json(value)
    except (ValueError, TypeError):
        parsed = None
    if not isinstance(parsed, dict):
        raise ValidationError({field: f"{field} must be a JSON object."})
    return parsed


def json_contains(qs, path: str, wanted: dict | None):
    """`qs` narrowed to rows whose JSON at `path` ("metadata", "extra__metadata") contains
    every key of `wanted` with its value (PostgreSQL's @>; elsewhere key by key)."""
    if not wanted:
        return qs
    if connection.features.supports_json_field_contains:
        return qs.filter(**{f"{path}__contains": wanted})
    column, *keys = path.split("__")
    for number, (key, value) in enumerate(wanted.items()):
        if isinstance(value, dict | list):
            # Key by key is equality, not containment: refused rather than answered wrongly.
            raise ValidationError(
                {"metadata": "Matching a list or object value needs PostgreSQL here."}
            )
        target = column
        for step in keys:
            target = KeyTransform(step, target)
        alias = f"_json_key_{number}"
        qs = qs.annotate(**{alias: KeyTransform(key, target)}).filter(**{alias: value})
    return qs
