"""Reads of a dataset's history: its versions, and its examples as of a version.

Every change to a dataset's examples makes a DatasetVersion and one ExampleRevision per example
it touched (resources/services.py `_version`); the examples as of a time are, per example, the
newest revision at or before it, unless that revision deleted it. The dataset passed in was
found in the caller's workspace, so nothing here crosses it.
"""

import datetime

from django.core.exceptions import ValidationError
from django.db import connection
from django.db.models import OuterRef, Subquery
from django.db.models.fields.json import KeyTransform
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from accesscontrol import storable
from accesscontrol.resources import models

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


def refuse(request, unsupported: dict) -> None:
    """A 422 naming the first query parameter of `unsupported` ({name: why}) the request
    gave: LangSmith defines it, this server does not honour it, so it is never ignored."""
    for name, why in unsupported.items():
        if name in request.GET:
            raise ValidationError({name: f"{name} is not supported here: {why}"})
