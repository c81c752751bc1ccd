"""The permission catalog: every code the gate knows, defined once.

Workspace-level codes are `resource:action`; custom roles may hold only these. Org-level codes
come from the organization role alone.
"""

from dataclasses import dataclass

WORKSPACE_RESOURCES: dict[str, tuple[str, ...]] = {
    "projects": ("read", "create", "update", "delete"),
    "runs": ("read", "create", "delete", "share"),
    "datasets": ("read", "create", "update", "delete", "share"),
    "prompts": ("read", "create", "update", "delete", "share"),
    "annotation-queues": ("read", "create", "update", "delete"),
    "feedback": ("read", "create", "update", "delete"),
    "workspaces": ("read", "manage", "manage-members"),
}

RESOURCE_LABELS = {
    "projects": "Tracing projects",
    "runs": "Runs",
    "datasets": "Datasets & examples",
    "prompts": "Prompts",
    "annotation-queues": "Annotation queues",
    "feedback": "Feedback",
    "workspaces": "Workspace",
}

ACTIONS: list[str] = sorted(
    {a for actions in WORKSPACE_RESOURCES.values() for a in actions},
    key=["read", "create", "update", "delete", "share", "manage", "manage-members"].index,
)


def permission_matrix(granted):
    """The one permission grid: rows of (resource, label, cells), a cell per `ACTIONS` entry,
    (action, code, held) or None where the resource has no such action."""
    return [
        (
            resource,
            RESOURCE_LABELS[resource],
            [
                (a, f"{resource}:{a}", f"{resource}:{a}" in granted) if a in actions else None
                for a in ACTIONS
            ],
        )
        for resource, actions in WORKSPACE_RESOURCES.items()
    ]


WORKSPACE_PERMISSIONS: frozenset[str] = frozenset(
    f"{resource}:{action}"
    for resource, actions in WORKSPACE_RESOURCES.items()
    for action in actions
)

ORG_READ = "organization:read"
ORG_MANAGE = "organization:manage"
ORG_PATS_CREATE = "organization:pats:create"
ORGANIZATION_PERMISSIONS: frozenset[str] = frozenset({ORG_READ, ORG_MANAGE, ORG_PATS_CREATE})

ALL_PERMISSIONS: frozenset[str] = WORKSPACE_PERMISSIONS | ORGANIZATION_PERMISSIONS

READ_PERMISSIONS: frozenset[str] = frozenset(
    p for p in WORKSPACE_PERMISSIONS if p.endswith(":read")
)

ADMIN, EDITOR, VIEWER = "Admin", "Editor", "Viewer"
SYSTEM_ROLE_PERMISSIONS: dict[str, frozenset[str]] = {
    ADMIN: WORKSPACE_PERMISSIONS,
    EDITOR: frozenset(p for p in WORKSPACE_PERMISSIONS if not p.startswith("workspaces:manage")),
    VIEWER: READ_PERMISSIONS,
}
# Pickers list the system roles weakest first (fewest permissions), so the first choice
# offered is the least powerful; custom roles follow them.
SYSTEM_ROLES_WEAKEST_FIRST: tuple[str, ...] = tuple(
    sorted(SYSTEM_ROLE_PERMISSIONS, key=lambda name: len(SYSTEM_ROLE_PERMISSIONS[name]))
)
SYSTEM_ROLE_DESCRIPTIONS = {
    ADMIN: "Full access to the workspace, including its settings, members and service keys.",
    EDITOR: "Create, change and delete everything in the workspace except settings and members.",
    VIEWER: "Read-only access to everything in the workspace.",
}


@dataclass(frozen=True)
class OrgRoleSpec:
    """An organization role and what it means. Code reads these properties, never role names."""

    name: str
    label: str
    permissions: frozenset[str]  # organization-level codes (pats:create: may create tokens)
    admin_everywhere: bool = False  # Admin in every workspace, whatever workspace roles say
    read_only: bool = False  # read-only in every workspace, whatever workspace roles say
    description: str = ""


