"""LangSmith's run filter language (`filter`, `trace_filter`, `tree_filter` of POST /runs/query
and /runs/stats), parsed and compiled to one Django Q over Run: the database does the filtering.

The grammar, as LangSmith documents it (docs: "Trace query syntax"):

    expr  := NAME "(" arg ("," arg)* ")"        and, or, not, eq, neq, gt, gte, lt, lte,
                                                has, search, in
    arg   := expr | attribute | "string" | 'string' | number | null | true | false
           | "[" literal ("," literal)* "]"      (the values of `in`)

Attributes: id, trace_id, parent_run_id, parent_run_ids, session_id, reference_example_id,
name, run_type, status, error, is_root, start_time, end_time, latency (seconds), tags,
metadata (with `has`), metadata_key, metadata_value, feedback_key, feedback_score,
total_tokens, prompt_tokens, completion_tokens. `search("text")` alone looks for the text in
the name, inputs, outputs and error.

As in LangSmith, `metadata_key`/`metadata_value` comparisons inside one `and(...)` describe the
same metadata entry (`and(eq(metadata_key, "user"), eq(metadata_value, "u1"))` is "metadata
user = u1", not "some key is user and some value is u1"); `feedback_key`/`feedback_score` the
same piece of feedback. A value comparison pairs with the key comparison before it.

Anything else is refused with FilterError (a 422 naming the attribute, comparator or the
character where parsing stopped): a filter is never partly applied.
"""

import dataclasses
import datetime
import json
import math
import re
import uuid

from django.db import connection
from django.db.models import (
    BooleanField,
    DurationField,
    Exists,
    ExpressionWrapper,
    F,
    Func,
    OuterRef,
    Q,
    TextField,
    Value,
)
from django.db.models.fields.json import KeyTextTransform, KeyTransform
from django.db.models.functions import Cast
from django.db.models.lookups import IContains

from accesscontrol import storable

MAX_LENGTH = 10_000
MAX_DEPTH = 32
# Key-value pairs one filter's metadata entries compare: in(metadata_key, [...]) beside
# in(metadata_value, [...]) is every key with every value, so short text could otherwise ask
# for millions of conditions (200 keys by 200 values took 12 s to turn into SQL).
MAX_METADATA_PAIRS = 1000


class FilterError(ValueError):
    """A filter that cannot be applied as written; the message says where and why."""

    def __init__(self, field: str, message: str):
        super().__init__(f"{field}: {message}")
        self.field = field


# ---------------------------------------------------------------------------------------------
# Parsing: text -> a small tree of Call / Attr / Lit / List nodes, each knowing its position.


@dataclasses.dataclass(frozen=True)
class Call:
    name: str
    args: tuple
    pos: int


@dataclasses.dataclass(frozen=True)
class Attr:
    name: str
    pos: int


@dataclasses.dataclass(frozen=True)
class Lit:
    value: object
    pos: int


@dataclasses.dataclass(frozen=True)
class List:
    items: tuple
    pos: int


TOKEN = re.compile(
    r"""\s*(?:
        (?P<name>[A-Za-z_][A-Za-z0-9_.]*)
      | (?P<number>-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?)
      | (?P<string>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')
      | (?P<punct>[(),\[\]])
    )""",
    re.VERBOSE,
)
KEYWORDS = {"null": None, "true": True, "false": False}


