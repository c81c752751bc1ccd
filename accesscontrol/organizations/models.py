import uuid

from django.conf import settings
from django.db import models
from django.utils import timezone

from accesscontrol.accounts.models import creator
from accesscontrol.rbac.permissions import ORG_ROLES, org_role


class Plan(models.TextChoices):
    DEVELOPER = "developer", "Developer"
    PLUS = "plus", "Plus"
    ENTERPRISE = "enterprise", "Enterprise"


# The choices come from the org-role table (rbac/permissions.py ORG_ROLES): OrgRole.ADMIN...
OrgRole = models.TextChoices(
    "OrgRole", [(name.upper(), (name, spec.label)) for name, spec in ORG_ROLES.items()]
)


class RequireMfa(models.TextChoices):
    """Whose sign-in to this organization needs a second factor (accounts/mfa.py enforces it)."""

    OFF = "off", "Nobody"
    ADMINS = "admins", "Organization admins"
    EVERYONE = "everyone", "Everyone"


# An organization's OIDC provider is named "oidc-<slug>" and its SAML provider "<slug>"
# (sso/models.py, allauth's provider ids): no organization's slug may begin so, or its SAML
# provider would share the name, and the people linked to it, of another's OIDC provider.
OIDC_PROVIDER_PREFIX = "oidc-"


class Organization(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.CharField(max_length=100)
    slug = models.SlugField(max_length=60, unique=True)
    plan = models.CharField(max_length=20, choices=Plan.choices, default=Plan.DEVELOPER)
    max_key_lifetime_days = models.PositiveIntegerField(
        null=True, blank=True, help_text="Longest allowed key lifetime; empty means no cap."
    )
    allow_personal_access_tokens = models.BooleanField(default=True)
    # CIDR networks its API keys may be used from; empty: anywhere (apikeys/ip_allow_lists.py).
    ip_allow_list = models.JSONField(default=list, blank=True)
    require_mfa = models.CharField(
        max_length=10, choices=RequireMfa.choices, default=RequireMfa.OFF
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return self.name

    @property
    def has_workspace_rbac(self) -> bool:
        """Custom roles and per-workspace roles are an enterprise feature."""
        return self.plan == Plan.ENTERPRISE


class MembershipSource(models.TextChoices):
    """How a membership came to be: shown in the access review and kept in its audit rows, so an
    admin tells a hand-made grant from one the identity provider manages."""

    MANUAL = "manual", "Added by an admin"
    INVITATION = "invitation", "Invitation"
    SSO = "sso", "Single sign-on"
    SCIM = "scim", "SCIM provisioning"


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
    source = models.CharField(
        max_length=10, choices=MembershipSource.choices, default=MembershipSource.MANUAL
    )

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

    @property
    def role_spec(self):
        """What this member's org role means (ORG_ROLES)."""
        return org_role(self.org_role)


class InvitationQuerySet(models.QuerySet):
    def pending(self):
        return self.filter(accepted_at__isnull=True, cancelled_at__isnull=True)


class Invitation(models.Model):
    """An email invitation to join an organization (and, optionally, some of its workspaces).

    Only the SHA-256 digest of the token is stored; the link in the email is the only copy.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="invitations"
    )
    email = models.EmailField()
    org_role = models.CharField(max_length=10, choices=OrgRole.choices, default=OrgRole.MEMBER)
    workspaces = models.ManyToManyField("workspaces.Workspace", blank=True, related_name="+")
    workspace_role = models.ForeignKey(
        "rbac.Role", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    digest = models.CharField(max_length=64, unique=True)
    created_by = creator()
    # Sent by a service key: its power is re-checked when the invitation is accepted.
    created_by_service_key = models.ForeignKey(
        "apikeys.ServiceKey", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_by_label = models.CharField(max_length=255, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    accepted_at = models.DateTimeField(null=True, blank=True)
    cancelled_at = models.DateTimeField(null=True, blank=True)

    objects = InvitationQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "email"],
                condition=models.Q(accepted_at__isnull=True, cancelled_at__isnull=True),
                name="one_pending_invitation_per_email",
            ),
        ]

    def __str__(self):
        return f"invitation of {self.email} to {self.organization}"

    @property
    def status(self) -> str:
        if self.accepted_at:
            return "accepted"
        if self.cancelled_at:
            return "cancelled"
        if self.expires_at <= timezone.now():
            return "expired"
        return "pending"
