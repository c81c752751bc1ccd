"""Rotating a key with overlap: its successor now, the old key until a grace expiry.

The successor is the same key under a new secret: every field that says what the key is and
may do (name, organization, workspace, role, a token's membership and limits, whatever a later
migration adds) is copied from the predecessor, generically, so nothing is lost in a rotation;
only what makes a key this one key and its history so far (OWN_FIELDS) is new. The old key keeps
working until the grace expiry its rotator picked, then is refused with `expired_api_key` and a
detail that names its successor's hint. One audit event records the rotation.

Who may rotate: whoever may both revoke the key and create its successor (apikeys/services.py).
"""

import datetime

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from accesscontrol.apikeys import keys, services
from accesscontrol.apikeys.models import PersonalAccessToken, ServiceKey
from accesscontrol.audit import services as audit
from accesscontrol.rbac.actor import as_actor
from accesscontrol.rbac.services import person_behind

MIN_GRACE = datetime.timedelta(hours=1)
MAX_GRACE = datetime.timedelta(days=7)

# What a successor does not take from its predecessor: its identity, secret and history.
OWN_FIELDS = frozenset(
    {
        "id",
        "digest",
        "hint",
        "created_at",
        "expires_at",
        "last_used_at",
        "revoked_at",
        "rotated_to",
        "revoked_reason",
        "leak_reported_by",
        "leak_url",
        "leak_source",
        "legacy",  # a legacy ls__ key rotates into a modern one
        "created_by",
        "created_by_label",
    }
)


def clean_grace(grace_hours) -> datetime.timedelta:
    """The overlap a rotation gives the old key: 1 hour to 7 days, in whole hours."""
    hours = MIN_GRACE // datetime.timedelta(hours=1), MAX_GRACE // datetime.timedelta(hours=1)
    if isinstance(grace_hours, bool) or not isinstance(grace_hours, int):
        raise ValidationError({"grace_hours": "The grace period is a whole number of hours."})
    if not hours[0] <= grace_hours <= hours[1]:
        raise ValidationError(
            {
                "grace_hours": f"The grace period must be {hours[0]} to {hours[1]} hours "
                "(1 hour to 7 days)."
            }
        )
    return datetime.timedelta(hours=grace_hours)


def rotate_service_key(*, actor, key, grace_hours):
    """Returns (successor, raw key, old key)."""
    actor = as_actor(actor, key.organization, key.workspace)
    services.check_may_revoke_service_key(actor, key)
    grace = clean_grace(grace_hours)
    with transaction.atomic():
        old = (
            ServiceKey.objects.select_for_update(of=("self",))
            .select_related("organization", "workspace", "role")
            .get(pk=key.pk)
        )
        # The successor takes the locked row's role: that is the role checked.
        if old.role is None:
            raise ValidationError(f"{old.name} ({old.hint}) has no role left: revoke it instead.")
        services.check_may_create_service_key(actor, old.organization, old.workspace, old.role)
        _check_rotatable(old)
        return _rotate(
            actor,
            old,
            grace,
            keys.SERVICE,
            old.organization,
            old.workspace,
            created_by=person_behind(actor),
            created_by_label=audit.describe_actor(actor)["actor_label"],
        )


def rotate_personal_access_token(*, actor, token, grace_hours):
    """Returns (successor, raw token, old token). The successor acts as the token's user, so
    only who may revoke the token and also make that user a token may rotate it: its user (or a
    key its user made), while the organization allows tokens and the user's role makes them."""
    organization = token.org_membership.organization
    actor = as_actor(actor, organization)
    services.check_may_revoke_personal_access_token(actor, token)
    if token.org_membership.user_id != getattr(person_behind(actor), "pk", None):
        raise ValidationError(
            "Only its owner can rotate a token: the new token would act as them. "
            "Revoke it instead.",
            code="permission",
        )
    services.check_may_create_personal_access_token(token.org_membership, organization)
    grace = clean_grace(grace_hours)
    with transaction.atomic():
        old = (
            PersonalAccessToken.objects.select_for_update(of=("self",))
            .select_related("org_membership__user", "org_membership__organization")
            .get(pk=token.pk)
        )
        _check_rotatable(old)
        return _rotate(actor, old, grace, keys.PERSONAL, old.org_membership.organization)


def _check_rotatable(old):
    if old.rotated_to_id is not None:
        raise ValidationError(
            f"{old.name} ({old.hint}) was rotated already: rotate its successor instead."
        )
    if old.status != "active":
        raise ValidationError(f"{old.name} ({old.hint}) is {old.status}: only a live key rotates.")


def _successor_expiry(old, organization, now):
    """As long a life as the predecessor was given (within the organization's cap), or the
    organization's default if it had no end."""
    if old.expires_at is None:
        return services.clean_expiry(organization, None)
    lifetime = old.expires_at - old.created_at
    cap = organization.max_key_lifetime_days
    if cap:
        lifetime = min(lifetime, datetime.timedelta(days=cap))
    return services.clean_expiry(organization, now + max(lifetime, MIN_GRACE))


def _rotate(actor, old, grace, kind, organization, workspace=None, **own):
    model = type(old)
    now = timezone.now()
    raw = keys.generate(kind)
    expires_at = _successor_expiry(old, organization, now)
    copied = {
        field.attname: getattr(old, field.attname)
        for field in model._meta.concrete_fields
        if field.name not in OWN_FIELDS
    }
    successor = model(
        **copied,
        **keys.stored(raw),
        expires_at=expires_at,
        **own,
    )
    successor.save(force_insert=True)
    for field in model._meta.many_to_many:  # limits kept as relations carry over too
        getattr(successor, field.name).set(getattr(old, field.name).all())
    before = {"hint": old.hint, "expires_at": services._describe_expiry(old.expires_at)}
    ends = now + grace
    old.expires_at = ends if old.expires_at is None else min(old.expires_at, ends)
    old.rotated_to = successor
    old.save(update_fields=["expires_at", "rotated_to"])
    audit.record(
        actor,
        f"{old.audit_kind}.rotated",
        old,
        organization=organization,
        workspace=workspace,
        target_label=old.audit_label,
        before=before,
        after={
            "expires_at": services._describe_expiry(old.expires_at),
            "grace_hours": grace // datetime.timedelta(hours=1),
            "successor": {
                "id": str(successor.pk),
                "hint": successor.hint,
                "expires_at": services._describe_expiry(successor.expires_at),
            },
        },
    )
    return successor, raw, old
