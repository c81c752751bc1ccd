"""What the database holds, read the way tests compare it: before and after a call."""

import contextlib
import re

import pytest
from django.core.cache import cache
from django.db import DatabaseError, connection, transaction

from accesscontrol.apikeys import authentication
from accesscontrol.audit.models import AuditEvent
from tests.factories import secret_of

# PostgreSQL commits without waiting for its disk: still atomic and at once visible to every
# other connection; only a crash of the server could lose the last commits, which no test
# needs. Transactional tests commit every save, the flush after each one truncates every table,
# and creating the database runs every migration. The servers tests start get the same
# (tests/support/servers.py); tests/conftest.py sets it.
NO_WAIT_FOR_DISK = "-c synchronous_commit=off"

KEY = re.compile(r"lsv2_(?:pt|sk)_[0-9a-f]{32}_[0-9a-f]{8}")


def row_counts(*models) -> tuple[int, ...]:
    """How many rows each model has: enough to show that a refused call wrote nothing."""
    return tuple(model.objects.count() for model in models)


def audit_actions() -> list[str]:
    """The audit log's actions, oldest first."""
    return list(AuditEvent.objects.order_by("id").values_list("action", flat=True))


def assert_no_key_in_audit(raws):
    """No column of any audit row holds one of the `raws`, the start of its secret, or a key."""
    events = list(AuditEvent.objects.all())
    assert events
    for event in events:
        for field in AuditEvent._meta.concrete_fields:
            value = str(field.value_from_object(event))
            for raw in raws:
                assert raw not in value, (event.action, field.name)
                assert secret_of(raw)[:12] not in value, (event.action, field.name)
            assert not KEY.search(value), (event.action, field.name)


def assert_sql_cannot_rewrite(table):
    """The database itself refuses an UPDATE and a DELETE of `table`'s rows (the audit trigger)."""
    for sql in (f"UPDATE {table} SET action = 'rewritten'", f"DELETE FROM {table}"):
        with (
            pytest.raises(DatabaseError, match="append-only"),
            transaction.atomic(),
            connection.cursor() as cursor,
        ):
            cursor.execute(sql)


def failed_logins():
    return AuditEvent.objects.filter(action="login.failed")


@contextlib.contextmanager
def rolled_back():
    """Rows made inside are gone after (one hypothesis example each), with no cached principal
    or cache entry left from them."""
    with transaction.atomic():
        authentication.forget_cached_principals()
        cache.clear()
        yield
        transaction.set_rollback(True)
    authentication.forget_cached_principals()
