"""apikeys 0001-0005 and workspaces 0001-0003 are squashed and the old files are gone.

A database migrated before the squash has the old names in django_migrations and none of the
new ones: the loader must take the squashed migrations as applied (their `replaces` lists every
old name) and plan nothing, or `migrate` would create the tables a second time.

Deleting the old files assumes what Django's squashing rule asks: every database has applied all
of them (a database stopped in the middle of one squashed range would not be completed).
"""

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.db.migrations.recorder import MigrationRecorder

APIKEYS = ("apikeys", "0001_initial_squashed_0005_service_key_ip_allow_list")
WORKSPACES = ("workspaces", "0001_initial_squashed_0003_membership_role_after_expiry")
OLD = {
    APIKEYS: [
        "0001_initial",
        "0002_repair_out_of_range_expiry",
        "0003_rotation_and_leaks",
        "0004_token_limits",
        "0005_service_key_ip_allow_list",
    ],
    WORKSPACES: ["0001_initial", "0002_membership_expires_at", "0003_membership_role_after_expiry"],
}


def executor():
    return MigrationExecutor(connection)


def leaves(ex):
    return ex.loader.graph.leaf_nodes()


@pytest.mark.django_db
def test_each_squash_replaces_exactly_the_old_history():
    loader = executor().loader
    for key, names in OLD.items():
        app = key[0]
        assert loader.disk_migrations[key].replaces == [(app, name) for name in names]
        assert not any((app, name) in loader.disk_migrations for name in names)


@pytest.mark.django_db
def test_a_database_migrated_along_the_old_path_has_nothing_left_to_apply():
    recorder = MigrationRecorder(connection)
    assert executor().migration_plan(leaves(executor())) == []
    # Rewrite the record as the old files left it (the test's transaction rolls this back).
    for (app, name), old_names in OLD.items():
        recorder.record_unapplied(app, name)
        for old in old_names:
            recorder.record_applied(app, old)
    before = executor()
    assert APIKEYS not in recorder.applied_migrations()
    assert {APIKEYS, WORKSPACES} <= set(before.loader.applied_migrations)
    assert before.migration_plan(leaves(before)) == []
