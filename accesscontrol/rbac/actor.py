"""Who is acting (ARCHITECTURE §11): built once per request by the gate, taken by every service.

An actor is a signed-in user in an organization (and a workspace, when the page has one), an API
principal (a personal access token or a service key) with the workspace its request selected,
or the system itself (a command, a job, the seed), audited as such. Each carries its `Access`
there; `access_in(workspace)` answers for another workspace of the same organization.

Services take `actor` as a required keyword and check their own rules with it: the gate's check
is the first, coarse one, the service is the authority.
"""

from dataclasses import dataclass, field

from django.core.exceptions import ValidationError

from accesscontrol.rbac.permissions import ALL_PERMISSIONS, WORKSPACE_PERMISSIONS
from accesscontrol.rbac.resolver import NO_ACCESS, Access, resolve_access

USER, TOKEN, SERVICE_KEY, SYSTEM = "user", "personal_access_token", "service_key", "system"
SCIM = "scim_token"

SYSTEM_ACCESS = Access(ALL_PERMISSIONS, None, None, "system")
# An organization's SCIM token manages its people and workspaces (and nothing elsewhere).
SCIM_ACCESS = Access(ALL_PERMISSIONS, None, None, "scim")


@dataclass(frozen=True, eq=False)
class Actor:
    kind: str
    organization: object = None
    workspace: object = None
    access: Access = NO_ACCESS
    user: object = None  # the signed-in user, or the token's user
    key: object = None  # the PersonalAccessToken or ServiceKey
    principal: object = field(default=None, repr=False)  # the API principal, for access_in
    what: str = ""  # for the system: what is acting ("seed_demo", "import_legacy_keys", ...)

    # --- building ---------------------------------------------------------------------------

    @classmethod
    def for_user(cls, user, organization=None, workspace=None, access=None) -> "Actor":
        if access is None:
            access = (
                resolve_access(user, organization.pk, workspace)
                if organization is not None
                else NO_ACCESS
            )
        return cls(USER, organization, workspace, access, user=user)

    @classmethod
    def for_principal(cls, principal) -> "Actor":
        """An API principal (apikeys.authentication.Principal)."""
        kind = TOKEN if principal.kind == TOKEN else SERVICE_KEY
        return cls(
            kind,
            principal.organization,
            principal.workspace,
            principal.access,
            user=principal.user,
            key=principal.key,
            principal=principal,
        )

    @classmethod
    def for_scim_token(cls, token) -> "Actor":
        """An organization's SCIM token (scim.models.ScimToken): the identity provider acting
        there, audited as the token."""
        return cls(SCIM, token.organization, None, SCIM_ACCESS, key=token)

    @classmethod
    def system(cls, what: str = "", organization=None, workspace=None) -> "Actor":
        """Work no person asked for in a request: audited as `system: <what>`."""
        return cls(SYSTEM, organization, workspace, SYSTEM_ACCESS, what=what)

    # --- reading ----------------------------------------------------------------------------

    @property
    def is_system(self) -> bool:
        return self.kind == SYSTEM

    @property
    def audit_actor(self):
        """What the audit log records as the actor: the key, the user, or None (the system)."""
        return self.key if self.key is not None else self.user

    @property
    def label(self) -> str:
        if self.is_system:
            return f"system: {self.what}" if self.what else "system"
        if self.key is not None:
            return self.key.audit_label
        return getattr(self.user, "email", "") or "anonymous"

    @property
    def permissions(self) -> frozenset[str]:
        return self.access.permissions

    @property
    def grantable(self) -> frozenset[str]:
        """What this actor may hand out here (its own role, whatever the plan)."""
        return self.access.grantable

    def holds(self, *codes: str) -> bool:
        return self.access.allows(*codes)

    def access_in(self, workspace) -> Access:
        """This actor's access in `workspace` (its own organization's; else none)."""
        if self.is_system:
            return SYSTEM_ACCESS
        if workspace is None:
            return self.access
        if self.workspace is not None and workspace.pk == self.workspace.pk:
            return self.access
        if self.organization is None or workspace.organization_id != self.organization.pk:
            return NO_ACCESS
        if self.kind == SCIM:
            return self.access
        if self.principal is not None:
            return self.principal.access_in(workspace)
        return resolve_access(self.user, workspace.organization_id, workspace)

    def require(self, *codes: str, workspace=None) -> None:
        """Refuse (ValidationError, code `permission`: a 403) unless every code is held there."""
        access = self.access_in(workspace) if workspace is not None else self.access
        missing = access.missing(codes)
        if not missing:
            return
        where = workspace or (self.workspace if missing[0] in WORKSPACE_PERMISSIONS else None)
        pronoun = "its" if self.key is not None else "your"
        error, message, fields = explain_refusal(self.label, missing[0], access, where, pronoun)
        raise Denied(message, fields, code="token_limit" if error == TOKEN_LIMIT else "permission")


def explain_denial(label, code, role, workspace, pronoun="its") -> tuple[str, dict]:
    """The sentence and the fields of a refusal that names what was needed: one wording for the
    gate's 403s and the services' (the most common complaint about LangSmith is a bare 403)."""
    message = (
        f"{label} needs {code}"
        + (f" in workspace '{workspace.name}'" if workspace is not None else "")
        + f"; {pronoun} role is {role or 'none'}."
    )
    fields = {
        "required": code,
        "principal": label,
        "role": role,
        "workspace": str(workspace.pk) if workspace is not None else None,
    }
    return message, fields


TOKEN_LIMIT = "token_limit"


def explain_refusal(label, code, access, workspace, pronoun="its") -> tuple[str, str, dict]:
    """(error code, sentence, fields) of a refusal: `token_limit` when the principal's role
    would allow `code` but a narrowed token's limits refuse it (apikeys/limits.py), else
    `permission_denied` as explain_denial words it."""
    if code not in access.withheld:
        return "permission_denied", *explain_denial(label, code, access.role, workspace, pronoun)
    where = f" in workspace '{workspace.name}'" if workspace is not None else ""
    message = (
        f"{label} is limited to {access.limit}, which leaves out {code}; "
        f"its user's role ({access.role or f'organization {access.org_role}'}) would allow "
        f"it{where}."
    )
    fields = {
        "required": code,
        "principal": label,
        "role": access.role,
        "workspace": str(workspace.pk) if workspace is not None else None,
        "limit": access.limit,
    }
    return TOKEN_LIMIT, message, fields


class Denied(ValidationError):
    """The actor lacks a permission: a 403 that names it (as the gate's own denials do)."""

    def __init__(self, message, explained: dict, code="permission"):
        super().__init__(message, code=code)
        self.explained = explained


def as_actor(actor, organization=None, workspace=None) -> Actor:
    """The Actor a service acts for: an Actor as given, or a user's in that organization.

    Callers that hold a user rather than a request (commands, tests) pass the user; their
    access there is read from the database. The system must be named: Actor.system(what).
    """
    if isinstance(actor, Actor):
        return actor
    if actor is None or not getattr(actor, "is_authenticated", False):
        raise TypeError("a service needs its actor: a user, request.actor or Actor.system(what)")
    return Actor.for_user(actor, organization, workspace)
