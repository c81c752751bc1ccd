"""Fuzzing the REST API with schemathesis: every operation of /api/v1/openapi.json, every check.

The in-process WSGI application (`accesscontrol.wsgi.application`) is driven directly, inside
the test database, with a valid key: the workspace's Admin service key, and in a second, lighter
run an org admin's personal access token (the only identity here that may manage the
organization, so the org endpoints get their success paths fuzzed too). For every operation:

- schemathesis' *coverage* cases (deterministic: boundary values, missing and wrong-typed
  fields, undeclared HTTP methods, positive and negative);
- hypothesis-generated *positive* cases (schema-valid input; about half of them with the path
  parameters pinned to objects that exist, here or in another tenant, so lookups hit real rows
  and not only 404s);
- hypothesis-generated *negative* cases (schema-invalid input, which must be refused);

and then the API is walked *statefully* along the links schemathesis infers from the schema
(create a dataset, read it, patch it, delete it, read it again, ...).

Every case runs in a savepoint that is rolled back afterwards, with the caches cleared, so each
starts from the same data: that keeps hypothesis' replay and shrinking sound and the run
reproducible (derandomize=True and a fixed schemathesis seed). Clearing the cache matters for
a second reason: `ignored_auth` sends probes with a missing and an invalid key on purpose, and
failed key authentications are throttled per client IP (THROTTLE_KEY_IP, 60 a minute). Without
the reset, after about thirty operations every request of the run, valid key or not, is
answered 429 (tried: 138 of 490 responses, and ignored_auth then fails on "expected 401 or 403,
got 429"). That is the throttle working as designed, not a finding.

A WSGI wrapper counts every response the application sent (cases and the checks' probes) by
status. The test fails on any 5xx and on any check failure that is not a known issue, and prints
"fuzz cases run = N, 5xx found = M".

Checks: the list of schemathesis' built-in checks is asserted (CHECKS below), so an upgrade
that adds one makes this file say so. All of them run on every response, plus
`max_response_time` (10 s) and four of ours. Where a check is adjusted or can only act in some
phases, this says why:

- `status_code_conformance` holds every operation to its documented statuses, errors included
  (the API documents 400/401/403/404/409/422/429 on every operation).
- `positive_data_acceptance` also accepts 422 when the refusal is a business rule the schema
  cannot express (an id that does not exist here, an expiry in the past, a name in use); a 422
  from the framework's own input validation of schema-valid input is still a failure
  (`schema_valid_input_passes_validation`).
- `negative_data_rejection` does not count a negation that cannot reach the server (a query
  value that is valid again once it is text on the wire), and tallies the known input
  validation gap (KNOWN_ISSUES, pinned by strict xfails below) instead of failing.
- `ignored_auth` probes each operation once, as the schemathesis engine does.
- `use_after_free` and `ensure_resource_availability` look back at earlier steps: they act in
  the stateful walk (which records them), and have nothing to look at in single cases.
- `object_level_authorization` replays the owner's reads as the peer identity (Globex's admin
  key) for ids an earlier stateful step created or listed; outside the schemathesis engine's
  resource pool that is a handful of reads, so `other_tenants_objects_are_indistinguishable_
  from_missing_ones` checks every case that names a Globex object (ARCHITECTURE §6.4).
- `unsupported_method` and `allow_header_conformance` judge the coverage cases that send
  undeclared methods (405 with an Allow header).
- `missing_required_header` is live but has nothing to test: the schema declares no header
  parameter (keys go through the security schemes; X-Tenant-Id is not in the document).
- `errors_are_json_with_a_code` (ours): every API error is JSON with `error` and `detail`.
"""

import collections
import contextlib
import datetime
import json
import logging
import re
import time
import traceback
import uuid
from urllib.parse import parse_qs, unquote, urlsplit

import jsonschema
import pydantic
import pytest
import schemathesis
from django.core.cache import cache
from django.core.signals import got_request_exception, request_finished, request_started
from django.db import close_old_connections, transaction
from django.urls import Resolver404, resolve
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.auths import AuthContext, set_on_generated_case
from schemathesis.checks import CHECKS as REGISTERED_CHECKS
from schemathesis.checks import load_all_checks, max_response_time
from schemathesis.config import GenerationConfig
from schemathesis.core.failures import AcceptedNegativeData
from schemathesis.core.parameters import ParameterLocation

