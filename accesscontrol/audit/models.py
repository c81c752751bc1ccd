from django.conf import settings
from django.db import models


class AppendOnlyError(Exception):
    pass


class AuditEventQuerySet(models.QuerySet):
    def update(self, **kwargs):
        raise AppendOnlyError("audit events are append-only")

    def delete(self):
        raise AppendOnlyError("audit events are append-only")

    def for_organization(self, organization):
        return self.filter(organization=organization)


def _reference(to):
    """A link that outlives what it points at: no constraint, nothing done when it goes."""
    return models.ForeignKey(
        to, null=True, on_delete=models.DO_NOTHING, db_constraint=False, related_name="+"
    )


class AuditEvent(models.Model):
    """One change to access, written in the same transaction as the change.

    References are kept without database constraints: the log must outlive the users, keys and
    workspaces it talks about, and it must never be rewritten when they go (the labels keep what
    they were called).
    """

    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    organization = _reference("organizations.Organization")
    workspace = _reference("workspaces.Workspace")
    # user | personal_access_token | service_key | system
    actor_kind = models.CharField(max_length=32)
    actor_user = _reference(settings.AUTH_USER_MODEL)
    actor_id = models.CharField(max_length=64, blank=True)
    actor_label = models.CharField(max_length=255)
    action = models.CharField(max_length=64, db_index=True)
    target_type = models.CharField(max_length=64, blank=True)
    target_id = models.CharField(max_length=64, blank=True)
    target_label = models.CharField(max_length=255, blank=True)
    changes = models.JSONField(default=dict, blank=True)  # {"before": {...}, "after": {...}}
    ip_address = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=512, blank=True)
    request_id = models.CharField(max_length=64, blank=True)

    objects = AuditEventQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["organization", "-created_at"])]

    def __str__(self):
        return f"{self.created_at:%Y-%m-%d %H:%M:%S} {self.actor_label} {self.action}"

    def save(self, *args, **kwargs):
        if not self._state.adding:
            raise AppendOnlyError("audit events are append-only")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise AppendOnlyError("audit events are append-only")
