"""Monthly partitions of the audit table on PostgreSQL: made ahead, dropped past retention.

`audit_auditevent` is range-partitioned on `created_at` (migration 0003), one partition per
calendar month in UTC (`audit_auditevent_p202612` holds December 2026) and a DEFAULT partition
so an insert never fails, whatever the date. Reads of a date range touch only the months it
covers. Retention drops whole months: no row is ever deleted one by one (the append-only
trigger, cloned onto every partition, would refuse it), and each drop is audited.

On SQLite (`make run`) the table stays a plain table and these functions do nothing.
"""

import datetime
import re
from dataclasses import dataclass

from django.db import connection, transaction
from django.utils import timezone

from accesscontrol.audit import services as audit

PARENT = "audit_auditevent"
DEFAULT = "audit_auditevent_default"
PREFIX = "audit_auditevent_p"
# One lock for every process that makes or drops partitions (post_migrate on several nodes).
LOCK_KEY = 0x61756474  # "audt"
BOUNDS = re.compile(r"FROM \('([^']+)'\) TO \('([^']+)'\)")
UTC = datetime.UTC


@dataclass(frozen=True)
class Partition:
    name: str
    start: datetime.date | None  # None for the DEFAULT partition
    end: datetime.date | None


def month_start(day: datetime.date) -> datetime.date:
    return day.replace(day=1)


