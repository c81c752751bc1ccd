"""Audit rows partitioned by month on PostgreSQL (audit/partitions.py, migration 0003, now in
audit 0001_initial_squashed_0003_partition_by_month).

Partitions are made in the tests' own transaction where a test needs a month (DDL is
transactional in PostgreSQL, so they go with the rollback). Rows are dated by setting the clock
for the insert, as tests/audit/test_log.py does.
"""

import datetime
import importlib
import io
import re
from unittest import mock

import pytest
from django.apps import apps
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command
from django.db import DatabaseError, connection, transaction
from django.utils import timezone

from accesscontrol import settings as settings_module
from accesscontrol.audit import log, partitions
from accesscontrol.audit.models import AuditEvent
from tests.audit.test_log import bulk_events
from tests.support.db import assert_sql_cannot_rewrite

pytestmark = pytest.mark.usefixtures("on_postgres")

UTC = datetime.UTC
SCANNED = re.compile(r"on (audit_auditevent_(?:p\d{6}|default))\b")


def today():
    return timezone.now().date()


def this_month():
    return partitions.month_start(today())


def month(n):
    """The first day of the month n months from this one."""
    return partitions.add_months(this_month(), n)


def make(*months):
    with connection.cursor() as cursor:
        for m in months:
            partitions.create_month(cursor, m)
            assert exists(partitions.name_of(m))


def names():
    with connection.cursor() as cursor:
        return [p.name for p in partitions.partitions(cursor)]


def exists(table):
    with connection.cursor() as cursor:
        cursor.execute("SELECT to_regclass(%s) IS NOT NULL", [table])
        return cursor.fetchone()[0]


def rows_in(table):
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT count(*) FROM {table}")
        return cursor.fetchone()[0]


def events_on(org, day: datetime.date, n=2, **fields):
    when = datetime.datetime(day.year, day.month, day.day, 12, tzinfo=UTC)
    return bulk_events(org, n, when=when, **fields)


# After migrate -----------------------------------------------------------------------------


def test_migrate_leaves_partitions_for_this_month_and_the_coming_ones(db):
    present = names()
    ahead = [partitions.name_of(month(n)) for n in range(settings.AUDIT_PARTITIONS_AHEAD + 1)]
    assert set(ahead) <= set(present)
    assert present[-1] == partitions.DEFAULT


def test_the_table_is_partitioned_by_created_at_with_id_and_created_at_as_key(db):
    with connection.cursor() as cursor:
        assert partitions.is_partitioned(cursor)
        cursor.execute(
            "SELECT pg_get_partkeydef(%s::regclass), pg_get_constraintdef(oid)"
            " FROM pg_constraint WHERE conrelid = %s::regclass AND contype = 'p'",
            [partitions.PARENT, partitions.PARENT],
        )
        assert cursor.fetchone() == ("RANGE (created_at)", "PRIMARY KEY (id, created_at)")


def test_a_new_event_lands_in_its_month_and_an_undated_one_in_the_default(world):
    now = bulk_events(world.org, 1)[0]
    (old,) = events_on(world.org, datetime.date(2001, 2, 3), n=1)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT id, tableoid::regclass::text FROM audit_auditevent WHERE id IN (%s, %s)",
            [now.pk, old.pk],
        )
        where = dict(cursor.fetchall())
    assert where == {now.pk: partitions.name_of(this_month()), old.pk: partitions.DEFAULT}
    assert AuditEvent.objects.get(pk=old.pk).target_label == "evt-0000"  # Django's pk still works


def test_the_append_only_trigger_guards_every_partition(world):
    make(month(-2))
    events_on(world.org, month(-2), n=1)
    bulk_events(world.org, 1)
    events_on(world.org, datetime.date(2001, 2, 3), n=1)
    partitions.ensure(ahead=1, today=datetime.date(2031, 5, 1))  # one made later than the rest
    events_on(world.org, datetime.date(2031, 5, 9), n=1)
    tables = [
        partitions.name_of(month(-2)),
        partitions.name_of(this_month()),
        partitions.DEFAULT,
        "audit_auditevent_p203105",
    ]
    for table in tables:
        assert rows_in(table) == 1, table
        assert_sql_cannot_rewrite(table)
        assert rows_in(table) == 1, table
    assert not AuditEvent.objects.filter(action="rewritten").exists()


# Reading -----------------------------------------------------------------------------------


def scanned(qs) -> set[str]:
    return set(SCANNED.findall(qs.explain()))