# The org roles, strongest first: the one table a new org role is added to (its name also goes
# into the database's choices by a migration).
ORG_ROLES: dict[str, OrgRoleSpec] = {
    spec.name: spec
    for spec in (
        OrgRoleSpec(
            "admin",
            "Admin",
            ORGANIZATION_PERMISSIONS,
            admin_everywhere=True,
            description="Manages the organization; Admin in every workspace.",
        ),
        OrgRoleSpec(
            "member",
            "Member",
            frozenset({ORG_READ, ORG_PATS_CREATE}),
            description="Reaches workspaces through workspace membership.",
        ),
        OrgRoleSpec(
            "viewer",
            "Viewer",
            frozenset({ORG_READ}),
            read_only=True,
            description="Read-only everywhere, whatever a workspace role says.",
        ),
    )
}
ORG_ROLE_PERMISSIONS: dict[str, frozenset[str]] = {n: r.permissions for n, r in ORG_ROLES.items()}
# The org roles whose members are Admin everywhere (the organization's admins), for queries.
ADMIN_EVERYWHERE_ROLES: tuple[str, ...] = tuple(
    n for n, r in ORG_ROLES.items() if r.admin_everywhere
)
# The org roles an identity provider may hand out by itself (SSO just in time, SCIM's default):
# never one that is Admin everywhere, as membership of an IdP group is no vetting.
PROVISIONABLE_ORG_ROLES: tuple[str, ...] = tuple(
    n for n, r in ORG_ROLES.items() if not r.admin_everywhere
)


def org_role(name) -> OrgRoleSpec | None:
    return ORG_ROLES.get(name)


def catalog() -> list[dict]:
    """The catalog as data, for the API and the role editor."""
    return [
        {
            "resource": resource,
            "label": RESOURCE_LABELS[resource],
            "actions": list(actions),
            "codes": [f"{resource}:{a}" for a in actions],
        }
        for resource, actions in WORKSPACE_RESOURCES.items()
    ]


def unknown_codes(codes) -> set[str]:
    return set(codes) - ALL_PERMISSIONS


# Roles in words: a set of codes against the closest system role, for people, not code lists.

RESOURCE_NOUNS = {
    "projects": "tracing projects",
    "runs": "runs",
    "datasets": "datasets",
    "prompts": "prompts",
    "annotation-queues": "annotation queues",
    "feedback": "feedback",
}
WORKSPACE_PHRASES = {
    "workspaces:read": "see the workspace",
    "workspaces:manage": "manage workspace settings and keys",
    "workspaces:manage-members": "manage members",
}
_WRITES = ("create", "update", "delete")


def _phrases(codes) -> list[str]:
    """`codes` as short phrases in catalog order: "create feedback", "manage annotation queues"
    (create, update and delete together)."""
    phrases = []
    for resource, actions in WORKSPACE_RESOURCES.items():
        held = [a for a in actions if f"{resource}:{a}" in codes]
        if not held:
            continue
        if resource == "workspaces":
            phrases += [WORKSPACE_PHRASES[f"workspaces:{a}"] for a in held]
            continue
        writes = [a for a in _WRITES if a in actions]
        if len(writes) > 1 and all(a in held for a in writes):
            held = ["manage", *(a for a in held if a not in writes)]
        verbs = held[0] if len(held) == 1 else f"{', '.join(held[:-1])} and {held[-1]}"
        phrases.append(f"{verbs} {RESOURCE_NOUNS[resource]}")
    return phrases


def describe_permissions(codes) -> str:
    """A set of workspace permissions in words, against the closest system role:
    "Viewer + create feedback, manage annotation queues", "Same as Editor", "Only read runs".
    The one way roles are described wherever they are shown (roles page, who has access)."""
    held = frozenset(codes) & WORKSPACE_PERMISSIONS
    if not held:
        return "No permissions"
    # The system role the fewest changes away; ties go to the weaker role (listed first).
    candidates = [
        (None, frozenset()),
        *((n, SYSTEM_ROLE_PERMISSIONS[n]) for n in (VIEWER, EDITOR, ADMIN)),
    ]
    name, base = min(candidates, key=lambda c: len(held ^ c[1]))
    added, removed = _phrases(held - base), _phrases(base - held)
    if name is None:
        return "Only " + ", ".join(added)
    if not added and not removed:
        return f"Same as {name}"
    text = name
    if added:
        text += " + " + ", ".join(added)
    if removed:
        text += (", but not " if added else " but not ") + ", ".join(removed)
    return text