def add_months(month: datetime.date, n: int) -> datetime.date:
    index = month.year * 12 + month.month - 1 + n
    return datetime.date(index // 12, index % 12 + 1, 1)


def midnight(day: datetime.date) -> datetime.datetime:
    return datetime.datetime(day.year, day.month, day.day, tzinfo=UTC)


def name_of(month: datetime.date) -> str:
    return f"{PREFIX}{month:%Y%m}"


def is_partitioned(cursor) -> bool:
    if cursor.db.vendor != "postgresql":
        return False
    cursor.execute("SELECT relkind FROM pg_class WHERE oid = to_regclass(%s)", [PARENT])
    row = cursor.fetchone()
    return row is not None and row[0] == "p"


def partitions(cursor) -> list[Partition]:
    """Every partition of the audit table, oldest first, the DEFAULT one last."""
    cursor.execute(
        "SELECT c.relname, pg_get_expr(c.relpartbound, c.oid) FROM pg_inherits i"
        " JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = %s::regclass",
        [PARENT],
    )
    found = []
    for name, bound in cursor.fetchall():
        match = BOUNDS.search(bound)
        if match is None:  # FOR VALUES DEFAULT
            found.append(Partition(name, None, None))
            continue
        start, end = (
            datetime.datetime.fromisoformat(b).astimezone(UTC).date() for b in match.groups()
        )
        found.append(Partition(name, start, end))
    return sorted(found, key=lambda p: (p.start is None, p.start))


def _lock(cursor):
    cursor.execute("SELECT pg_advisory_xact_lock(%s)", [LOCK_KEY])


def create_month(cursor, month: datetime.date) -> int:
    """Make the partition of `month` unless it exists; the number of rows it took over.

    Rows of that month already in the DEFAULT partition (nothing made the month ahead in time)
    would make PostgreSQL refuse the new partition, and taking them out of the DEFAULT one by
    DELETE is what the trigger refuses. So they move whole: the DEFAULT partition is detached
    and renamed, an empty one made, the month made, every row of the old one copied back in
    through the parent (each lands in its partition, ids and values unchanged), and the old one
    dropped, all in the caller's transaction.
    """
    start, end = midnight(month), midnight(add_months(month, 1))
    cursor.execute("SELECT to_regclass(%s) IS NOT NULL", [name_of(month)])
    if cursor.fetchone()[0]:
        return 0
    moving = 0
    cursor.execute("SELECT to_regclass(%s) IS NOT NULL", [DEFAULT])
    if cursor.fetchone()[0]:
        cursor.execute(
            f"SELECT count(*) FROM {DEFAULT}"  # noqa: S608 (our constant)
            " WHERE created_at >= %s AND created_at < %s",
            [start, end],
        )
        moving = cursor.fetchone()[0]
    if moving:
        cursor.execute(f"ALTER TABLE {PARENT} DETACH PARTITION {DEFAULT}")
        cursor.execute(f"ALTER TABLE {DEFAULT} RENAME TO {DEFAULT}_moving")
        create_default(cursor)
    # DDL takes no parameters: the bounds are dates we formatted ourselves.
    cursor.execute(
        f"CREATE TABLE {name_of(month)} PARTITION OF {PARENT}"
        f" FOR VALUES FROM ('{start.isoformat()}') TO ('{end.isoformat()}')"
    )
    if moving:
        cursor.execute(f"INSERT INTO {PARENT} SELECT * FROM {DEFAULT}_moving")  # noqa: S608
        cursor.execute(f"DROP TABLE {DEFAULT}_moving")
    return moving


def create_default(cursor):
    cursor.execute(f"CREATE TABLE IF NOT EXISTS {DEFAULT} PARTITION OF {PARENT} DEFAULT")


@dataclass
class Made:
    created: list[str]
    moved: dict[str, int]  # rows each new month took over from the DEFAULT partition


def ensure(*, ahead: int, today: datetime.date | None = None) -> Made:
    """The partitions of this month and the next `ahead` months, and the DEFAULT one."""
    today = today or timezone.now().astimezone(UTC).date()
    made = Made([], {})
    with transaction.atomic(), connection.cursor() as cursor:
        if not is_partitioned(cursor):
            return made
        _lock(cursor)
        existing = {p.name for p in partitions(cursor)}
        create_default(cursor)
        for n in range(ahead + 1):
            month = add_months(month_start(today), n)
            if name_of(month) in existing:
                continue
            moved = create_month(cursor, month)
            made.created.append(name_of(month))
            if moved:
                made.moved[name_of(month)] = moved
    return made


def expired(*, retention_months: int, today: datetime.date | None = None) -> list[Partition]:
    """Monthly partitions wholly older than the retention: with 24 months in December 2026,
    every month before December 2024."""
    today = today or timezone.now().astimezone(UTC).date()
    cutoff = add_months(month_start(today), -retention_months)
    with connection.cursor() as cursor:
        if not is_partitioned(cursor):
            return []
        return [p for p in partitions(cursor) if p.end is not None and p.end <= cutoff]


def drop_expired(*, actor, retention_months: int, today=None) -> list[dict]:
    """Drop each expired month, saying so in the audit log in the same transaction: one event
    for the operators (no organization) and one in the log of each organization that had rows
    in it. Returns what was dropped."""
    from accesscontrol.organizations.models import Organization

    if not getattr(actor, "is_system", False):
        # No person drops audit history: only the scheduled job does, by the setting.
        raise PermissionError("only the system drops audit partitions")
    dropped = []
    with transaction.atomic(), connection.cursor() as cursor:
        if not is_partitioned(cursor):
            return dropped
        _lock(cursor)
        for partition in expired(retention_months=retention_months, today=today):
            table = connection.ops.quote_name(partition.name)  # a name from pg_class
            cursor.execute(
                f"SELECT organization_id, count(*) FROM {table} GROUP BY organization_id"  # noqa: S608
            )
            per_org = dict(cursor.fetchall())
            cursor.execute(f"DROP TABLE {table}")
            summary = {
                "partition": partition.name,
                "from": partition.start.isoformat(),
                "until": partition.end.isoformat(),
                "events": sum(per_org.values()),
            }
            policy = {"retention_months": retention_months}
            audit.record(
                actor,
                "audit.partition_dropped",
                before=summary,
                after=policy,
                target_label=partition.name,
            )
            orgs = Organization.objects.in_bulk([pk for pk in per_org if pk is not None])
            for pk, org in orgs.items():
                audit.record(
                    actor,
                    "audit.partition_dropped",
                    organization=org,
                    before=summary | {"events": per_org[pk]},
                    after=policy,
                    target_label=partition.name,
                )
            dropped.append(summary)
    return dropped
