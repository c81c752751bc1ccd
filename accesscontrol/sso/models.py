"""Single sign-on per organization (ARCHITECTURE §12): its identity provider and its domains.

`OrganizationSso` is the one source of truth; the allauth SocialApp that does the protocol work
is derived from it by the services (sso/services.py `_sync_social_app`), never edited by hand.
"""

import uuid

from django.conf import settings
from django.db import models

from accesscontrol.organizations.models import OIDC_PROVIDER_PREFIX, OrgRole


class Protocol(models.TextChoices):
    OIDC = "oidc", "OpenID Connect"
    SAML = "saml", "SAML 2.0"


class OrganizationSso(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    organization = models.OneToOneField(
        "organizations.Organization", on_delete=models.CASCADE, related_name="sso"
    )
    protocol = models.CharField(max_length=4, choices=Protocol.choices)
    oidc_issuer = models.URLField(max_length=500, blank=True)
    oidc_client_id = models.CharField(max_length=255, blank=True)
    # Sent to the identity provider, so it cannot be a digest; never shown back (write-only).
    oidc_client_secret = models.CharField(max_length=500, blank=True)
    saml_entity_id = models.CharField(max_length=500, blank=True)
    saml_metadata_url = models.URLField(max_length=500, blank=True)
    saml_metadata_xml = models.TextField(blank=True)
    jit_provisioning = models.BooleanField(default=False)
    default_org_role = models.CharField(
        max_length=10, choices=OrgRole.choices, default=OrgRole.MEMBER
    )
    invitations_enabled = models.BooleanField(default=True)
    require_sso = models.BooleanField(default=False)
    # The one org admin who may still sign in with a password while SSO is required.
    break_glass_user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    social_app = models.OneToOneField(
        "socialaccount.SocialApp", null=True, blank=True, on_delete=models.SET_NULL
    )
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self):
        return f"single sign-on of {self.organization}"

    @property
    def provider_id(self) -> str:
        """What allauth calls this organization's provider (SocialAccount.provider, URLs)."""
        return (
            self.organization.slug
            if self.protocol == Protocol.SAML
            else f"{OIDC_PROVIDER_PREFIX}{self.organization.slug}"
        )

    @property
    def provider_label(self) -> str:
        return f"{self.get_protocol_display()} ({self.organization.name})"


class DefaultWorkspaceRole(models.Model):
    """A workspace role a person provisioned just in time receives."""

    sso = models.ForeignKey(
        OrganizationSso, on_delete=models.CASCADE, related_name="default_workspace_roles"
    )
    workspace = models.ForeignKey(
        "workspaces.Workspace", on_delete=models.CASCADE, related_name="+"
    )
    role = models.ForeignKey("rbac.Role", on_delete=models.CASCADE, related_name="+")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["sso", "workspace"], name="one_default_role_per_ws")
        ]

    def __str__(self):
        return f"{self.role} in {self.workspace} for people provisioned by SSO"


class EmailDomain(models.Model):
    """An email domain an organization has claimed: people at it sign in through its SSO.

    Verified by the rule in services.claim_domain: only an org admin whose own email is at the
    domain may claim it. A domain belongs to one organization at most.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    organization = models.ForeignKey(
        "organizations.Organization", on_delete=models.CASCADE, related_name="email_domains"
    )
    domain = models.CharField(max_length=253, unique=True)
    claimed_by_label = models.CharField(max_length=255, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["domain"]

    def __str__(self):
        return self.domain
