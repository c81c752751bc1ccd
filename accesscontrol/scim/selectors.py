"""What an actor may see of its organization's provisioning (SCIM endpoints and console)."""

from django.db.models import Prefetch

from accesscontrol.audit.models import AuditEvent
from accesscontrol.rbac.permissions import ORG_MANAGE
from accesscontrol.scim.models import GroupMapping, ScimGroup, ScimToken, ScimUser


def _managed(actor) -> bool:
    return actor.organization is not None and actor.holds(ORG_MANAGE)


def scim_users(actor):
    """The organization's SCIM users with their groups; any other id is simply not found."""
    if not _managed(actor):
        return ScimUser.objects.none()
    return ScimUser.objects.filter(organization=actor.organization).prefetch_related(
        Prefetch("groups", queryset=ScimGroup.objects.order_by("display_name"))
    )


def scim_groups(actor, with_members=True):
    if not _managed(actor):
        return ScimGroup.objects.none()
    groups = ScimGroup.objects.filter(organization=actor.organization)
    if with_members:
        groups = groups.prefetch_related(
            Prefetch("members", queryset=ScimUser.objects.order_by("user_name"))
        )
    return groups


def group_mappings(actor):
    if not _managed(actor):
        return GroupMapping.objects.none()
    return GroupMapping.objects.filter(organization=actor.organization).select_related(
        "group", "workspace", "role"
    )


def active_token(actor) -> ScimToken | None:
    if not _managed(actor):
        return None
    return ScimToken.objects.active().filter(organization=actor.organization).first()


def tokens(actor):
    if not _managed(actor):
        return ScimToken.objects.none()
    return ScimToken.objects.filter(organization=actor.organization)


def recent_sync_events(actor, limit=20):
    """The latest things the organization's SCIM tokens did (the audit rows they acted in)."""
    if not _managed(actor):
        return []
    return list(
        AuditEvent.objects.filter(organization=actor.organization, actor_kind="scim_token")
        .select_related("workspace")
        .order_by("-created_at", "-id")[:limit]
    )
