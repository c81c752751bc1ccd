"""Turn legacy `ls__` keys into service keys (role Admin, legacy=True), keeping only digests.

The CSV has a header row and three columns: key, workspace, name. The workspace is either its
id or `<org-slug>/<workspace-slug>`. Rows already imported are skipped, so the command can be
run again; any other bad row stops the import before anything is written.
"""

import csv
import uuid

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from accesscontrol.apikeys import keys
from accesscontrol.apikeys.models import ServiceKey
from accesscontrol.apikeys.services import import_legacy_key
from accesscontrol.workspaces.models import Workspace

COLUMNS = ("key", "workspace", "name")


def find_workspace(ref: str):
    ref = ref.strip()
    workspaces = Workspace.objects.select_related("organization")
    try:
        return workspaces.filter(pk=uuid.UUID(ref)).first()
    except ValueError:
        pass
    org_slug, _, ws_slug = ref.partition("/")
    return workspaces.filter(organization__slug=org_slug, slug=ws_slug).first()


class Command(BaseCommand):
    help = "Import legacy ls__ API keys from a CSV (key, workspace, name) as service keys."

    def add_arguments(self, parser):
        parser.add_argument("file", help="CSV file with columns key, workspace, name")

    def handle(self, *args, file, **options):
        try:
            with open(file, newline="", encoding="utf-8") as handle:
                reader = csv.DictReader(handle)
                rows = list(reader)
                columns = set(reader.fieldnames or ())
        except (OSError, UnicodeDecodeError, csv.Error) as exc:
            raise CommandError(f"cannot read {file}: {exc}") from None
        if set(COLUMNS) - columns:
            raise CommandError(f"the CSV needs the columns {', '.join(COLUMNS)}")

        imported = skipped = 0
        with transaction.atomic():
            for line, row in enumerate(rows, start=2):
                raw = (row.get("key") or "").strip()
                parsed = keys.parse(raw)
                if parsed is None or parsed.kind != keys.LEGACY:
                    # Never echo the value: it may be a real secret with a typo.
                    raise CommandError(f"line {line}: not a legacy ls__ key")
                if ServiceKey.objects.filter(digest=parsed.digest).exists():
                    skipped += 1
                    continue
                workspace = find_workspace(row.get("workspace") or "")
                if workspace is None:
                    raise CommandError(f"line {line}: no workspace {row.get('workspace')!r}")
                try:
                    import_legacy_key(raw=raw, workspace=workspace, name=row.get("name") or "")
                except ValidationError as exc:
                    raise CommandError(f"line {line}: {' '.join(exc.messages)}") from None
                imported += 1
        self.stdout.write(
            self.style.SUCCESS(f"Imported {imported} legacy key(s); {skipped} already imported.")
        )
