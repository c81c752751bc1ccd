"""The shape the code keeps (ARCHITECTURE §11, issue "one rule, one place").

- Views and API handlers parse, call a service or a selector, and render: they never write the
  ORM (`.save()`, `.delete()`, `.create()`, `.update()`, `bulk_*`). State changes live in
  services.py, where the rule, the transaction and the audit event are.
- Org roles are data (rbac/permissions.py ORG_ROLES): code reads their properties and never
  compares a role's name.
Each check is shown to catch a planted violation, so it cannot pass by finding nothing.
"""

import ast
import re
import sys
from pathlib import Path

import pytest

from accesscontrol.rbac.permissions import ORG_ROLES, OrgRoleSpec

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "accesscontrol"

WRITES = {"save", "delete", "create", "update", "bulk_create", "bulk_update"}
WRITES |= {"get_or_create", "update_or_create"}
# Receivers whose methods of those names are not the ORM's (a widget's attrs dict, the cache).
NOT_ORM = {"attrs", "cache", "session", "headers"}


def _routed_modules() -> set[Path]:
    """The project's modules a URL pattern reaches, whatever their name (scim/console.py,
    organizations/views_authentication.py ...): a view is a view wherever it is written."""
    from django.urls import get_resolver

    from tests.support.urls import walk

    found = set()
    for _route, pattern, _plain in walk(get_resolver().url_patterns):
        module = sys.modules.get(getattr(pattern.callback, "__module__", ""))
        path = Path(getattr(module, "__file__", "") or "")
        if path.is_relative_to(PACKAGE):
            found.add(path)
    return found


def view_modules():
    """views.py and api.py of every app, every module of a views/ or api/ package, and every
    other module of the project a URL pattern reaches."""
    routed = _routed_modules()
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE).parts
        if "migrations" in parts:
            continue
        named = path.name in ("views.py", "api.py") or any(
            p in ("views", "api") for p in parts[:-1]
        )
        if named or path in routed:
            yield path


def _receiver_name(node):
    while isinstance(node, ast.Call):
        node = node.func
    if isinstance(node, ast.Attribute):
        return node.attr
    if isinstance(node, ast.Name):
        return node.id
    return ""


def orm_writes(source: str, filename="<module>") -> list[str]:
    """Calls of a write method in the module, except decorators (router.delete(...))."""
    tree = ast.parse(source, filename)
    decorators = {
        id(d)
        for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        for d in node.decorator_list
    }
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call) or id(node) in decorators:
            continue
        func = node.func
        if not isinstance(func, ast.Attribute) or func.attr not in WRITES:
            continue
        if _receiver_name(func.value) in NOT_ORM:
            continue
        found.append(f"{filename}:{node.lineno} .{func.attr}()")
    return found


def test_the_walk_finds_the_view_modules():
    names = {str(p.relative_to(PACKAGE)) for p in view_modules()}
    assert {"workspaces/views.py", "workspaces/api.py", "apikeys/api.py"} <= names
    # Views in modules of other names, found through the URL patterns that reach them
    assert {"scim/console.py", "organizations/views_authentication.py"} <= names
    assert len(names) >= 14


def test_views_and_api_handlers_never_write_the_orm():
    found = [
        write
        for path in view_modules()
        for write in orm_writes(path.read_text(), str(path.relative_to(ROOT)))
    ]
    assert not found, "move these writes into a service:\n" + "\n".join(found)


PLANTED = """
from ninja import Router
router = Router()

@router.delete("/things/{pk}")
def remove(request, pk):
    Thing.objects.filter(pk=pk).delete()

def rename(request, thing):
    thing.name = "x"
    thing.save(update_fields=["name"])
    request.workspace.memberships.create(role=None)
    Thing.objects.filter(pk=1).update(name="y")
    Thing.objects.bulk_create([])
    form.fields["x"].widget.attrs.update(type="email")  # a dict: not the ORM
"""


def test_the_check_catches_planted_writes_and_spares_decorators_and_dicts():
    found = orm_writes(PLANTED)
    assert [f.split(" ")[1] for f in found] == [
        ".delete()",
        ".save()",
        ".create()",
        ".update()",
        ".bulk_create()",
    ]


# Org roles are data -------------------------------------------------------------------------

