"""The audit log over the API: the console's filters, keyset (cursor) pagination."""

import datetime
import uuid
from typing import Any

from ninja import Field, Query, Schema

from accesscontrol.api.router import GatedRouter
from accesscontrol.audit import log
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


class AuditFilters(Schema):
    actor: str | None = Field(None, max_length=255, description="actor label contains")
    action: str | None = Field(None, max_length=64, description="action starts with")
    target: str | None = Field(None, max_length=255, description="target label contains")
    workspace: uuid.UUID | None = None
    since: datetime.date | None = None
    until: datetime.date | None = None
    cursor: str | None = Field(None, max_length=200)
    limit: int = Field(log.PAGE_SIZE, ge=1, le=500)


@router.get("/audit-logs", response=AuditPage, summary="The organization's audit log")
@requires("organization:manage")
def audit_logs(request, q: Query[AuditFilters]):
    filters = log.Filters(
        actor=q.actor or "",
        action=q.action or "",
        target=q.target or "",
        workspace=str(q.workspace) if q.workspace else "",
        since=q.since,
        until=q.until,
    )
    events, next_cursor = log.page(
        log.events(request.auth.organization, filters), q.cursor, q.limit
    )
    return {"events": events, "next_cursor": next_cursor}
