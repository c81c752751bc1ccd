from django.db import transaction

from accesscontrol.audit import context
from accesscontrol.audit.models import AuditEvent


def describe_actor(actor) -> dict:
    """The actor's columns: for an Actor (rbac.actor), a user, a key, or None (the system)."""
    if getattr(actor, "is_system", False):
        return {"actor_kind": "system", "actor_label": actor.label, "actor_id": ""}
    if hasattr(actor, "audit_actor"):
        actor = actor.audit_actor
    if actor is None:
        return {"actor_kind": "system", "actor_label": "system", "actor_id": ""}
    if hasattr(actor, "audit_kind"):
        return {
            "actor_kind": actor.audit_kind,
            "actor_label": actor.audit_label,
            "actor_id": str(actor.pk),
            "actor_user": getattr(actor, "user", None),
        }
    return {
        "actor_kind": "user",
        "actor_label": actor.email,
        "actor_id": str(actor.pk),
        "actor_user": actor,
    }


def record(
    actor,
    action,
    target=None,
    *,
    organization=None,
    workspace=None,
    before=None,
    after=None,
    target_label=None,
) -> AuditEvent:
    """Write one audit event. Must run inside the transaction that makes the change."""
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("audit.record must be called inside the transaction of the change")
    if workspace is not None and organization is None:
        organization = workspace.organization
    ctx = context.current()
    changes = {}
    if before is not None:
        changes["before"] = before
    if after is not None:
        changes["after"] = after
    return AuditEvent.objects.create(
        organization=organization,
        workspace=workspace,
        action=action,
        target_type=target._meta.model_name if target is not None else "",
        target_id=str(target.pk) if target is not None else "",
        target_label=(target_label if target_label is not None else str(target or ""))[:255],
        changes=changes,
        ip_address=ctx.ip_address,
        user_agent=ctx.user_agent,
        request_id=ctx.request_id,
        **describe_actor(actor),
    )
