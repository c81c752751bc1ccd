"""How resource data reads on a page: JSON for people, short previews, latencies, rubrics.

`{% load resource_display %}` in a template; views and forms import the same functions.
"""

import json
from datetime import timedelta

from django import template

from accesscontrol import storable

register = template.Library()

PREVIEW_CHARS = 240


def _clipped(value, depth=storable.MAX_JSON_DEPTH):
    """The value with anything nested deeper than `depth` replaced by "…".

    Input is refused beyond that depth, but rows stored before the limit may hold more, and
    json.dumps of a thousand-deep value raises RecursionError: a page must still render.
    """
    if not isinstance(value, dict | list):
        return value
    if depth <= 0:
        return "…"
    if isinstance(value, dict):
        return {k: _clipped(v, depth - 1) for k, v in value.items()}
    return [_clipped(v, depth - 1) for v in value]


@register.filter
def pretty_json(value) -> str:
    """JSON for people: indented, non-ASCII kept; the template escapes it."""
    if value is None:
        return ""
    return json.dumps(_clipped(value), indent=2, ensure_ascii=False, sort_keys=False, default=str)


@register.filter
def json_preview(value) -> str:
    if value is None:
        return ""
    text = json.dumps(_clipped(value), ensure_ascii=False, default=str)
    return text if len(text) <= PREVIEW_CHARS else text[: PREVIEW_CHARS - 1] + "…"


def latency(run) -> timedelta | None:
    if run.end_time is None or run.start_time is None:
        return None
    return run.end_time - run.start_time


@register.filter
def latency_label(run) -> str:
    elapsed = latency(run)
    if elapsed is None:
        return ""
    seconds = elapsed.total_seconds()
    return f"{seconds * 1000:.0f} ms" if seconds < 1 else f"{seconds:.2f} s"


@register.filter
def rubric_rows(items):
    """(key, description) for each rubric item; items the SDK wrote in other shapes as JSON."""
    rows = []
    for item in items or ():
        if isinstance(item, dict) and item.get("feedback_key"):
            rows.append((str(item["feedback_key"]), str(item.get("description") or "")))
        else:
            rows.append((json_preview(item), ""))
    return rows