from accesscontrol.apikeys import keys
from accesscontrol.apikeys.authentication import forget_cached_principals
from accesscontrol.apikeys.models import PersonalAccessToken, ServiceKey
from accesscontrol.organizations.models import OrganizationMembership
from accesscontrol.organizations.services import invite_member
from accesscontrol.rbac.models import Role
from accesscontrol.resources import services as resources
from accesscontrol.workspaces.models import WorkspaceMembership
from accesscontrol.wsgi import application
from tests.factories import ANNOTATOR_CODES, SYSTEM, pat_for, service_key_for
from tests.support.api import api_call

OPENAPI = "/api/v1/openapi.json"
SEED = 20240701
NOWHERE = uuid.UUID("00000000-0000-4000-8000-00000000dead")  # no object has this id

# Per-operation budgets, per identity. The service key gets everything. The PAT run is there for
# what only an org admin reaches (the success paths of the organization, role, workspace, key
# and audit operations: a workspace key is refused them), so it covers those operations only
# and skips the coverage cases, which do not depend on who asks. The resource operations treat
# both identities alike: each is Admin in the workspace. About 1.5 minutes of CPU in all.
RESOURCES_TAG = "resources (LangSmith-compatible)"
BUDGETS = {
    "workspace-admin-service-key": {
        "operations": "all",
        "coverage": True,
        "positive": 20,
        "negative": 10,
        "stateful": (30, 8),  # scenarios, steps each
    },
    "org-admin-pat": {
        "operations": "access control",
        "coverage": False,
        "positive": 15,
        "negative": 5,
        "stateful": (20, 8),
    },
}

# Every built-in check of schemathesis 4.x, by name. `max_response_time` is not in the registry
# (it runs when a limit is configured); it is added explicitly.
CHECKS = {
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_schema_conformance",
    "response_headers_conformance",
    "positive_data_acceptance",
    "negative_data_rejection",
    "use_after_free",
    "ensure_resource_availability",
    "missing_required_header",
    "ignored_auth",
    "object_level_authorization",
    "unsupported_method",
    "allow_header_conformance",
}


# The application, instrumented


class CountingApp:
    """The WSGI app, counting every response it sends by status and by presented key."""

    def __init__(self, app):
        self.app = app
        self.statuses = collections.Counter()
        self.by_key = collections.Counter()
        self.server_errors = []  # (method, path, status)

    def __call__(self, environ, start_response):
        def recording(status, headers, exc_info=None):
            code = int(status[:3])
            self.statuses[code] += 1
            self.by_key[environ.get("HTTP_X_API_KEY")] += 1
            if code >= 500:
                self.server_errors.append((environ["REQUEST_METHOD"], environ["PATH_INFO"], code))
            return start_response(status, headers, exc_info)

        return self.app(environ, recording)

    @property
    def requests(self) -> int:
        return sum(self.statuses.values())


@contextlib.contextmanager
def served_in_process():
    """Serve requests inside the test's transaction, as Django's test client does.

    Django closes "old" database connections when a request starts and ends; inside a test that
    would close the connection holding the test transaction. The test client disconnects that
    handler around each request; the WSGI app called directly needs the same.
    """
    tracebacks = []

    def remember(sender, request=None, **kwargs):
        tracebacks.append(traceback.format_exc())

    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    got_request_exception.connect(remember)
    noisy = logging.getLogger("django.request")
    level = noisy.level
    noisy.setLevel(logging.ERROR)  # each refused fuzz case would log a warning; 5xx still log
    try:
        yield tracebacks
    finally:
        noisy.setLevel(level)
        got_request_exception.disconnect(remember)
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)


def reset_caches():
    cache.clear()  # throttle counters, authorization versions, refused-use markers
    forget_cached_principals()


@contextlib.contextmanager
def fresh_state():
    """One case: the fixture's data as it was, nothing cached, no throttle counts."""
    reset_caches()
    with transaction.atomic():
        yield
        transaction.set_rollback(True)
    reset_caches()


# Data for path parameters to hit


