"""Personas shared by every test: one enterprise org (Acme-like) and an outsider org."""

import copy
import pickle

import pytest
from django.apps import apps
from django.db import IntegrityError, connection, transaction
from django.db.models import sql

from tests.factories import World, build_world, pat_for, service_key_for
from tests.support.db import NO_WAIT_FOR_DISK

try:
    from _pytest.nodeid import NodeId
except ImportError:  # pytest before 9.2 reads item._nodeid itself
    NodeId = None

# The throttle's fixtures (its frozen clock, its cache backends) for every module that needs them.
pytest_plugins = ["tests.support.throttling"]


class Snapshot:
    """Rows a builder once added to the database, put back with one INSERT per table.

    The first `restore()` on a worker runs the builder in a savepoint, reads back every row it
    added (whatever table, signals included), and rolls the savepoint back. Each later call
    inserts those rows as they were (`raw`: no auto_now, no signals, the same primary keys) and
    hands out a deep copy of what the builder returned (unpickled: copy.deepcopy of the personas
    cost more than the INSERT), so a test may change its objects freely.
    The rows are rebuilt when a row they point to outside themselves has gone (a transactional
    test's flush empties the system roles the data migration made).
    """

    def __init__(self, build):
        self.build = build
        self.result = None
        self.pickled = None  # the result, pickled once; None if it does not pickle
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
        if self.pickled is None:
            return copy.deepcopy(self.result)
        return pickle.loads(self.pickled)

    def _outside_rows_exist(self) -> bool:
        """Every row pointed to is there: one query for all the tables, as it runs before every
        restore."""
        if not self.outside:
            return True
        quote, checks, params = connection.ops.quote_name, [], []
        for model, pks in self.outside.items():
            pk = model._meta.pk
            checks.append(
                f"(SELECT count(*) FROM {quote(model._meta.db_table)} WHERE {quote(pk.column)} "
                f"IN ({', '.join(['%s'] * len(pks))})) = %s"
            )
            params += [pk.get_db_prep_value(value, connection) for value in pks] + [len(pks)]
        with connection.cursor() as cursor:
            cursor.execute("SELECT " + " AND ".join(checks), params)
            return bool(cursor.fetchone()[0])

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
        try:
            self.pickled = pickle.dumps(result, pickle.HIGHEST_PROTOCOL)
        except (pickle.PicklingError, TypeError, AttributeError):
            self.pickled = None
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
def editor_key(world) -> str:
    """An Editor service key of the world's production workspace, as a caller holds it."""
    return service_key_for(world.workspace, "Editor")


@pytest.fixture
def admin_key(world) -> str:
    """The org admin's personal access token."""
    return pat_for(world.org_admin, world.org)


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(items):
    """`--dist loadgroup` again: pytest-xdist 3.8 names a test of an xdist_group
    "<nodeid>@<group>" by setting `item._nodeid`, which pytest 9.2 no longer reads (a node's id
    is `item._id`). Without this every group was ignored: the fault tests' module topology was
    started on both workers, once for each half of the module."""
    if NodeId is None:
        return
    for item in items:
        grouped = item.__dict__.get("_nodeid")
        if grouped and grouped != item.nodeid:
            item._id = NodeId.parse(grouped)


@pytest.fixture(scope="session")
def django_db_modify_db_settings(django_db_modify_db_settings_parallel_suffix):
    """The test databases, as pytest-django names them, and NO_WAIT_FOR_DISK."""
    from django.conf import settings

    for database in settings.DATABASES.values():
        if database["ENGINE"] == "django.db.backends.postgresql":
            options = database.setdefault("OPTIONS", {})
            options["options"] = f"{options.get('options', '')} {NO_WAIT_FOR_DISK}".strip()


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
