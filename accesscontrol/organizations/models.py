import uuid

from django.conf import settings
from django.db import models


class Plan(models.TextChoices):
    DEVELOPER = "developer", "Developer"
    PLUS = "plus", "Plus"
    ENTERPRISE = "enterprise", "Enterprise"


class OrgRole(models.TextChoices):
    ADMIN = "admin", "Admin"
    MEMBER = "member", "Member"
    VIEWER = "viewer", "Viewer"


class Organization(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.CharField(max_length=100)
    slug = models.SlugField(max_length=60, unique=True)
    plan = models.CharField(max_length=20, choices=Plan.choices, default=Plan.DEVELOPER)
    max_key_lifetime_days = models.PositiveIntegerField(
        null=True, blank=True, help_text="Longest allowed key lifetime; empty means no cap."
    )
    allow_personal_access_tokens = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return self.name

    @property
    def has_workspace_rbac(self) -> bool:
        """Custom roles and per-workspace roles are an enterprise feature."""
        return self.plan == Plan.ENTERPRISE


class OrganizationMembership(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="org_memberships"
    )
    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="memberships"
    )
    org_role = models.CharField(max_length=10, choices=OrgRole.choices, default=OrgRole.MEMBER)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["user", "organization"], name="one_membership_per_user_and_org"
            ),
            models.CheckConstraint(
                condition=models.Q(org_role__in=OrgRole.values), name="org_role_is_known"
            ),
        ]
        indexes = [models.Index(fields=["organization", "org_role"])]

    def __str__(self):
        return f"{self.user} in {self.organization} ({self.org_role})"