def build_fuzz_data(world):
    """Objects of every kind in Acme's workspace, and a few of Globex's (they must be 404s).

    Returns (pools, by_path, foreign): ids per path-parameter name, overrides for the two paths
    where `member_id` means different things, and the ids that belong to Globex.
    """
    org, ws = world.org, world.workspace
    globex_ws = world.other_workspace_of_other_org
    project = resources.create_project(actor=SYSTEM, workspace=ws, name="fuzz project")
    run_ids = [uuid.uuid4() for _ in range(3)]
    resources.ingest_runs(
        actor=SYSTEM,
        workspace=ws,
        posts=[
            {"id": run_id, "name": f"run {i}", "run_type": "chain", "session_name": project.name}
            for i, run_id in enumerate(run_ids)
        ],
    )
    dataset = resources.create_dataset(actor=SYSTEM, workspace=ws, name="fuzz dataset")
    examples = resources.create_examples(
        actor=SYSTEM,
        workspace=ws,
        examples=[{"dataset_id": dataset.id, "inputs": {"q": str(i)}} for i in range(3)],
    )
    prompt = resources.create_prompt(
        actor=SYSTEM, workspace=ws, name="fuzz-prompt", template="Hi {name}"
    )
    queue = resources.create_annotation_queue(actor=SYSTEM, workspace=ws, name="fuzz queue")
    resources.queue_runs(actor=SYSTEM, queue=queue, run_ids=run_ids[:2])
    feedback = resources.record_feedback(
        actor=SYSTEM,
        workspace=ws,
        run_id=run_ids[0],
        trace_id=run_ids[0],
        project_id=project.id,
        key="score",
    )
    globex_project = resources.create_project(
        actor=SYSTEM, workspace=globex_ws, name="globex project"
    )
    globex_dataset = resources.create_dataset(
        actor=SYSTEM, workspace=globex_ws, name="globex dataset"
    )
    spare_key = ServiceKey.objects.get(digest=keys.digest(service_key_for(ws, "Viewer")))
    editor_pat = PersonalAccessToken.objects.get(digest=keys.digest(pat_for(world.editor, org)))
    unused_role = Role.objects.create(
        organization=org, name="Unused", permissions=ANNOTATOR_CODES[:3]
    )
    invitation, _ = invite_member(actor=SYSTEM, organization=org, email="invitee@example.test")
    pools = {
        "key_id": [spare_key.pk],
        "token_id": [editor_pat.pk],
        "role_id": [
            Role.objects.get(organization=org, name="Annotator").pk,
            unused_role.pk,
            Role.objects.system("Viewer").pk,
        ],
        "workspace_id": [ws.pk, world.other_workspace.pk, globex_ws.pk],
        "session_id": [project.id, globex_project.id],
        "run_id": run_ids,
        "dataset_id": [dataset.id, globex_dataset.id],
        "example_id": [e.id for e in examples],
        "feedback_id": [feedback.id],
        "queue_id": [queue.id],
        "index": [0, 1, 5],
        "prompt_id": [prompt.id],
    }
    by_path = {
        "/api/v1/workspaces/current/members/{member_id}": {
            "member_id": list(
                WorkspaceMembership.objects.filter(workspace=ws).values_list("pk", flat=True)
            )
        },
        "/api/v1/orgs/current/members/{member_id}": {
            "member_id": [
                *OrganizationMembership.objects.filter(organization=org).values_list(
                    "pk", flat=True
                ),
                invitation.pk,
            ]
        },
    }
    foreign = {str(globex_ws.pk), str(globex_project.id), str(globex_dataset.id)}
    return pools, by_path, foreign


def pinned_path_parameters(operation, pools, by_path) -> list[dict]:
    """Every combination of existing ids for the operation's path parameters."""
    names = [p.name for p in operation.path_parameters]
    choices = {**pools, **by_path.get(operation.path, {})}
    if not names or any(name not in choices for name in names):
        return []
    combinations = [{}]
    for name in names:
        combinations = [{**c, name: str(v)} for c in combinations for v in choices[name]]
    return combinations


# The OpenAPI document, read directly (request body schemas with their $refs)


def body_schema(operation) -> dict | None:
    document = operation.schema.raw_schema
    entry = document["paths"][operation.path][operation.method.lower()]
    content = entry.get("requestBody", {}).get("content", {})
    media = content.get("application/json")
    return None if media is None else media["schema"]


def deref(node, document):
    while isinstance(node, dict) and "$ref" in node:
        node = document["components"]["schemas"][node["$ref"].rsplit("/", 1)[-1]]
    return node


def validates(value, schema, document) -> bool:
    rooted = {**schema, "components": document.get("components", {})}
    validator = jsonschema.Draft202012Validator(
        rooted, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
    )
    return validator.is_valid(value)


# What pydantic's lax mode makes of a JSON scalar, for the types the schema names.
LAX_TYPES = {
    ("string", "date-time"): datetime.datetime,
    ("string", "date"): datetime.date,
    ("string", "uuid"): uuid.UUID,
    ("boolean", None): bool,
    ("integer", None): int,
    ("number", None): float,
}


