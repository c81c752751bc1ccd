"""Narrowed personal access tokens: a token limited to some workspaces and some permissions.

A token's limits are chosen when it is made and stored on its row (`permission_limit`: a list
of codes; `workspace_limit`: a list of workspace ids; null means no limit of that kind). The
token then acts with the intersection of its user's *current* access and its limits, computed
in one place, `narrow`, which apikeys/authentication.py applies wherever a token's Access is
built: a later promotion of the user never widens the token; a demotion narrows it on the next
request (the user's access is read, or its cached result dropped, under the organization's
authorization version).

Two organization permissions are never held by a narrowed token, whatever its user may do and
whatever it picked: `organization:manage` reaches every workspace, and a token made with
`organization:pats:create` would carry no limit. A narrowed token is for one job.
"""

import uuid
from dataclasses import dataclass, replace

from django.core.exceptions import ValidationError

from accesscontrol.rbac.permissions import (
    ORG_MANAGE,
    ORG_PATS_CREATE,
    ORG_READ,
    READ_PERMISSIONS,
    WORKSPACE_PERMISSIONS,
)
from accesscontrol.rbac.resolver import Access
from accesscontrol.workspaces.models import Workspace, acted_in, workspaces_acted_in

READ_ONLY, TRACING_ONLY, CUSTOM = "read-only", "tracing-only", "custom"

# The presets offered at creation, by name; a custom pick takes any of LIMITABLE.
PRESETS: dict[str, frozenset[str]] = {
    READ_ONLY: READ_PERMISSIONS | {ORG_READ},
    TRACING_ONLY: frozenset({"runs:create", "projects:read", "projects:create"}),
}
PRESET_LABELS = {
    READ_ONLY: "Read-only: read everything, change nothing",
    TRACING_ONLY: "Tracing only: send runs (runs:create, projects:read, projects:create)",
}
LIMITABLE: frozenset[str] = WORKSPACE_PERMISSIONS | {ORG_READ}
BEYOND_ANY_LIMIT: frozenset[str] = frozenset({ORG_MANAGE, ORG_PATS_CREATE})


def _workspace_key(workspace_id) -> str:
    return str(uuid.UUID(str(workspace_id)))


@dataclass(frozen=True)
class TokenLimits:
    """A token's limits as stored: None for a kind of limit the token does not have."""

    permissions: frozenset[str] | None = None
    workspace_ids: tuple[str, ...] | None = None

    @classmethod
    def of(cls, token) -> "TokenLimits":
        """A personal access token's limits (a service key has none: its role is its limit)."""
        codes = getattr(token, "permission_limit", None)
        workspaces = getattr(token, "workspace_limit", None)
        return cls(
            frozenset(codes) if codes is not None else None,
            tuple(workspaces) if workspaces is not None else None,
        )

    @property
    def narrowed(self) -> bool:
        return self.permissions is not None or self.workspace_ids is not None

    def allows_workspace(self, workspace_id) -> bool:
        return self.workspace_ids is None or _workspace_key(workspace_id) in self.workspace_ids

    @property
    def preset(self) -> str | None:
        """The preset these permissions are (by their codes), `custom`, or None (no limit)."""
        if self.permissions is None:
            return None
        return next((n for n, codes in PRESETS.items() if codes == self.permissions), CUSTOM)

    def as_dict(self) -> dict | None:
        """What the API shows of a token's limits; None for a token without any."""
        if not self.narrowed:
            return None
        return {
            "preset": self.preset,
            "permissions": sorted(self.permissions) if self.permissions is not None else None,
            "workspace_ids": list(self.workspace_ids) if self.workspace_ids is not None else None,
        }

    def describe_permissions(self) -> str | None:
        preset = self.preset
        if preset is None:
            return None
        if preset == CUSTOM:
            return "the permissions " + ", ".join(sorted(self.permissions))
        return preset

    def describe_workspaces(self) -> str | None:
        if self.workspace_ids is None:
            return None
        noun = "workspace" if len(self.workspace_ids) == 1 else "workspaces"
        return f"{noun} " + ", ".join(self.workspace_ids)

    def describe(self) -> str | None:
        """The limits in words, for 403s: e.g. "read-only in workspace <id>"."""
        parts = [p for p in (self.describe_permissions(), self.describe_workspaces()) if p]
        return " in ".join(parts) if parts else None


