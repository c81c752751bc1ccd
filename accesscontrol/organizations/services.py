"""Organizations and their members. Every change is atomic and audited."""

from django.core.exceptions import ValidationError
from django.core.validators import validate_slug
from django.db import IntegrityError, transaction
from django.utils.text import slugify

from accesscontrol.audit import services as audit
from accesscontrol.organizations.models import (
    Organization,
    OrganizationMembership,
    OrgRole,
    Plan,
)


def unique_slug(model, name, **scope) -> str:
    base = slugify(name)[:50] or "item"
    slug, n = base, 2
    while model.objects.filter(slug=slug, **scope).exists():
        slug, n = f"{base}-{n}", n + 1
    return slug


def clean_slug(slug: str) -> str:
    slug = (slug or "").strip().lower()
    try:
        validate_slug(slug)
    except ValidationError:
        raise ValidationError(
            {"slug": "Use only lowercase letters, numbers, hyphens and underscores."}
        ) from None
    if len(slug) > 60:
        raise ValidationError({"slug": "Keep the slug under 60 characters."})
    return slug


def clean_name(name: str) -> str:
    name = (name or "").strip()
    if not name:
        raise ValidationError({"name": "A name is required."})
    if len(name) > 100:
        raise ValidationError({"name": "Keep the name under 100 characters."})
    return name


def create_organization(*, creator, name, slug=None, plan=Plan.DEVELOPER) -> Organization:
    """A new organization; its creator becomes its first admin."""
    name = clean_name(name)
    if plan not in Plan.values:
        raise ValidationError({"plan": f"Unknown plan {plan!r}."})
    slug = clean_slug(slug) if slug else unique_slug(Organization, name)
    try:
        with transaction.atomic():
            org = Organization.objects.create(name=name, slug=slug, plan=plan)
            membership = OrganizationMembership.objects.create(
                user=creator, organization=org, org_role=OrgRole.ADMIN
            )
            audit.record(
                creator,
                "organization.created",
                org,
                organization=org,
                after={"name": name, "slug": slug, "plan": plan},
            )
            audit.record(
                creator,
                "org_member.added",
                membership,
                organization=org,
                target_label=creator.email,
                after={"org_role": OrgRole.ADMIN},
            )
    except IntegrityError:
        raise ValidationError({"slug": f"The slug {slug!r} is taken."}) from None
    return org


def add_org_member(*, actor, organization, user, org_role=OrgRole.MEMBER):
    if org_role not in OrgRole.values:
        raise ValidationError({"org_role": f"Unknown organization role {org_role!r}."})
    try:
        with transaction.atomic():
            membership = OrganizationMembership.objects.create(
                user=user, organization=organization, org_role=org_role
            )
            audit.record(
                actor,
                "org_member.added",
                membership,
                organization=organization,
                target_label=user.email,
                after={"org_role": org_role},
            )
    except IntegrityError:
        raise ValidationError(f"{user.email} is already a member of {organization}.") from None
    return membership


def _lock_membership(membership) -> OrganizationMembership:
    """Lock the organization row, then re-read the membership.

    Every change that could remove an admin takes the organization's row lock first, so two
    concurrent demotions run one after the other and the second sees the first's result.
    """
    Organization.objects.select_for_update().filter(pk=membership.organization_id).first()
    try:
        return OrganizationMembership.objects.select_related("user", "organization").get(
            pk=membership.pk
        )
    except OrganizationMembership.DoesNotExist:
        raise ValidationError("This person is no longer a member of the organization.") from None


def _ensure_another_admin(membership):
    others = OrganizationMembership.objects.filter(
        organization_id=membership.organization_id, org_role=OrgRole.ADMIN
    ).exclude(pk=membership.pk)
    if not others.exists():
        raise ValidationError(
            "An organization must keep at least one admin. Make someone else an admin first.",
            code="last_admin",
        )


def change_org_role(*, actor, membership, org_role) -> OrganizationMembership:
    if org_role not in OrgRole.values:
        raise ValidationError({"org_role": f"Unknown organization role {org_role!r}."})
    with transaction.atomic():
        membership = _lock_membership(membership)
        before = membership.org_role
        if before == org_role:
            return membership
        if before == OrgRole.ADMIN:
            _ensure_another_admin(membership)
        membership.org_role = org_role
        membership.save(update_fields=["org_role"])
        audit.record(
            actor,
            "org_member.role_changed",
            membership,
            organization=membership.organization,
            target_label=membership.user.email,
            before={"org_role": before},
            after={"org_role": org_role},
        )
    return membership


def remove_org_member(*, actor, membership) -> None:
    """Remove someone from the organization, with every workspace membership they held."""
    with transaction.atomic():
        membership = _lock_membership(membership)
        if membership.org_role == OrgRole.ADMIN:
            _ensure_another_admin(membership)
        workspaces = sorted(
            membership.workspace_memberships.values_list("workspace__slug", flat=True)
        )
        # Their personal access tokens go with the membership (FK cascade): one event each.
        for token in membership.personal_access_tokens.select_related("org_membership__user"):
            audit.record(
                actor,
                "personal_access_token.deleted",
                token,
                organization=membership.organization,
                target_label=token.audit_label,
                before={"name": token.name, "hint": token.hint, "status": token.status},
                after={"reason": "user removed from the organization"},
            )
        audit.record(
            actor,
            "org_member.removed",
            membership,
            organization=membership.organization,
            target_label=membership.user.email,
            before={"org_role": membership.org_role, "workspaces": workspaces},
        )
        membership.delete()


def get_membership(organization, membership_id) -> OrganizationMembership:
    """A membership of this organization; one of another organization is simply not found."""
    return OrganizationMembership.objects.select_related("user").get(
        organization=organization, pk=membership_id
    )
