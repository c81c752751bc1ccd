"""What the database holds, read the way tests compare it: before and after a call."""

from accesscontrol.audit.models import AuditEvent


def row_counts(*models) -> tuple[int, ...]:
    """How many rows each model has: enough to show that a refused call wrote nothing."""
    return tuple(model.objects.count() for model in models)


def audit_actions() -> list[str]:
    """The audit log's actions, oldest first."""
    return list(AuditEvent.objects.order_by("id").values_list("action", flat=True))