def as_pydantic_reads_it(value, schema, document):
    """The value with every scalar pydantic (lax mode) accepts replaced by its canonical JSON.

    `{"start_time": 0}` becomes `{"start_time": "1970-01-01T00:00:00Z"}`, `{"is_root": 0}`
    becomes `{"is_root": false}`: what the server made of it, in the schema's own terms.
    """
    schema = deref(schema, document)
    if not isinstance(schema, dict):
        return value
    for branch in schema.get("anyOf", ()):
        candidate = as_pydantic_reads_it(value, branch, document)
        if validates(candidate, branch, document):
            return candidate
    kind = schema.get("type")
    if kind == "object" and isinstance(value, dict):
        properties = schema.get("properties", {})
        return {
            k: as_pydantic_reads_it(v, properties[k], document) if k in properties else v
            for k, v in value.items()
        }
    if kind == "array" and isinstance(value, list):
        return [as_pydantic_reads_it(v, schema.get("items", {}), document) for v in value]
    target = LAX_TYPES.get((kind, schema.get("format")))
    if target is None or isinstance(value, (dict, list)):
        return value
    try:
        read = pydantic.TypeAdapter(target).validate_python(value)
    except pydantic.ValidationError:
        return value
    if isinstance(read, datetime.datetime):
        return read.isoformat().replace("+00:00", "Z") if read.tzinfo else read.isoformat() + "Z"
    return str(read) if isinstance(read, (datetime.date, uuid.UUID)) else read


def query_as_the_server_reads_it(case, response) -> dict:
    """The query string as sent, typed the way the parameter schemas say the server reads it."""
    sent = parse_qs(urlsplit(response.request.url).query, keep_blank_values=True)
    read = {}
    for parameter in case.operation.query:
        texts = sent.get(parameter.name)
        if texts is None:
            continue
        schema = parameter.definition.get("schema", {})
        branches = schema.get("anyOf", [schema])
        if any(branch.get("type") == "array" for branch in branches):
            items = next(b for b in branches if b.get("type") == "array").get("items", {})
            read[parameter.name] = [_read_text(t, items) for t in texts]
        else:
            read[parameter.name] = _read_text(texts[-1], branches[0])  # Django: last one wins
    return read


def _read_text(text, schema):
    kind = schema.get("type")
    if kind == "integer" and re.fullmatch(r"[+-]?\d+", text):
        return int(text)
    if kind == "boolean" and text.lower() in ("true", "false"):
        return text.lower() == "true"
    return text


# Checks


class KnownIssue:
    def __init__(self, name, matches):
        self.name, self.matches = name, matches


def _only_negated(case, location) -> bool:
    meta = case.meta
    return meta is not None and all(
        (loc == location) == info.mode.is_negative for loc, info in meta.components.items()
    )


def _lax_scalars_only(case) -> bool:
    schema = body_schema(case.operation)
    if schema is None or not _only_negated(case, ParameterLocation.BODY):
        return False
    document = case.operation.schema.raw_schema
    return isinstance(case.body, dict) and validates(
        as_pydantic_reads_it(case.body, schema, document), schema, document
    )


# Real gaps the fuzzer found, tallied instead of failing the run; each is pinned by strict
# xfails below, so fixing it turns them into passes and tells you to delete the entry.
KNOWN_ISSUES = [
    KnownIssue(
        # test_scalars_are_as_strict_as_the_schema: pydantic's lax mode takes 0 for a
        # date-time (a Unix timestamp) and 0/1 for a boolean, which the schema does not allow.
        "lax scalar accepted (number for a date-time, 0/1 for a boolean, ...)",
        _lax_scalars_only,
    ),
]