@pytest.mark.parametrize(
    "day",
    [
        None,  # today
        datetime.date(2026, 3, 2),  # 30 days back reach January 31: three months
        datetime.date(2026, 7, 31),  # back to July 1: one month
    ],
)
def test_a_read_of_the_last_30_days_touches_only_its_partitions(world, day):
    day = day or today()
    since = day - datetime.timedelta(days=30)
    first, last = partitions.month_start(since), partitions.month_start(day)
    covered = [partitions.add_months(first, n) for n in range(3)]
    covered = [m for m in covered if m <= last]
    older = [partitions.add_months(first, -5), partitions.add_months(first, -2)]
    make(*(m for m in covered + older if not exists(partitions.name_of(m))))
    for m in covered + older:
        events_on(world.org, m)
    events_on(world.org, datetime.date(2001, 1, 1))  # in the DEFAULT partition
    recent = bulk_events(
        world.org, 3, start=10, when=datetime.datetime.combine(day, datetime.time(9), tzinfo=UTC)
    )

    qs = log.events(world.org, log.Filters(since=since, until=day))
    assert scanned(qs) == {partitions.name_of(m) for m in covered}
    assert set(qs.values_list("target_label", flat=True)) >= {e.target_label for e in recent}
    # The page and the export read the same queryset; a read with no dates reads every month.
    everything = scanned(log.events(world.org, log.Filters()))
    assert {partitions.name_of(older[0]), partitions.DEFAULT} <= everything


# Making partitions ahead -------------------------------------------------------------------


def test_ensure_makes_the_months_ahead_once(db):
    day = datetime.date(2030, 11, 20)
    made = partitions.ensure(ahead=3, today=day)
    expected = ["audit_auditevent_p203011", "audit_auditevent_p203012"]
    expected += ["audit_auditevent_p203101", "audit_auditevent_p203102"]
    assert (made.created, made.moved) == (expected, {})
    assert partitions.ensure(ahead=3, today=day).created == []
    with connection.cursor() as cursor:
        bounds = {p.name: (p.start, p.end) for p in partitions.partitions(cursor)}
    assert bounds["audit_auditevent_p203012"] == (
        datetime.date(2030, 12, 1),
        datetime.date(2031, 1, 1),
    )


def test_a_month_whose_rows_sit_in_the_default_partition_takes_them_over(world):
    """Nothing made March 2002 ahead, so its rows went to the DEFAULT partition: making the
    month moves them in whole (same ids, same values), and leaves the rest where they were."""
    march = events_on(world.org, datetime.date(2002, 3, 4), n=2)
    (stray,) = events_on(world.org, datetime.date(2001, 7, 8), n=1, start=50)
    before = {e.pk: e.target_label for e in [*march, stray]}
    out = io.StringIO()
    with mock.patch.object(
        timezone, "now", return_value=datetime.datetime(2002, 3, 10, tzinfo=UTC)
    ):
        call_command("audit_partitions", "--ahead", "1", "--keep-all", stdout=out)
    assert out.getvalue().splitlines() == [
        f"created audit_auditevent_p200203 (2 events moved in from {partitions.DEFAULT})",
        "created audit_auditevent_p200204",
    ]
    assert rows_in("audit_auditevent_p200203") == 2
    assert rows_in(partitions.DEFAULT) == 1
    assert not exists(f"{partitions.DEFAULT}_moving")
    after = dict(AuditEvent.objects.filter(pk__in=before).values_list("pk", "target_label"))
    assert after == before
    # The DEFAULT partition made afresh is guarded like every other.
    for table in (partitions.DEFAULT, "audit_auditevent_p200203"):
        with (
            pytest.raises(DatabaseError, match="append-only"),
            transaction.atomic(),
            connection.cursor() as cursor,
        ):
            cursor.execute(f"DELETE FROM {table}")


def test_the_command_makes_the_months_ahead(db):
    out = io.StringIO()
    with mock.patch.object(
        timezone, "now", return_value=datetime.datetime(2032, 7, 15, tzinfo=UTC)
    ):
        call_command("audit_partitions", "--ahead", "2", "--keep-all", stdout=out)
    assert out.getvalue().split() == [
        "created", "audit_auditevent_p203207",
        "created", "audit_auditevent_p203208",
        "created", "audit_auditevent_p203209",
    ]  # fmt: skip


# Retention ---------------------------------------------------------------------------------


