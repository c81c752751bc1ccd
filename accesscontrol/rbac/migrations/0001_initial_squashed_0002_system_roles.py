"""rbac 0001-0002 squashed: the Role table, then 0002's system roles (data, kept as it ran).

`replaces` stays: a database that applied the old migrations has this one marked applied without
running it, and a dependency still naming an old one is pointed here by the loader.
"""

import uuid

import django.db.models.deletion
from django.db import migrations, models

SYSTEM_ROLES = {
    "Admin": "Full access to the workspace, including its settings, members and service keys.",
    "Editor": "Create, change and delete everything in the workspace except settings and members.",
    "Viewer": "Read-only access to everything in the workspace.",
}


def create_system_roles(apps, schema_editor):
    Role = apps.get_model("rbac", "Role")
    for name, description in SYSTEM_ROLES.items():
        # Permissions of system roles come from the catalog in code (rbac/permissions.py).
        Role.objects.update_or_create(
            organization=None, name=name, defaults={"description": description}
        )


def remove_system_roles(apps, schema_editor):
    apps.get_model("rbac", "Role").objects.filter(organization=None).delete()


class Migration(migrations.Migration):
    replaces = [("rbac", "0001_initial"), ("rbac", "0002_system_roles")]

    initial = True

    dependencies = [
        ("organizations", "0001_initial"),
    ]

    operations = [
        migrations.CreateModel(
            name="Role",
            fields=[
                (
                    "id",
                    models.UUIDField(
                        default=uuid.uuid4, editable=False, primary_key=True, serialize=False
                    ),
                ),
                ("name", models.CharField(max_length=60)),
                ("description", models.CharField(blank=True, max_length=300)),
                ("permissions", models.JSONField(blank=True, default=list)),
                ("created_at", models.DateTimeField(auto_now_add=True)),
                (
                    "organization",
                    models.ForeignKey(
                        blank=True,
                        null=True,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="roles",
                        to="organizations.organization",
                    ),
                ),
            ],
            options={
                "ordering": ["name"],
                "constraints": [
                    models.UniqueConstraint(
                        condition=models.Q(("organization__isnull", False)),
                        fields=("organization", "name"),
                        name="role_name_unique_in_org",
                    ),
                    models.UniqueConstraint(
                        condition=models.Q(("organization__isnull", True)),
                        fields=("name",),
                        name="system_role_name_unique",
                    ),
                ],
            },
        ),
        migrations.RunPython(create_system_roles, remove_system_roles),
    ]