class Checks:
    """The check list for one run: schemathesis' own (three wrapped), and four of ours."""

    def __init__(self):
        load_all_checks()
        builtin = {check.__name__: check for check in REGISTERED_CHECKS.get_all()}
        assert set(builtin) == CHECKS, (
            "schemathesis' built-in checks changed; review CHECKS and this module's notes: "
            f"{sorted(set(builtin) ^ CHECKS)}"
        )
        self.foreign_ids = set()  # ids of another organization's objects, as path values
        self.foreign_requests = 0
        self.known = collections.Counter()  # known issue -> cases that hit it
        self.undocumented = collections.Counter()  # (operation, status) -> cases
        self.probed_auth = set()  # operations whose auth enforcement is confirmed
        self._builtin = builtin
        wrapped = {
            "status_code_conformance": self.status_code_conformance,
            "negative_data_rejection": self.negative_data_rejection,
            "ignored_auth": self.ignored_auth,
        }
        self.all = [wrapped.get(name, check) for name, check in sorted(builtin.items())]
        self.all += [
            max_response_time,
            schema_valid_input_passes_validation,
            errors_are_json_with_a_code,
            self.other_tenants_objects_are_indistinguishable_from_missing_ones,
        ]

    def status_code_conformance(self, ctx, response, case):
        # Every operation documents its error responses (api/router.py ERROR_RESPONSES), so the
        # built-in check applies as it is; test_error_statuses_are_documented pins a few.
        return self._builtin["status_code_conformance"](ctx, response, case)

    def negative_data_rejection(self, ctx, response, case):
        try:
            return self._builtin["negative_data_rejection"](ctx, response, case)
        except AcceptedNegativeData:
            if _only_negated(case, ParameterLocation.QUERY):
                parameters = case.operation.get_parameter_set(ParameterLocation.QUERY)
                sent = query_as_the_server_reads_it(case, response)
                if parameters.get_strict_validator().is_valid(sent):
                    return None  # the negation did not survive serialization: nothing to reject
            for issue in KNOWN_ISSUES:
                if issue.matches(case):
                    self.known[issue.name] += 1
                    return None
            raise

    def other_tenants_objects_are_indistinguishable_from_missing_ones(self, ctx, response, case):
        """ARCHITECTURE §6.4: another tenant's object answers exactly as a missing one does.

        The same request, with the foreign id swapped for one that exists nowhere, must get the
        same status; and it is never a success.
        """
        path = case.path_parameters or {}
        foreign = [name for name, value in path.items() if str(value) in self.foreign_ids]
        if not foreign:
            return None
        self.foreign_requests += 1
        missing = case.derive(keep_auth=True)
        for name in foreign:
            missing.path_parameters[name] = str(NOWHERE)
        control = missing.call()
        if response.status_code < 300 or response.status_code != control.status_code:
            raise AssertionError(
                f"{case.method} {case.formatted_path} with another tenant's id answered "
                f"{response.status_code} {response.text[:200]!r}; a missing id answers "
                f"{control.status_code}"
            )
        return None

    def ignored_auth(self, ctx, response, case):
        # One confirmation per operation, as in the schemathesis engine: each costs three
        # probes (no key, an invalid X-API-Key, an invalid Bearer token).
        ctx.auth_enforced_operations = self.probed_auth
        return self._builtin["ignored_auth"](ctx, response, case)


FRAMEWORK_REFUSALS = ("validation_error", "invalid_json")  # api.py: ninja's own, not a service's


def schema_valid_input_passes_validation(ctx, response, case):
    """Schema-valid input must get past the framework's own validation (pydantic).

    A 422 `validation_error` (or `invalid_json`) for input schemathesis generated as *valid*
    means the OpenAPI document and the server disagree about what the input may be.
    """
    if case.meta is None or not case.meta.generation.mode.is_positive:
        return None
    if any(value is None for value in (case.path_parameters or {}).values()):
        # A stateful link followed a field that is null in its response (an org-scoped key's
        # workspace_id): the path then says "None", which no schema calls valid.
        return None
    if response.status_code == 422 and _error_code(response) in FRAMEWORK_REFUSALS:
        raise AssertionError(f"schema-valid input refused by validation: {response.text[:500]}")
    return None


def errors_are_json_with_a_code(ctx, response, case):
    """README: every API error body is JSON with a stable `error` code and a `detail`.

    Not held to it: a 405 (ninja answers an undeclared method with a plain-text "Method not
    allowed" before any view runs) and a 404 for a URL no route matches (a path parameter of
    the wrong shape: Django's HTML page). Both are outside the API's views.
    """
    if response.status_code < 400 or response.status_code == 405:
        return None
    if response.status_code == 404 and not _routed(response.request.url):
        return None
    body = _json(response)
    if not (isinstance(body, dict) and isinstance(body.get("error"), str) and "detail" in body):
        raise AssertionError(f"{response.status_code} without error/detail: {response.text[:300]}")
    return None


def _json(response):
    try:
        return json.loads(response.content)
    except ValueError:
        return None


def _error_code(response):
    body = _json(response)
    return body.get("error") if isinstance(body, dict) else None


def _routed(url) -> bool:
    try:
        resolve(unquote(urlsplit(url).path))
    except Resolver404:
        return False
    return True


def make_config(wfc_path, identity, peer):
    return schemathesis.Config.from_dict(
        {
            "seed": SEED,
            # Web Fuzzing Commons auth: every case is sent as `identity`, explicitly (so
            # ignored_auth probes it); `peer` is another tenant's admin, whom
            # object_level_authorization replays the owner's reads as.
            "auth": {"wfc": {"path": str(wfc_path), "user": identity, "peers": [identity, peer]}},
            "checks": {
                "max_response_time": 10.0,
                "positive_data_acceptance": {
                    "expected-statuses": ["2xx", "3xx", "401", "403", "404", "409", "422", "429"]
                },
            },
            "output": {"sanitization": {"enabled": False}},  # test keys; show what was sent
        }
    )


