import uuid

from django.db import models

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
