"""Custom roles: created, edited and deleted per organization (enterprise plan). Audited."""

import uuid
from dataclasses import dataclass

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Q

from accesscontrol import writes
from accesscontrol.audit import services as audit
from accesscontrol.rbac.actor import as_actor
from accesscontrol.rbac.models import Role
from accesscontrol.rbac.permissions import (
    ADMIN,
    ORG_MANAGE,
    ORG_ROLE_PERMISSIONS,
    ORG_ROLES,
    WORKSPACE_PERMISSIONS,
)

NO_SUCH_ROLE = "No such role in this organization."


class NoSuchRole(ValidationError):
    """A role id the actor's organization does not have: the same answer whether it is missing
    or another organization's, so ids do not leak. Addressed in a URL it is not found (404);
    named in a field of a form or body, that field is invalid (422)."""

    def __init__(self, field=None):
        if field is None:
            super().__init__(NO_SUCH_ROLE, code="not_found")
        else:
            super().__init__({field: ValidationError(NO_SUCH_ROLE, code="invalid")})


def role_by_id(actor, role_id, *, field=None) -> Role:
    """A role of the actor's organization, by id: a system role or the organization's own.

    Whether the organization's plan lets it assign the role is the assigning service's rule
    (check_role_assignable), not this lookup's. Raises NoSuchRole (see there for `field`).
    """
    try:
        role_id = uuid.UUID(str(role_id))
    except ValueError:
        raise NoSuchRole(field) from None
    role = (
        Role.objects.filter(Q(organization__isnull=True) | Q(organization=actor.organization))
        .filter(pk=role_id)
        .first()
    )
    if role is None:
        raise NoSuchRole(field)
    return role


def clean_permissions(codes) -> list[str]:
    codes = set(codes or ())
    not_workspace = codes - WORKSPACE_PERMISSIONS
    if not_workspace:
        raise ValidationError(
            {
                "permissions": "Custom roles hold only workspace permissions; not allowed: "
                + ", ".join(sorted(not_workspace))
            }
        )
    return sorted(codes)


def _clean_role_fields(name, description):
    name = (name or "").strip()
    if not name:
        raise ValidationError({"name": "A role needs a name."})
    if len(name) > 60:
        raise ValidationError({"name": "Keep the role name under 60 characters."})
    if (description or "") and len(description) > 300:
        raise ValidationError({"description": "Keep the description under 300 characters."})
    return name, (description or "").strip()


def _ensure_custom_roles_allowed(organization):
    if not organization.has_workspace_rbac:
        raise ValidationError("Custom roles are available on the Enterprise plan.", code="plan")


def _ensure_name_free(organization, name, exclude=None):
    taken = Role.objects.filter(organization=organization, name__iexact=name)
    if exclude is not None:
        taken = taken.exclude(pk=exclude.pk)
    if taken.exists():
        raise ValidationError({"name": f"A role named {name!r} already exists."})


def _ensure_not_system_name(name):
    if Role.objects.filter(organization__isnull=True, name__iexact=name).exists():
        raise ValidationError({"name": f"{name!r} is a built-in role name."})


def _role_manager(actor, organization):
    actor = as_actor(actor, organization)
    actor.require(ORG_MANAGE)
    return actor


def create_role(*, actor, organization, name, description="", permissions=()) -> Role:
    actor = _role_manager(actor, organization)
    _ensure_custom_roles_allowed(organization)
    name, description = _clean_role_fields(name, description)
    _ensure_not_system_name(name)
    _ensure_name_free(organization, name)
    permissions = clean_permissions(permissions)
    with writes.unique_or(ValidationError({"name": f"A role named {name!r} already exists."})):
        role = Role.objects.create(
            organization=organization,
            name=name,
            description=description,
            permissions=permissions,
        )
        audit.record(
            actor,
            "role.created",
            role,
            organization=organization,
            after={"name": name, "permissions": permissions},
        )
    return role


def update_role(*, actor, role, name=None, description=None, permissions=None) -> Role:
    """Change a custom role. The caller's `role` is left as it was; the saved role is returned."""
    if role.is_system:
        raise ValidationError("Built-in roles cannot be changed.", code="system_role")
    actor = _role_manager(actor, role.organization)
    _ensure_custom_roles_allowed(role.organization)
    new_name, new_description = _clean_role_fields(
        role.name if name is None else name,
        role.description if description is None else description,
    )
    if new_name.lower() != role.name.lower():
        _ensure_not_system_name(new_name)
    _ensure_name_free(role.organization, new_name, exclude=role)
    new_permissions = (
        sorted(role.permissions) if permissions is None else clean_permissions(permissions)
    )
    old = set(role.permissions)
    before = {"name": role.name, "description": role.description, "permissions": sorted(old)}
    after = {"name": new_name, "description": new_description, "permissions": new_permissions}
    if before == after:
        return role
    with writes.unique_or(ValidationError({"name": f"A role named {new_name!r} already exists."})):
        saved = Role.objects.select_for_update().get(pk=role.pk)
        saved.name, saved.description, saved.permissions = (
            new_name,
            new_description,
            new_permissions,
        )
        saved.save(update_fields=["name", "description", "permissions"])
        audit.record(
            actor,
            "role.updated",
            saved,
            organization=role.organization,
            before=before,
            after={
                **after,
                "added": sorted(set(new_permissions) - old),
                "removed": sorted(old - set(new_permissions)),
            },
        )
    return saved


# How many holders of a role are named where its use is shown (the edit page, the delete dialog,
# the refusal to delete): the rest are counted.
ROLE_USAGE_SHOWN = 20