def wfc_document(tmp_path, identities):
    path = tmp_path / "wfc-auth.json"
    entries = [
        {"name": name, "fixedHeaders": [{"name": k, "value": v} for k, v in headers.items()]}
        for name, headers in identities.items()
    ]
    path.write_text(json.dumps({"auth": entries}))
    return path


HYPOTHESIS = {
    "deadline": None,
    "derandomize": True,
    "database": None,  # no example database written into the project
    "phases": [Phase.explicit, Phase.generate, Phase.shrink],
    "suppress_health_check": list(HealthCheck),
    "report_multiple_bugs": False,
}


class Fuzzer:
    def __init__(self, schema, pools, by_path):
        self.schema = schema
        self.pools, self.by_path = pools, by_path
        self.checks = Checks()
        self.cases = collections.Counter()  # (operation label, phase) -> cases run
        self.failures = collections.defaultdict(list)  # operation label -> messages

    def run_case(self, case, phase):
        self.cases[(case.operation.label, phase)] += 1
        with fresh_state():
            response = case.call()
            case.validate_response(response, checks=self.checks.all)

    def record(self, label, phase, exc):
        self.failures[label].append(f"[{phase}] {exc}"[:5000])

    def coverage(self, operation):
        context = AuthContext(operation=operation, app=operation.app)
        modes = [GenerationMode.POSITIVE, GenerationMode.NEGATIVE]
        for case in self.schema.iter_coverage_cases(
            operation, generation_modes=modes, generation_config=GenerationConfig()
        ):
            set_on_generated_case(case, context, None)  # the WFC identity, as the engine does
            try:
                self.run_case(case, "coverage")
            except (Exception, BaseExceptionGroup) as exc:  # FailureGroup is a BaseExceptionGroup
                self.record(operation.label, "coverage", exc)

    def generated(self, operation, mode, max_examples):
        strategy = operation.as_strategy(mode)
        pinned = pinned_path_parameters(operation, self.pools, self.by_path)
        if pinned and mode is GenerationMode.POSITIVE:
            strategy = st.one_of(
                strategy,
                st.one_of([operation.as_strategy(mode, path_parameters=p) for p in pinned]),
            )

        @settings(max_examples=max_examples, **HYPOTHESIS)
        @given(case=strategy)
        def examples(case):
            self.run_case(case, mode.value)

        try:
            examples()
        except Unsatisfiable:
            pass  # nothing to negate (no parameters, no body)
        except (Exception, BaseExceptionGroup) as exc:
            self.record(operation.label, mode.value, exc)

    def foreign(self, operation):
        """One case per combination that names another tenant's object, whatever hypothesis drew:
        the tenancy check must not depend on the draw (which shifts when the schema does)."""
        pinned = pinned_path_parameters(operation, self.pools, self.by_path)
        for path in pinned:
            if not self.checks.foreign_ids & set(path.values()):
                continue

            @settings(max_examples=1, **HYPOTHESIS)
            @given(case=operation.as_strategy(GenerationMode.POSITIVE, path_parameters=path))
            def example(case):
                self.run_case(case, "foreign")

            try:
                example()
            except (Exception, BaseExceptionGroup) as exc:
                self.record(operation.label, "foreign", exc)

    def stateful(self, scenarios, steps):
        fuzzer = self

        class Workflow(self.schema.as_state_machine()):
            def setup(self):
                reset_caches()
                self._savepoint = transaction.atomic()
                self._savepoint.__enter__()

            def teardown(self):
                transaction.set_rollback(True)
                self._savepoint.__exit__(None, None, None)
                reset_caches()

            def step(self, input):
                fuzzer.cases[(input.case.operation.label, "stateful")] += 1
                return super().step(input)

            def validate_response(self, response, case, additional_checks=None, **kwargs):
                case.validate_response(
                    response,
                    checks=fuzzer.checks.all,
                    transport_kwargs=kwargs or None,
                    recorder=self.recorder,  # what use_after_free & co. look back into
                )

        try:
            Workflow.run(
                settings=settings(max_examples=scenarios, stateful_step_count=steps, **HYPOTHESIS)
            )
        except (Exception, BaseExceptionGroup) as exc:
            self.record("stateful", "stateful", exc)

    def cases_per_operation(self):
        totals = collections.Counter()
        for (label, _), n in self.cases.items():
            totals[label] += n
        return totals


SUMMARY = []


