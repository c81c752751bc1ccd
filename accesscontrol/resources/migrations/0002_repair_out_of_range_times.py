"""Runs and examples whose times left years 1-9999 once in UTC (`0001-01-01T00:00:00+14:00` is
year 0 there), accepted before input was checked, are unreadable by psycopg: run queries and
the project and dataset pages failed on them.

The repair runs in SQL, which can still compare such values: each time is clamped to the
nearest instant psycopg can read. SQLite never held such rows: Django converts to UTC before
writing there, and the write itself failed.
"""

from django.db import migrations

from accesscontrol.storable import datetime_repair

repair = datetime_repair("resources", {"Run": ["start_time", "end_time"], "Example": ["created_at"]})


class Migration(migrations.Migration):
    dependencies = [("resources", "0001_initial")]

    operations = [migrations.RunPython(repair, migrations.RunPython.noop)]
