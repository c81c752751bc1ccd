"""Personas shared by every test: one enterprise org (Acme-like) and an outsider org."""

import copy
from dataclasses import dataclass

import pytest
from django.apps import apps
from django.db import IntegrityError, connection, transaction
from django.db.models import sql

from accesscontrol.accounts.models import User
from accesscontrol.organizations.models import Organization
from accesscontrol.workspaces.models import Workspace
from tests.factories import (
    OrganizationFactory,
    OrganizationMembershipFactory,
    RoleFactory,
    UserFactory,
    WorkspaceFactory,
    WorkspaceMembershipFactory,
    system_role,
)

ANNOTATOR_CODES = [
    "projects:read",
    "runs:read",
    "datasets:read",
    "prompts:read",
    "annotation-queues:read",
    "feedback:read",
    "workspaces:read",
    "feedback:create",
    "feedback:update",
    "annotation-queues:create",
    "annotation-queues:update",
]


@dataclass
class World:
    org: Organization
    workspace: Workspace
    other_workspace: Workspace
    org_admin: User
    workspace_admin: User
    editor: User
    viewer: User
    annotator: User
    member_without_workspace: User
    org_viewer: User
    outsider: User
    other_org: Organization
    other_workspace_of_other_org: Workspace

    def persona(self, name: str) -> User:
        return getattr(self, name)


def add_member(org, workspace=None, role=None, org_role="member"):
    user = UserFactory()
    membership = OrganizationMembershipFactory(user=user, organization=org, org_role=org_role)
    if workspace is not None:
        WorkspaceMembershipFactory(org_membership=membership, workspace=workspace, role=role)
    return user


def build_world() -> World:
    """The personas, made by the factories (one query or two per row)."""
    org = OrganizationFactory(name="Acme", slug="acme", plan="enterprise")
    workspace = WorkspaceFactory(organization=org, name="production", slug="production")
    other_workspace = WorkspaceFactory(organization=org, name="staging", slug="staging")
    annotator_role = RoleFactory(organization=org, name="Annotator", permissions=ANNOTATOR_CODES)
    other_org = OrganizationFactory(name="Globex", slug="globex", plan="enterprise")
    other_ws = WorkspaceFactory(organization=other_org, name="default", slug="default")
    return World(
        org=org,
        workspace=workspace,
        other_workspace=other_workspace,
        org_admin=add_member(org, org_role="admin"),
        workspace_admin=add_member(org, workspace, system_role("Admin")),
        editor=add_member(org, workspace, system_role("Editor")),
        viewer=add_member(org, workspace, system_role("Viewer")),
        annotator=add_member(org, workspace, annotator_role),
        member_without_workspace=add_member(org),
        org_viewer=add_member(org, workspace, system_role("Editor"), org_role="viewer"),
        outsider=add_member(other_org, other_ws, system_role("Admin"), org_role="admin"),
        other_org=other_org,
        other_workspace_of_other_org=other_ws,
    )


