"""audit 0001-0003 squashed: the AuditEvent table, 0002's append-only trigger and 0003's monthly
partitioning, both run as the history ran them (each with its reverse).

On PostgreSQL the database itself refuses to rewrite history, whatever the app does (row
triggers do not fire on TRUNCATE, which is what test teardown uses). Then audit_auditevent
becomes a table partitioned by month on created_at: the plain table is renamed, a partitioned
one made in its place with the same columns, its months (from the oldest row to
AUDIT_PARTITIONS_AHEAD months ahead) and a DEFAULT partition; the rows are copied, the old table
dropped, and the indexes and the append-only trigger recreated on the parent, which clones them
onto every partition, present and future.

PostgreSQL wants the partition key in every unique index, so the primary key in the database is
(id, created_at); Django still sees `id` as the primary key, which stays unique because it comes
from one sequence (PostgreSQL 15 has no identity columns on partitioned tables, so the sequence
is a plain one owned by the column). On SQLite nothing changes.

`replaces` stays: a database that applied the old migrations has this one marked applied
without running it, and a dependency still naming an old one is pointed here by the loader.
"""

import datetime

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models

from accesscontrol.audit import partitions

# 0002: the append-only trigger.
POSTGRES_UP = """
CREATE OR REPLACE FUNCTION audit_refuse_change() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'audit events are append-only (% refused)', TG_OP;
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER audit_auditevent_append_only
    BEFORE UPDATE OR DELETE ON audit_auditevent
    FOR EACH ROW EXECUTE FUNCTION audit_refuse_change();
"""
POSTGRES_DOWN = """
DROP TRIGGER IF EXISTS audit_auditevent_append_only ON audit_auditevent;
DROP FUNCTION IF EXISTS audit_refuse_change();
"""


def _run(statements_by_vendor):
    def run(apps, schema_editor):
        for sql in statements_by_vendor.get(schema_editor.connection.vendor, []):
            schema_editor.execute(sql, params=None)  # the SQL holds literal % signs

    return run


# 0003: monthly partitions.
TABLE = partitions.PARENT
TRIGGER = (
    f"CREATE TRIGGER audit_auditevent_append_only BEFORE UPDATE OR DELETE ON {TABLE}"
    " FOR EACH ROW EXECUTE FUNCTION audit_refuse_change()"
)


def _indexes(cursor):
    """The secondary indexes' definitions, to recreate under the same names."""
    cursor.execute(
        "SELECT indexdef FROM pg_indexes WHERE schemaname = current_schema()"
        " AND tablename = %s AND indexname <> %s ORDER BY indexname",
        [TABLE, f"{TABLE}_pkey"],
    )
    return [row[0] for row in cursor.fetchall()]


