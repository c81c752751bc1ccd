"""workspaces 0001-0004 squashed (plain schema), in place of the first squash of 0001-0003.

`replaces` names the four original migrations, not the first squash: its file is gone, and the
loader resolves a squash of a squash only through the replaced squash's file on disk. Every
database migrated along the old path has the four recorded (applying the first squash recorded
0001-0003 as well as itself), so this one counts as applied there, whether or not the first
squash's own row is there too (a database last migrated before the first squash existed does
not have it; listing it here would make such a database half-applied and the graph unusable).
On a new database this runs and records 0001-0004.
"""

import uuid

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    replaces = [
        ("workspaces", "0001_initial"),
        ("workspaces", "0002_membership_expires_at"),
        ("workspaces", "0003_membership_role_after_expiry"),
        ("workspaces", "0004_membership_source"),
    ]

    initial = True

    dependencies = [
        ("organizations", "0001_initial"),
        ("rbac", "0001_initial_squashed_0002_system_roles"),
    ]

    operations = [
        migrations.CreateModel(
            name="Workspace",
            fields=[
                (
                    "id",
                    models.UUIDField(
                        default=uuid.uuid4, editable=False, primary_key=True, serialize=False
                    ),
                ),
                ("name", models.CharField(max_length=100)),
                ("slug", models.SlugField(max_length=60)),
                ("archived", models.BooleanField(default=False)),
                ("created_at", models.DateTimeField(auto_now_add=True)),
                (
                    "organization",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="workspaces",
                        to="organizations.organization",
                    ),
                ),
            ],
            options={
                "ordering": ["name"],
                "constraints": [
                    models.UniqueConstraint(
                        fields=("organization", "slug"), name="workspace_slug_unique_in_org"
                    )
                ],
            },
        ),
        migrations.CreateModel(
            name="WorkspaceMembership",
            fields=[
                (
                    "id",
                    models.UUIDField(
                        default=uuid.uuid4, editable=False, primary_key=True, serialize=False
                    ),
                ),
                ("created_at", models.DateTimeField(auto_now_add=True)),
                (
                    "org_membership",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="workspace_memberships",
                        to="organizations.organizationmembership",
                    ),
                ),
                (
                    "role",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="memberships",
                        to="rbac.role",
                    ),
                ),
                (
                    "workspace",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="memberships",
                        to="workspaces.workspace",
                    ),
                ),
                ("expires_at", models.DateTimeField(blank=True, null=True)),
                (
                    "role_after_expiry",
                    models.ForeignKey(
                        blank=True,
                        null=True,
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="fallback_memberships",
                        to="rbac.role",
                    ),
                ),
                (
                    "source",
                    models.CharField(
                        choices=[
                            ("manual", "Added by an admin"),
                            ("invitation", "Invitation"),
                            ("sso", "Single sign-on"),
                            ("scim", "SCIM provisioning"),
                        ],
                        default="manual",
                        max_length=10,
                    ),
                ),
            ],
            options={
                "constraints": [
                    models.UniqueConstraint(
                        fields=("org_membership", "workspace"),
                        name="one_membership_per_user_and_workspace",
                    )
                ],
            },
        ),
    ]
