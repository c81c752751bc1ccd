"""The demo: Acme (enterprise) and Globex (plus), with one login per persona. Idempotent."""

import hashlib
import json

from django.core.management.base import BaseCommand
from django.db import transaction

from accesscontrol.accounts.models import User
from accesscontrol.apikeys import keys
from accesscontrol.apikeys import services as key_services
from accesscontrol.apikeys.models import PersonalAccessToken, ServiceKey
from accesscontrol.organizations import services as orgs
from accesscontrol.organizations.models import Organization, OrganizationMembership, Plan
from accesscontrol.rbac import services as roles
from accesscontrol.rbac.models import Role
from accesscontrol.rbac.permissions import (
    ADMIN,
    EDITOR,
    READ_PERMISSIONS,
    VIEWER,
)
from accesscontrol.workspaces import services as workspaces
from accesscontrol.workspaces.models import Workspace, WorkspaceMembership

PASSWORD = "accesscontrol-demo"

ANNOTATOR_PERMISSIONS = sorted(
    READ_PERMISSIONS
    | {"feedback:create", "feedback:update", "annotation-queues:create", "annotation-queues:update"}
)

PERSONAS = [
    # email, full name, organization slug, org role, what they are for
    ("admin@acme.test", "Ada Admin", "acme", "admin", "Acme org admin (Admin everywhere)"),
    (
        "editor@acme.test",
        "Eddie Editor",
        "acme",
        "member",
        "Editor in production, Viewer in staging",
    ),
    ("viewer@acme.test", "Vera Viewer", "acme", "member", "Viewer in production"),
    (
        "annotator@acme.test",
        "Ann Annotator",
        "acme",
        "member",
        "custom role Annotator in production",
    ),
    ("admin@globex.test", "Gus Globex", "globex", "admin", "Globex org admin (plus plan)"),
]


def ensure_user(email, full_name):
    user = User.objects.filter(email=email).first()
    if user is None:
        user = User.objects.create_user(email, PASSWORD, full_name=full_name)
    return user


def ensure_org(slug, name, plan, creator):
    org = Organization.objects.filter(slug=slug).first()
    return org or orgs.create_organization(creator=creator, name=name, slug=slug, plan=plan)


def ensure_org_member(org, user, org_role, actor):
    membership = OrganizationMembership.objects.filter(organization=org, user=user).first()
    return membership or orgs.add_org_member(
        actor=actor, organization=org, user=user, org_role=org_role
    )


def ensure_workspace(org, slug, name, actor):
    ws = Workspace.objects.filter(organization=org, slug=slug).first()
    return ws or workspaces.create_workspace(actor=actor, organization=org, name=name, slug=slug)


def ensure_ws_member(ws, user, role, actor):
    exists = WorkspaceMembership.objects.filter(workspace=ws, org_membership__user=user).exists()
    if not exists:
        workspaces.add_workspace_member(actor=actor, workspace=ws, user=user, role=role)


def demo_key(kind, label):
    """Demo keys are derived from their label, so every run can print the same ones.

    They are as public as the demo password: never seed a production database.
    """
    secret = hashlib.sha256(f"accesscontrol-demo:{kind}:{label}".encode()).hexdigest()[:32]
    return keys.compose(kind, secret)


def ensure_pat(org, user):
    raw = demo_key(keys.PERSONAL, user.email)
    if not PersonalAccessToken.objects.filter(digest=keys.digest(raw)).exists():
        key_services.create_personal_access_token(
            user=user, organization=org, name="demo token", raw_key=raw
        )
    return raw


def ensure_service_key(workspace, role, actor):
    raw = demo_key(keys.SERVICE, f"{workspace.pk}:{role.name}")
    if not ServiceKey.objects.filter(digest=keys.digest(raw)).exists():
        key_services.create_service_key(
            actor=actor,
            organization=workspace.organization,
            workspace=workspace,
            name=f"demo {role.name.lower()} key",
            role=role,
            raw_key=raw,
        )
    return raw


class Command(BaseCommand):
    help = "Create the demo organizations, workspaces and logins (safe to run again)."

    def add_arguments(self, parser):
        parser.add_argument("--json", action="store_true", help="print the logins as JSON")

    def handle(self, *args, **options):
        with transaction.atomic():
            users = {email: ensure_user(email, name) for email, name, *_ in PERSONAS}
            ada, gus = users["admin@acme.test"], users["admin@globex.test"]
            acme = ensure_org("acme", "Acme", Plan.ENTERPRISE, ada)
            globex = ensure_org("globex", "Globex", Plan.PLUS, gus)
            for email, _, org_slug, org_role, _ in PERSONAS:
                org = acme if org_slug == "acme" else globex
                actor = ada if org is acme else gus
                ensure_org_member(org, users[email], org_role, actor)

            production = ensure_workspace(acme, "production", "production", ada)
            staging = ensure_workspace(acme, "staging", "staging", ada)
            ensure_workspace(globex, "default", "default", gus)

            system = {name: Role.objects.system(name) for name in (ADMIN, EDITOR, VIEWER)}
            annotator = Role.objects.filter(organization=acme, name="Annotator").first()
            if annotator is None:
                annotator = roles.create_role(
                    actor=ada,
                    organization=acme,
                    name="Annotator",
                    description="Reads everything; writes feedback and annotation queues.",
                    permissions=ANNOTATOR_PERMISSIONS,
                )
            ensure_ws_member(production, users["editor@acme.test"], system[EDITOR], ada)
            ensure_ws_member(staging, users["editor@acme.test"], system[VIEWER], ada)
            ensure_ws_member(production, users["viewer@acme.test"], system[VIEWER], ada)
            ensure_ws_member(production, users["annotator@acme.test"], annotator, ada)

            demo_keys = [
                {
                    "kind": "personal_access_token",
                    "user": email,
                    "workspace": "production",
                    "key": ensure_pat(acme, users[email]),
                }
                for email in (
                    "admin@acme.test",
                    "editor@acme.test",
                    "viewer@acme.test",
                    "annotator@acme.test",
                )
            ]
            for role in (system[ADMIN], system[EDITOR], system[VIEWER], annotator):
                demo_keys.append(
                    {
                        "kind": "service_key",
                        "role": role.name,
                        "workspace": "production",
                        "key": ensure_service_key(production, role, ada),
                    }
                )

        logins = [
            {"email": email, "password": PASSWORD, "organization": org_slug, "role": what}
            for email, _, org_slug, _, what in PERSONAS
        ]
        workspace_ids = {"production": str(production.pk), "staging": str(staging.pk)}
        if options["json"]:
            self.stdout.write(
                json.dumps(
                    {"logins": logins, "keys": demo_keys, "acme_workspaces": workspace_ids},
                    indent=2,
                )
            )
            return
        self.stdout.write(self.style.SUCCESS("Demo data ready. Sign in at http://127.0.0.1:8000/"))
        for login in logins:
            self.stdout.write(f"  {login['email']:<22} {login['password']}   {login['role']}")
        self.stdout.write("\nDemo API keys (Acme/production; send as X-API-Key):")
        for key in demo_keys:
            who = key.get("user") or f"{key['role']} service key"
            self.stdout.write(f"  {who:<22} {key['key']}")
        self.stdout.write(f"\nAcme workspace ids (X-Tenant-Id): {workspace_ids}")
