import uuid

from django.db import models

from accesscontrol.rbac.permissions import (
    SYSTEM_ROLE_DESCRIPTIONS,
    SYSTEM_ROLE_PERMISSIONS,
    WORKSPACE_PERMISSIONS,
    describe_permissions,
)


class RoleQuerySet(models.QuerySet):
    def system(self, name: str) -> "Role":
        """A built-in role. Created if missing (a data migration makes them; a test flush
        or a hand-emptied table must not make the product unusable)."""
        return self.get_or_create(
            organization=None,
            name=name,
            defaults={"description": SYSTEM_ROLE_DESCRIPTIONS[name]},
        )[0]

    def usable_in(self, organization):
        """System roles, plus the organization's own custom roles on the enterprise plan."""
        q = models.Q(organization__isnull=True)
        if organization.has_workspace_rbac:
            q |= models.Q(organization=organization)
        return self.filter(q)


class Role(models.Model):
    """A named set of workspace permissions.

    System roles (no organization) take their permissions from the catalog in code, so adding a
    permission to the catalog updates Admin/Editor/Viewer without a data migration.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    organization = models.ForeignKey(
        "organizations.Organization",
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="roles",
    )
    name = models.CharField(max_length=60)
    description = models.CharField(max_length=300, blank=True)
    permissions = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    objects = RoleQuerySet.as_manager()

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "name"],
                condition=models.Q(organization__isnull=False),
                name="role_name_unique_in_org",
            ),
            models.UniqueConstraint(
                fields=["name"],
                condition=models.Q(organization__isnull=True),
                name="system_role_name_unique",
            ),
        ]

    def __str__(self):
        return self.name

    @property
    def is_system(self) -> bool:
        return self.organization_id is None

    @property
    def permission_set(self) -> frozenset[str]:
        return role_permissions(self.name, self.organization_id, self.permissions)

    @property
    def summary(self) -> str:
        """What the role allows, in words against the closest system role."""
        return describe_permissions(self.permission_set)


def role_permissions(name, organization_id, stored) -> frozenset[str]:
    if organization_id is None:
        return SYSTEM_ROLE_PERMISSIONS.get(name, frozenset())
    # A code dropped from the catalog stops granting anything, even if still stored.
    return frozenset(stored or ()) & WORKSPACE_PERMISSIONS