@pytest.fixture(scope="module", autouse=True)
def print_summary():
    yield
    if not SUMMARY:
        return
    total = sum(s["cases"] for s in SUMMARY)
    server_errors = sum(s["5xx"] for s in SUMMARY)
    print(f"\nfuzz cases run = {total}, 5xx found = {server_errors}")
    for s in SUMMARY:
        print(
            f"  {s['identity']}: {s['cases']} cases over {s['operations']} operations "
            f"({s['requests']} requests with the checks' probes) in {s['seconds']:.0f}s; "
            f"5xx = {s['5xx']}; statuses {dict(sorted(s['statuses'].items()))}"
        )
        print(
            f"    {s['foreign']} cases named another tenant's object (all answered as missing); "
            f"object_level_authorization replayed {s['peer']} reads as the other tenant"
        )
        for issue, n in s["known"].items():
            print(f"    known issue, {n} cases: {issue}")
        print(
            f"    undocumented error statuses: {s['undocumented']} cases "
            f"over {s['undocumented_operations']} operations"
        )


# Each identity's run is cut into parts so that parallel workers share it: the operations dealt
# out round-robin into `shards` parts, and the stateful walk as a part of its own. Every part
# gets the same data, the same seed and the same budgets, so together they run exactly the cases
# one sequential run would (hypothesis derives the examples from the test function, not from
# what ran before).
SHARDS = {"workspace-admin-service-key": 6, "org-admin-pat": 2}
PARTS = [
    (identity, part)
    for identity in BUDGETS
    for part in [
        *(f"operations {i + 1}/{SHARDS[identity]}" for i in range(SHARDS[identity])),
        "stateful",
    ]
]
FOREIGN_PARAMETERS = {"workspace_id", "session_id", "dataset_id"}  # Globex has one of each


@pytest.mark.parametrize(("identity", "part"), PARTS)
def test_every_operation_survives_fuzzing(world, tmp_path, identity, part):
    budget = BUDGETS[identity]
    pools, by_path, foreign = build_fuzz_data(world)
    headers = {
        "workspace-admin-service-key": {"X-API-Key": service_key_for(world.workspace, "Admin")},
        "org-admin-pat": {
            "X-API-Key": pat_for(world.org_admin, world.org),
            "X-Tenant-Id": str(world.workspace.pk),
        },
    }[identity]
    peer = service_key_for(world.other_workspace_of_other_org, "Admin")
    wfc = wfc_document(tmp_path, {identity: headers, "globex-admin": {"X-API-Key": peer}})
    app = CountingApp(application)
    started = time.monotonic()
    with served_in_process() as tracebacks:
        schema = schemathesis.openapi.from_wsgi(
            OPENAPI, app, config=make_config(wfc, identity, "globex-admin")
        )
        every_operation = [
            op
            for op in (result.ok() for result in schema.get_all_operations())
            if budget["operations"] == "all" or RESOURCES_TAG not in (op.tags or ())
        ]
        assert len(every_operation) >= (69 if budget["operations"] == "all" else 26)
        if part == "stateful":
            operations = []
        else:
            index = int(part.split()[1].split("/")[0]) - 1
            operations = every_operation[index :: SHARDS[identity]]
        fuzzer = Fuzzer(schema, pools, by_path)
        fuzzer.checks.foreign_ids = foreign
        for operation in operations:
            if budget["coverage"]:
                fuzzer.coverage(operation)
            fuzzer.generated(operation, GenerationMode.POSITIVE, budget["positive"])
            fuzzer.generated(operation, GenerationMode.NEGATIVE, budget["negative"])
            fuzzer.foreign(operation)
        if part == "stateful":
            fuzzer.stateful(*budget["stateful"])
    per_operation = fuzzer.cases_per_operation()
    SUMMARY.append(
        {
            "identity": f"{identity} ({part})",
            "cases": sum(fuzzer.cases.values()),
            "requests": app.requests,
            "peer": app.by_key[peer],
            "foreign": fuzzer.checks.foreign_requests,
            "operations": len(operations),
            "seconds": time.monotonic() - started,
            "5xx": len(app.server_errors),
            "statuses": app.statuses,
            "known": fuzzer.checks.known,
            "undocumented": sum(fuzzer.checks.undocumented.values()),
            "undocumented_operations": len({op for op, _ in fuzzer.checks.undocumented}),
        }
    )
    print(f"\n{identity}: cases per operation")
    for label in sorted(per_operation):
        phases = {p: n for (each, p), n in sorted(fuzzer.cases.items()) if each == label}
        print(f"  {per_operation[label]:5d}  {label}  {phases}")

    assert all(per_operation[op.label] > 0 for op in operations)
    with_inputs = [op for op in operations if op.path_parameters or op.query or op.body]
    assert all(fuzzer.cases[(op.label, "positive")] == budget["positive"] for op in with_inputs)
    if part == "stateful":
        assert sum(n for (_, phase), n in fuzzer.cases.items() if phase == "stateful") > 0
    elif any(p.name in FOREIGN_PARAMETERS for op in operations for p in op.path_parameters):
        assert fuzzer.checks.foreign_requests > 0
    assert not app.server_errors, (app.server_errors[:20], tracebacks[:3])
    assert not fuzzer.failures, "\n\n".join(
        f"== {label}\n" + "\n".join(messages) for label, messages in fuzzer.failures.items()
    )


