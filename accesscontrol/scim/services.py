"""SCIM provisioning: the organization's token (console), and what its identity provider does
(the /scim/v2/ endpoints).

People and memberships change only through the services the console uses (add_org_member,
remove_org_member, add_workspace_member, change_workspace_role, remove_workspace_member), with
the SCIM token as the actor, so the audit log says the identity provider did it. Each function
is one transaction: a refusal changes nothing.
"""

import secrets
import zlib

from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import transaction
from django.db.models.functions import Lower
from django.utils import timezone

from accesscontrol import writes
from accesscontrol.accounts.models import User, normalize_email
from accesscontrol.accounts.sessions import end_sessions
from accesscontrol.apikeys import keys
from accesscontrol.audit import services as audit
from accesscontrol.organizations.models import MembershipSource, OrganizationMembership, OrgRole
from accesscontrol.organizations.services import (
    add_org_member,
    identity_provider_may_adopt,
    remove_org_member,
)
from accesscontrol.rbac.actor import as_actor
from accesscontrol.rbac.permissions import ORG_MANAGE, PROVISIONABLE_ORG_ROLES
from accesscontrol.rbac.services import check_role_assignable, people_behind
from accesscontrol.scim import errors
from accesscontrol.scim.models import (
    GroupMapping,
    ProvisioningSettings,
    ScimGroup,
    ScimToken,
    ScimUser,
)
from accesscontrol.scim.protocol import as_uuid, primary_email
from accesscontrol.workspaces.models import WorkspaceMembership, in_effect
from accesscontrol.workspaces.services import (
    add_workspace_member,
    change_workspace_role,
    remove_workspace_member,
)

TOKEN_PREFIX = "lsv2_scim_"
SCIM = MembershipSource.SCIM


# --- the token ---------------------------------------------------------------------------------


def _checksum(body: str) -> str:
    return f"{zlib.crc32(body.encode()):08x}"


def _issue(actor, organization, action, replacing=None) -> tuple[ScimToken, str]:
    """A new token, audited as `action` (in the caller's transaction), with the hint of the
    one it replaces, if any. `lsv2_scim_<128 bits hex>_<crc32>`: recognisable to secret
    scanners, checked for typos before any lookup (scim/auth.py); only its SHA-256 digest is
    stored."""
    body = f"{TOKEN_PREFIX}{secrets.token_hex(16)}"
    raw = f"{body}_{_checksum(body)}"
    token = ScimToken.objects.create(
        organization=organization,
        digest=keys.digest(raw),
        hint=f"{TOKEN_PREFIX}…{raw[-4:]}",
        issued_by=actor.user,
        issued_by_label=actor.label,
    )
    audit.record(
        actor,
        action,
        token,
        organization=organization,
        target_label=token.audit_label,
        before={"hint": replacing.hint} if replacing else None,
        after={"hint": token.hint},
    )
    return token, raw


def _token_manager(actor, organization):
    actor = as_actor(actor, organization)
    actor.require(ORG_MANAGE)
    if actor.kind == "scim_token":
        raise ValidationError("A SCIM token cannot manage SCIM tokens.", code="permission")
    return actor


def issue_token(*, actor, organization) -> tuple[ScimToken, str]:
    """The organization's SCIM token (shown once); one at a time: rotate to replace it."""
    actor = _token_manager(actor, organization)
    with writes.unique_or(
        ValidationError(
            "This organization has a SCIM token already: rotate it to get a new one.",
            code="duplicate",
        )
    ):
        return _issue(actor, organization, "scim_token.created")


def _lock_active_token(organization) -> ScimToken:
    token = (
        ScimToken.objects.select_for_update()
        .filter(organization=organization, revoked_at__isnull=True)
        .first()
    )
    if token is None:
        raise ValidationError("This organization has no SCIM token.", code="not_found")
    return token


def rotate_token(*, actor, organization) -> tuple[ScimToken, str, ScimToken]:
    """A new token in place of the current one, which stops working at once (an identity
    provider takes the new one in a single field; a grace period would only keep a leaked
    token alive). Returns (new token, raw, old token)."""
    actor = _token_manager(actor, organization)
    with transaction.atomic():
        old = _lock_active_token(organization)
        old.revoked_at = timezone.now()
        old.save(update_fields=["revoked_at"])
        token, raw = _issue(actor, organization, "scim_token.rotated", replacing=old)
    return token, raw, old