@dataclass(frozen=True)
class RoleUsage:
    members: int  # workspace memberships holding it (or falling back to it)
    keys: int  # service keys not revoked
    where: tuple[str, ...]  # the first ROLE_USAGE_SHOWN holders, in words

    @property
    def total(self) -> int:
        return self.members + self.keys

    @property
    def more(self) -> int:
        return self.total - len(self.where)

    def __bool__(self) -> bool:
        return self.total > 0

    def __str__(self) -> str:
        return ", ".join(self.where) + (f" and {self.more} more" if self.more else "")


def role_usage(role, shown=ROLE_USAGE_SHOWN) -> RoleUsage:
    """Where a role is assigned: workspace memberships (as their role, or as the role a
    temporary upgrade falls back to) and service keys that are not revoked. Counted, and the
    first `shown` named: a role may be held by thousands."""
    memberships = role.memberships.model.objects.filter(Q(role=role) | Q(role_after_expiry=role))
    keys = role.service_keys.filter(revoked_at__isnull=True)
    members, key_count = memberships.count(), keys.count()
    where = [
        f"{m.user.email} in {m.workspace}"
        for m in memberships.select_related("workspace", "org_membership__user").order_by(
            "workspace__name", "org_membership__user__email"
        )[:shown]
    ]
    if key_count and len(where) < shown:
        where += [
            f"{k.audit_label} ({k.workspace or 'organization'})"
            for k in keys.select_related("workspace").order_by("name", "pk")[: shown - len(where)]
        ]
    return RoleUsage(members, key_count, tuple(where))


def delete_role(*, actor, role) -> None:
    if role.is_system:
        raise ValidationError("Built-in roles cannot be deleted.", code="system_role")
    actor = _role_manager(actor, role.organization)
    with transaction.atomic():
        role = Role.objects.select_for_update().get(pk=role.pk)
        usage = role_usage(role)
        if usage:
            raise ValidationError(
                f"The role {role.name!r} is still assigned ({usage}); reassign it first.",
                code="role_in_use",
            )
        audit.record(
            actor,
            "role.deleted",
            role,
            organization=role.organization,
            before={"name": role.name, "permissions": role.permissions},
        )
        role.delete()


def person_behind(actor):
    """The user an actor acts for: a user, a token's owner, a service key's creator, or None.

    A key minted by a key records this person as its creator, so the chain never loses them:
    a key its owner made is the owner too.
    """
    actor = getattr(actor, "audit_actor", actor)  # an Actor: its key or user
    if actor is None:
        return None
    if hasattr(actor, "created_by_id"):  # a service key
        return actor.created_by
    user = getattr(actor, "user", actor)
    return user if getattr(user, "pk", None) else None


def people_behind(actor) -> set:
    """The ids of the users an actor acts for (no query for a service key)."""
    actor = getattr(actor, "audit_actor", actor)  # an Actor: its key or user
    if actor is None:
        return set()
    for attribute in ("created_by_id", "user_id"):
        if hasattr(actor, attribute):
            return {getattr(actor, attribute)} - {None}
    user = getattr(actor, "user", actor)
    return {getattr(user, "pk", None)} - {None}


def check_not_self(actor, member_user, message="You cannot change your own role.") -> None:
    """Nobody adds, changes or removes themself, directly or through a key they made.

    Unconditional: a demoted admin's old key must not lift its owner back, whether by changing
    the membership or by removing it and adding it again.
    """
    if member_user is not None and member_user.pk in people_behind(actor):
        raise ValidationError(message, code="permission")


def check_holds_all(held, grantor_permissions, who: str) -> None:
    """Nobody changes or removes someone who holds more than they do (remove >= change)."""
    beyond = frozenset(held) - grantor_permissions
    if beyond:
        raise ValidationError(
            f"{who}, which holds permissions you do not ({', '.join(sorted(beyond))}): "
            "only someone who holds them all may change their role or remove them.",
            code="permission",
        )


def check_can_grant_org_role(org_role, grantor_permissions) -> None:
    """Making someone an org admin gives every permission: only who holds them all may."""
    if not ORG_ROLES[org_role].admin_everywhere:
        return  # other roles hold nothing an organization manager could not grant
    beyond = ORG_ROLE_PERMISSIONS[org_role] - grantor_permissions
    if beyond:
        raise ValidationError(
            {
                "org_role": ValidationError(
                    f"The organization role {org_role!r} holds permissions you do not: "
                    + ", ".join(sorted(beyond)),
                    code="escalation",
                )
            }
        )


def check_can_grant(role, grantor_permissions) -> None:
    """Nobody hands out a permission they do not hold (unconditional: the system holds all)."""
    beyond = role.permission_set - grantor_permissions
    if beyond:
        message = f"The role {role.name!r} holds permissions you do not: " + ", ".join(
            sorted(beyond)
        )
        # Django drops the code of a dict-shaped ValidationError; it goes on the inner one.
        raise ValidationError({"role": ValidationError(message, code="escalation")})


def roles_assignable_in(organization):
    """The roles check_role_assignable lets the organization assign, as a queryset: what the
    pickers offer and a request suggests, so that nothing offered is then refused."""
    roles = Role.objects.usable_in(organization)
    if not organization.has_workspace_rbac:
        roles = roles.filter(organization__isnull=True, name=ADMIN)
    return roles


def check_role_assignable(role, organization) -> None:
    """The role must exist for this organization; below enterprise only Admin is assignable."""
    if role.organization_id not in (None, organization.pk):
        raise ValidationError({"role": NO_SUCH_ROLE})
    if not organization.has_workspace_rbac and not (role.is_system and role.name == ADMIN):
        raise ValidationError(
            {"role": "Workspace roles other than Admin need the Enterprise plan."}
        )