# Regression tests for what the fuzzer found. Strict xfails: when a fix lands they pass, the
# strict marker turns that into a failure, and the marker (and the KNOWN_ISSUES entry, or the
# status_code_conformance exemption) should go.


def _documented_statuses(client, method, path_template):
    document = client.get(OPENAPI).json()
    return set(document["paths"][path_template][method.lower()]["responses"])


ERROR_STATUSES = [
    ("GET", "/auth/whoami", "/api/v1/auth/whoami", None, None, 401),
    ("GET", "/workspaces/{id}", "/api/v1/workspaces/{workspace_id}", "other", None, 404),
    ("POST", "/datasets", "/api/v1/datasets", "key", {}, 422),
    ("POST", "/orgs/current/roles", "/api/v1/orgs/current/roles", "key", {"name": "x"}, 403),
]


@pytest.mark.parametrize(("method", "path", "template", "who", "body", "status"), ERROR_STATUSES)
def test_error_statuses_are_documented(client, world, method, path, template, who, body, status):
    key = service_key_for(world.workspace, "Admin")
    if who == "other":
        path = path.replace("{id}", str(world.other_workspace_of_other_org.pk))
    response = api_call(client, method, path, key if who else None, json=body)
    assert response.status_code == status
    assert str(status) in _documented_statuses(client, method, template)


def _run_patch_target(world):
    run_id = uuid.uuid4()
    resources.ingest_runs(
        actor=SYSTEM,
        workspace=world.workspace,
        posts=[{"id": run_id, "name": "r", "run_type": "chain"}],
    )
    return f"/runs/{run_id}"


NON_OBJECT_BODIES = [
    ("PATCH", "run", 0),
    ("PATCH", "run", None),
    ("POST", "/runs/batch", "AAA"),
    ("POST", "/runs/query", [None, None]),
    ("PATCH", "session", False),
    ("PATCH", "dataset", 0),
]


@pytest.mark.parametrize(("method", "target", "body"), NON_OBJECT_BODIES)
def test_non_object_json_bodies_are_refused(client, world, method, target, body):
    key = service_key_for(world.workspace, "Admin")
    ws = world.workspace
    if target == "run":
        target = _run_patch_target(world)
    elif target == "session":
        target = f"/sessions/{resources.create_project(actor=SYSTEM, workspace=ws, name='p').id}"
    elif target == "dataset":
        target = f"/datasets/{resources.create_dataset(actor=SYSTEM, workspace=ws, name='d').id}"
    response = client.generic(
        method,
        f"/api/v1{target}",
        json.dumps(body),
        content_type="application/json",
        headers={"X-API-Key": key},
    )
    assert response.status_code == 422, (response.status_code, response.content[:200])


LAX_SCALARS = [
    ("PATCH", "run", {"start_time": 0}),
    ("PATCH", "run", {"end_time": "1700000000"}),
    ("POST", "/runs/batch", {"patch": [{"id": str(uuid.UUID(int=1)), "end_time": 0}]}),
    # (POST /runs/query's is_root and error are StrictBool now: tests/resources/test_run_filter.py)
]


@pytest.mark.xfail(
    strict=True,
    reason="pydantic's lax mode accepts a number (a Unix timestamp) for a date-time and 0/1/"
    "'yes' for a boolean; the schema says string/date-time and boolean (the feedback score "
    "already uses StrictBool/StrictInt/StrictFloat)",
)
@pytest.mark.parametrize(("method", "target", "body"), LAX_SCALARS)
def test_scalars_are_as_strict_as_the_schema(client, world, method, target, body):
    key = service_key_for(world.workspace, "Admin")
    if target == "run":
        target = _run_patch_target(world)
    response = api_call(client, method, target, key, json=body)
    assert response.status_code == 422, (response.status_code, response.content[:200])
