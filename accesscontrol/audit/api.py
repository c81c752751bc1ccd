"""The audit log over the API: the console's filters, keyset (cursor) pagination, and the
export of every matching event in OCSF (JSON lines)."""

import datetime
import uuid
from typing import Annotated, Any, Literal

from ninja import Field, Query, Schema
from pydantic import BeforeValidator

from accesscontrol.api.router import GatedRouter
from accesscontrol.audit import log, ocsf
from accesscontrol.rbac.gate import requires

router = GatedRouter(tags=["audit"])


class AuditEventOut(Schema):
    id: int
    created_at: datetime.datetime
    organization_id: uuid.UUID | None
    workspace_id: uuid.UUID | None
    actor_kind: str
    actor_id: str
    actor_label: str
    action: str
    target_type: str
    target_id: str
    target_label: str
    changes: dict[str, Any]
    ip_address: str | None
    user_agent: str
    request_id: str


class AuditPage(Schema):
    events: list[AuditEventOut]
    next_cursor: str | None


def _day(value):
    return value if isinstance(value, datetime.date) else log.day(value)


# The log's days as its console page reads them (log.day): YYYY-MM-DD only.
Day = Annotated[datetime.date, BeforeValidator(_day)]


class LogFilters(Schema):
    actor: str | None = Field(
        None, max_length=log.MAX_LENGTHS["actor"], description="actor label contains"
    )
    action: str | None = Field(
        None, max_length=log.MAX_LENGTHS["action"], description="action starts with"
    )
    target: str | None = Field(
        None, max_length=log.MAX_LENGTHS["target"], description="target label contains"
    )
    workspace: uuid.UUID | None = None
    since: Day | None = None
    until: Day | None = None

    def filters(self) -> log.Filters:
        return log.Filters(
            actor=self.actor or "",
            action=self.action or "",
            target=self.target or "",
            workspace=str(self.workspace) if self.workspace else "",
            since=self.since,
            until=self.until,
        )


class AuditFilters(LogFilters):
    cursor: str | None = Field(None, max_length=200)
    limit: int = Field(log.PAGE_SIZE, ge=1, le=500)


@router.get("/audit-logs", response=AuditPage, summary="The organization's audit log")
@requires("organization:manage")
def audit_logs(request, q: Query[AuditFilters]):
    events, next_cursor = log.page(
        log.events(request.auth.organization, q.filters()), q.cursor, q.limit
    )
    return {"events": events, "next_cursor": next_cursor}


class ExportFilters(LogFilters):
    format: Literal["ocsf"] = Field("ocsf", description="OCSF 1.7.0 API Activity (6003)")


EXPORT_DOC = {
    "responses": {
        200: {
            "description": "Every matching event, newest first, one OCSF API Activity "
            "(class_uid 6003) event a line",
            "content": {"application/x-ndjson": {"schema": {"type": "string"}}},
        }
    }
}


@router.get(
    "/audit-logs/export",
    response={},
    openapi_extra=EXPORT_DOC,
    summary="Export the audit log in OCSF (JSON lines)",
)
@requires("organization:manage")
def export_audit_logs(request, q: Query[ExportFilters]):
    # A page parameter (cursor, limit) is refused by the router's unknown-parameter check: the
    # export is every matching event.
    org = request.auth.organization
    return ocsf.download(org, ocsf.lines(log.events(org, q.filters())))
