"""Delete expired time-bound workspace grants, and make expired temporary upgrades the
permanent role they fall back to, each audited. Run it periodically (cron, a systemd timer):
correctness does not depend on it, since the resolver reads an expired grant as such from the
instant it expires; this only tidies the table and the audit trail."""

from django.core.management.base import BaseCommand

from accesscontrol.workspaces.services import remove_expired_grants


class Command(BaseCommand):
    help = (
        "Delete expired time-bound workspace role grants; expired temporary upgrades go back "
        "to their previous role for good (audited)."
    )

    def handle(self, *args, **options):
        removed = remove_expired_grants()
        self.stdout.write(f"Ended {removed} expired grant{'s' if removed != 1 else ''}.")
