"""The permission catalog: every code the gate knows, defined once.

Workspace-level codes are `resource:action`; custom roles may hold only these. Org-level codes
come from the organization role alone.
"""

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
SYSTEM_ROLE_DESCRIPTIONS = {
    ADMIN: "Full access to the workspace, including its settings, members and service keys.",
    EDITOR: "Create, change and delete everything in the workspace except settings and members.",
    VIEWER: "Read-only access to everything in the workspace.",
}

# Org roles, strongest first. Org admins are Admin in every workspace of the organization.
ORG_ROLE_PERMISSIONS: dict[str, frozenset[str]] = {
    "admin": ORGANIZATION_PERMISSIONS,
    "member": frozenset({ORG_READ, ORG_PATS_CREATE}),
    "viewer": frozenset({ORG_READ}),
}


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