class _Parser:
    def __init__(self, text: str, field: str):
        self.text, self.field, self.pos = text, field, 0

    def fail(self, message, pos=None):
        pos = self.pos if pos is None else pos
        raise FilterError(self.field, f"{message} at character {pos + 1}")

    def peek(self):
        match = TOKEN.match(self.text, self.pos)
        if not match or match.end() == match.start():
            return None, None, self._skip_space()
        kind = match.lastgroup
        return kind, match.group(kind), match.start(kind)

    def _skip_space(self):
        pos = self.pos
        while pos < len(self.text) and self.text[pos].isspace():
            pos += 1
        return pos

    def take(self):
        match = TOKEN.match(self.text, self.pos)
        kind, value, start = self.peek()
        if kind is None:
            where = self._skip_space()
            if where >= len(self.text):
                self.fail("the filter ends too early", where)
            self.fail(f"unexpected {self.text[where]!r}", where)
        self.pos = match.end()
        return kind, value, start

    def expect(self, punct):
        kind, value, start = self.take()
        if kind != "punct" or value != punct:
            self.fail(f"expected {punct!r}, found {value!r}", start)

    def parse(self):
        node = self.expression(depth=1)
        kind, value, start = self.peek()
        if kind is not None or self._skip_space() < len(self.text):
            where = start if kind is not None else self._skip_space()
            found = value if kind is not None else self.text[where]
            self.fail(
                f"unexpected {found!r} after the end of the filter (combine conditions with "
                "and(...) or or(...))",
                where,
            )
        return node

    def expression(self, depth):
        kind, value, start = self.take()
        if kind != "name" or value in KEYWORDS:
            self.fail(f"expected a function such as eq(...), found {value!r}", start)
        return self.call(value, start, depth)

    def call(self, name, start, depth):
        if depth > MAX_DEPTH:
            self.fail(f"the filter nests deeper than {MAX_DEPTH} levels", start)
        self.expect("(")
        kind, value, _ = self.peek()
        if kind == "punct" and value == ")":
            self.take()
            return Call(name, (), start)  # the compiler says what the function needs
        args = []
        while True:
            args.append(self.argument(depth))
            kind, value, at = self.take()
            if kind == "punct" and value == ")":
                return Call(name, tuple(args), start)
            if kind != "punct" or value != ",":
                self.fail(f"expected ',' or ')', found {value!r}", at)

    def argument(self, depth):
        kind, value, start = self.take()
        if kind == "name":
            if value in KEYWORDS:
                return Lit(KEYWORDS[value], start)
            following, what, _ = self.peek()
            if following == "punct" and what == "(":
                return self.call(value, start, depth + 1)
            return Attr(value, start)
        if kind == "punct" and value == "[":
            items = []
            while True:
                item_kind, item, at = self.take()
                if item_kind == "punct" and item == "]" and not items:
                    return List((), start)
                items.append(self.literal(item_kind, item, at))
                kind, value, at = self.take()
                if kind == "punct" and value == "]":
                    return List(tuple(items), start)
                if kind != "punct" or value != ",":
                    self.fail(f"expected ',' or ']', found {value!r}", at)
        return self.literal(kind, value, start)

    def literal(self, kind, value, start):
        if kind == "number":
            number = float(value)
            if not math.isfinite(number):  # 1e400: no column holds it, jsonb refuses it
                self.fail(f"the number {value} is out of range: expected a finite number", start)
            return Lit(int(number) if number.is_integer() and "." not in value else number, start)
        if kind == "string":
            return Lit(_unquote(value), start)
        if kind == "name" and value in KEYWORDS:
            return Lit(KEYWORDS[value], start)
        self.fail(f"expected a value, found {value!r}", start)


def _unquote(quoted: str) -> str:
    body = quoted[1:-1]
    return re.sub(r"\\(.)", lambda m: {"n": "\n", "t": "\t"}.get(m.group(1), m.group(1)), body)


def parse(text: str, field: str = "filter"):
    """The filter's tree; FilterError if it is not one well-formed expression."""
    if len(text) > MAX_LENGTH:
        raise FilterError(field, f"longer than {MAX_LENGTH} characters")
    if "\x00" in text:
        raise FilterError(field, "holds a NUL character")
    if not text.strip():
        raise FilterError(field, "is empty")
    return _Parser(text, field).parse()


# ---------------------------------------------------------------------------------------------
# Compiling: tree -> Q over Run. Every Q here is alias-safe (ORM lookups, F/OuterRef), so the
# same compiled filter works on the runs themselves and inside the trace/tree subqueries.

