"""Access recertification: an admin asks "should each of these still have access?"."""

import uuid

from django.conf import settings
from django.db import models
from django.utils import timezone


class Campaign(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    organization = models.ForeignKey(
        "organizations.Organization", on_delete=models.CASCADE, related_name="review_campaigns"
    )
    workspace = models.ForeignKey(
        "workspaces.Workspace", null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    name = models.CharField(max_length=120)
    deadline = models.DateTimeField()
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_by_label = models.CharField(max_length=255)
    created_at = models.DateTimeField(auto_now_add=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    completed_by_label = models.CharField(max_length=255, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self):
        return self.name

    @property
    def status(self) -> str:
        if self.completed_at:
            return "completed"
        return "overdue" if self.deadline <= timezone.now() else "open"

    @property
    def scope_label(self) -> str:
        return self.workspace.name if self.workspace_id else "the whole organization"


class Item(models.Model):
    """One membership or key under review, as it was when the campaign started."""

    WORKSPACE_MEMBER, ORG_MEMBER, SERVICE_KEY = "workspace_member", "org_member", "service_key"
    KINDS = [
        (WORKSPACE_MEMBER, "Workspace member"),
        (ORG_MEMBER, "Organization member"),
        (SERVICE_KEY, "Service key"),
    ]
    KEEP, REVOKE = "keep", "revoke"
    DECISIONS = [(KEEP, "Keep"), (REVOKE, "Revoke")]

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="items")
    kind = models.CharField(max_length=20, choices=KINDS)
    subject_id = models.UUIDField()  # the membership or key; it may be gone by completion
    label = models.CharField(max_length=255)
    detail = models.CharField(max_length=255, blank=True)  # role, workspace, last use
    stale = models.BooleanField(default=False)
    decision = models.CharField(max_length=10, choices=DECISIONS, blank=True)
    decided_by_label = models.CharField(max_length=255, blank=True)
    decided_at = models.DateTimeField(null=True, blank=True)
    outcome = models.CharField(max_length=255, blank=True)  # what completion did

    class Meta:
        ordering = ["kind", "label"]
        constraints = [
            models.UniqueConstraint(
                fields=["campaign", "kind", "subject_id"], name="item_once_per_campaign"
            )
        ]

    def __str__(self):
        return f"{self.label} ({self.kind})"
