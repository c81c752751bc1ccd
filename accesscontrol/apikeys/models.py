import uuid

from django.db import models
from django.utils import timezone

from accesscontrol.accounts.models import creator


class KeyQuerySet(models.QuerySet):
    def active(self):
        now = timezone.now()
        return self.filter(revoked_at__isnull=True).filter(
            models.Q(expires_at__isnull=True) | models.Q(expires_at__gt=now)
        )


class KeyBase(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.CharField(max_length=100)
    digest = models.CharField(max_length=64, unique=True)  # SHA-256 hex of the whole key
    hint = models.CharField(max_length=24)  # e.g. "lsv2_sk_…3f9a"
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    # Rotation (apikeys/rotation.py): the key that replaced this one, which keeps working until
    # the grace expiry its rotation gave it.
    rotated_to = models.OneToOneField(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="rotated_from"
    )
    # Why it was revoked when not by hand: LEAKED (a secret scanner's report, apikeys/leaks.py)
    # or SELF (revoked with the key itself, DELETE /api/v1/auth/self).
    revoked_reason = models.CharField(max_length=16, blank=True)
    leak_reported_by = models.CharField(max_length=100, blank=True)  # the scanner's name
    leak_url = models.CharField(max_length=2048, blank=True)  # where it was found
    leak_source = models.CharField(max_length=100, blank=True)  # e.g. "content", "commit"

    objects = KeyQuerySet.as_manager()

    class Meta:
        abstract = True
        ordering = ["-created_at"]

    def __str__(self):
        return f"{self.name} ({self.hint})"

    LEAKED, SELF = "leaked", "self"

    @property
    def status(self) -> str:
        if self.revoked_at is not None:
            return "revoked"
        if self.expires_at is not None and self.expires_at <= timezone.now():
            return "expired"
        return "active"


class PersonalAccessToken(KeyBase):
    """Acts as its user, with the user's current permissions; dies with the org membership.

    A narrowed token also carries limits (apikeys/limits.py): it acts with the intersection of
    its user's current access and them. Both are read with the token, in its one statement.
    """

    org_membership = models.ForeignKey(
        "organizations.OrganizationMembership",
        on_delete=models.CASCADE,
        related_name="personal_access_tokens",
    )
    # The permission codes it is limited to (a list), or null: whatever its user may.
    permission_limit = models.JSONField(null=True, blank=True)
    # The workspaces it is limited to (a list of workspace ids), or null: all its user's.
    workspace_limit = models.JSONField(null=True, blank=True)

    audit_kind = "personal_access_token"

    class Meta(KeyBase.Meta):
        indexes = [models.Index(fields=["org_membership", "-created_at"])]

    @property
    def user(self):
        return self.org_membership.user

    @property
    def limits(self):
        """Its limits (apikeys.limits.TokenLimits): `.narrowed` is False for a plain token."""
        from accesscontrol.apikeys.limits import TokenLimits

        return TokenLimits.of(self)

    @property
    def audit_label(self) -> str:
        return f"personal access token '{self.name}' of {self.org_membership.user.email}"


class ServiceKey(KeyBase):
    """Belongs to a workspace (or to the organization: then each request selects a workspace)."""

    organization = models.ForeignKey(
        "organizations.Organization", on_delete=models.CASCADE, related_name="service_keys"
    )
    workspace = models.ForeignKey(
        "workspaces.Workspace",
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="service_keys",
    )
    # Active keys keep their role from being deleted (rbac.services.delete_role); a revoked
    # key loses it with the role, and a key without a role can do nothing.
    role = models.ForeignKey(
        "rbac.Role", null=True, on_delete=models.SET_NULL, related_name="service_keys"
    )
    created_by = creator()
    # Kept when the creator leaves: the key is unaffected, and who made it stays known.
    created_by_label = models.CharField(max_length=255, blank=True)
    legacy = models.BooleanField(default=False)
    # Narrows the organization's IP allow list for this key (apikeys/ip_allow_lists.py).
    ip_allow_list = models.JSONField(default=list, blank=True)

    audit_kind = "service_key"
    user = None

    class Meta(KeyBase.Meta):
        indexes = [
            models.Index(fields=["organization", "workspace", "-created_at"]),
        ]

    @property
    def is_org_scoped(self) -> bool:
        return self.workspace_id is None

    @property
    def audit_label(self) -> str:
        return f"{'legacy ' if self.legacy else ''}service key '{self.name}'"