COMPARATORS = {"eq", "neq", "gt", "gte", "lt", "lte", "has", "search", "in"}
ORDERING = {"gt": "gt", "gte": "gte", "lt": "lt", "lte": "lte"}
UUID_ATTRS = {
    "id": "id",
    "trace_id": "trace_id",
    "parent_run_id": "parent_run_id",
    "session_id": "project_id",
    "reference_example_id": "reference_example_id",
}
TEXT_ATTRS = {"name": "name", "run_type": "run_type"}
TIME_ATTRS = {"start_time": "start_time", "end_time": "end_time"}
TOKEN_ATTRS = {"total_tokens", "prompt_tokens", "completion_tokens"}
PAIRED = {
    "metadata_key": "metadata",
    "metadata_value": "metadata",
    "feedback_key": "feedback",
    "feedback_score": "feedback",
}
STATUSES = {"success", "error", "pending"}
ATTRIBUTES = sorted(
    {
        *UUID_ATTRS,
        *TEXT_ATTRS,
        *TIME_ATTRS,
        *TOKEN_ATTRS,
        *PAIRED,
        "parent_run_ids",
        "status",
        "error",
        "is_root",
        "latency",
        "tags",
        "metadata",
        "inputs",
        "outputs",
    }
)


def latency():
    """A run's latency (end_time - start_time; null while it runs)."""
    return ExpressionWrapper(F("end_time") - F("start_time"), output_field=DurationField())


