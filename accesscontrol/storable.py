"""Values Python accepts but the database cannot hold or give back: refused where input enters.

- A date-time must lie within years 1-9999 *in UTC*. `9999-12-31T23:59:59-14:00` is a valid
  Python datetime, PostgreSQL stores it (as year 10000), and then psycopg cannot read the row back:
  every later page or request touching it fails.
- Query-string text must not hold NUL: PostgreSQL text refuses it, so a search for `%00` failed
  with a 500 (`RefuseNulInQuery`).
- JSON must not nest deeper than MAX_JSON_DEPTH: rendering or re-serialising a thousand-deep
  value hits Python's recursion limit. Its text must not hold NUL (jsonb refuses it) nor an
  unpaired surrogate (it cannot be encoded): `json_unstorable`.
"""

import datetime
import json
import math

from django.http import HttpResponse, JsonResponse

from accesscontrol.rbac.gate import API, rule_of

MAX_JSON_DEPTH = 64

DATETIME_RANGE = "between 0001-01-01T00:00:00Z and 9999-12-31T23:59:59Z"


def check_datetime(value: datetime.datetime) -> datetime.datetime:
    """The value, if it can be stored and read back; ValueError if not.

    Naive values are taken as UTC by the services (TIME_ZONE is UTC), so only an aware value
    can leave the range once converted.
    """
    if value.tzinfo is not None:
        try:
            value.astimezone(datetime.UTC)
        except OverflowError:
            raise ValueError(f"must be a date-time {DATETIME_RANGE} once in UTC") from None
    return value


def json_too_deep(value, limit: int = MAX_JSON_DEPTH) -> bool:
    """Whether a parsed JSON value nests more than `limit` arrays/objects (iterative: the deep
    value itself must not be able to exhaust the stack)."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return False


def json_unstorable(value) -> str | None:
    """Why a parsed JSON value cannot be stored (PostgreSQL's jsonb refuses NUL), if it can't."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
        elif isinstance(item, str):
            if "\x00" in item:
                return "Text in JSON cannot contain the NUL character (\\u0000)."
            try:
                item.encode("utf-8")
            except UnicodeEncodeError:
                return "Text in JSON contains an unpaired surrogate (\\ud800 to \\udfff)."
        elif isinstance(item, float) and not math.isfinite(item):
            # 1e400 reads as infinity, which jsonb refuses (json.dumps writes it as Infinity)
            return "A number in JSON is too large to store (it reads as infinity)."
    return None


class JsonTooDeep(ValueError):
    pass


class JsonUnstorable(ValueError):
    """Text the database refuses: the same answer as its own refusal would give, earlier."""


def _refuse_constant(name):
    # NaN and Infinity are not JSON: Python reads them, but a number column would keep them
    # and every JSON answer holding them after would be unreadable to the clients.
    raise JsonUnstorable(f"{name} is not a JSON number.")


def load_json(text: str | bytes):
    """json.loads, refusing values nested deeper than MAX_JSON_DEPTH or that the database
    cannot store (JsonTooDeep, JsonUnstorable)."""
    message = f"JSON may nest arrays and objects at most {MAX_JSON_DEPTH} deep."
    try:
        value = json.loads(text, parse_constant=_refuse_constant)
    except RecursionError:
        raise JsonTooDeep(message) from None
    if json_too_deep(value):
        raise JsonTooDeep(message)
    problem = json_unstorable(value)
    if problem:
        raise JsonUnstorable(problem)
    return value


class RefuseNulInQuery:
    """Refuses any query-string name or value holding NUL, before a view puts it in SQL.

    Console pages answer a plain 400. API operations answer the API's JSON error with 422, the
    status the API gives all bad input (and gave NUL before, through its DataError safety net),
    so that a client, and the fuzzer's "schema-valid input is accepted or a 422" contract, see
    no change.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_view(self, request, view_func, view_args, view_kwargs):
        if not any("\x00" in k or any("\x00" in v for v in vs) for k, vs in request.GET.lists()):
            return None
        detail = "The query string holds a NUL character (%00), which no field can contain."
        rule = rule_of(view_func)
        if rule is not None and rule.kind == API:
            return JsonResponse({"error": "invalid", "detail": detail}, status=422)
        return HttpResponse(detail, status=400, content_type="text/plain; charset=utf-8")


def datetime_repair(app_label: str, columns: dict, last: str = "9999-12-31 23:59:59.999999+00"):
    """A data migration's function: clamp the date-time `columns` ({model: [column]}) of rows
    stored before the range check into years 1-9999 in UTC, so they can be read back.

    In SQL, since psycopg cannot even read such a row; PostgreSQL only (SQLite stores text).
    """
    first = "0001-01-01 00:00:00+00"

    def repair(apps, schema_editor):
        connection = schema_editor.connection
        if connection.vendor != "postgresql":
            return
        qn = connection.ops.quote_name
        with connection.cursor() as cursor:
            for model_name, names in columns.items():
                table = qn(apps.get_model(app_label, model_name)._meta.db_table)
                for column in map(qn, names):
                    # Names are the models' own, quoted; values are parameters.
                    cursor.execute(
                        f"UPDATE {table} SET {column} = GREATEST(LEAST({column}, "  # noqa: S608
                        f"%s::timestamptz), %s::timestamptz) WHERE {column} > %s::timestamptz "
                        f"OR {column} < %s::timestamptz",
                        [last, first, last, first],
                    )

    return repair
