"""Audit events as OCSF API Activity events, one JSON object a line.

OCSF (Open Cybersecurity Schema Framework) 1.7.0, class API Activity (class_uid 6003, category
Application Activity, 6): https://schema.ocsf.io/1.7.0/classes/api_activity. It is what
LangSmith's audit logs answer in (its GET /api/v1/audit-logs, with the whole LangSmith record
under unmapped.original_audit_log); ours keeps the whole row there the same way, as our own
GET /audit-logs shows it, so nothing is lost in the mapping.

Mapping: the action's verb gives the activity (created -> Create, revoked -> Delete, changed ->
Update, ...; an action with none of them is Other, 99, named by activity_name); actions that
record a refusal (login.failed, service_key.legacy_refused) have status Failure, every other row
records a change that was made, Success.
"""

import json

from django.core.serializers.json import DjangoJSONEncoder
from django.http import StreamingHttpResponse
from django.utils import timezone

from accesscontrol.audit.models import AuditEvent

OCSF_VERSION = "1.7.0"
CLASS_UID, CLASS_NAME = 6003, "API Activity"
CATEGORY_UID, CATEGORY_NAME = 6, "Application Activity"
CREATE, READ, UPDATE, DELETE, OTHER = 1, 2, 3, 4, 99
ACTIVITY_NAMES = {
    CREATE: "Create",
    READ: "Read",
    UPDATE: "Update",
    DELETE: "Delete",
    OTHER: "Other",
}
# The last word of the action's verb ("org_member.role_changed" -> "changed").
VERBS = {
    CREATE: {"created", "added", "sent", "accepted", "imported", "started", "joined"},
    DELETE: {"deleted", "removed", "revoked", "cancelled", "dropped", "closed"},
    UPDATE: {
        "changed",
        "updated",
        "renamed",
        "archived",
        "restored",
        "resent",
        "completed",
        "decided",
        "rotated",
        "expired",
    },
}
FAILURE_VERBS = {"failed", "refused"}
SUCCESS, FAILURE = 1, 2
INFORMATIONAL, LOW = 1, 2
# OCSF user.type_id: 1 User, 3 System, 99 Other (then `type` says which).
USER_TYPES = {
    "user": (1, "User"),
    "system": (3, "System"),
    "service_key": (99, "Service Key"),
    "personal_access_token": (99, "Personal Access Token"),
}
PRODUCT = {"name": "accesscontrol", "vendor_name": "accesscontrol"}


def _verb(action: str) -> str:
    return action.rpartition(".")[2].rpartition("_")[2]


def activity_of(action: str) -> int:
    verb = _verb(action)
    return next((activity for activity, verbs in VERBS.items() if verb in verbs), OTHER)


def original(e: AuditEvent) -> dict:
    """The row as GET /audit-logs shows it."""
    return {
        "id": e.pk,
        "created_at": e.created_at,  # written as the API writes it (DjangoJSONEncoder)
        "organization_id": str(e.organization_id) if e.organization_id else None,
        "workspace_id": str(e.workspace_id) if e.workspace_id else None,
        "actor_kind": e.actor_kind,
        "actor_id": e.actor_id,
        "actor_label": e.actor_label,
        "action": e.action,
        "target_type": e.target_type,
        "target_id": e.target_id,
        "target_label": e.target_label,
        "changes": e.changes,
        "ip_address": e.ip_address,
        "user_agent": e.user_agent,
        "request_id": e.request_id,
    }


def event(e: AuditEvent) -> dict:
    activity = activity_of(e.action)
    failed = _verb(e.action) in FAILURE_VERBS
    type_id, type_name = USER_TYPES.get(e.actor_kind, (99, e.actor_kind or "Other"))
    user = {"name": e.actor_label, "type_id": type_id, "type": type_name}
    if e.actor_id:
        user["uid"] = e.actor_id
    api = {"operation": e.action, "service": {"name": "accesscontrol"}}
    if e.request_id:
        api["request"] = {"uid": e.request_id}
    out = {
        "class_uid": CLASS_UID,
        "class_name": CLASS_NAME,
        "category_uid": CATEGORY_UID,
        "category_name": CATEGORY_NAME,
        "activity_id": activity,
        "activity_name": ACTIVITY_NAMES[activity],
        "type_uid": CLASS_UID * 100 + activity,
        "type_name": f"{CLASS_NAME}: {ACTIVITY_NAMES[activity]}",
        "severity_id": LOW if failed else INFORMATIONAL,
        "severity": "Low" if failed else "Informational",
        "status_id": FAILURE if failed else SUCCESS,
        "status": "Failure" if failed else "Success",
        "time": int(e.created_at.timestamp() * 1000),
        "timezone_offset": 0,
        "message": " ".join(filter(None, [e.actor_label, e.action, e.target_label])),
        "metadata": {
            "version": OCSF_VERSION,
            "uid": str(e.pk),
            "product": PRODUCT,
            "log_name": "audit",
        },
        "actor": {"user": user},
        "api": api,
        # Where the request came from; work no request asked for (a command, a job) has none.
        "src_endpoint": {"ip": e.ip_address} if e.ip_address else {"name": "accesscontrol"},
        "unmapped": {"original_audit_log": original(e)},
    }
    if e.user_agent:
        out["http_request"] = {"user_agent": e.user_agent}
    resources = []
    if e.target_type or e.target_id or e.target_label:
        target = {"type": e.target_type or "unknown", "name": e.target_label}
        if e.target_id:
            target["uid"] = e.target_id
        resources.append(target)
    if e.workspace_id:
        resources.append({"type": "workspace", "uid": str(e.workspace_id)})
    if e.organization_id:
        resources.append({"type": "organization", "uid": str(e.organization_id)})
    if resources:
        out["resources"] = resources
    return out


def lines(qs):
    """The export, a line at a time (for a StreamingHttpResponse)."""
    for e in qs.iterator(chunk_size=1000):
        yield json.dumps(event(e), cls=DjangoJSONEncoder, separators=(",", ":")) + "\n"


def download(organization, ocsf_lines):
    """A streamed attachment of `ocsf_lines` (from `lines`), for the console and the API."""
    stamp = timezone.now().strftime("%Y%m%d-%H%M")
    response = StreamingHttpResponse(ocsf_lines, content_type="application/x-ndjson")
    response["Content-Disposition"] = (
        f'attachment; filename="audit-{organization.slug}-{stamp}.ocsf.jsonl"'
    )
    return response