class _Compiler:
    def __init__(self, field: str, workspace=None):
        self.field, self.workspace = field, workspace
        self.metadata_pairs = 0

    def fail(self, node, message):
        raise FilterError(self.field, f"{message} (at character {node.pos + 1})")

    def compile(self, node) -> Q:
        if not isinstance(node, Call):
            self.fail(node, "expected a function such as eq(...)")
        if node.name in ("and", "or"):
            if not node.args:
                self.fail(node, f"{node.name}() needs at least one condition")
            for arg in node.args:
                if not isinstance(arg, Call):
                    self.fail(arg, f"the arguments of {node.name}() must be conditions")
            if node.name == "or":
                parts = [self.compile(arg) for arg in node.args]
            else:
                parts = self.conjunction(node.args)
            combined = parts[0]
            for part in parts[1:]:
                combined = combined | part if node.name == "or" else combined & part
            return combined
        if node.name == "not":
            if len(node.args) != 1 or not isinstance(node.args[0], Call):
                self.fail(node, "not() takes exactly one condition")
            return ~self.compile(node.args[0])
        if node.name not in COMPARATORS:
            self.fail(
                node,
                f"unknown function {node.name!r}; use one of "
                f"{', '.join(sorted(COMPARATORS | {'and', 'or', 'not'}))}",
            )
        if node.name == "search" and len(node.args) == 1:
            return self.full_text(node)
        attr, value = self.operands(node)
        if attr.name in PAIRED:
            return self.paired([node])[0]
        return self.comparison(node.name, attr, value)

    def operands(self, node):
        """The attribute and value of a comparison, checked for their kinds."""
        if len(node.args) != 2:
            self.fail(node, f"{node.name}() takes an attribute and a value")
        attr, value = node.args
        if not isinstance(attr, Attr):
            self.fail(attr, f"the first argument of {node.name}() must be an attribute")
        if node.name == "in":
            if not isinstance(value, List):
                self.fail(value, 'in() takes a list of values, such as ["a", "b"]')
        elif not isinstance(value, Lit):
            self.fail(value, f"the second argument of {node.name}() must be a value")
        return attr, value

    # and(...): metadata and feedback comparisons are grouped into entries first.
    def conjunction(self, args):
        parts, group, kind = [], [], None
        for arg in args:
            paired = self.paired_kind(arg)
            if paired is None:
                parts.append(self.compile(arg))
                continue
            group_kind = paired
            if kind is not None and group_kind != kind:
                parts.extend(self.paired(group))
                group = []
            kind = group_kind
            group.append(arg)
        if group:
            parts.extend(self.paired(group))
        return parts

    def paired_kind(self, node):
        if (
            isinstance(node, Call)
            and node.name in COMPARATORS
            and len(node.args) == 2
            and isinstance(node.args[0], Attr)
        ):
            return PAIRED.get(node.args[0].name)
        return None

    def paired(self, nodes):
        """Q per entry: each key comparison opens an entry, value comparisons join the last one."""
        kind = PAIRED[nodes[0].args[0].name]
        entries = []  # (the key comparison or None, [value comparisons])
        for node in nodes:
            self.operands(node)
            if node.args[0].name.endswith("_key"):
                entries.append((node, []))
            elif entries:
                entries[-1][1].append(node)
            else:
                entries.append((None, [node]))
        build = self.metadata_entry if kind == "metadata" else self.feedback_entry
        return [build(key, values) for key, values in entries]

    # --- single attributes ---

    def comparison(self, op, attr, value) -> Q:
        name = attr.name
        if name in UUID_ATTRS:
            column = UUID_ATTRS[name]
            return self.equality(op, attr, value, column, self.as_uuid)
        if name in TEXT_ATTRS:
            column = TEXT_ATTRS[name]
            if op == "search":
                return Q(**{f"{column}__icontains": self.as_text(value)})
            return self.equality(op, attr, value, column, self.as_text)
        if name in TIME_ATTRS:
            return self.ordered(op, attr, value, TIME_ATTRS[name], self.as_datetime)
        if name in TOKEN_ATTRS:
            return self.ordered(op, attr, value, name, self.as_int)
        if name == "latency":
            return self.latency(op, attr, value)
        if name in ("inputs", "outputs"):
            if op != "search":
                self.unsupported(op, attr)
            return Q(**{f"{name}_text__icontains": self.as_text(value)})
        if name == "status":
            return self.equality(op, attr, value, None, self.as_status, build=_status_q)
        if name == "is_root":
            if op not in ("eq", "neq"):
                self.unsupported(op, attr)
            root = self.as_bool(value)
            return Q(parent_run_id__isnull=root if op == "eq" else not root)
        if name == "error":
            return self.error(op, attr, value)
        if name == "tags":
            return self.tags(op, attr, value)
        if name == "metadata":
            if op != "has":
                self.unsupported(op, attr)
            blob = self.as_text(value)
            try:
                wanted = storable.load_json(blob)  # deep nesting was a RecursionError (a 500)
            except ValueError:
                wanted = None
            if not isinstance(wanted, dict):
                self.fail(value, 'has(metadata, ...) takes a JSON object, such as \'{"k": "v"}\'')
            return _contains_metadata(wanted)
        if name == "parent_run_ids":
            if op != "has":
                self.unsupported(op, attr)
            ancestor = self.as_uuid(value)
            # dotted_order lists every ancestor's id, root first; the run's own id comes last.
            return Q(dotted_order__contains=str(ancestor)) & ~Q(id=ancestor)
        self.fail(attr, f"unknown attribute {name!r}; known: {', '.join(ATTRIBUTES)}")

    def unsupported(self, op, attr):
        self.fail(attr, f"{op}() is not supported on {attr.name!r}")

    def equality(self, op, attr, value, column, convert, build=None):
        build = build or (lambda values: Q(**{f"{column}__in": values}))
        if op == "eq":
            return build([convert(value)])
        if op == "neq":
            return ~build([convert(value)])
        if op == "in":
            return build([convert(item) for item in value.items])
        self.unsupported(op, attr)

    def ordered(self, op, attr, value, column, convert):
        if op in ORDERING:
            return Q(**{f"{column}__{ORDERING[op]}": convert(value)})
        if op == "eq":
            return Q(**{column: convert(value)})
        if op == "neq":
            return ~Q(**{column: convert(value)}) & Q(**{f"{column}__isnull": False})
        self.unsupported(op, attr)

    def latency(self, op, attr, value):
        if op not in ORDERING and op not in ("eq", "neq"):
            self.unsupported(op, attr)
        seconds = self.as_seconds(value)
        lookup = {"eq": "exact", "neq": "exact", **ORDERING}[op]
        condition = Q(**{f"latency__{lookup}": seconds})
        return ~condition & Q(end_time__isnull=False) if op == "neq" else condition

    def error(self, op, attr, value):
        if op == "search":
            return Q(error__icontains=self.as_text(value))
        if op not in ("eq", "neq") or not isinstance(value, Lit):
            self.unsupported(op, attr)
        if value.value is None or isinstance(value.value, bool):
            # eq(error, null) / eq(error, false): no error; neq(error, null) / eq(error, true).
            has_error = value.value is True
            if op == "neq":
                has_error = not has_error
            return Q(error__isnull=False) & ~Q(error="") if has_error else _no_error()
        text = self.as_text(value)
        return Q(error=text) if op == "eq" else ~Q(error=text) | _no_error()

    def tags(self, op, attr, value):
        if op == "has":
            return _has_tag(self.as_text(value))
        if op == "in":
            combined = Q(pk__in=[])
            for item in value.items:
                combined |= _has_tag(self.as_text(item))
            return combined
        self.unsupported(op, attr)

    def full_text(self, node):
        (value,) = node.args
        if not isinstance(value, Lit):
            self.fail(value, "search() takes the text to look for")
        text = self.as_text(value)
        return (
            Q(name__icontains=text)
            | Q(error__icontains=text)
            | Q(inputs_text__icontains=text)
            | Q(outputs_text__icontains=text)
        )

    # --- metadata and feedback entries ---

    def metadata_entry(self, key, values) -> Q:
        keys = self.keys_of(key) if key is not None else None
        if keys is not None and key.name == "neq":
            if values:
                self.fail(key, "neq(metadata_key, ...) cannot be paired with a metadata_value")
            return ~_any(Q(extra__metadata__has_key=k) for k in keys)
        if not values:
            return _any(Q(extra__metadata__has_key=k) for k in keys)
        combined = None
        for value_node in values:
            op = value_node.name
            if keys is not None:
                items = value_node.args[1]
                self.metadata_pairs += len(keys) * (len(items.items) if op == "in" else 1)
                if self.metadata_pairs > MAX_METADATA_PAIRS:
                    self.fail(
                        value_node,
                        f"the filter compares more than {MAX_METADATA_PAIRS} metadata key-value "
                        "pairs; use fewer keys or values",
                    )
            if keys is None:
                condition = self.any_metadata_value(value_node)
            else:
                condition = _any(self.metadata_value(k, op, value_node) for k in keys)
            combined = condition if combined is None else combined & condition
        return combined

    def keys_of(self, key):
        op, value = key.name, key.args[1]
        if op in ("eq", "neq"):
            return [self.as_text(value)]
        if op == "in":
            return [self.as_text(item) for item in value.items]
        self.unsupported(op, key.args[0])

    def metadata_value(self, k, op, node):
        value = node.args[1]
        if op == "eq":
            return _metadata_equals(k, value.value)
        if op == "in":
            return _any(_metadata_equals(k, item.value) for item in value.items)
        if op == "neq":
            return Q(extra__metadata__has_key=k) & ~_metadata_equals(k, value.value)
        if op == "search":
            text = KeyTextTransform(k, KeyTransform("metadata", "extra"))
            return Q(_search_expression(text, self.as_text(value)))
        self.unsupported(op, node.args[0])

    def any_metadata_value(self, node):
        op, value = node.name, node.args[1]
        if op not in ("eq", "in"):
            self.fail(node, f"{op}(metadata_value, ...) needs a metadata_key beside it in and(...)")
        if connection.vendor != "postgresql":
            self.fail(node, "metadata_value without a metadata_key needs PostgreSQL")
        items = [value] if op == "eq" else list(value.items)
        return _any(_any_metadata_value_is(item.value) for item in items)

    def feedback_entry(self, key, values) -> Q:
        feedback = Q()
        negate = False
        if key is not None:
            op, value = key.name, key.args[1]
            if op == "eq":
                feedback &= Q(key=self.as_text(value))
            elif op == "in":
                feedback &= Q(key__in=[self.as_text(item) for item in value.items])
            elif op == "neq" and not values:
                negate, feedback = True, Q(key=self.as_text(value))
            else:
                self.unsupported(op, key.args[0])
        for node in values:
            op, value = node.name, node.args[1]
            if op in ORDERING:
                feedback &= Q(**{f"score__{ORDERING[op]}": self.as_number(value)})
            elif op == "eq":
                feedback &= Q(score=self.as_number(value))
            elif op == "neq":
                feedback &= ~Q(score=self.as_number(value)) & Q(score__isnull=False)
            elif op == "in":
                feedback &= Q(score__in=[self.as_number(item) for item in value.items])
            else:
                self.unsupported(op, node.args[0])
        from accesscontrol.resources.models import Feedback

        # Feedback names its run by id only, so it is matched in the run's own workspace. Given
        # the workspace, an uncorrelated IN: PostgreSQL can then start from the (few) matching
        # feedback rows rather than probe the feedback of every run it walks (4-5x at 1M runs).
        if self.workspace is not None:
            matching = Feedback.objects.filter(
                feedback, workspace=self.workspace, run_id__isnull=False
            ).values("run_id")
            condition = Q(pk__in=matching)
        else:
            condition = Q(
                Exists(
                    Feedback.objects.filter(
                        feedback, workspace_id=OuterRef("workspace_id"), run_id=OuterRef("pk")
                    )
                )
            )
        return ~condition if negate else condition

    # --- values ---

    def literal(self, node):
        if not isinstance(node, Lit):
            self.fail(node, "expected a single value")
        return node.value

    def as_text(self, node) -> str:
        value = self.literal(node)
        if isinstance(value, bool) or value is None:
            self.fail(node, f"expected a string, found {json.dumps(value)}")
        return str(value)

    def as_uuid(self, node):
        try:
            return uuid.UUID(str(self.literal(node)))
        except ValueError:
            self.fail(node, f"{node.value!r} is not a UUID")

    def as_bool(self, node) -> bool:
        value = self.literal(node)
        if not isinstance(value, bool):
            self.fail(node, "expected true or false")
        return value

    def as_number(self, node) -> float:
        value = self.literal(node)
        if isinstance(value, bool):
            return float(value)  # feedback scores may be booleans
        if isinstance(value, int):
            return value
        try:
            number = float(value)
        except (TypeError, ValueError):
            self.fail(node, f"expected a number, found {json.dumps(value)}")
        if not math.isfinite(number):  # "nan", 1e999: no column holds them (NaN was a 500)
            self.fail(node, "the number is out of range: expected a finite number")
        return number

    def as_int(self, node) -> int:
        value = self.as_number(node)
        if abs(value) > 2**62:
            self.fail(node, "the number is out of range")
        if not float(value).is_integer():
            # The column would round it (gte 1.5 read as gte 1): a wrong answer, so refused.
            self.fail(node, "token counts are whole numbers")
        return int(value)

    def as_seconds(self, node) -> datetime.timedelta:
        value = self.literal(node)
        if isinstance(value, str):
            match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*", value)
            if not match:
                self.fail(node, f'{value!r} is not a duration (seconds, or like "2.5s")')
            number = float(match.group(1))
            unit = match.group(2) or "s"
            number *= {"ms": 0.001, "s": 1, "m": 60, "h": 3600}[unit]
        elif isinstance(value, int | float) and not isinstance(value, bool):
            number = float(value)
        else:
            self.fail(node, "latency is compared with a number of seconds")
        if not 0 <= number <= 10**9:
            self.fail(node, "the latency is out of range")
        return datetime.timedelta(seconds=number)

    def as_datetime(self, node) -> datetime.datetime:
        value = self.literal(node)
        try:
            moment = datetime.datetime.fromisoformat(str(value))
        except ValueError:
            self.fail(node, f"{value!r} is not an ISO 8601 date-time")
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=datetime.UTC)
        try:
            return storable.check_datetime(moment)
        except ValueError as exc:
            self.fail(node, str(exc))

    def as_status(self, node) -> str:
        status = self.as_text(node)
        if status not in STATUSES:
            self.fail(node, f"status is one of {', '.join(sorted(STATUSES))}")
        return status


