"""Run in a subprocess against the topology's own database (tests/faults/topology.py).

`seed`: migrate, make the personas (tests/factories.build_world) and the keys, role, project
and console session the traffic uses; print them as JSON. `check`: count, from the rows
themselves, changes written without their audit row or audit rows without their change (a
half-written change), and ingest batches stored in part; print JSON.
"""

import json
import os
import sys

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "accesscontrol.settings")

import django

django.setup()

from django.core.management import call_command  # noqa: E402
from django.test import Client  # noqa: E402

READ = ["datasets:read", "workspaces:read", "runs:read", "projects:read"]
DEMOTED = ["workspaces:read"]


def seed():
    from accesscontrol.rbac import services as rbac
    from accesscontrol.resources.models import Dataset, Project
    from tests.factories import build_world, service_key_for

    call_command("migrate", verbosity=0)
    world = build_world()
    flipper = rbac.create_role(
        actor=world.org_admin, organization=world.org, name="Flipper", permissions=READ
    )
    Dataset.objects.create(workspace=world.workspace, name="golden")
    project = Project.objects.create(workspace=world.workspace, name="ingest")
    client = Client()
    client.force_login(world.editor)
    return {
        "org_admin_key": service_key_for(world.workspace, "Admin", org_scoped=True),
        "workspace_admin_key": service_key_for(world.workspace, "Admin"),
        "readers": [service_key_for(world.workspace, "Viewer") for _ in range(6)],
        "ingest_key": service_key_for(world.workspace, "Editor"),
        "flipper_key": service_key_for(world.workspace, "Flipper"),
        "flipper_role": str(flipper.pk),
        "project": str(project.pk),
        "workspace": str(world.workspace.pk),
        "console_path": f"/o/{world.org.slug}/w/{world.workspace.slug}/",
        "session": client.cookies["sessionid"].value,
        "email": world.editor.email,
        "read": READ,
        "demoted": DEMOTED,
    }


def check(batches):
    """Half-written changes and partly stored batches; `batches`: {batch id: [run ids]}."""
    from accesscontrol.apikeys.models import ServiceKey
    from accesscontrol.audit.models import AuditEvent
    from accesscontrol.rbac.models import Role
    from accesscontrol.resources.models import Run

    def audited(action, target_id):
        return AuditEvent.objects.filter(action=action, target_id=str(target_id)).count()

    half = []
    for key in ServiceKey.objects.all():
        if audited("service_key.created", key.pk) != 1:
            half.append(f"key {key.pk} created without exactly one audit row")
        if audited("service_key.revoked", key.pk) != (1 if key.revoked_at else 0):
            half.append(f"key {key.pk} revoked={bool(key.revoked_at)} vs its audit rows")
    created = set(
        AuditEvent.objects.filter(action="service_key.created").values_list("target_id", flat=True)
    )
    missing = created - {str(pk) for pk in ServiceKey.objects.values_list("pk", flat=True)}
    half += [f"audit row for key {pk} that does not exist" for pk in missing]
    role = Role.objects.get(name="Flipper")
    chain = AuditEvent.objects.filter(action="role.updated", target_id=str(role.pk)).order_by("id")
    state = None
    for event in chain:
        before, after = (
            event.changes["before"]["permissions"],
            event.changes["after"]["permissions"],
        )
        if state is not None and before != state:
            half.append(f"role audit row {event.pk} starts from {before}, not {state}")
        state = after
    if state is not None and sorted(role.permissions) != sorted(state):
        half.append(f"role holds {sorted(role.permissions)}, its last audit row says {state}")
    stored = {}
    for run_id in Run.objects.values_list("id", flat=True):
        stored[str(run_id)] = True
    partial = [b for b, runs in batches.items() if 0 < sum(r in stored for r in runs) < len(runs)]
    present = {b for b, runs in batches.items() if runs and all(r in stored for r in runs)}
    return {
        "half_written": half,
        "partial_batches": partial,
        "stored_batches": sorted(present),
        "role_changes": chain.count(),
        "keys": ServiceKey.objects.count(),
        "revoked": ServiceKey.objects.filter(revoked_at__isnull=False).count(),
    }


if __name__ == "__main__":
    if sys.argv[1] == "seed":
        print(json.dumps(seed()))
    else:
        print(json.dumps(check(json.load(sys.stdin))))