def revoke_token(*, actor, organization) -> ScimToken:
    actor = _token_manager(actor, organization)
    with transaction.atomic():
        token = _lock_active_token(organization)
        writes.save(
            actor,
            token,
            "scim_token.revoked",
            {"revoked_at": timezone.now()},
            organization=organization,
            target_label=token.audit_label,
            before={"hint": token.hint},
        )
    return token


# --- users -------------------------------------------------------------------------------------


def _record_user(actor, action, scim_user, **changes) -> None:
    """A User's event: in the token's organization, named by the person's email."""
    audit.record(
        actor,
        action,
        scim_user,
        organization=actor.organization,
        target_label=scim_user.user.email,
        **changes,
    )


def _record_group(actor, action, group, **changes) -> None:
    """A Group's event, in the token's organization."""
    audit.record(actor, action, group, organization=actor.organization, **changes)


def _provisioner(actor):
    """The actor, if it may provision people in its organization (its SCIM token, or an org
    manager)."""
    actor.require(ORG_MANAGE)
    if actor.organization is None:
        raise ValidationError("Provisioning needs an organization.", code="permission")
    return actor


def _user_fields(state) -> dict:
    return {
        "user_name": state["user_name"],
        "external_id": state["external_id"],
        "display_name": state["display_name"],
        "given_name": state["given_name"],
        "family_name": state["family_name"],
        "emails": state["emails"],
        "attributes": state["attributes"],
    }


def _check_free(model, field, organization, value, taken, exclude=None):
    """No other row of `model` in the organization holds `value` in `field`, whatever its
    case (SCIM names are case-insensitive); `taken`, the error to raise otherwise."""
    holders = model.objects.annotate(lower=Lower(field)).filter(
        organization=organization, lower=value.lower()
    )
    if exclude is not None:
        holders = holders.exclude(pk=exclude.pk)
    if holders.exists():
        raise taken


def _check_user_name_free(organization, user_name, exclude=None):
    taken = errors.uniqueness(f"userName {user_name!r} is taken in this organization.")
    _check_free(ScimUser, "user_name", organization, user_name, taken, exclude)


def _user_name_taken(user_name):
    return errors.uniqueness(f"userName {user_name!r} is taken.")


def _person_for(state, organization):
    """The account with the user's email, or a new one (no password: they sign in through the
    identity provider, or set one with a reset). An account of another organization's is not
    this one's to take (organizations.identity_provider_may_adopt, as single sign-on)."""
    email = normalize_email(primary_email(state))
    try:
        validate_email(email)
    except ValidationError:
        raise errors.invalid_value(
            "userName or a primary email must be an email address: it names the person's account."
        ) from None
    user = User.objects.filter(email=email).first()
    if user is not None and not identity_provider_may_adopt(user, organization):
        raise errors.uniqueness(
            f"An account for {email} already exists and belongs to another organization: "
            "invite them first; once they have joined, provisioning manages them."
        )
    if user is None:
        full_name = " ".join(p for p in (state["given_name"], state["family_name"]) if p)
        user = User.objects.create_user(email, None, full_name=full_name or state["display_name"])
    return user


def provision_user(*, actor, state) -> ScimUser:
    """POST /Users: a person (the account with that email, or a new one) who becomes a member
    of the organization (org role member, source SCIM); created inactive, they join nothing
    (and a member already is deactivated)."""
    actor = _provisioner(actor)
    organization = actor.organization
    with writes.unique_or(_user_name_taken(state["user_name"])):
        _check_user_name_free(organization, state["user_name"])
        person = _person_for(state, organization)
        if ScimUser.objects.filter(organization=organization, user=person).exists():
            raise errors.uniqueness(f"{person.email} is provisioned already, as another User.")
        scim_user = ScimUser.objects.create(
            organization=organization,
            user=person,
            active=state["active"],
            **_user_fields(state),
        )
        _record_user(
            actor,
            "scim_user.created",
            scim_user,
            after={"userName": scim_user.user_name, "active": scim_user.active},
        )
        if scim_user.active:
            _admit(actor, scim_user)
        elif organization.memberships.filter(user=person).exists():
            # A member already (added by hand before the identity provider knew them): created
            # inactive is deactivated, as a PATCH of `active: false` would have it.
            _deactivate(actor, scim_user)
    return scim_user


def _lock(actor, resources, resource, version, kind):
    """The resource, locked, in the token's organization (404 otherwise), at the version the
    client's If-Match names (412 otherwise)."""
    mine = resources.filter(organization=actor.organization)
    locked = mine.select_for_update().filter(pk=resource.pk).first()
    if locked is None:
        raise errors.not_found(kind)
    if version is not None and locked.version != version:
        raise errors.version_mismatch()
    return locked


