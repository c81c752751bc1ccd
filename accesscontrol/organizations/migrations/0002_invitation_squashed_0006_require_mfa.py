"""organizations 0002-0006 squashed (plain schema); 0001 stays a migration of its own.

0001 cannot join them: rbac 0001 (Role → Organization) needs it, and Invitation here needs
rbac's Role, workspaces' Workspace and apikeys' ServiceKey, which all need 0001 (one migration
for the whole app would depend on itself).

`replaces` stays: a database that applied the old migrations has this one marked applied
without running it, and a dependency still naming an old one is pointed here by the loader.
"""

import uuid

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):
    replaces = [
        ("organizations", "0002_invitation"),
        ("organizations", "0003_invitation_sent_by_service_key"),
        ("organizations", "0004_ip_allow_list"),
        ("organizations", "0005_membership_source"),
        ("organizations", "0006_require_mfa"),
    ]

    dependencies = [
        ("apikeys", "0001_initial_squashed_0005_service_key_ip_allow_list"),
        ("organizations", "0001_initial"),
        ("rbac", "0001_initial_squashed_0002_system_roles"),
        ("workspaces", "0001_initial_squashed_0004_membership_source"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name="Invitation",
            fields=[
                (
                    "id",
                    models.UUIDField(
                        default=uuid.uuid4, editable=False, primary_key=True, serialize=False
                    ),
                ),
                ("email", models.EmailField(max_length=254)),
                (
                    "org_role",
                    models.CharField(
                        choices=[("admin", "Admin"), ("member", "Member"), ("viewer", "Viewer")],
                        default="member",
                        max_length=10,
                    ),
                ),
                ("digest", models.CharField(max_length=64, unique=True)),
                ("created_by_label", models.CharField(blank=True, max_length=255)),
                ("created_at", models.DateTimeField(auto_now_add=True)),
                ("expires_at", models.DateTimeField()),
                ("accepted_at", models.DateTimeField(blank=True, null=True)),
                ("cancelled_at", models.DateTimeField(blank=True, null=True)),
                (
                    "created_by",
                    models.ForeignKey(
                        blank=True,
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        related_name="+",
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
                (
                    "organization",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="invitations",
                        to="organizations.organization",
                    ),
                ),
                (
                    "workspace_role",
                    models.ForeignKey(
                        blank=True,
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        related_name="+",
                        to="rbac.role",
                    ),
                ),
                (
                    "workspaces",
                    models.ManyToManyField(blank=True, related_name="+", to="workspaces.workspace"),
                ),
                (
                    "created_by_service_key",
                    models.ForeignKey(
                        blank=True,
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        related_name="+",
                        to="apikeys.servicekey",
                    ),
                ),
            ],
            options={
                "ordering": ["-created_at"],
                "constraints": [
                    models.UniqueConstraint(
                        condition=models.Q(
                            ("accepted_at__isnull", True), ("cancelled_at__isnull", True)
                        ),
                        fields=("organization", "email"),
                        name="one_pending_invitation_per_email",
                    )
                ],
            },
        ),
        migrations.AddField(
            model_name="organization",
            name="ip_allow_list",
            field=models.JSONField(blank=True, default=list),
        ),
        migrations.AddField(
            model_name="organizationmembership",
            name="source",
            field=models.CharField(
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
        migrations.AddField(
            model_name="organization",
            name="require_mfa",
            field=models.CharField(
                choices=[
                    ("off", "Nobody"),
                    ("admins", "Organization admins"),
                    ("everyone", "Everyone"),
                ],
                default="off",
                max_length=10,
            ),
        ),
    ]
