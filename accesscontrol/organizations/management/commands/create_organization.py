"""The first organization of a new installation, with its first admin and a workspace.

    manage.py create_organization --name "Acme" --admin-email ada@acme.example --plan enterprise

The password is read from ADMIN_PASSWORD, or asked for on the terminal; it must pass the
configured password validators. Everything is created in one transaction and audited.
"""

import getpass
import os

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from accesscontrol.accounts.models import User, normalize_email
from accesscontrol.accounts.services import sign_up
from accesscontrol.organizations import services as organizations
from accesscontrol.organizations.models import Plan
from accesscontrol.rbac.actor import Actor
from accesscontrol.workspaces import services as workspaces

# An operator runs it: the admin it names did nothing yet (audited as "system: <this>").
COMMAND = "create_organization"


class Command(BaseCommand):
    help = "Create an organization, its first admin and a first workspace."

    def add_arguments(self, parser):
        parser.add_argument("--name", required=True, help="The organization's name")
        parser.add_argument("--admin-email", required=True)
        parser.add_argument("--plan", default=Plan.ENTERPRISE, choices=Plan.values)
        parser.add_argument("--workspace", default="Default", help="The first workspace's name")

    def handle(self, *args, name, admin_email, plan, workspace, **options):
        email = normalize_email(admin_email)
        user = User.objects.filter(email=email).first()
        try:
            with transaction.atomic():
                if user is None:
                    password = os.environ.get("ADMIN_PASSWORD") or self._ask_password()
                    user = sign_up(email=email, full_name="", password=password)
                org = organizations.create_organization(
                    creator=user, name=name, plan=plan, actor=Actor.system(COMMAND)
                )
                space = workspaces.create_workspace(
                    actor=Actor.system(COMMAND, org), organization=org, name=workspace
                )
        except ValidationError as exc:
            raise CommandError(" ".join(exc.messages)) from None
        self.stdout.write(
            self.style.SUCCESS(
                f"Created {org.name} ({org.get_plan_display()}) with workspace {space.name}; "
                f"{email} is its admin. Sign in at /login/."
            )
        )

    def _ask_password(self):
        first = getpass.getpass("Password for the admin: ")
        if first != getpass.getpass("Again: "):
            raise CommandError("The passwords differ.")
        return first