def _lock_user(actor, scim_user, version) -> ScimUser:
    users = ScimUser.objects.select_related("user", "organization")
    return _lock(actor, users, scim_user, version, "User")


def update_user(*, actor, scim_user, state, version=None) -> ScimUser:
    """PUT or PATCH /Users/<id>: the new attributes; `active` false removes the person from the
    organization in this very transaction (_deprovision), true brings them back. `version`:
    the If-Match the client sent, if any."""
    actor = _provisioner(actor)
    with writes.unique_or(_user_name_taken(state["user_name"])):
        scim_user = _lock_user(actor, scim_user, version)
        if state["user_name"].lower() != scim_user.user_name.lower():
            _check_user_name_free(actor.organization, state["user_name"], exclude=scim_user)
        fields = _user_fields(state)
        changed = {k: v for k, v in fields.items() if getattr(scim_user, k) != v}
        was_active = scim_user.active
        if not changed and was_active == state["active"]:
            return scim_user
        before = {k: getattr(scim_user, k) for k in changed}
        for key, value in changed.items():
            setattr(scim_user, key, value)
        scim_user.active = state["active"]
        scim_user.version += 1
        scim_user.save()
        if changed:
            _record_user(
                actor,
                "scim_user.updated",
                scim_user,
                before=_audited(before),
                after=_audited(changed),
            )
        if was_active and not scim_user.active:
            _deactivate(actor, scim_user)
        elif scim_user.active and not was_active:
            _admit(actor, scim_user)
            _record_user(actor, "scim_user.reactivated", scim_user)
    return scim_user


def _audited(values: dict) -> dict:
    """What the audit keeps of changed attributes: the names people know, no raw blobs."""
    names = {
        "user_name": "userName",
        "external_id": "externalId",
        "display_name": "displayName",
        "given_name": "givenName",
        "family_name": "familyName",
    }
    out = {names[k]: v for k, v in values.items() if k in names}
    if "emails" in values:
        out["emails"] = [e.get("value") for e in values["emails"]]
    if "attributes" in values:
        out["other attributes"] = sorted(values["attributes"])
    return out


def delete_user(*, actor, scim_user, version=None) -> None:
    """DELETE /Users/<id>: deprovisioned as by `active: false`, then forgotten here (the
    person's account stays: it may belong to other organizations)."""
    actor = _provisioner(actor)
    with transaction.atomic():
        scim_user = _lock_user(actor, scim_user, version)
        if scim_user.active:
            _deactivate(actor, scim_user)
        _record_user(
            actor,
            "scim_user.deleted",
            scim_user,
            before={"userName": scim_user.user_name},
        )
        scim_user.delete()


def default_org_role(organization) -> str:
    found = ProvisioningSettings.objects.filter(organization=organization).first()
    return found.default_org_role if found else OrgRole.MEMBER


def set_default_org_role(*, actor, organization, org_role) -> ProvisioningSettings:
    """The org role people provisioned from now on get (those already in keep theirs)."""
    actor = _token_manager(actor, organization)
    if org_role not in PROVISIONABLE_ORG_ROLES:
        raise ValidationError(
            {"default_org_role": f"Choose one of: {', '.join(PROVISIONABLE_ORG_ROLES)}."}
        )
    with transaction.atomic():
        found, _ = ProvisioningSettings.objects.select_for_update().get_or_create(
            organization=organization
        )
        writes.change(
            actor,
            found,
            "default_org_role",
            org_role,
            "scim_settings.changed",
            key="org_role",
            target=organization,
            organization=organization,
        )
    return found


def _admit(actor, scim_user) -> None:
    """The person joins the organization (unless they are in it already, e.g. added by hand
    before the identity provider knew them), then gets what their groups map to."""
    organization = actor.organization
    if not OrganizationMembership.objects.filter(
        organization=organization, user=scim_user.user
    ).exists():
        add_org_member(
            actor=actor,
            organization=organization,
            user=scim_user.user,
            org_role=default_org_role(organization),
            source=SCIM,
        )
    _sync_workspaces(actor, scim_user)


def _deactivate(actor, scim_user) -> None:
    """Out of the organization now: its membership (with every workspace membership and
    personal access token, through remove_org_member, whose change of the organization's
    authorization version refuses their tokens on every process from the next request), and
    every console session of theirs."""
    membership = (
        OrganizationMembership.objects.select_related("user", "organization")
        .filter(organization=actor.organization, user=scim_user.user)
        .first()
    )
    if membership is not None:
        remove_org_member(actor=actor, membership=membership)
    ended = end_sessions(scim_user.user)
    _record_user(actor, "scim_user.deactivated", scim_user, after={"sessions_ended": ended})


