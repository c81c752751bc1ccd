"""Recertification campaigns: start, decide, complete. Every step is atomic and audited.

Completing applies every "revoke" in one transaction through the same services the console
uses (so each removal is audited as usual); if one cannot be applied, none is.
"""

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Count, Q
from django.utils import timezone

from accesscontrol import writes
from accesscontrol.apikeys.models import ServiceKey
from accesscontrol.apikeys.services import revoke_service_key
from accesscontrol.audit import services as audit
from accesscontrol.organizations.models import OrganizationMembership
from accesscontrol.organizations.services import remove_org_member
from accesscontrol.rbac.actor import as_actor
from accesscontrol.rbac.permissions import ADMIN_EVERYWHERE_ROLES, ORG_MANAGE, WORKSPACE_PERMISSIONS
from accesscontrol.rbac.resolver import REASONS, compute_access, role_fields
from accesscontrol.rbac.services import person_behind
from accesscontrol.rbac.who_has_access import is_stale, person_last_active, tokens_in_use
from accesscontrol.reviews.models import Campaign, Item
from accesscontrol.workspaces.models import WorkspaceMembership, in_effect
from accesscontrol.workspaces.services import remove_workspace_member


def with_progress(campaigns):
    """Campaigns with their item count and how many are still undecided."""
    return campaigns.annotate(
        total=Count("items"), undecided=Count("items", filter=Q(items__decision=""))
    )


def overdue_campaigns(actor, organization) -> list:
    """Reviews past their deadline with items nobody decided, for who may run reviews."""
    if not as_actor(actor, organization).holds(ORG_MANAGE):
        return []
    overdue = organization.review_campaigns.filter(
        completed_at__isnull=True, deadline__lte=timezone.now()
    )
    return [c for c in with_progress(overdue) if c.undecided]


def _reviewer(actor, organization):
    """The actor, if it may run this organization's access reviews."""
    actor = as_actor(actor, organization)
    actor.require(ORG_MANAGE)
    return actor


def _label(actor):
    return actor.label


def _plan_note(organization, role, org_role=None, archived=False) -> str:
    """What the plan makes of a held role, as the gate reads it (compute_access): below
    Enterprise a workspace role acts as Admin, and the review must say so."""
    access = compute_access(
        org_role=org_role, plan=organization.plan, archived=archived, **role_fields(role)
    )
    widened = (access.permissions - access.grantable) & WORKSPACE_PERMISSIONS
    if access.reason != "plan" or not widened:
        return ""
    return f" ({REASONS['plan'].format(plan=organization.plan)})"


def _snapshot(campaign, now):
    org, workspace = campaign.organization, campaign.workspace
    # Someone who works only through a token is active, as who-has-access counts it.
    tokens = tokens_in_use(org)

    def item(kind, subject, label, detail, last_active):
        stale = is_stale(last_active, subject.created_at, now)
        return Item(
            campaign=campaign,
            kind=kind,
            subject_id=subject.pk,
            label=label,
            detail=detail,
            stale=stale,
        )

    if workspace is not None:
        members = (
            WorkspaceMembership.objects.filter(workspace=workspace)
            .filter(in_effect())  # an expired grant is no access to review
            .exclude(org_membership__org_role__in=ADMIN_EVERYWHERE_ROLES)
            .select_related("org_membership__user", "role", "role_after_expiry")
        )
        items = [
            item(
                Item.WORKSPACE_MEMBER,
                m,
                m.org_membership.user.email,
                f"{m.role_summary()} in {workspace.name}"
                + _plan_note(
                    org, m.role_in_effect(now), m.org_membership.org_role, workspace.archived
                ),
                person_last_active(m.org_membership, tokens),
            )
            for m in members
        ]
        keys = ServiceKey.objects.active().filter(organization=org, workspace=workspace)
    else:
        members = OrganizationMembership.objects.filter(organization=org).select_related("user")
        items = [
            item(
                Item.ORG_MEMBER,
                m,
                m.user.email,
                f"organization {m.org_role}",
                person_last_active(m, tokens),
            )
            for m in members
        ]
        keys = ServiceKey.objects.active().filter(organization=org)
    for key in keys.select_related("role", "workspace"):
        scope = key.workspace.name if key.workspace else "organization-wide"
        role = key.role.name if key.role else "no role"
        if key.role:
            archived = key.workspace.archived if key.workspace else False
            scope += _plan_note(org, key.role, archived=archived)
        items.append(
            item(Item.SERVICE_KEY, key, key.audit_label, f"{role}, {scope}", key.last_used_at)
        )
    return items


