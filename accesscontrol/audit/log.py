"""Reading the audit log: filters, cursor pages and CSV, shared by the console and the API."""

import base64
import binascii
import datetime
import json
import re
import uuid
from dataclasses import dataclass

from django.core.exceptions import ValidationError
from django.db.models import Q
from django.utils import timezone

from accesscontrol import csv_export, storable
from accesscontrol.audit.models import AuditEvent

PAGE_SIZE = 50
CSV_COLUMNS = [
    "time",
    "organization",
    "workspace",
    "actor_kind",
    "actor",
    "action",
    "target_type",
    "target",
    "before",
    "after",
    "ip_address",
    "user_agent",
    "request_id",
]


# The longest text filters: as long as the longest label or action there is.
MAX_LENGTHS = {"actor": 255, "action": 64, "target": 255}


DAY_FORM = "use a date like 2026-11-24"


def day(raw: str) -> datetime.date:
    """A day the log is filtered by, on every path (the console's query and the API's): only
    YYYY-MM-DD, not the other forms date.fromisoformat reads ("20261124", "2026-W48-2") nor
    a number pydantic would read as a Unix time. ValueError otherwise."""
    if not isinstance(raw, str) or not re.fullmatch(r"\d{4}-\d{2}-\d{2}", raw):
        raise ValueError(DAY_FORM)
    return datetime.date.fromisoformat(raw)


@dataclass(frozen=True)
class Filters:
    actor: str = ""
    action: str = ""
    target: str = ""
    workspace: str = ""  # a workspace id
    since: datetime.date | None = None
    until: datetime.date | None = None

    def __post_init__(self):
        # Surrounding spaces are not part of what is looked for, whoever built the filters
        # (the console's query string or the API's schema).
        for name in ("actor", "action", "target"):
            object.__setattr__(self, name, getattr(self, name).strip())

    @classmethod
    def from_query(cls, data) -> "Filters":
        def date(name):
            raw = (data.get(name) or "").strip()
            if not raw:
                return None
            try:
                return day(raw)
            except ValueError:
                raise ValidationError({name: f"{DAY_FORM.capitalize()}."}) from None

        def text(name):
            # Refused, not cut short: a shortened filter would match (and export) more than
            # was asked for. The API refuses the same lengths (422).
            value = (data.get(name) or "").strip()
            if len(value) > MAX_LENGTHS[name]:
                raise ValidationError(
                    {name: f"Keep the {name} filter to {MAX_LENGTHS[name]} characters."}
                )
            return value

        return cls(
            actor=text("actor"),
            action=text("action"),
            target=text("target"),
            workspace=workspace_id(data.get("workspace")),
            since=date("since"),
            until=date("until"),
        )

    def as_query(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if v}


def workspace_id(raw) -> str:
    raw = (raw or "").strip()
    if not raw:
        return ""
    try:
        return str(uuid.UUID(raw))
    except ValueError:
        raise ValidationError(
            {"workspace": "That is not a workspace of this organization."}
        ) from None


# How each filter the log offers narrows it.
LOOKUPS = {
    "actor": "actor_label__icontains",
    "action": "action__startswith",
    "target": "target_label__icontains",
    "workspace": "workspace_id",
    # Days as instants, not `created_at__date`: a range of created_at lets PostgreSQL read only
    # the monthly partitions it covers (audit/partitions.py); a date cast of it would not.
    "since": "created_at__gte",
    "until": "created_at__lt",
}


def _start_of(day: datetime.date):
    return timezone.make_aware(datetime.datetime.combine(day, datetime.time.min))


def _bound(name, value):
    if name == "since":
        return _start_of(value)
    if name == "until":
        # The end of that day; the last day there is has no end to compare with.
        return None if value >= datetime.date.max else _start_of(value + datetime.timedelta(1))
    return value


def events(organization, filters: Filters):
    qs = AuditEvent.objects.for_organization(organization)
    for name, lookup in LOOKUPS.items():
        value = getattr(filters, name)
        if value and (bound := _bound(name, value)) is not None:
            qs = qs.filter(**{lookup: bound})
    return qs.select_related("workspace").order_by("-created_at", "-id")


def encode_cursor(event) -> str:
    raw = f"{event.created_at.isoformat()}|{event.pk}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str):
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        when, pk = base64.urlsafe_b64decode(padded.encode()).decode().split("|")
        return storable.check_datetime(datetime.datetime.fromisoformat(when)), int(pk)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise ValidationError({"cursor": "This cursor is not one we gave out."}) from None


def page(qs, cursor: str | None, size: int = PAGE_SIZE):
    """Events older than the cursor, and the cursor of the next page (None at the end).

    Keyset pagination: constant cost however deep the page, unlike OFFSET.
    """
    if cursor:
        when, pk = decode_cursor(cursor)
        qs = qs.filter(Q(created_at__lt=when) | Q(created_at=when, id__lt=pk))
    rows = list(qs[: size + 1])
    more = len(rows) > size
    rows = rows[:size]
    return rows, (encode_cursor(rows[-1]) if more and rows else None)


def csv_rows(qs):
    """The CSV, a line at a time (for a StreamingHttpResponse)."""

    def rows():
        for e in qs.select_related("organization").iterator(chunk_size=1000):
            changes = e.changes or {}
            yield [
                e.created_at.isoformat(),
                e.organization.name if e.organization else "",
                e.workspace.name if e.workspace else "",
                e.actor_kind,
                e.actor_label,
                e.action,
                e.target_type,
                e.target_label,
                json.dumps(changes.get("before"), sort_keys=True) if "before" in changes else "",
                json.dumps(changes.get("after"), sort_keys=True) if "after" in changes else "",
                e.ip_address or "",
                e.user_agent,
                e.request_id,
            ]

    return csv_export.lines(CSV_COLUMNS, rows())