# --- workspace access from groups --------------------------------------------------------------


def _stronger(role, other) -> bool:
    mine, theirs = role.permission_set, other.permission_set
    if mine != theirs and mine >= theirs:
        return True
    if theirs >= mine:
        return False
    return (len(mine), role.name) > (len(theirs), other.name)  # unrelated: the wider one


def _sync_workspaces(actor, scim_user) -> None:
    """Make the person's SCIM-made workspace memberships what their groups' mappings say: the
    strongest mapped role per workspace. Memberships made by hand (or an invitation, SSO) are
    never changed or removed here."""
    if not scim_user.active or scim_user.user_id in people_behind(actor):
        return  # someone changing a mapping they are in themself: the next sync applies it
    membership = OrganizationMembership.objects.filter(
        organization=actor.organization, user=scim_user.user
    ).first()
    if membership is None:
        return
    wanted = {}
    # An archived workspace takes nobody in (as invitations and SSO's defaults have it) and
    # its memberships stay as they are: it is read-only (compute_access).
    mappings = GroupMapping.objects.filter(
        organization=actor.organization, group__members=scim_user, workspace__archived=False
    ).select_related("workspace__organization", "role")
    for mapping in mappings:
        current = wanted.get(mapping.workspace_id)
        if current is None or _stronger(mapping.role, current.role):
            wanted[mapping.workspace_id] = mapping
    # What they hold now, as the resolver reads it: an ended grant is none (adding makes it
    # make way), an ended upgrade is its fallback role.
    held = {
        m.workspace_id: m
        for m in WorkspaceMembership.objects.filter(org_membership=membership)
        .filter(in_effect(), workspace__archived=False)
        .select_related("workspace__organization", "role", "org_membership__user")
    }
    for workspace_id, mapping in wanted.items():
        existing = held.get(workspace_id)
        if existing is None:
            add_workspace_member(
                actor=actor,
                workspace=mapping.workspace,
                user=scim_user.user,
                role=mapping.role,
                source=SCIM,
            )
        elif existing.source == SCIM and existing.role_in_effect_id != mapping.role_id:
            change_workspace_role(actor=actor, membership=existing, role=mapping.role)
    for workspace_id, existing in held.items():
        if existing.source == SCIM and workspace_id not in wanted:
            remove_workspace_member(actor=actor, membership=existing)


# --- groups ------------------------------------------------------------------------------------


def _members_of(actor, ids) -> list[ScimUser]:
    parsed = {as_uuid(i) for i in ids}
    if None in parsed:
        raise errors.invalid_value("A member's value must be the id of a User.")
    found = list(ScimUser.objects.filter(organization=actor.organization, pk__in=parsed))
    if len(found) != len(parsed):
        raise errors.invalid_value("No such User in this organization among the members.")
    return found


def _check_group_name_free(organization, name, exclude=None):
    _check_free(ScimGroup, "display_name", organization, name, _group_name_taken(name), exclude)


def _group_name_taken(name):
    return errors.uniqueness(f"A Group named {name!r} exists already.")


def create_group(*, actor, state) -> ScimGroup:
    actor = _provisioner(actor)
    organization = actor.organization
    with writes.unique_or(_group_name_taken(state["display_name"])):
        _check_group_name_free(organization, state["display_name"])
        members = _members_of(actor, state["member_ids"])
        group = ScimGroup.objects.create(
            organization=organization,
            display_name=state["display_name"],
            external_id=state["external_id"],
        )
        _record_group(actor, "scim_group.created", group, after={"displayName": group.display_name})
        _change_members(actor, group, members)
    return group


def _lock_group(actor, group, version) -> ScimGroup:
    return _lock(actor, ScimGroup.objects.all(), group, version, "Group")


def update_group(*, actor, group, state, version=None) -> ScimGroup:
    """PUT or PATCH /Groups/<id>: its name and its members; whoever joins or leaves gets or
    loses what the group's mappings give, in this transaction."""
    actor = _provisioner(actor)
    with writes.unique_or(_group_name_taken(state["display_name"])):
        group = _lock_group(actor, group, version)
        members = _members_of(actor, state["member_ids"])
        before = {"displayName": group.display_name, "externalId": group.external_id}
        after = {"displayName": state["display_name"], "externalId": state["external_id"]}
        if after["displayName"].lower() != before["displayName"].lower():
            _check_group_name_free(actor.organization, after["displayName"], exclude=group)
        group.display_name, group.external_id = after["displayName"], after["externalId"]
        changed = {k for k in after if after[k] != before[k]}
        moved = _change_members(actor, group, members)
        if changed or moved:
            group.version += 1
            group.save()
        if changed:
            _record_group(
                actor,
                "scim_group.updated",
                group,
                before={k: before[k] for k in changed},
                after={k: after[k] for k in changed},
            )
    return group


