"""resources 0001-0006 squashed: the tables as 0006 left them, 0003's GIN indexes, 0002's,
0003's and 0005's data steps.

The data steps (repair of unreadable times, token counts, first dataset versions) run on the
empty tables of a new database, where they find nothing; they are kept as the history ran them.
`replaces` stays: a database that applied the old migrations has this one marked applied
without running it, and a dependency still naming an old one is pointed here by the loader.
"""

import uuid

import django.contrib.postgres.indexes
import django.db.models.deletion
import django.db.models.fields.json
import django.utils.timezone
from django.db import migrations, models

import accesscontrol.resources.models
from accesscontrol.storable import datetime_repair

# 0002: times out of years 1-9999 in UTC clamped to what psycopg can read.
repair = datetime_repair(
    "resources", {"Run": ["start_time", "end_time"], "Example": ["created_at"]}
)

# 0003: the run filter's GIN indexes.
GIN_INDEXES = [
    accesscontrol.resources.models.JsonbGinIndex(
        django.contrib.postgres.indexes.OpClass("tags", name="jsonb_path_ops"), name="run_tags_gin"
    ),
    accesscontrol.resources.models.JsonbGinIndex(
        django.contrib.postgres.indexes.OpClass(
            django.db.models.fields.json.KeyTransform("metadata", "extra"), name="jsonb_path_ops"
        ),
        name="run_metadata_gin",
    ),
]


# The same indexes in SQL: GIN exists on PostgreSQL only (elsewhere the filters scan; SQLite is
# the demo default), and without django.contrib.postgres installed Django cannot render OpClass.
GIN_SQL = {
    "add_index": [
        'CREATE INDEX "run_tags_gin" ON "resources_run" USING gin ("tags" jsonb_path_ops)',
        'CREATE INDEX "run_metadata_gin" ON "resources_run" '
        "USING gin ((\"extra\" -> 'metadata') jsonb_path_ops)",
    ],
    "remove_index": [
        'DROP INDEX IF EXISTS "run_tags_gin"',
        'DROP INDEX IF EXISTS "run_metadata_gin"',
    ],
}


def _gin(action):
    def run(apps, schema_editor):
        if schema_editor.connection.vendor == "postgresql":
            for sql in GIN_SQL[action]:
                schema_editor.execute(sql, params=None)

    return run


def backfill_token_counts(apps, schema_editor):
    """Runs ingested before the token columns: read their counts as ingestion now does."""
    from accesscontrol.resources.models import token_usage

    run_model = apps.get_model("resources", "Run")
    batch = []
    for run in run_model.objects.only("id", "outputs", "extra").iterator(chunk_size=2000):
        counts = token_usage(run.outputs, run.extra)
        if counts["total_tokens"] is None:
            continue
        for field, value in counts.items():
            setattr(run, field, value)
        batch.append(run)
        if len(batch) >= 2000:
            run_model.objects.bulk_update(batch, list(counts))
            batch = []
    if batch:
        run_model.objects.bulk_update(batch, ["prompt_tokens", "completion_tokens", "total_tokens"])


# 0005: the first version of each dataset.
def first_versions(apps, schema_editor):
    """Each dataset with examples starts with one version holding them as they are."""
    Dataset = apps.get_model("resources", "Dataset")
    Example = apps.get_model("resources", "Example")
    DatasetVersion = apps.get_model("resources", "DatasetVersion")
    ExampleRevision = apps.get_model("resources", "ExampleRevision")
    for dataset in Dataset.objects.filter(examples__isnull=False).distinct().iterator():
        examples = list(Example.objects.filter(dataset=dataset))
        as_of = max(e.modified_at for e in examples)
        version = DatasetVersion.objects.create(dataset=dataset, as_of=as_of)
        ExampleRevision.objects.bulk_create(
            [
                ExampleRevision(
                    version=version,
                    dataset=dataset,
                    example_id=e.id,
                    as_of=as_of,
                    inputs=e.inputs,
                    outputs=e.outputs,
                    metadata=e.metadata,
                    split=e.split,
                    source_run_id=e.source_run_id,
                    created_at=e.created_at,
                )
                for e in examples
            ],
            batch_size=500,
        )


