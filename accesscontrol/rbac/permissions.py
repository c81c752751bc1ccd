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
