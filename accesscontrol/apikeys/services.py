"""Creating and revoking keys. Every change is atomic and audited; the raw key leaves only once."""

import datetime

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from accesscontrol.apikeys import ip_allow_lists, keys
from accesscontrol.apikeys.models import PersonalAccessToken, ServiceKey
from accesscontrol.audit import services as audit
from accesscontrol.organizations.models import OrganizationMembership
from accesscontrol.organizations.services import clean_name
from accesscontrol.rbac.actor import as_actor
from accesscontrol.rbac.models import Role
from accesscontrol.rbac.permissions import (
    ADMIN,
    ORG_MANAGE,
    ORG_PATS_CREATE,
    ORG_ROLE_PERMISSIONS,
    WORKSPACE_PERMISSIONS,
)
from accesscontrol.rbac.services import (
    check_can_grant,
    check_role_assignable,
    people_behind,
    person_behind,
)


def _clean_name(name):
    return clean_name(name, "Give the key a name, so you know what it is for.")


def clean_expiry(organization, expires_at):
    """An expiry in the future within the organization's cap; the cap is the default."""
    now = timezone.now()
    cap = organization.max_key_lifetime_days
    if expires_at is None:
        return now + datetime.timedelta(days=cap) if cap else None
    if timezone.is_naive(expires_at):
        expires_at = timezone.make_aware(expires_at, datetime.UTC)  # no zone given: UTC
    if expires_at <= now:
        raise ValidationError({"expires_at": "The expiry must be in the future."})
    if cap and expires_at > now + datetime.timedelta(days=cap, minutes=5):
        raise ValidationError(
            {"expires_at": f"{organization} allows keys to live at most {cap} days."}
        )
    return expires_at


def _describe_expiry(expires_at):
    return expires_at.isoformat() if expires_at else None


def _revoke(actor, locked, action, organization, workspace=None):
    """Revoke a token or key (locked by the caller's transaction) once, audited; revoking it
    again changes nothing and records nothing."""
    if locked.revoked_at is not None:
        return locked
    locked.revoked_at = timezone.now()
    locked.save(update_fields=["revoked_at"])
    audit.record(
        actor,
        action,
        locked,
        organization=organization,
        workspace=workspace,
        target_label=locked.audit_label,
        after={"revoked_at": locked.revoked_at.isoformat()},
    )
    return locked


# Personal access tokens


def _raw_key(kind, given):
    """A fresh key; or, for the demo seed only, a given well-formed key of the right kind."""
    if given is None:
        return keys.generate(kind)
    parsed = keys.parse(given)
    if parsed is None or parsed.kind != kind:
        raise ValueError("not a well-formed key of this kind")
    return given


def create_personal_access_token(*, user, organization, name, expires_at=None, raw_key=None):
    """Returns (token, raw key). The raw key is never stored and never shown again."""
    name = _clean_name(name)
    membership = OrganizationMembership.objects.filter(organization=organization, user=user).first()
    if membership is None:
        raise ValidationError(f"{user.email} is not a member of {organization}.")
    if ORG_PATS_CREATE not in ORG_ROLE_PERMISSIONS[membership.org_role]:
        raise ValidationError(
            "Organization viewers cannot create personal access tokens.", code="permission"
        )
    if not organization.allow_personal_access_tokens:
        raise ValidationError(
            f"{organization} does not allow personal access tokens; ask for a service key.",
            code="disabled",
        )
    expires_at = clean_expiry(organization, expires_at)
    raw = _raw_key(keys.PERSONAL, raw_key)
    with transaction.atomic():
        token = PersonalAccessToken.objects.create(
            org_membership=membership,
            name=name,
            digest=keys.digest(raw),
            hint=keys.display_hint(raw),
            expires_at=expires_at,
        )
        audit.record(
            user,
            "personal_access_token.created",
            token,
            organization=organization,
            target_label=token.audit_label,
            after={"name": name, "hint": token.hint, "expires_at": _describe_expiry(expires_at)},
        )
    return token, raw


def own_tokens(actor):
    """The actor's own personal access tokens in its organization (a service key has none)."""
    if actor.user is None or actor.organization is None:
        return PersonalAccessToken.objects.none()
    return PersonalAccessToken.objects.filter(
        org_membership__user=actor.user, org_membership__organization=actor.organization
    )


def revoke_personal_access_token(*, actor, token):
    """One's own token, or any token of an organization one manages."""
    organization = token.org_membership.organization
    actor = as_actor(actor, organization)
    if token.org_membership.user_id not in people_behind(actor):
        actor.require(ORG_MANAGE)
    with transaction.atomic():
        token = (
            PersonalAccessToken.objects.select_for_update(of=("self",))
            .select_related("org_membership__user", "org_membership__organization")
            .get(pk=token.pk)
        )
        return _revoke(
            actor, token, "personal_access_token.revoked", token.org_membership.organization
        )


# Service keys


