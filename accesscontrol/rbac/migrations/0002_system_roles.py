from django.db import migrations

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
    dependencies = [("rbac", "0001_initial")]
    operations = [migrations.RunPython(create_system_roles, remove_system_roles)]