def _change_members(actor, group, members) -> bool:
    """The group's members become `members`: each joining or leaving audited and synced."""
    current = {m.pk: m for m in group.members.select_related("user")}
    new = {m.pk: m for m in members}
    joined = [new[pk] for pk in new.keys() - current.keys()]
    left = [current[pk] for pk in current.keys() - new.keys()]
    moves = [
        (joined, group.members.add, "scim_group.member_added", "after"),
        (left, group.members.remove, "scim_group.member_removed", "before"),
    ]
    for scim_users, move, action, side in moves:
        for scim_user in sorted(scim_users, key=lambda u: u.user_name):
            move(scim_user)
            _record_group(actor, action, group, **{side: {"member": scim_user.user_name}})
            _sync_workspaces(actor, scim_user)
    return bool(joined or left)


def delete_group(*, actor, group, version=None) -> None:
    """DELETE /Groups/<id>: its members lose what its mappings gave them."""
    actor = _provisioner(actor)
    with transaction.atomic():
        group = _lock_group(actor, group, version)
        members = list(group.members.select_related("user"))
        _record_group(
            actor,
            "scim_group.deleted",
            group,
            before={"displayName": group.display_name},
        )
        # Its mappings (an org admin's, in the console) go with it (FK cascade): each recorded
        # as remove_group_mapping records one.
        for mapping in group.mappings.select_related("workspace__organization", "role"):
            _record_mapping_removed(actor, mapping, group)
        group.delete()
        for scim_user in members:
            _sync_workspaces(actor, scim_user)


# --- group mappings (console) ------------------------------------------------------------------


def _mapping_manager(actor, organization):
    actor = as_actor(actor, organization)
    actor.require(ORG_MANAGE)
    return actor


def _sync_group(actor, group) -> None:
    for scim_user in group.members.select_related("user"):
        _sync_workspaces(actor, scim_user)


def add_group_mapping(*, actor, group, workspace, role) -> GroupMapping:
    """Members of `group` get `role` in `workspace`, from now on (applied to them at once)."""
    organization = group.organization
    actor = _mapping_manager(actor, organization)
    if workspace.organization_id != organization.pk or workspace.archived:
        raise ValidationError({"workspace": "No such workspace in this organization."})
    check_role_assignable(role, organization)
    with writes.unique_or(
        ValidationError(
            {"workspace": f"{group} is mapped to {workspace} already; change that mapping."}
        )
    ):
        mapping = GroupMapping.objects.create(
            organization=organization, group=group, workspace=workspace, role=role
        )
        audit.record(
            actor,
            "scim_mapping.created",
            mapping,
            workspace=workspace,
            target_label=group.display_name,
            after={"role": role.name},
        )
        _sync_group(actor, group)
    return mapping


def change_group_mapping(*, actor, mapping, role) -> GroupMapping:
    actor = _mapping_manager(actor, mapping.organization)
    check_role_assignable(role, mapping.organization)
    with transaction.atomic():
        mapping = (
            GroupMapping.objects.select_for_update(of=("self",))
            .select_related("group", "workspace__organization", "role")
            .get(pk=mapping.pk)
        )
        if writes.change(
            actor,
            mapping,
            "role",
            role,
            "scim_mapping.changed",
            show=lambda r: r.name,
            workspace=mapping.workspace,
            target_label=mapping.group.display_name,
        ):
            _sync_group(actor, mapping.group)
    return mapping


def remove_group_mapping(*, actor, mapping) -> None:
    """The group no longer grants anything there: what it gave (source SCIM) is taken back."""
    actor = _mapping_manager(actor, mapping.organization)
    with transaction.atomic():
        mapping = (
            GroupMapping.objects.select_for_update(of=("self",))
            .select_related("group", "workspace__organization", "role")
            .get(pk=mapping.pk)
        )
        group = mapping.group
        _record_mapping_removed(actor, mapping, group)
        mapping.delete()
        _sync_group(actor, group)


def _record_mapping_removed(actor, mapping, group) -> None:
    audit.record(
        actor,
        "scim_mapping.removed",
        mapping,
        workspace=mapping.workspace,
        target_label=group.display_name,
        before={"role": mapping.role.name},
    )
