"""Runs and examples whose times left years 1-9999 once in UTC (`0001-01-01T00:00:00+14:00` is
year 0 there), accepted before input was checked, are unreadable by psycopg: run queries and
the project and dataset pages failed on them.

The repair runs in SQL, which can still compare such values: each time is clamped to the
nearest instant psycopg can read. SQLite never held such rows: Django converts to UTC before
writing there, and the write itself failed.
"""

from django.db import migrations

LAST = "9999-12-31 23:59:59.999999+00"
FIRST = "0001-01-01 00:00:00+00"
COLUMNS = {"Run": ["start_time", "end_time"], "Example": ["created_at"]}


def repair(apps, schema_editor):
    connection = schema_editor.connection
    if connection.vendor != "postgresql":
        return
    qn = connection.ops.quote_name
    with connection.cursor() as cursor:
        for model_name, columns in COLUMNS.items():
            table = qn(apps.get_model("resources", model_name)._meta.db_table)
            for column in map(qn, columns):
                cursor.execute(
                    f"UPDATE {table} SET {column} = GREATEST(LEAST({column}, %s::timestamptz), "
                    f"%s::timestamptz) WHERE {column} > %s::timestamptz "
                    f"OR {column} < %s::timestamptz",
                    [LAST, FIRST, LAST, FIRST],
                )


class Migration(migrations.Migration):
    dependencies = [("resources", "0001_initial")]

    operations = [migrations.RunPython(repair, migrations.RunPython.noop)]