def create_service_key(
    *,
    actor,
    organization,
    workspace,
    name,
    role=None,
    expires_at=None,
    raw_key=None,
    ip_allow_list=(),
):
    """Returns (key, raw key). `workspace=None` makes an org-scoped key (org admins only).
    `ip_allow_list`: networks the key may be used from, within the organization's own list.

    No key may be stronger than whoever made it, where it will act (by the maker's own role,
    whatever the plan).
    """
    actor = as_actor(actor, organization, workspace)
    grantor_permissions = (
        actor.access_in(workspace).grantable if workspace is not None else actor.grantable
    )
    name = _clean_name(name)
    if workspace is not None and workspace.organization_id != organization.pk:
        raise ValidationError({"workspace": "No such workspace in this organization."})
    if workspace is not None and workspace.archived:
        # Archived means read-only for everyone: its admins may only restore it.
        raise ValidationError(
            f"The workspace {workspace.name} is archived (read-only); restore it before "
            "creating keys.",
            code="archived",
        )
    if role is None:
        role = Role.objects.system(ADMIN)
    check_role_assignable(role, organization)
    if workspace is None and ORG_MANAGE not in grantor_permissions:
        raise ValidationError(
            "Only organization admins can create organization-scoped keys.", code="permission"
        )
    if workspace is not None and "workspaces:manage" not in grantor_permissions:
        raise ValidationError(
            "Creating service keys needs workspaces:manage in the workspace.", code="permission"
        )
    if workspace is None:  # only organization managers get here: Admin in every workspace
        grantor_permissions = grantor_permissions | WORKSPACE_PERMISSIONS
    check_can_grant(role, grantor_permissions)
    expires_at = clean_expiry(organization, expires_at)
    networks = ip_allow_lists.clean_allow_list(ip_allow_list)
    raw = _raw_key(keys.SERVICE, raw_key)
    creator = person_behind(actor)
    with transaction.atomic():
        key = ServiceKey.objects.create(
            organization=organization,
            workspace=workspace,
            name=name,
            role=role,
            digest=keys.digest(raw),
            hint=keys.display_hint(raw),
            expires_at=expires_at,
            created_by=creator,
            created_by_label=audit.describe_actor(actor)["actor_label"],
            ip_allow_list=networks,
        )
        audit.record(
            actor,
            "service_key.created",
            key,
            organization=organization,
            workspace=workspace,
            target_label=key.audit_label,
            after={
                "name": name,
                "hint": key.hint,
                "role": role.name,
                "scope": "workspace" if workspace else "organization",
                "expires_at": _describe_expiry(expires_at),
                **({"ip_allow_list": networks} if networks else {}),
            },
        )
    return key, raw


def visible_service_keys(actor, workspace):
    """The service keys an actor sees from a workspace: its own, and org-wide ones to org
    managers (the one rule for the console's key pages, the access review and the API)."""
    keys = ServiceKey.objects.filter(organization_id=workspace.organization_id)
    scope = Q(workspace=workspace)
    if as_actor(actor, workspace.organization, workspace).access_in(workspace).allows(ORG_MANAGE):
        scope |= Q(workspace__isnull=True)
    return keys.filter(scope).select_related("role")


def _key_manager(actor, key):
    """The actor, if it manages this key: a workspace's keys by who manages the workspace,
    org-wide keys by organization managers."""
    actor = as_actor(actor, key.organization, key.workspace)
    if key.workspace_id is not None:
        actor.require("workspaces:manage", workspace=key.workspace)
    else:
        actor.require(ORG_MANAGE)
    return actor


def revoke_service_key(*, actor, key):
    """A workspace's keys by who manages it; org-wide keys by organization managers."""
    actor = _key_manager(actor, key)
    with transaction.atomic():
        key = (
            ServiceKey.objects.select_for_update(of=("self",))
            .select_related("organization", "workspace", "role")
            .get(pk=key.pk)
        )
        return _revoke(actor, key, "service_key.revoked", key.organization, key.workspace)


def set_service_key_ip_allow_list(*, actor, key, ip_allow_list) -> ServiceKey:
    """Where one service key may be used from, within its organization's list (the request's
    address must be in both); empty: wherever the organization allows. Who may revoke the key
    may change this. Saving the key moves the authorization version: effective at once."""
    actor = _key_manager(actor, key)
    networks = ip_allow_lists.clean_allow_list(ip_allow_list)
    with transaction.atomic():
        key = (
            ServiceKey.objects.select_for_update(of=("self",))
            .select_related("organization", "workspace", "role")
            .get(pk=key.pk)
        )
        before = list(key.ip_allow_list)
        if networks == before:
            return key
        if actor.key is not None and actor.key.pk == key.pk:
            ip_allow_lists.check_keeps_caller(
                actor, organization_list=key.organization.ip_allow_list, key_list=networks
            )
        key.ip_allow_list = networks
        key.save(update_fields=["ip_allow_list"])
        audit.record(
            actor,
            "service_key.ip_allow_list_changed",
            key,
            organization=key.organization,
            workspace=key.workspace,
            target_label=key.audit_label,
            before={"ip_allow_list": before},
            after={"ip_allow_list": networks},
        )
    return key


def import_legacy_key(*, raw, workspace, name):
    """A legacy `ls__` key becomes a service key with role Admin; only its digest is kept."""
    parsed = keys.parse(raw)
    if parsed is None or parsed.kind != keys.LEGACY:
        raise ValidationError("Not a legacy ls__ key.")
    name = _clean_name(name)
    role = Role.objects.system(ADMIN)
    try:
        with transaction.atomic():
            key = ServiceKey.objects.create(
                organization=workspace.organization,
                workspace=workspace,
                name=name,
                role=role,
                digest=parsed.digest,
                hint=keys.display_hint(raw),
                legacy=True,
                created_by_label="legacy key import",
            )
            audit.record(
                None,
                "service_key.legacy_imported",
                key,
                workspace=workspace,
                target_label=key.audit_label,
                after={"name": name, "hint": key.hint, "role": ADMIN},
            )
    except IntegrityError:
        raise ValidationError("This legacy key was imported already.", code="duplicate") from None
    return key
