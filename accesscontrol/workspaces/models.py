import uuid

from django.db import models
from django.db.models import Q
from django.utils import timezone

from accesscontrol.organizations.models import Organization, OrganizationMembership


class Workspace(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="workspaces"
    )
    name = models.CharField(max_length=100)
    slug = models.SlugField(max_length=60)
    archived = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "slug"], name="workspace_slug_unique_in_org"
            ),
        ]

    def __str__(self):
        return self.name


class WorkspaceMembership(models.Model):
    """A user's role in one workspace.

    It hangs off the organization membership rather than the user, so a workspace member is an
    org member by construction, and leaving the org removes every workspace membership with it.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    org_membership = models.ForeignKey(
        OrganizationMembership, on_delete=models.CASCADE, related_name="workspace_memberships"
    )
    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="memberships")
    role = models.ForeignKey("rbac.Role", on_delete=models.PROTECT, related_name="memberships")
    created_at = models.DateTimeField(auto_now_add=True)
    # A time-bound grant: from this instant the resolver ignores the membership (the access
    # caches are stale past it too); `cleanup_expired_grants` deletes it later and audits it.
    expires_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["org_membership", "workspace"], name="one_membership_per_user_and_workspace"
            ),
        ]

    def __str__(self):
        return f"{self.org_membership.user_id} in {self.workspace_id} as {self.role_id}"

    @property
    def user(self):
        return self.org_membership.user

    def is_expired(self, now=None) -> bool:
        return grant_expired(self.expires_at, now)


def grant_expired(expires_at, now=None) -> bool:
    """The one rule for a time-bound grant: gone from the instant it expires."""
    return expires_at is not None and expires_at <= (now or timezone.now())


def unexpired(prefix="", now=None) -> Q:
    """Memberships (reached through `prefix`) whose grant has not expired, for queries."""
    return Q(**{f"{prefix}expires_at__isnull": True}) | Q(
        **{f"{prefix}expires_at__gt": now or timezone.now()}
    )