def test_retention_drops_whole_months_past_it_and_says_so(world):
    retention = settings.AUDIT_RETENTION_MONTHS
    old, kept = month(-retention - 1), month(-retention)
    make(old, kept)
    events_on(world.org, old, n=3)
    events_on(world.other_org, old, n=2, start=100)
    kept_events = events_on(world.org, kept, n=2, start=200)
    out = io.StringIO()

    call_command("audit_partitions", stdout=out)

    assert not exists(partitions.name_of(old))
    assert exists(partitions.name_of(kept)) and rows_in(partitions.name_of(kept)) == 2
    assert AuditEvent.objects.filter(pk__in=[e.pk for e in kept_events]).count() == 2
    assert f"dropped {partitions.name_of(old)}" in out.getvalue()
    summary = {
        "partition": partitions.name_of(old),
        "from": old.isoformat(),
        "until": kept.isoformat(),
    }
    said = AuditEvent.objects.filter(action="audit.partition_dropped")
    assert {(e.organization_id, e.changes["before"]["events"]) for e in said} == {
        (None, 5),
        (world.org.pk, 3),
        (world.other_org.pk, 2),
    }
    for e in said:
        assert e.changes["before"].items() >= summary.items()
        assert e.changes["after"] == {"retention_months": retention}
        assert (e.actor_kind, e.actor_label) == ("system", "system: audit retention")
        assert e.target_label == partitions.name_of(old)
    # Each organization reads it in its own log.
    (mine,) = log.events(world.org, log.Filters(action="audit."))
    assert mine.changes["before"]["events"] == 3


def test_retention_follows_the_setting_and_the_option(world, settings):
    settings.AUDIT_RETENTION_MONTHS = 2
    make(month(-3), month(-2))
    events_on(world.org, month(-3), n=1)
    call_command("audit_partitions", "--keep-all", stdout=io.StringIO())
    assert exists(partitions.name_of(month(-3)))  # --keep-all drops nothing
    expected = [partitions.name_of(month(-3))]
    assert [p.name for p in partitions.expired(retention_months=2)] == expected
    assert partitions.expired(retention_months=3) == []
    call_command("audit_partitions", "--retention-months", "3", stdout=io.StringIO())
    assert exists(partitions.name_of(month(-3)))


def test_a_drop_and_its_audit_event_commit_together(world):
    old = month(-settings.AUDIT_RETENTION_MONTHS - 2)
    make(old)
    events_on(world.org, old)
    from accesscontrol.audit import services as audit

    with (
        mock.patch.object(audit, "record", side_effect=RuntimeError("audit down")),
        pytest.raises(RuntimeError),
    ):
        call_command("audit_partitions", stdout=io.StringIO())
    assert exists(partitions.name_of(old))
    assert rows_in(partitions.name_of(old)) == 2


def test_only_the_system_drops_partitions(world):
    from tests.factories import actor_with

    old = month(-settings.AUDIT_RETENTION_MONTHS - 1)
    make(old)
    with pytest.raises(PermissionError):
        partitions.drop_expired(
            actor=actor_with({"organization:manage"}, world.org_admin),
            retention_months=settings.AUDIT_RETENTION_MONTHS,
        )
    assert exists(partitions.name_of(old))


@pytest.mark.parametrize("raw", ["0", "-3", "many"])
def test_the_retention_setting_is_checked_at_start_up(monkeypatch, raw):
    monkeypatch.setenv("AUDIT_RETENTION_MONTHS", raw)
    with pytest.raises(ImproperlyConfigured, match="AUDIT_RETENTION_MONTHS"):
        settings_module.env_positive_int("AUDIT_RETENTION_MONTHS", 24)


# The migration -----------------------------------------------------------------------------


def columns(qs):
    return list(qs.order_by("id").values_list(*[f.attname for f in AuditEvent._meta.fields]))


@pytest.mark.django_db(transaction=True)
def test_the_migration_keeps_every_row_both_ways(world):
    events_on(world.org, month(-14), n=2)
    events_on(world.other_org, month(-2), n=2, start=10)
    bulk_events(world.org, 3, start=20)
    before = columns(AuditEvent.objects.all())
    # The squash runs 0003's functions on a new, empty table; a table with rows is what they
    # were written for, so they are run here directly, backwards then forwards.
    migration = importlib.import_module(
        "accesscontrol.audit.migrations.0001_initial_squashed_0003_partition_by_month"
    )

    with connection.schema_editor() as editor:
        migration.unpartition(apps, editor)
    with connection.cursor() as cursor:
        assert not partitions.is_partitioned(cursor)
    assert columns(AuditEvent.objects.all()) == before

    with connection.schema_editor() as editor:
        migration.partition(apps, editor)
    with connection.cursor() as cursor:
        assert partitions.is_partitioned(cursor)
    assert columns(AuditEvent.objects.all()) == before
    assert {partitions.name_of(month(-14)), partitions.name_of(month(-2))} <= set(names())
    assert rows_in(partitions.DEFAULT) == 0  # every row found its month
    # The sequence carries on after the copied rows, and the trigger is back.
    (new,) = bulk_events(world.org, 1, start=99)
    assert new.pk > max(row[0] for row in before)
    with pytest.raises(DatabaseError, match="append-only"), connection.cursor() as cursor:
        cursor.execute("DELETE FROM audit_auditevent")