def narrow(access: Access, limits: TokenLimits, workspace=None) -> Access:
    """The one rule: what a token holds is what its user holds (`access`, current) and its
    limits allow. Outside its workspace limit (or in no workspace) a token limited to
    workspaces holds no workspace permission.

    `withheld` keeps what the user holds but the limits refuse, so a 403 can say which refused.
    """
    if not limits.narrowed:
        return access
    allowed = (limits.permissions if limits.permissions is not None else LIMITABLE) & LIMITABLE
    if limits.workspace_ids is not None and (
        workspace is None or not limits.allows_workspace(workspace.pk)
    ):
        allowed -= WORKSPACE_PERMISSIONS
    permissions = access.permissions & allowed
    return replace(
        access,
        permissions=permissions,
        grantable=access.grantable & allowed,
        withheld=access.permissions - permissions,
        limit=limits.describe(),
    )


def reach(limits: TokenLimits, user_rows) -> list[tuple[object, Access]]:
    """Where a token acts and with what: `user_rows` are (workspace, its user's access there),
    as the access review reads them; each narrowed, and those where nothing is left dropped."""
    narrowed = [(workspace, narrow(access, limits, workspace)) for workspace, access in user_rows]
    return [(ws, access) for ws, access in narrowed if access.permissions & WORKSPACE_PERMISSIONS]


def clean_limits(membership, *, preset=None, permissions=None, workspaces=None) -> TokenLimits:
    """Limits as asked for at creation, checked: a preset or a custom pick of codes (not both),
    and workspaces of the organization its user can act in. Refusals name the field."""
    errors = {}
    codes = None
    if preset is not None and permissions is not None:
        errors["permissions"] = "Pick a preset or your own permissions, not both."
    elif preset is not None:
        if preset not in PRESETS:
            errors["preset"] = f"Unknown preset; choose one of: {', '.join(PRESETS)}."
        else:
            codes = PRESETS[preset]
    elif permissions is not None:
        codes = frozenset(permissions)
        unknown = codes - LIMITABLE
        if unknown:
            errors["permissions"] = (
                f"A token cannot be limited to {', '.join(sorted(unknown))}: choose among the "
                "workspace permissions and organization:read."
            )
        elif not codes:
            errors["permissions"] = "Pick at least one permission."
    workspace_ids = None
    if workspaces is not None:
        workspace_ids = _clean_workspaces(membership, workspaces, errors)
    if errors:
        raise ValidationError(errors)
    return TokenLimits(codes, workspace_ids)


def _clean_workspaces(membership, workspaces, errors) -> tuple[str, ...] | None:
    try:
        wanted = list(dict.fromkeys(_workspace_key(getattr(w, "pk", w)) for w in workspaces))
    except ValueError:
        errors["workspace_ids"] = "Workspaces are given by their ids."
        return None
    if not wanted:
        errors["workspace_ids"] = "Pick at least one workspace, or leave the limit out."
        return None
    reachable = workspaces_acted_in(
        organization_id=membership.organization_id,
        user_id=membership.user_id,
        org_role_name=membership.org_role,
    ).filter(pk__in=wanted)
    found = {_workspace_key(pk) for pk in reachable.values_list("pk", flat=True)}
    missing = [w for w in wanted if w not in found]
    if missing:
        # Another organization's workspace, or one the user is not in, reads like none at all.
        errors["workspace_ids"] = f"No workspace of yours has the id {missing[0]}."
        return None
    return tuple(wanted)


def limitable_workspaces_of(actor):
    """The workspaces the actor's new token may be limited to: those its user can act in."""
    return acted_in(actor)


def limit_workspaces(token):
    """The workspaces a token is limited to, by name (a deleted one is simply gone); None for
    a token without a workspace limit."""
    if token.workspace_limit is None:
        return None
    return Workspace.objects.filter(
        organization_id=token.org_membership.organization_id, pk__in=token.workspace_limit
    ).order_by("name")
