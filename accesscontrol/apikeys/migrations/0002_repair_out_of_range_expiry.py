"""Keys whose expiry left years 1-9999 once in UTC (`9999-12-31T23:59:59-14:00`, accepted before
input was checked) are unreadable by psycopg: every page or request touching them failed.

The repair runs in SQL, which can still compare such values. An expiry past the range meant
"never" in practice, so it becomes the last instant psycopg can read; one before the range could
not be stored (an expiry must lie in the future). SQLite never held such rows: Django converts to
UTC before writing there, and the write itself failed.
"""

from django.db import migrations

LAST = "9999-12-31 23:59:59+00"
FIRST = "0001-01-01 00:00:00+00"
COLUMNS = {"PersonalAccessToken": ["expires_at"], "ServiceKey": ["expires_at"]}


def repair(apps, schema_editor):
    connection = schema_editor.connection
    if connection.vendor != "postgresql":
        return
    qn = connection.ops.quote_name
    with connection.cursor() as cursor:
        for model_name, columns in COLUMNS.items():
            table = qn(apps.get_model("apikeys", model_name)._meta.db_table)
            for column in map(qn, columns):
                cursor.execute(
                    f"UPDATE {table} SET {column} = GREATEST(LEAST({column}, %s::timestamptz), "
                    f"%s::timestamptz) WHERE {column} > %s::timestamptz "
                    f"OR {column} < %s::timestamptz",
                    [LAST, FIRST, LAST, FIRST],
                )


class Migration(migrations.Migration):
    dependencies = [("apikeys", "0001_initial")]

    operations = [migrations.RunPython(repair, migrations.RunPython.noop)]