def start_campaign(*, actor, organization, name, deadline, workspace=None) -> Campaign:
    actor = _reviewer(actor, organization)
    name = (name or "").strip()
    if not name:
        raise ValidationError({"name": "Give the review a name."})
    if len(name) > 120:
        raise ValidationError({"name": "Keep the name under 120 characters."})
    now = timezone.now()
    if deadline <= now:
        raise ValidationError({"deadline": "The deadline must be in the future."})
    if workspace is not None and workspace.organization_id != organization.pk:
        raise ValidationError({"workspace": "No such workspace in this organization."})
    with transaction.atomic():
        campaign = Campaign.objects.create(
            organization=organization,
            workspace=workspace,
            name=name,
            deadline=deadline,
            created_by=person_behind(actor),
            created_by_label=_label(actor),
        )
        items = Item.objects.bulk_create(_snapshot(campaign, now))
        audit.record(
            actor,
            "access_review.started",
            campaign,
            organization=organization,
            workspace=workspace,
            target_label=name,
            after={
                "scope": campaign.scope_label,
                "items": len(items),
                "deadline": deadline.isoformat(),
            },
        )
    return campaign


def _open(campaign):
    locked = Campaign.objects.select_for_update().get(pk=campaign.pk)
    if locked.completed_at:
        raise ValidationError(
            "This review is completed; its decisions are final.", code="duplicate"
        )
    return locked


def decide(*, actor, campaign, item_ids, decision) -> int:
    """Record keep/revoke for some items (one or many); each decision is its own event."""
    actor = _reviewer(actor, campaign.organization)
    if decision not in (Item.KEEP, Item.REVOKE):
        raise ValidationError({"decision": "Choose keep or revoke."})
    with transaction.atomic():
        campaign = _open(campaign)
        items = list(campaign.items.filter(pk__in=list(item_ids)).select_for_update())
        if not items:
            raise ValidationError("Select at least one item of this review.")
        now, label = timezone.now(), _label(actor)
        for item in items:
            before = item.decision or None
            item.decision, item.decided_by_label, item.decided_at = decision, label, now
            audit.record(
                actor,
                "access_review.decided",
                item,
                organization=campaign.organization,
                workspace=campaign.workspace,
                target_label=f"{item.label} ({campaign.name})",
                before={"decision": before},
                after={"decision": decision},
            )
        Item.objects.bulk_update(items, ["decision", "decided_by_label", "decided_at"])
    return len(items)


# What revoking a membership item does: (its model, the service that removes it, the outcome).
REMOVALS = {
    Item.WORKSPACE_MEMBER: (
        WorkspaceMembership,
        remove_workspace_member,
        "removed from the workspace",
    ),
    Item.ORG_MEMBER: (OrganizationMembership, remove_org_member, "removed from the organization"),
}


def _apply(actor, item):
    """Revoke one item; returns what happened. Raises ValidationError if it cannot."""
    if item.kind in REMOVALS:
        model, remove, outcome = REMOVALS[item.kind]
        membership = model.objects.filter(pk=item.subject_id).first()
        if membership is None:
            return "already removed"
        remove(actor=actor, membership=membership)
        return outcome
    key = ServiceKey.objects.filter(pk=item.subject_id).first()
    if key is None or key.revoked_at is not None:
        return "already revoked"
    revoke_service_key(actor=actor, key=key)
    return "revoked"


def complete_campaign(*, actor, campaign) -> dict:
    actor = _reviewer(actor, campaign.organization)
    with transaction.atomic():
        campaign = _open(campaign)
        items = list(campaign.items.all())
        undecided = [i for i in items if not i.decision]
        if undecided:
            raise ValidationError(
                f"{len(undecided)} item(s) have no decision yet; decide them (or keep them "
                "in bulk) before completing.",
                code="undecided",
            )
        revoked = 0
        for item in items:
            if item.decision == Item.REVOKE:
                try:
                    item.outcome = _apply(actor, item)
                except ValidationError as exc:
                    raise ValidationError(
                        f"Could not revoke {item.label}: {' '.join(exc.messages)} "
                        "Nothing was applied.",
                        code=getattr(exc, "code", None),
                    ) from None
                revoked += 1
            else:
                item.outcome = "kept"
        Item.objects.bulk_update(items, ["outcome"])
        result = {"kept": len(items) - revoked, "revoked": revoked}
        writes.save(
            actor,
            campaign,
            "access_review.completed",
            {"completed_at": timezone.now(), "completed_by_label": _label(actor)},
            organization=campaign.organization,
            workspace=campaign.workspace,
            target_label=campaign.name,
            after=result,
        )
    return result