def _any(conditions) -> Q:
    combined = None
    for condition in conditions:
        combined = condition if combined is None else combined | condition
    return combined if combined is not None else Q(pk__in=[])


def _no_error() -> Q:
    return Q(error__isnull=True) | Q(error="")


def _status_q(statuses) -> Q:
    by_status = {
        "error": Q(error__isnull=False) & ~Q(error=""),
        "success": _no_error() & Q(end_time__isnull=False),
        "pending": _no_error() & Q(end_time__isnull=True),
    }
    return _any(by_status[s] for s in statuses)


def _has_tag(tag) -> Q:
    if connection.features.supports_json_field_contains:
        return Q(tags__contains=[tag])  # jsonb @>: served by the GIN index on tags
    return Q(tags__icontains=json.dumps(tag))  # SQLite: the JSON text of the stored list


def _contains_metadata(wanted: dict) -> Q:
    if connection.features.supports_json_field_contains:
        return Q(extra__metadata__contains=wanted)  # served by the GIN index on the metadata
    combined = Q()
    for k, v in wanted.items():
        combined &= Q(**{f"extra__metadata__{k}": v}) if isinstance(k, str) else Q(pk__in=[])
    return combined


def _metadata_equals(k, value) -> Q:
    """Metadata `k` equals `value`; LangSmith compares as text, so "42" also finds 42."""
    return _any(_contains_metadata({k: c}) for c in _metadata_candidates(value))