def partition(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    with schema_editor.connection.cursor() as cursor:
        if partitions.is_partitioned(cursor):
            return
        indexes = _indexes(cursor)
        old = f"{TABLE}_unpartitioned"
        cursor.execute(f"ALTER TABLE {TABLE} RENAME TO {old}")
        cursor.execute(f"ALTER TABLE {old} RENAME CONSTRAINT {TABLE}_pkey TO {old}_pkey")
        cursor.execute(f"ALTER SEQUENCE {TABLE}_id_seq RENAME TO {old}_id_seq")
        cursor.execute(
            f"CREATE TABLE {TABLE} (LIKE {old} INCLUDING DEFAULTS) PARTITION BY RANGE (created_at)"
        )
        cursor.execute(f"CREATE SEQUENCE {TABLE}_id_seq OWNED BY {TABLE}.id")
        cursor.execute(f"ALTER TABLE {TABLE} ALTER COLUMN id SET DEFAULT nextval('{TABLE}_id_seq')")
        cursor.execute(
            f"ALTER TABLE {TABLE} ADD CONSTRAINT {TABLE}_pkey PRIMARY KEY (id, created_at)"
        )

        cursor.execute(f"SELECT min(created_at) FROM {old}")
        oldest = cursor.fetchone()[0]
        today = datetime.datetime.now(datetime.UTC).date()
        month = partitions.month_start(oldest.astimezone(datetime.UTC).date() if oldest else today)
        last = partitions.add_months(partitions.month_start(today), settings.AUDIT_PARTITIONS_AHEAD)
        while month <= last:
            partitions.create_month(cursor, month)
            month = partitions.add_months(month, 1)
        partitions.create_default(cursor)

        cursor.execute(f"INSERT INTO {TABLE} SELECT * FROM {old} ORDER BY id")
        cursor.execute(
            f"SELECT setval('{TABLE}_id_seq', COALESCE(max(id), 0) + 1, false) FROM {TABLE}"
        )
        cursor.execute(f"DROP TABLE {old}")  # its trigger and identity sequence go with it
        for definition in indexes:
            cursor.execute(definition)
        cursor.execute(TRIGGER)


def unpartition(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    with schema_editor.connection.cursor() as cursor:
        if not partitions.is_partitioned(cursor):
            return
        indexes = _indexes(cursor)
        old = f"{TABLE}_partitioned"
        cursor.execute(f"ALTER TABLE {TABLE} RENAME TO {old}")
        cursor.execute(f"ALTER TABLE {old} RENAME CONSTRAINT {TABLE}_pkey TO {old}_pkey")
        cursor.execute(f"ALTER SEQUENCE {TABLE}_id_seq RENAME TO {old}_id_seq")
        cursor.execute(f"CREATE TABLE {TABLE} (LIKE {old})")
        cursor.execute(f"INSERT INTO {TABLE} SELECT * FROM {old} ORDER BY id")
        cursor.execute(f"DROP TABLE {old}")  # with every partition and the sequence
        cursor.execute(f"ALTER TABLE {TABLE} ADD CONSTRAINT {TABLE}_pkey PRIMARY KEY (id)")
        cursor.execute(f"ALTER TABLE {TABLE} ALTER COLUMN id ADD GENERATED BY DEFAULT AS IDENTITY")
        cursor.execute(
            f"SELECT setval(pg_get_serial_sequence('{TABLE}', 'id'), COALESCE(max(id), 0) + 1,"
            f" false) FROM {TABLE}"
        )
        for definition in indexes:
            cursor.execute(definition)
        cursor.execute(TRIGGER)


class Migration(migrations.Migration):
    replaces = [
        ("audit", "0001_initial"),
        ("audit", "0002_append_only_trigger"),
        ("audit", "0003_partition_by_month"),
    ]

    initial = True

    dependencies = [
        ("organizations", "0001_initial"),
        ("workspaces", "0001_initial_squashed_0004_membership_source"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name="AuditEvent",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("created_at", models.DateTimeField(auto_now_add=True, db_index=True)),
                ("actor_kind", models.CharField(max_length=32)),
                ("actor_id", models.CharField(blank=True, max_length=64)),
                ("actor_label", models.CharField(max_length=255)),
                ("action", models.CharField(db_index=True, max_length=64)),
                ("target_type", models.CharField(blank=True, max_length=64)),
                ("target_id", models.CharField(blank=True, max_length=64)),
                ("target_label", models.CharField(blank=True, max_length=255)),
                ("changes", models.JSONField(blank=True, default=dict)),
                ("ip_address", models.GenericIPAddressField(blank=True, null=True)),
                ("user_agent", models.CharField(blank=True, max_length=512)),
                ("request_id", models.CharField(blank=True, max_length=64)),
                (
                    "actor_user",
                    models.ForeignKey(
                        db_constraint=False,
                        null=True,
                        on_delete=django.db.models.deletion.DO_NOTHING,
                        related_name="+",
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
                (
                    "organization",
                    models.ForeignKey(
                        db_constraint=False,
                        null=True,
                        on_delete=django.db.models.deletion.DO_NOTHING,
                        related_name="+",
                        to="organizations.organization",
                    ),
                ),
                (
                    "workspace",
                    models.ForeignKey(
                        db_constraint=False,
                        null=True,
                        on_delete=django.db.models.deletion.DO_NOTHING,
                        related_name="+",
                        to="workspaces.workspace",
                    ),
                ),
            ],
            options={
                "ordering": ["-created_at", "-id"],
                "indexes": [
                    models.Index(
                        fields=["organization", "-created_at"],
                        name="audit_audit_organiz_dbfe04_idx",
                    )
                ],
            },
        ),
        migrations.RunPython(
            _run({"postgresql": [POSTGRES_UP]}),
            _run({"postgresql": [POSTGRES_DOWN]}),
        ),
        migrations.RunPython(partition, unpartition, elidable=False),
    ]