class Migration(migrations.Migration):
    replaces = [
        ("resources", "0001_initial"),
        ("resources", "0002_repair_out_of_range_times"),
        ("resources", "0003_run_filter_indexes_and_token_counts"),
        ("resources", "0004_prompt_hub_share_links_feedback_tokens"),
        ("resources", "0005_dataset_versions"),
        ("resources", "0006_project_end_time"),
    ]

    initial = True

    dependencies = [
        ("workspaces", "0001_initial_squashed_0004_membership_source"),
    ]

    operations = [
        migrations.CreateModel(
            name="AnnotationQueue",
            fields=[
                (
                    "id",
                    models.UUIDField(
                        default=uuid.uuid4, editable=False, primary_key=True, serialize=False
                    ),
                ),
                ("name", models.CharField(max_length=255)),
                ("description", models.TextField(blank=True)),
                ("rubric_instructions", models.TextField(blank=True)),
                ("rubric_items", models.JSONField(blank=True, default=list)),
                ("created_at", models.DateTimeField(auto_now_add=True)),
                ("updated_at", models.DateTimeField(auto_now=True)),
                (
                    "workspace",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="+",
                        to="workspaces.workspace",
                    ),
                ),
            ],
            options={
                "ordering": ["-created_at"],
            },
        ),
        migrations.CreateModel(
            name="Dataset",
            fields=[
                (
                    "id",
                    models.UUIDField(
                        default=uuid.uuid4, editable=False, primary_key=True, serialize=False
                    ),
                ),
                ("name", models.CharField(max_length=255)),
                ("description", models.TextField(blank=True)),
                (
                    "data_type",
                    models.CharField(
                        choices=[("kv", "Key-value"), ("llm", "LLM"), ("chat", "Chat")],
                        default="kv",
                        max_length=8,
                    ),
                ),
                ("metadata", models.JSONField(blank=True, null=True)),
                ("inputs_schema_definition", models.JSONField(blank=True, null=True)),
                ("outputs_schema_definition", models.JSONField(blank=True, null=True)),
                ("created_at", models.DateTimeField(default=django.utils.timezone.now)),
                ("modified_at", models.DateTimeField(auto_now=True)),
                (
                    "workspace",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="+",
                        to="workspaces.workspace",
                    ),
                ),
            ],
            options={
                "ordering": ["-created_at"],
                "constraints": [
                    models.UniqueConstraint(
                        fields=("workspace", "name"), name="dataset_name_unique_in_workspace"
                    )
                ],
            },
        ),
        migrations.CreateModel(
            name="Example",
            fields=[
                (
                    "id",
                    models.UUIDField(
                        default=uuid.uuid4, editable=False, primary_key=True, serialize=False
                    ),
                ),
                ("inputs", models.JSONField(default=dict)),
                ("outputs", models.JSONField(blank=True, null=True)),
                ("metadata", models.JSONField(blank=True, null=True)),
                ("split", models.JSONField(blank=True, default=list)),
                ("source_run_id", models.UUIDField(blank=True, null=True)),
                ("created_at", models.DateTimeField(default=django.utils.timezone.now)),
                ("modified_at", models.DateTimeField(auto_now=True)),
                (
                    "dataset",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="examples",
                        to="resources.dataset",
                    ),
                ),
                (
                    "workspace",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="+",
                        to="workspaces.workspace",
                    ),
                ),
            ],
            options={
                "ordering": ["created_at", "id"],
                "indexes": [
                    models.Index(
                        fields=["workspace", "dataset", "created_at"],
                        name="resources_e_workspa_5850d4_idx",
                    )
                ],
            },
        ),
        migrations.CreateModel(
            name="Project",
            fields=[
                (
                    "id",
                    models.UUIDField(
                        default=uuid.uuid4, editable=False, primary_key=True, serialize=False
                    ),
                ),
                ("name", models.CharField(max_length=255)),
                ("description", models.TextField(blank=True)),
                ("extra", models.JSONField(blank=True, default=dict)),
                ("start_time", models.DateTimeField(default=django.utils.timezone.now)),
                ("created_at", models.DateTimeField(auto_now_add=True)),
                (
                    "reference_dataset",
                    models.ForeignKey(
                        blank=True,
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        related_name="+",
                        to="resources.dataset",
                    ),
                ),
                (
                    "workspace",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="+",
                        to="workspaces.workspace",
                    ),
                ),
                ("end_time", models.DateTimeField(blank=True, null=True)),
            ],
            options={
                "ordering": ["-start_time"],
                "constraints": [
                    models.UniqueConstraint(
                        fields=("workspace", "name"), name="project_name_unique_in_workspace"
                    )
                ],
            },
        ),
        migrations.CreateModel(
            name="Feedback",
            fields=[
                (
                    "id",
                    models.UUIDField(
                        default=uuid.uuid4, editable=False, primary_key=True, serialize=False
                    ),
                ),
                ("run_id", models.UUIDField(blank=True, db_index=True, null=True)),
                ("trace_id", models.UUIDField(blank=True, null=True)),
                ("key", models.CharField(max_length=255)),
                ("score", models.FloatField(blank=True, null=True)),
                ("value", models.JSONField(blank=True, null=True)),
                ("comment", models.TextField(blank=True)),
                ("correction", models.JSONField(blank=True, null=True)),
                ("feedback_source", models.JSONField(blank=True, default=dict)),
                ("created_at", models.DateTimeField(default=django.utils.timezone.now)),
                ("modified_at", models.DateTimeField(auto_now=True)),
                (
                    "workspace",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="+",
                        to="workspaces.workspace",
                    ),
                ),
                (
                    "project",
                    models.ForeignKey(
                        blank=True,
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        related_name="+",
                        to="resources.project",
                    ),
                ),
            ],
            options={
                "ordering": ["-created_at"],
                "indexes": [
                    models.Index(fields=["workspace", "key", "run_id"], name="feedback_ws_key_run")
                ],
            },
        ),
        migrations.CreateModel(
            name="Prompt",
            fields=[
                (
                    "id",
                    models.UUIDField(
                        default=uuid.uuid4, editable=False, primary_key=True, serialize=False
                    ),
                ),
                ("name", models.CharField(max_length=255)),
                ("description", models.TextField(blank=True)),
                ("created_at", models.DateTimeField(auto_now_add=True)),
                ("updated_at", models.DateTimeField(auto_now=True)),
                (
                    "workspace",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="+",
                        to="workspaces.workspace",
                    ),
                ),
                ("is_archived", models.BooleanField(default=False)),
                ("readme", models.TextField(blank=True)),
                ("tags", models.JSONField(blank=True, default=list)),
            ],
            options={
                "ordering": ["name"],
                "constraints": [
                    models.UniqueConstraint(
                        fields=("workspace", "name"), name="prompt_name_unique_in_workspace"
                    )
                ],
            },
        ),
        migrations.CreateModel(
            name="PromptCommit",
            fields=[
                (
                    "id",
                    models.UUIDField(
                        default=uuid.uuid4, editable=False, primary_key=True, serialize=False
                    ),
                ),
                ("template", models.TextField()),
                ("message", models.CharField(blank=True, max_length=1000)),
                ("created_by", models.CharField(blank=True, max_length=255)),
                ("created_at", models.DateTimeField(auto_now_add=True)),
                (
                    "prompt",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="commits",
                        to="resources.prompt",
                    ),
                ),
                ("manifest", models.JSONField(blank=True, null=True)),
                (
                    "parent",
                    models.ForeignKey(
                        blank=True,
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        related_name="+",
                        to="resources.promptcommit",
                    ),
                ),
            ],
            options={
                "ordering": ["-created_at", "-id"],
            },
        ),
        migrations.CreateModel(
            name="Run",
            fields=[
                (
                    "id",
                    models.UUIDField(
                        default=uuid.uuid4, editable=False, primary_key=True, serialize=False
                    ),
                ),
                ("trace_id", models.UUIDField()),
                ("parent_run_id", models.UUIDField(blank=True, null=True)),
                ("dotted_order", models.CharField(blank=True, max_length=4000)),
                ("name", models.CharField(max_length=255)),
                ("run_type", models.CharField(max_length=32)),
                ("inputs", models.JSONField(blank=True, default=dict)),
                ("outputs", models.JSONField(blank=True, null=True)),
                ("error", models.TextField(blank=True, null=True)),
                ("start_time", models.DateTimeField()),
                ("end_time", models.DateTimeField(blank=True, null=True)),
                ("tags", models.JSONField(blank=True, default=list)),
                ("extra", models.JSONField(blank=True, default=dict)),
                ("events", models.JSONField(blank=True, default=list)),
                ("reference_example_id", models.UUIDField(blank=True, null=True)),
                ("created_at", models.DateTimeField(auto_now_add=True)),
                (
                    "project",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="runs",
                        to="resources.project",
                    ),
                ),
                (
                    "workspace",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="+",
                        to="workspaces.workspace",
                    ),
                ),
                ("completion_tokens", models.BigIntegerField(blank=True, null=True)),
                ("prompt_tokens", models.BigIntegerField(blank=True, null=True)),
                ("total_tokens", models.BigIntegerField(blank=True, null=True)),
            ],
            options={
                "ordering": ["-start_time"],
                "indexes": [
                    models.Index(
                        fields=["workspace", "project", "-start_time"],
                        name="resources_r_workspa_1da6c9_idx",
                    ),
                    models.Index(
                        fields=["workspace", "trace_id"], name="resources_r_workspa_f56893_idx"
                    ),
                    models.Index(fields=["workspace", "-start_time"], name="run_ws_start_time"),
                    models.Index(fields=["workspace", "parent_run_id"], name="run_ws_parent"),
                ],
            },
        ),
        migrations.CreateModel(
            name="QueuedRun",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("added_at", models.DateTimeField(auto_now_add=True)),
                ("last_reviewed_time", models.DateTimeField(blank=True, null=True)),
                (
                    "queue",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="items",
                        to="resources.annotationqueue",
                    ),
                ),
                (
                    "run",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="+",
                        to="resources.run",
                    ),
                ),
            ],
            options={
                "ordering": ["added_at", "id"],
                "constraints": [
                    models.UniqueConstraint(fields=("queue", "run"), name="run_queued_once")
                ],
            },
        ),
        migrations.CreateModel(
            name="FeedbackToken",
            fields=[
                (
                    "id",
                    models.UUIDField(
                        default=uuid.uuid4, editable=False, primary_key=True, serialize=False
                    ),
                ),
                ("digest", models.CharField(max_length=64, unique=True)),
                ("run_id", models.UUIDField()),
                ("feedback_key", models.CharField(max_length=255)),
                ("feedback_config", models.JSONField(blank=True, null=True)),
                ("feedback_id", models.UUIDField(default=uuid.uuid4)),
                ("created_by", models.CharField(blank=True, max_length=255)),
                ("created_at", models.DateTimeField(default=django.utils.timezone.now)),
                ("expires_at", models.DateTimeField()),
                ("used_at", models.DateTimeField(blank=True, null=True)),
                (
                    "workspace",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="+",
                        to="workspaces.workspace",
                    ),
                ),
            ],
            options={
                "ordering": ["-created_at"],
            },
        ),
        migrations.CreateModel(
            name="PromptTag",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("name", models.CharField(max_length=255)),
                ("created_at", models.DateTimeField(auto_now_add=True)),
                (
                    "commit",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="tags",
                        to="resources.promptcommit",
                    ),
                ),
                (
                    "prompt",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="tags_of_commits",
                        to="resources.prompt",
                    ),
                ),
            ],
            options={
                "ordering": ["name"],
                "constraints": [
                    models.UniqueConstraint(fields=("prompt", "name"), name="prompt_tag_unique")
                ],
            },
        ),
        migrations.CreateModel(
            name="ShareLink",
            fields=[
                (
                    "id",
                    models.UUIDField(
                        default=uuid.uuid4, editable=False, primary_key=True, serialize=False
                    ),
                ),
                (
                    "kind",
                    models.CharField(
                        choices=[("run", "Run"), ("dataset", "Dataset"), ("prompt", "Prompt")],
                        max_length=16,
                    ),
                ),
                ("object_id", models.UUIDField()),
                ("token", models.UUIDField(unique=True)),
                ("created_by", models.CharField(blank=True, max_length=255)),
                ("created_at", models.DateTimeField(default=django.utils.timezone.now)),
                ("revoked_at", models.DateTimeField(blank=True, null=True)),
                (
                    "workspace",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="+",
                        to="workspaces.workspace",
                    ),
                ),
            ],
            options={
                "ordering": ["-created_at"],
                "constraints": [
                    models.UniqueConstraint(
                        condition=models.Q(("revoked_at__isnull", True)),
                        fields=("workspace", "kind", "object_id"),
                        name="one_live_share_link_per_object",
                    )
                ],
            },
        ),
        migrations.CreateModel(
            name="DatasetVersion",
            fields=[
                (
                    "id",
                    models.UUIDField(
                        default=uuid.uuid4, editable=False, primary_key=True, serialize=False
                    ),
                ),
                ("as_of", models.DateTimeField()),
                ("tags", models.JSONField(blank=True, default=list)),
                (
                    "dataset",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="versions",
                        to="resources.dataset",
                    ),
                ),
            ],
            options={
                "ordering": ["-as_of"],
                "constraints": [
                    models.UniqueConstraint(
                        fields=("dataset", "as_of"), name="one_version_per_instant"
                    )
                ],
            },
        ),
        migrations.CreateModel(
            name="ExampleRevision",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("example_id", models.UUIDField()),
                ("as_of", models.DateTimeField()),
                ("deleted", models.BooleanField(default=False)),
                ("inputs", models.JSONField(default=dict)),
                ("outputs", models.JSONField(blank=True, null=True)),
                ("metadata", models.JSONField(blank=True, null=True)),
                ("split", models.JSONField(blank=True, default=list)),
                ("source_run_id", models.UUIDField(blank=True, null=True)),
                ("created_at", models.DateTimeField()),
                (
                    "dataset",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="+",
                        to="resources.dataset",
                    ),
                ),
                (
                    "version",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="revisions",
                        to="resources.datasetversion",
                    ),
                ),
            ],
            options={
                "ordering": ["as_of", "id"],
                "indexes": [
                    models.Index(
                        fields=["dataset", "example_id", "as_of"],
                        name="resources_e_dataset_3eb634_idx",
                    )
                ],
            },
        ),
        migrations.AddField(
            model_name="annotationqueue",
            name="runs",
            field=models.ManyToManyField(
                related_name="+", through="resources.QueuedRun", to="resources.run"
            ),
        ),
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AddIndex(model_name="run", index=index) for index in GIN_INDEXES
            ],
            database_operations=[migrations.RunPython(_gin("add_index"), _gin("remove_index"))],
        ),
        migrations.RunPython(repair, migrations.RunPython.noop),
        migrations.RunPython(backfill_token_counts, migrations.RunPython.noop),
        migrations.RunPython(first_versions, migrations.RunPython.noop),
    ]