class Snapshot:
    """Rows a builder once added to the database, put back with one INSERT per table.

    The first `restore()` on a worker runs the builder in a savepoint, reads back every row it
    added (whatever table, signals included), and rolls the savepoint back. Each later call
    inserts those rows as they were (`raw`: no auto_now, no signals, the same primary keys) and
    hands out a deep copy of what the builder returned, so a test may change its objects freely.
    The rows are rebuilt when a row they point to outside themselves has gone (a transactional
    test's flush empties the system roles the data migration made).
    """

    def __init__(self, build):
        self.build = build
        self.result = None
        self.rows = {}  # model -> [instances as read back], in the order the tables were filled
        self.outside = {}  # model -> primary keys the rows point to but did not add
        self.inserts = []  # (SQL, parameters) that put the rows back

    def restore(self):
        if self.result is None or not self._outside_rows_exist():
            self._take()
        try:
            with transaction.atomic(), connection.cursor() as cursor:
                for statement, params in self.inserts:
                    cursor.execute(statement, params)
        except IntegrityError:  # a row of ours is already there: start over from the builder
            self._take()
            return self.restore()
        return copy.deepcopy(self.result)

    def _outside_rows_exist(self) -> bool:
        return all(
            model._base_manager.filter(pk__in=pks).count() == len(pks)
            for model, pks in self.outside.items()
        )

    def _take(self):
        models = [
            m
            for m in apps.get_models(include_auto_created=True)
            if m._meta.managed and not m._meta.proxy
        ]
        with transaction.atomic():
            before = {m: set(m._base_manager.values_list("pk", flat=True)) for m in models}
            result = self.build()
            rows = {}
            for model in models:
                added = set(model._base_manager.values_list("pk", flat=True)) - before[model]
                if added:
                    rows[model] = list(model._base_manager.filter(pk__in=added).order_by("pk"))
            transaction.set_rollback(True)
        outside = {}
        for model, instances in rows.items():
            for field in model._meta.concrete_fields:
                target = field.related_model if field.many_to_one or field.one_to_one else None
                if target is None:
                    continue
                target = target._meta.concrete_model
                ours = {obj.pk for obj in rows.get(target, ())}
                for obj in instances:
                    value = getattr(obj, field.attname)
                    if value is not None and value not in ours:
                        outside.setdefault(target, set()).add(value)
        self.result, self.rows, self.outside = result, rows, outside
        self.inserts = self._inserts()

    def _inserts(self):
        """The INSERTs `_base_manager._insert(rows, raw=True)` would run, made once. On
        PostgreSQL they go as one statement list, one round trip (psycopg binds parameters on
        the client); foreign keys are deferred, so any table order is fine."""
        statements = []
        for model, rows in self.rows.items():
            query = sql.InsertQuery(model)
            query.insert_values(model._meta.local_concrete_fields, rows, raw=True)
            statements += query.get_compiler(connection=connection).as_sql()
        if connection.vendor != "postgresql":
            return statements
        return [("; ".join(s for s, _ in statements), [p for _, ps in statements for p in ps])]


the_world = Snapshot(build_world)


@pytest.fixture
def world(db) -> World:
    # The same rows and objects as build_world() makes, for a fraction of the queries.
    return the_world.restore()


@pytest.fixture
def on_postgres():
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL (set DATABASE_URL=postgres://...)")


@pytest.fixture(autouse=True)
def fresh_caches():
    # Rate-limit counters, authorization versions and cached principals live in process-wide
    # caches; each test starts without another test's.
    from django.core.cache import cache

    from accesscontrol.apikeys.authentication import forget_cached_principals

    cache.clear()
    forget_cached_principals()
    yield


@pytest.fixture(autouse=True)
def fast_password_hashing(settings):
    # The production hasher is deliberately slow; tests only need passwords to round-trip.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


# API keys for the personas. Each returns the raw key, as a caller would hold it.


def pat_for(user, org, **kwargs) -> str:
    from accesscontrol.apikeys.services import create_personal_access_token

    return create_personal_access_token(user=user, organization=org, name="test token", **kwargs)[1]


def service_key_for(workspace, role_name="Admin", *, org_scoped=False, **kwargs) -> str:
    """A service key made by the system (no creator), so any role can be handed out."""
    from django.db.models import Q

    from accesscontrol.apikeys.services import create_service_key
    from accesscontrol.rbac.actor import Actor
    from accesscontrol.rbac.models import Role

    org = workspace.organization
    # Q(...) | Q(...), not organization__in=[None, org]: SQL IN never matches NULL.
    role = Role.objects.get(Q(organization=None) | Q(organization=org), name=role_name)
    return create_service_key(
        actor=Actor.system(),
        organization=org,
        workspace=None if org_scoped else workspace,
        name=f"{role_name} key",
        role=role,
        **kwargs,
    )[1]


def api_call(client, method, path, key=None, *, tenant=None, json=None, bearer=False):
    """One API request the way an SDK makes it: key in a header, JSON body."""
    headers = {}
    if key is not None:
        headers["Authorization" if bearer else "X-API-Key"] = f"Bearer {key}" if bearer else key
    if tenant is not None:
        headers["X-Tenant-Id"] = str(tenant)
    kwargs = {"headers": headers}
    if json is not None:
        kwargs.update(data=json, content_type="application/json")
    return getattr(client, method.lower())(f"/api/v1{path}", **kwargs)
