"""Each app's migrations are squashed into one and the old files are gone.

A database migrated before the squashes has the old names in django_migrations and none of the
new ones: the loader must take the squashed migrations as applied (their `replaces` lists every
old name) and plan nothing, or `migrate` would create the tables a second time. A new database
runs one migration per app (organizations: two, see its 0002).

Deleting the old files assumes what Django's squashing rule asks: every database has applied all
of them (a database stopped in the middle of one squashed range would not be completed; such a
database first migrates at the release before the squash, docs/deploy.md "Upgrading").
"""

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.db.migrations.recorder import MigrationRecorder

WORKSPACES = ("workspaces", "0001_initial_squashed_0004_membership_source")
# The first squash of workspaces (0001-0003), replaced in turn; its file is gone too.
FIRST_WORKSPACES_SQUASH = ("workspaces", "0001_initial_squashed_0003_membership_role_after_expiry")
OLD = {
    ("accounts", "0001_initial_squashed_0002_signedinsession"): [
        "0001_initial",
        "0002_signedinsession",
    ],
    ("organizations", "0002_invitation_squashed_0006_require_mfa"): [
        "0002_invitation",
        "0003_invitation_sent_by_service_key",
        "0004_ip_allow_list",
        "0005_membership_source",
        "0006_require_mfa",
    ],
    ("rbac", "0001_initial_squashed_0002_system_roles"): ["0001_initial", "0002_system_roles"],
    WORKSPACES: [
        "0001_initial",
        "0002_membership_expires_at",
        "0003_membership_role_after_expiry",
        "0004_membership_source",
    ],
    ("apikeys", "0001_initial_squashed_0005_service_key_ip_allow_list"): [
        "0001_initial",
        "0002_repair_out_of_range_expiry",
        "0003_rotation_and_leaks",
        "0004_token_limits",
        "0005_service_key_ip_allow_list",
    ],
    ("audit", "0001_initial_squashed_0003_partition_by_month"): [
        "0001_initial",
        "0002_append_only_trigger",
        "0003_partition_by_month",
    ],
    ("resources", "0001_initial_squashed_0006_project_end_time"): [
        "0001_initial",
        "0002_repair_out_of_range_times",
        "0003_run_filter_indexes_and_token_counts",
        "0004_prompt_hub_share_links_feedback_tokens",
        "0005_dataset_versions",
        "0006_project_end_time",
    ],
    ("scim", "0001_initial_squashed_0002_provisioning_settings"): [
        "0001_initial",
        "0002_provisioning_settings",
    ],
}


def executor():
    return MigrationExecutor(connection)


def plan(ex):
    return ex.migration_plan(ex.loader.graph.leaf_nodes())


def record_the_old_path(recorder, *, first_workspaces_squash):
    """Rewrite the record as the old files left it (the test's transaction rolls this back)."""
    for (app, name), old_names in OLD.items():
        recorder.record_unapplied(app, name)
        for old in old_names:
            recorder.record_applied(app, old)
    if first_workspaces_squash:
        recorder.record_applied(*FIRST_WORKSPACES_SQUASH)


@pytest.mark.django_db
def test_each_squash_replaces_exactly_the_old_history():
    loader = executor().loader
    for key, names in OLD.items():
        app = key[0]
        assert loader.disk_migrations[key].replaces == [(app, name) for name in names]
        assert not any((app, name) in loader.disk_migrations for name in names)
    assert FIRST_WORKSPACES_SQUASH not in loader.disk_migrations


@pytest.mark.django_db
def test_our_apps_have_one_migration_each_but_organizations_and_accounts():
    ours = {}
    for app, name in executor().loader.disk_migrations:
        if app in {key[0] for key in OLD} | {"reviews", "access_requests", "sso"}:
            ours.setdefault(app, []).append(name)
    assert sorted(ours.pop("organizations")) == [
        "0001_initial",
        "0002_invitation_squashed_0006_require_mfa",
    ]
    assert sorted(ours.pop("accounts")) == [
        "0001_initial_squashed_0002_signedinsession",
        "0003_signedinsession_goes_with_its_session",
    ]
    assert all(len(names) == 1 for names in ours.values()), ours


# A database last migrated before workspaces' first squash existed has 0001-0004 without the
# first squash's row; one migrated since has both.
@pytest.mark.parametrize("first_workspaces_squash", [True, False])
@pytest.mark.django_db
def test_a_database_migrated_along_the_old_path_has_nothing_left_to_apply(
    first_workspaces_squash,
):
    recorder = MigrationRecorder(connection)
    assert plan(executor()) == []
    record_the_old_path(recorder, first_workspaces_squash=first_workspaces_squash)
    before = executor()
    assert not set(OLD) & set(recorder.applied_migrations())
    assert set(OLD) <= set(before.loader.applied_migrations)
    assert plan(before) == []


@pytest.mark.django_db
def test_a_database_without_workspaces_runs_the_one_squash_in_its_place():
    recorder = MigrationRecorder(connection)
    for name in [WORKSPACES[1], FIRST_WORKSPACES_SQUASH[1], *OLD[WORKSPACES]]:
        recorder.record_unapplied("workspaces", name)
    assert [(m.app_label, m.name, backwards) for m, backwards in plan(executor())] == [
        (*WORKSPACES, False)
    ]