NAMES = "|".join(ORG_ROLES)
ROLE_NAME_COMPARISON = re.compile(
    rf"""org_role\s*(==|!=)\s*["']({NAMES})["']|["']({NAMES})["']\s*(==|!=)\s*\S*org_role"""
)
ROLE_CONSTANT_COMPARISON = re.compile(r"(==|!=)\s*OrgRole\.[A-Z]+|OrgRole\.[A-Z]+\s*(==|!=)")
ROLE_NAME_FILTER = re.compile(rf"""org_role\s*=\s*["']({NAMES})["']""")
# A hand-made set of roles (a tuple of constants, choices, a pattern) misses a role added to the
# table: derive it from the roles' properties (e.g. PROVISIONABLE_ORG_ROLES).
ROLE_NAME_SET = re.compile(
    rf"""OrgRole\.[A-Z]+\s*,\s*OrgRole\.[A-Z]+|\(\s*["']({NAMES})["']\s*,\s*["']|\(({NAMES})\|"""
)


def role_name_branches(text: str) -> list[str]:
    return [
        line.strip()
        for line in text.splitlines()
        if ROLE_NAME_COMPARISON.search(line)
        or ROLE_CONSTANT_COMPARISON.search(line)
        or ROLE_NAME_FILTER.search(line.split("#")[0])
        or ROLE_NAME_SET.search(line)
    ]


def test_no_code_or_template_branches_on_an_org_role_name():
    found = []
    files = [p for p in PACKAGE.rglob("*.py") if "migrations" not in p.parts]
    files += list((ROOT / "templates").rglob("*.html"))
    for path in files:
        if path.name == "seed_demo.py":
            continue  # the demo's personas name their roles as data
        found += [
            f"{path.relative_to(ROOT)}: {line}" for line in role_name_branches(path.read_text())
        ]
    assert not found, "read the role's properties (ORG_ROLES) instead:\n" + "\n".join(found)


@pytest.mark.parametrize(
    "line",
    [
        'if membership.org_role == "admin":',
        "if access.org_role != 'viewer':",
        "if before == OrgRole.ADMIN:",
        'memberships.filter(org_role="admin")',
        '{% if m.org_role == "admin" %}',
        "JIT_ORG_ROLES = (OrgRole.MEMBER, OrgRole.VIEWER)",
        'choices=[("member", "Member"), ("viewer", "Viewer")],',
        'default_org_role: str = Field("member", pattern="^(member|viewer)$")',
    ],
)
def test_the_role_name_check_catches_planted_branches(line):
    assert role_name_branches(line) == [line]


def test_every_org_role_is_described_by_the_table():
    assert all(isinstance(spec, OrgRoleSpec) for spec in ORG_ROLES.values())
    assert [s.name for s in ORG_ROLES.values() if s.admin_everywhere] == ["admin"]
    assert [s.name for s in ORG_ROLES.values() if s.read_only] == ["viewer"]
    # An admin everywhere holds every organization permission; a read-only role creates no tokens.
    for spec in ORG_ROLES.values():
        if spec.admin_everywhere:
            assert {"organization:manage", "organization:pats:create"} <= spec.permissions
        if spec.read_only:
            assert "organization:pats:create" not in spec.permissions


# The gate's floor ------------------------------------------------------------------------------

FLOOR = ["permissions", "resolver", "versions", "gate", "actor"]
ABOVE_THE_FLOOR = ("apikeys", "audit", "resources", "reviews", "api", "accounts")


def imported_apps(source: str) -> set[str]:
    """The accesscontrol apps a module imports (at any depth of the module)."""
    apps = set()
    for node in ast.walk(ast.parse(source)):
        names = []
        if isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        for name in names:
            parts = name.split(".")
            if parts[0] == "accesscontrol" and len(parts) > 1:
                apps.add(parts[1])
    return apps


@pytest.mark.parametrize("module", FLOOR)
def test_the_gate_floor_imports_no_app_above_it(module):
    """Authentication and the apps above import the floor, never the other way round: each app
    registers what moves the authorization version (rbac.versions.track) in its own ready()."""
    source = (PACKAGE / "rbac" / f"{module}.py").read_text()
    assert not imported_apps(source) & set(ABOVE_THE_FLOOR)


def test_the_floor_check_catches_a_planted_import():
    planted = "def f():\n    from accesscontrol.apikeys.models import ServiceKey\n"
    assert imported_apps(planted) & set(ABOVE_THE_FLOOR) == {"apikeys"}
