"""A person's request for access they were refused (a 403's "Request access"), and its decision."""

import uuid

from django.conf import settings
from django.db import models

from accesscontrol.organizations.models import Organization, OrganizationMembership


class AccessRequestQuerySet(models.QuerySet):
    def in_organization(self, organization):
        return self.filter(organization=organization)

    def pending(self):
        return self.filter(status=AccessRequest.PENDING)


class AccessRequest(models.Model):
    PENDING, APPROVED, DENIED = "pending", "approved", "denied"
    STATUSES = [(PENDING, "Pending"), (APPROVED, "Approved"), (DENIED, "Denied")]

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="access_requests"
    )
    # None: an organization-level permission (organization:manage, ...): org admins decide.
    workspace = models.ForeignKey(
        "workspaces.Workspace",
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="access_requests",
    )
    requester = models.ForeignKey(
        OrganizationMembership, on_delete=models.CASCADE, related_name="access_requests"
    )
    permission = models.CharField(max_length=64, blank=True)  # the code a 403 named
    role = models.ForeignKey(  # the workspace role asked for, if any
        "rbac.Role", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    reason = models.TextField(max_length=1000)
    status = models.CharField(max_length=10, choices=STATUSES, default=PENDING)
    created_at = models.DateTimeField(auto_now_add=True)
    decided_at = models.DateTimeField(null=True, blank=True)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    decided_by_label = models.CharField(max_length=254, blank=True)
    note = models.TextField(max_length=1000, blank=True)
    granted = models.CharField(max_length=100, blank=True)  # the role (or org role) given
    expires_at = models.DateTimeField(null=True, blank=True)  # of the grant given

    objects = AccessRequestQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["organization", "status"], name="access_request_pending")]

    def __str__(self):
        return f"access request {self.pk} ({self.status})"

    @property
    def asked_for(self) -> str:
        parts = [self.role.name if self.role_id else "", self.permission]
        return " / ".join(p for p in parts if p) or "access"
