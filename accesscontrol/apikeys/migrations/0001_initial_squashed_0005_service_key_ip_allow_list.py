"""apikeys 0001-0005 squashed (plain schema, plus 0002's repair of unreadable expiries).

`replaces` stays: a database that applied the five old migrations has this one marked applied
without running it, and a dependency still naming an old one is pointed here by the loader.
"""

import uuid

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models

from accesscontrol.storable import datetime_repair

# 0002's repair, kept as the history ran it (a fresh database has nothing for it to mend).
repair = datetime_repair(
    "apikeys",
    {"PersonalAccessToken": ["expires_at"], "ServiceKey": ["expires_at"]},
    last="9999-12-31 23:59:59+00",
)


class Migration(migrations.Migration):

    replaces = [('apikeys', '0001_initial'), ('apikeys', '0002_repair_out_of_range_expiry'), ('apikeys', '0003_rotation_and_leaks'), ('apikeys', '0004_token_limits'), ('apikeys', '0005_service_key_ip_allow_list')]

    dependencies = [
        ('organizations', '0001_initial'),
        ('rbac', '0001_initial_squashed_0002_system_roles'),
        ('workspaces', '0001_initial_squashed_0004_membership_source'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name='PersonalAccessToken',
            fields=[
                ('id', models.UUIDField(default=uuid.uuid4, editable=False, primary_key=True, serialize=False)),
                ('name', models.CharField(max_length=100)),
                ('digest', models.CharField(max_length=64, unique=True)),
                ('hint', models.CharField(max_length=24)),
                ('created_at', models.DateTimeField(auto_now_add=True)),
                ('expires_at', models.DateTimeField(blank=True, null=True)),
                ('last_used_at', models.DateTimeField(blank=True, null=True)),
                ('revoked_at', models.DateTimeField(blank=True, null=True)),
                ('org_membership', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='personal_access_tokens', to='organizations.organizationmembership')),
                ('leak_reported_by', models.CharField(blank=True, max_length=100)),
                ('leak_source', models.CharField(blank=True, max_length=100)),
                ('leak_url', models.CharField(blank=True, max_length=2048)),
                ('revoked_reason', models.CharField(blank=True, max_length=16)),
                ('rotated_to', models.OneToOneField(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='rotated_from', to='apikeys.personalaccesstoken')),
                ('permission_limit', models.JSONField(blank=True, null=True)),
                ('workspace_limit', models.JSONField(blank=True, null=True)),
            ],
            options={
                'ordering': ['-created_at'],
                'abstract': False,
                'indexes': [models.Index(fields=['org_membership', '-created_at'], name='apikeys_per_org_mem_d6fa04_idx')],
            },
        ),
        migrations.CreateModel(
            name='ServiceKey',
            fields=[
                ('id', models.UUIDField(default=uuid.uuid4, editable=False, primary_key=True, serialize=False)),
                ('name', models.CharField(max_length=100)),
                ('digest', models.CharField(max_length=64, unique=True)),
                ('hint', models.CharField(max_length=24)),
                ('created_at', models.DateTimeField(auto_now_add=True)),
                ('expires_at', models.DateTimeField(blank=True, null=True)),
                ('last_used_at', models.DateTimeField(blank=True, null=True)),
                ('revoked_at', models.DateTimeField(blank=True, null=True)),
                ('created_by_label', models.CharField(blank=True, max_length=255)),
                ('legacy', models.BooleanField(default=False)),
                ('created_by', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to=settings.AUTH_USER_MODEL)),
                ('organization', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='service_keys', to='organizations.organization')),
                ('role', models.ForeignKey(null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='service_keys', to='rbac.role')),
                ('workspace', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.CASCADE, related_name='service_keys', to='workspaces.workspace')),
                ('leak_reported_by', models.CharField(blank=True, max_length=100)),
                ('leak_source', models.CharField(blank=True, max_length=100)),
                ('leak_url', models.CharField(blank=True, max_length=2048)),
                ('revoked_reason', models.CharField(blank=True, max_length=16)),
                ('rotated_to', models.OneToOneField(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='rotated_from', to='apikeys.servicekey')),
                ('ip_allow_list', models.JSONField(blank=True, default=list)),
            ],
            options={
                'ordering': ['-created_at'],
                'abstract': False,
                'indexes': [models.Index(fields=['organization', 'workspace', '-created_at'], name='apikeys_ser_organiz_38f6a0_idx')],
            },
        ),
        migrations.RunPython(repair, migrations.RunPython.noop),
    ]