def _metadata_candidates(value) -> list:
    if isinstance(value, list | dict):
        return []
    candidates = [value]
    if isinstance(value, str):
        try:
            number = storable.load_json(value)  # "[[[..." was a RecursionError, "NaN" a nan
        except ValueError:
            number = None
        if isinstance(number, int | float | bool):
            candidates.append(number)
    elif value is not None and not isinstance(value, bool):
        candidates.append(str(value))
    return candidates


def _cast(expression, sql_type):
    return Func(expression, function="", template=f"(%(expressions)s)::{sql_type}")


def _any_metadata_value_is(value) -> Q:
    """Some metadata value equals `value` (PostgreSQL's jsonpath), "42" finding 42 as well."""
    candidates = _metadata_candidates(value)
    return _any(
        Q(
            Func(
                F("extra"),
                _cast(Value("$.metadata.* ? (@ == $v)"), "jsonpath"),
                _cast(Value(json.dumps({"v": candidate})), "jsonb"),
                function="jsonb_path_exists",
                output_field=BooleanField(),
            )
        )
        for candidate in candidates
    )


def _search_expression(text_expression, needle):
    return IContains(text_expression, needle)


def compile_filter(text: str | None, field: str = "filter", workspace=None) -> Q | None:
    """The Q of a filter string (None when no filter was given); FilterError if malformed.

    `workspace`: the workspace of the runs it will filter (feedback is matched there); without
    it, feedback is matched in each run's own workspace by a correlated EXISTS."""
    if text is None:
        return None
    return _Compiler(field, workspace).compile(parse(text, field))


def aliases():
    """What compiled filters name besides columns: `.alias(**aliases())` on what they filter
    (an alias is computed only where a filter uses it, never selected)."""
    return {
        "latency": latency(),
        "inputs_text": Cast("inputs", TextField()),
        "outputs_text": Cast("outputs", TextField()),
    }
