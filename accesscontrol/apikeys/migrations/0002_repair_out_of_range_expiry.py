"""Keys whose expiry left years 1-9999 once in UTC (`9999-12-31T23:59:59-14:00`, accepted before
input was checked) are unreadable by psycopg: every page or request touching them failed.

The repair runs in SQL, which can still compare such values. An expiry past the range meant
"never" in practice, so it becomes the last instant psycopg can read; one before the range could
not be stored (an expiry must lie in the future). SQLite never held such rows: Django converts to
UTC before writing there, and the write itself failed.
"""

from django.db import migrations

from accesscontrol.storable import datetime_repair

repair = datetime_repair(
    "apikeys",
    {"PersonalAccessToken": ["expires_at"], "ServiceKey": ["expires_at"]},
    last="9999-12-31 23:59:59+00",
)


class Migration(migrations.Migration):
    dependencies = [("apikeys", "0001_initial")]

    operations = [migrations.RunPython(repair, migrations.RunPython.noop)]
