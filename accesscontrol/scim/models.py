"""SCIM 2.0 provisioning (RFC 7643/7644) per organization: its bearer token, the users and
groups an identity provider keeps here, and the mapping of groups to workspace roles."""

import uuid

from django.db import models
from django.db.models.functions import Lower

from accesscontrol.accounts.models import creator


class ScimTokenQuerySet(models.QuerySet):
    def active(self):
        return self.filter(revoked_at__isnull=True)


class ScimToken(models.Model):
    """The organization's SCIM bearer token: only its SHA-256 digest is kept (shown once).

    It belongs to the organization, not to whoever issued it (`issued_by` is a label): the
    audit log names the token as the actor of everything the identity provider does.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    organization = models.ForeignKey(
        "organizations.Organization", on_delete=models.CASCADE, related_name="scim_tokens"
    )
    digest = models.CharField(max_length=64, unique=True)
    hint = models.CharField(max_length=24)
    issued_by = creator()
    issued_by_label = models.CharField(max_length=255, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    objects = ScimTokenQuerySet.as_manager()

    # Acts for nobody: rbac.services.people_behind reads `user`, the audit reads these.
    user = None
    audit_kind = "scim_token"

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["organization"],
                condition=models.Q(revoked_at__isnull=True),
                name="one_active_scim_token_per_org",
            ),
        ]

    def __str__(self):
        return f"SCIM token {self.hint}"

    @property
    def audit_label(self) -> str:
        return f"SCIM token {self.hint}"

    @property
    def status(self) -> str:
        return "revoked" if self.revoked_at else "active"


class ProvisioningSettings(models.Model):
    """How the organization's identity provider provisions: the org role new people get."""

    organization = models.OneToOneField(
        "organizations.Organization", on_delete=models.CASCADE, related_name="provisioning"
    )
    default_org_role = models.CharField(max_length=10, default="member")

    def __str__(self):
        return f"provisioning of {self.organization_id}"


class ScimUser(models.Model):
    """A User resource of the organization's identity provider, linked to a person.

    It outlives the person's membership: a deactivated user stays here (active=False) so the
    identity provider can read it and turn it on again.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    organization = models.ForeignKey(
        "organizations.Organization", on_delete=models.CASCADE, related_name="scim_users"
    )
    user = models.ForeignKey(
        "accounts.User", on_delete=models.CASCADE, related_name="scim_identities"
    )
    user_name = models.CharField(max_length=255)
    external_id = models.CharField(max_length=255, blank=True)
    display_name = models.CharField(max_length=255, blank=True)
    given_name = models.CharField(max_length=150, blank=True)
    family_name = models.CharField(max_length=150, blank=True)
    emails = models.JSONField(default=list, blank=True)
    active = models.BooleanField(default=True)
    # Other attributes of the core and enterprise schemas, kept as sent and given back.
    attributes = models.JSONField(default=dict, blank=True)
    version = models.PositiveIntegerField(default=1)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["created_at", "id"]
        constraints = [
            models.UniqueConstraint(
                Lower("user_name"), "organization", name="scim_user_name_unique_in_org"
            ),
            models.UniqueConstraint(
                fields=["organization", "user"], name="one_scim_user_per_person_and_org"
            ),
        ]

    def __str__(self):
        return self.user_name


class ScimGroup(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    organization = models.ForeignKey(
        "organizations.Organization", on_delete=models.CASCADE, related_name="scim_groups"
    )
    display_name = models.CharField(max_length=255)
    external_id = models.CharField(max_length=255, blank=True)
    members = models.ManyToManyField(ScimUser, blank=True, related_name="groups")
    version = models.PositiveIntegerField(default=1)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["display_name", "id"]
        constraints = [
            models.UniqueConstraint(
                Lower("display_name"), "organization", name="scim_group_name_unique_in_org"
            ),
        ]

    def __str__(self):
        return self.display_name


class GroupMapping(models.Model):
    """Members of `group` get `role` in `workspace` (source "scim"), as long as they are in it."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    organization = models.ForeignKey(
        "organizations.Organization", on_delete=models.CASCADE, related_name="scim_mappings"
    )
    group = models.ForeignKey(ScimGroup, on_delete=models.CASCADE, related_name="mappings")
    workspace = models.ForeignKey(
        "workspaces.Workspace", on_delete=models.CASCADE, related_name="scim_mappings"
    )
    role = models.ForeignKey("rbac.Role", on_delete=models.PROTECT, related_name="scim_mappings")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["group__display_name", "workspace__name"]
        constraints = [
            models.UniqueConstraint(
                fields=["group", "workspace"], name="one_mapping_per_group_and_workspace"
            ),
        ]

    def __str__(self):
        return f"{self.group} → {self.workspace} as {self.role}"
