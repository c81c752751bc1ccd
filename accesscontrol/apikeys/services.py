"""Creating and revoking keys. Every change is atomic and audited; the raw key leaves only once."""

import datetime

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from accesscontrol import writes
from accesscontrol.apikeys import ip_allow_lists, keys
from accesscontrol.apikeys.limits import clean_limits
from accesscontrol.apikeys.models import PersonalAccessToken, ServiceKey
from accesscontrol.audit import services as audit
from accesscontrol.organizations.models import OrganizationMembership
from accesscontrol.organizations.services import clean_name
from accesscontrol.rbac.actor import Actor, as_actor
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


def _revoke(actor, locked, action, organization, workspace=None, **why):
    """Revoke a token or key (locked by the caller's transaction) once, audited; revoking it
    again changes nothing and records nothing. `why`: the reason's fields, when it was not by
    hand (revoked_reason, leak_reported_by, leak_url, leak_source), kept on the key and in
    the audit event."""
    if locked.revoked_at is not None:
        return locked
    revoked_at = timezone.now()
    writes.save(
        actor,
        locked,
        action,
        {"revoked_at": revoked_at, **why},
        organization=organization,
        workspace=workspace,
        target_label=locked.audit_label,
        after={"revoked_at": revoked_at.isoformat(), **why},
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


def create_personal_access_token(
    *,
    user,
    organization,
    name,
    expires_at=None,
    raw_key=None,
    preset=None,
    permissions=None,
    workspaces=None,
):
    """Returns (token, raw key). The raw key is never stored and never shown again.

    A token may be narrowed (apikeys/limits.py): to a permission `preset` or a custom pick of
    `permissions`, and to some `workspaces` (ids or workspaces) its user can act in.
    """
    name = _clean_name(name)
    membership = OrganizationMembership.objects.filter(organization=organization, user=user).first()
    if membership is None:
        raise ValidationError(f"{user.email} is not a member of {organization}.")
    check_may_create_personal_access_token(membership, organization)
    limits = clean_limits(membership, preset=preset, permissions=permissions, workspaces=workspaces)
    expires_at = clean_expiry(organization, expires_at)
    raw = _raw_key(keys.PERSONAL, raw_key)
    permission_limit = sorted(limits.permissions) if limits.permissions is not None else None
    workspace_limit = list(limits.workspace_ids) if limits.workspace_ids is not None else None
    with transaction.atomic():
        token = PersonalAccessToken.objects.create(
            org_membership=membership,
            name=name,
            **keys.stored(raw),
            expires_at=expires_at,
            permission_limit=permission_limit,
            workspace_limit=workspace_limit,
        )
        after = {"name": name, "hint": token.hint, "expires_at": _describe_expiry(expires_at)}
        if limits.narrowed:
            after["limits"] = {
                "preset": limits.preset,
                "permissions": permission_limit,
                "workspace_ids": workspace_limit,
            }
        audit.record(
            user,
            "personal_access_token.created",
            token,
            organization=organization,
            target_label=token.audit_label,
            after=after,
        )
    return token, raw


def check_may_create_personal_access_token(membership, organization):
    """The rule for a member's new token (made, or a rotated one's successor)."""
    if ORG_PATS_CREATE not in ORG_ROLE_PERMISSIONS[membership.org_role]:
        raise ValidationError(
            "Organization viewers cannot create personal access tokens.", code="permission"
        )
    if not organization.allow_personal_access_tokens:
        raise ValidationError(
            f"{organization} does not allow personal access tokens; ask for a service key.",
            code="disabled",
        )


def own_tokens(actor):
    """The actor's own personal access tokens in its organization (a service key has none)."""
    if actor.user is None or actor.organization is None:
        return PersonalAccessToken.objects.none()
    return PersonalAccessToken.objects.filter(
        org_membership__user=actor.user, org_membership__organization=actor.organization
    )


def check_may_revoke_personal_access_token(actor, token):
    if token.org_membership.user_id not in people_behind(actor):
        actor.require(ORG_MANAGE)


def revoke_personal_access_token(*, actor, token):
    """One's own token, or any token of an organization one manages."""
    organization = token.org_membership.organization
    actor = as_actor(actor, organization)
    check_may_revoke_personal_access_token(actor, token)
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


def _check_not_archived(workspace) -> None:
    """No new key in an archived workspace, whoever makes it (made, rotated or imported)."""
    if workspace.archived:
        # Archived means read-only for everyone: its admins may only restore it.
        raise ValidationError(
            f"The workspace {workspace.name} is archived (read-only); restore it before "
            "creating keys.",
            code="archived",
        )


def check_may_create_service_key(actor, organization, workspace, role):
    """The rule for a new service key with `role` (made, or a rotated one's successor): who
    may make one there, and never one stronger than its maker where it will act (by the
    maker's own role, whatever the plan)."""
    grantor_permissions = (
        actor.access_in(workspace).grantable if workspace is not None else actor.grantable
    )
    if workspace is not None and workspace.organization_id != organization.pk:
        raise ValidationError({"workspace": "No such workspace in this organization."})
    if workspace is not None:
        _check_not_archived(workspace)
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
    `ip_allow_list`: networks the key may be used from, within the organization's own list."""
    actor = as_actor(actor, organization, workspace)
    name = _clean_name(name)
    if role is None:
        role = Role.objects.system(ADMIN)
    check_may_create_service_key(actor, organization, workspace, role)
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
            **keys.stored(raw),
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


def check_may_revoke_service_key(actor, key):
    """A workspace's keys by who manages it; org-wide keys by organization managers."""
    if key.workspace_id is not None:
        actor.require("workspaces:manage", workspace=key.workspace)
    else:
        actor.require(ORG_MANAGE)


def revoke_service_key(*, actor, key):
    actor = as_actor(actor, key.organization, key.workspace)
    check_may_revoke_service_key(actor, key)
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
    actor = as_actor(actor, key.organization, key.workspace)
    check_may_revoke_service_key(actor, key)
    networks = ip_allow_lists.clean_allow_list(ip_allow_list)
    with transaction.atomic():
        key = (
            ServiceKey.objects.select_for_update(of=("self",))
            .select_related("organization", "workspace", "role")
            .get(pk=key.pk)
        )
        if key.status != "active":
            raise ValidationError(f"{key.name} ({key.hint}) is {key.status}: nothing to restrict.")
        writes.change(
            actor,
            key,
            "ip_allow_list",
            networks,
            "service_key.ip_allow_list_changed",
            check=lambda: _check_keeps_caller(actor, key, networks),
            organization=key.organization,
            workspace=key.workspace,
            target_label=key.audit_label,
        )
    return key


def _check_keeps_caller(actor, key, networks) -> None:
    """A key that narrows its own list must still let in the request doing it."""
    if actor.key is not None and actor.key.pk == key.pk:
        ip_allow_lists.check_keeps_caller(
            actor, organization_list=key.organization.ip_allow_list, key_list=networks
        )


def import_legacy_key(*, raw, workspace, name):
    """A legacy `ls__` key becomes a service key with role Admin; only its digest is kept."""
    parsed = keys.parse(raw)
    if parsed is None or parsed.kind != keys.LEGACY:
        raise ValidationError("Not a legacy ls__ key.")
    name = _clean_name(name)
    _check_not_archived(workspace)
    role = Role.objects.system(ADMIN)
    with writes.unique_or(
        ValidationError("This legacy key was imported already.", code="duplicate")
    ):
        key = ServiceKey.objects.create(
            organization=workspace.organization,
            workspace=workspace,
            name=name,
            role=role,
            digest=parsed.digest,
            hint=keys.display_hint(raw),
            legacy=True,
            created_by_label="legacy key import",
            # The organization's key lifetime cap, as for every key it gets (none: until the
            # legacy sunset refuses it).
            expires_at=clean_expiry(workspace.organization, None),
        )
        audit.record(
            Actor.system("import_legacy_keys", workspace.organization, workspace),
            "service_key.legacy_imported",
            key,
            workspace=workspace,
            target_label=key.audit_label,
            after={
                "name": name,
                "hint": key.hint,
                "role": ADMIN,
                "expires_at": _describe_expiry(key.expires_at),
            },
        )
    return key


def revoke_presented_key(*, actor):
    """The key an API request presents, revoked by that request: possession of a key already
    proves the power to abuse it, so it proves the power to end it (DELETE /auth/self)."""
    if getattr(actor, "key", None) is None:
        raise ValidationError("Only an API key can revoke itself.", code="permission")
    model = type(actor.key)
    with transaction.atomic():
        key = model.objects.select_for_update(of=("self",)).get(pk=actor.key.pk)
        organization, workspace = _where_key_lives(key)
        return _revoke(
            actor,
            key,
            f"{key.audit_kind}.revoked",
            organization,
            workspace,
            revoked_reason=key.SELF,
        )


def _where_key_lives(key):
    """(organization, workspace) a token's or key's audit events belong to."""
    if isinstance(key, PersonalAccessToken):
        return key.org_membership.organization, None
    return key.organization, key.workspace


def revoke_leaked_key(*, scanner, key, url="", source=""):
    """A live key a trusted secret scanner found in public (apikeys/leaks.py verified the
    report): revoked at once, with who found it, where and in what, audited as the system
    acting for that scanner. Returns the revoked key, or None if it was dead already (then
    nothing is written)."""
    with transaction.atomic():
        key = type(key).objects.select_for_update(of=("self",)).get(pk=key.pk)
        if key.status != "active":
            return None
        organization, workspace = _where_key_lives(key)
        return _revoke(
            Actor.system(f"secret scanner {scanner}", organization, workspace),
            key,
            f"{key.audit_kind}.leaked",
            organization,
            workspace,
            revoked_reason=key.LEAKED,
            leak_reported_by=scanner,
            leak_url=url,
            leak_source=source,
        )
