"""Make the coming months' audit partitions and drop those past retention (PostgreSQL).

Run it daily (cron, a systemd timer, a Kubernetes CronJob); `migrate` makes the partitions
ahead too, so a deploy never leaves the current month without one. Safe to run on several
nodes at once: the work is serialised by an advisory lock.
"""

from django.conf import settings
from django.core.management.base import BaseCommand
from django.db import connection

from accesscontrol.audit import partitions
from accesscontrol.rbac.actor import Actor


class Command(BaseCommand):
    help = "Create the audit log's monthly partitions ahead and drop those past retention."

    def add_arguments(self, parser):
        parser.add_argument(
            "--ahead",
            type=int,
            default=settings.AUDIT_PARTITIONS_AHEAD,
            help="months to make ahead of this one (default AUDIT_PARTITIONS_AHEAD)",
        )
        parser.add_argument(
            "--retention-months",
            type=int,
            default=settings.AUDIT_RETENTION_MONTHS,
            help="drop whole months older than this (default AUDIT_RETENTION_MONTHS)",
        )
        parser.add_argument(
            "--keep-all", action="store_true", help="make partitions ahead, drop nothing"
        )

    def handle(self, *args, ahead, retention_months, keep_all, **options):
        if ahead < 0 or retention_months < 1:
            self.stderr.write("--ahead must be 0 or more and --retention-months 1 or more")
            raise SystemExit(2)
        with connection.cursor() as cursor:
            if not partitions.is_partitioned(cursor):
                self.stdout.write("The audit table is not partitioned here (not PostgreSQL).")
                return
        made = partitions.ensure(ahead=ahead)
        for name in made.created:
            moved = made.moved.get(name)
            note = f" ({moved} events moved in from {partitions.DEFAULT})" if moved else ""
            self.stdout.write(f"created {name}{note}")
        if keep_all:
            return
        dropped = partitions.drop_expired(
            actor=Actor.system("audit retention"), retention_months=retention_months
        )
        for summary in dropped:
            self.stdout.write(
                f"dropped {summary['partition']} ({summary['from']} to {summary['until']},"
                f" {summary['events']} events; retention {retention_months} months)"
            )
        if not made.created and not dropped:
            self.stdout.write("nothing to do")
