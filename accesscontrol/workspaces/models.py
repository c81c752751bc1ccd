import datetime
import uuid

from django.db import models
from django.db.models import Case, F, Q, When
from django.utils import timezone

from accesscontrol.organizations.models import (
    MembershipSource,
    Organization,
    OrganizationMembership,
)
from accesscontrol.rbac.permissions import org_role


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
    # How it came to be (organizations.models.MembershipSource): an admin, an invitation, SSO
    # provisioning or a SCIM group mapping.
    source = models.CharField(
        max_length=10, choices=MembershipSource.choices, default=MembershipSource.MANUAL
    )
    # A time-bound grant: from this instant the resolver ignores the membership (the access
    # caches are stale past it too); `cleanup_expired_grants` deletes it later and audits it.
    expires_at = models.DateTimeField(null=True, blank=True)
    # A temporary upgrade of a permanent member: `role` until `expires_at`, then this role again
    # (the membership stays). Every reader of expires_at takes it in place of `role` from then
    # on; `cleanup_expired_grants` makes it the permanent role. PROTECT: a role someone falls
    # back to is a role in use.
    role_after_expiry = models.ForeignKey(
        "rbac.Role",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="fallback_memberships",
    )

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

    def role_in_effect(self, now=None):
        """The role this membership gives now: None once a plain time-bound grant expired."""
        if not self.is_expired(now):
            return self.role
        return self.role_after_expiry

    @property
    def role_in_effect_id(self):
        """role_in_effect's id, without reading the role (for pages that compare ids)."""
        expired_upgrade = self.role_after_expiry_id is not None and self.is_expired()
        return self.role_after_expiry_id if expired_upgrade else self.role_id

    @property
    def is_temporary_upgrade(self) -> bool:
        return self.role_after_expiry_id is not None and not self.is_expired()

    def role_summary(self, now=None) -> str:
        """The role in words: "Editor until 14:05, then Viewer" for a temporary upgrade (UTC)."""
        role = self.role_in_effect(now)
        if role is None:
            return "no role (grant expired)"
        if self.expires_at is None or self.is_expired(now):
            return role.name
        until = timezone.localtime(self.expires_at, datetime.UTC)
        when = (
            f"{until:%H:%M}" if until.date() == timezone.now().date() else f"{until:%Y-%m-%d %H:%M}"
        )
        if self.role_after_expiry_id is None:
            return f"{role.name} until {when} UTC"
        return f"{role.name} until {when} UTC, then {self.role_after_expiry.name}"


def grant_expired(expires_at, now=None) -> bool:
    """The one rule for a time-bound grant: gone from the instant it expires."""
    return expires_at is not None and expires_at <= (now or timezone.now())


def unexpired(prefix="", now=None) -> Q:
    """Memberships (reached through `prefix`) whose grant has not expired, for queries."""
    return Q(**{f"{prefix}expires_at__isnull": True}) | Q(
        **{f"{prefix}expires_at__gt": now or timezone.now()}
    )


def in_effect(prefix="", now=None) -> Q:
    """Memberships that give a role now: unexpired, or expired back to `role_after_expiry`."""
    return unexpired(prefix, now) | Q(**{f"{prefix}role_after_expiry__isnull": False})


def workspaces_acted_in(*, organization_id, user_id, org_role_name):
    """The one rule for which workspaces of an organization a person can act in: every one for
    an org role that is admin everywhere, else those where a membership gives them a role now
    (an ended grant with no role to fall back to gives none). Archived ones included: the
    console's switcher leaves them out, the API lists them with their flag. Read by the switcher
    (workspaces.services.enterable_workspaces), GET /workspaces and a token's workspace limit."""
    workspaces = Workspace.objects.filter(organization_id=organization_id)
    spec = org_role(org_role_name)
    if spec is None or not spec.admin_everywhere:
        workspaces = workspaces.filter(
            Q(memberships__org_membership__user_id=user_id)
            & Q(memberships__org_membership__organization_id=organization_id)
            & in_effect("memberships__")
        )
    return workspaces.order_by("name")


def acted_in(actor):
    """The workspaces of its organization a signed-in actor can act in, archived ones too (the
    org's workspaces page links them all): workspaces_acted_in for its user and org role. None
    for an actor without a user or an organization (an API key acting alone)."""
    if actor.user is None or actor.organization is None:
        return Workspace.objects.none()
    return workspaces_acted_in(
        organization_id=actor.organization.pk,
        user_id=actor.user.pk,
        org_role_name=actor.access.org_role,
    )


def role_in_effect_field(prefix, attr) -> Case:
    """`{prefix}role__{attr}` as the resolver reads it: past the expiry of a temporary upgrade,
    the role it falls back to (for queries that read a membership's role as values)."""
    return Case(
        When(
            Q(**{f"{prefix}expires_at__lte": timezone.now()})
            & Q(**{f"{prefix}role_after_expiry__isnull": False}),
            then=F(f"{prefix}role_after_expiry__{attr}"),
        ),
        default=F(f"{prefix}role__{attr}"),
    )
