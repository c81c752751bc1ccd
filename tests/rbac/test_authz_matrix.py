"""The authorization matrix: every console route and every API operation x every kind of principal.

Nothing here lists routes. The console's URL patterns are walked from the resolver, the API's
operations from its OpenAPI documents (the SDK-compatible root API serves none, so its document
is generated the same way), so a route added later is in the matrix without anyone touching
this file. Path parameters are filled from PATH_PARAMS; a route with a parameter it does not
know fails, naming the parameter, until someone teaches it.

Each cell's expected outcome comes from two things only: the rule the route declares (gate.rule_of
on the view, or on the API operation function, as enforce() and rbac.E002 read it) and what each
principal may do, written down below from the product rules (ARCHITECTURE §5-7) with the
catalog's constants, never by asking the resolver. A cell is "allowed" when the request got past
the gate, whatever the view then made of the empty or synthetic input; it must never be a 500.
API bodies are the smallest the operation's schema accepts, with ids of real objects: ninja
validates input before the gate's check runs, so an invalid body would hide the gate's verdict.
SCIM's routes (/scim/v2/) are public to the gate and guarded by an organization's SCIM token:
there the cell is the token's verdict (401 for every session and key, acme's users and groups
not found with Globex's token), and SCIM tokens are principals of every other route too.

Every cell runs in a savepoint that is rolled back, with the cache (rate-limit counters,
authorization versions) and the per-process principal cache emptied first, so no cell sees
another's effects. `pytest -s tests/rbac/test_authz_matrix.py` prints the matrix size.
"""

import datetime
import json
import re
import secrets
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from http.cookies import SimpleCookie
from urllib.parse import urlencode

import pytest
from django.conf import settings as django_settings
from django.contrib.sessions.backends.base import VALID_KEY_CHARS
from django.contrib.sessions.backends.db import SessionStore
from django.contrib.sessions.models import Session
from django.core.cache import cache
from django.db import transaction
from django.db.models import Q
from django.shortcuts import resolve_url
from django.test import Client
from django.urls import NoReverseMatch, Resolver404, get_resolver, resolve, reverse
from django.utils import timezone
from django.utils.crypto import get_random_string

from accesscontrol.access_requests.services import create_access_request
from accesscontrol.accounts import sudo
from accesscontrol.api.api import APIS, operations
from accesscontrol.apikeys import keys
from accesscontrol.apikeys.authentication import forget_cached_principals
from accesscontrol.apikeys.models import PersonalAccessToken, ServiceKey
from accesscontrol.apikeys.services import (
    create_service_key,
    import_legacy_key,
    revoke_service_key,
)
from accesscontrol.organizations.models import OrganizationMembership
from accesscontrol.organizations.services import invite_member
from accesscontrol.rbac import gate
from accesscontrol.rbac.actor import Actor
from accesscontrol.rbac.models import Role
from accesscontrol.rbac.permissions import (
    ALL_PERMISSIONS,
    ORG_MANAGE,
    ORG_PATS_CREATE,
    ORG_READ,
    WORKSPACE_PERMISSIONS,
)
from accesscontrol.resources.models import (
    AnnotationQueue,
    Dataset,
    Example,
    Feedback,
    Project,
    Prompt,
    PromptCommit,
    QueuedRun,
    Run,
    ShareLink,
)
from accesscontrol.resources.sharing import create_feedback_tokens
from accesscontrol.reviews.services import start_campaign
from accesscontrol.scim.models import ScimGroup, ScimUser
from accesscontrol.scim.services import add_group_mapping
from accesscontrol.scim.services import issue_token as issue_scim_token
from accesscontrol.scim.services import rotate_token as rotate_scim_token
from accesscontrol.sso.models import EmailDomain
from accesscontrol.workspaces.models import WorkspaceMembership
from tests.conftest import Snapshot, the_world
from tests.factories import ANNOTATOR_CODES, SYSTEM, RoleFactory, actor_with
from tests.support.urls import METHODS, accepted_methods, walk

# --- what each principal may do in acme (ARCHITECTURE §4-5), independent of the resolver -----

READ = frozenset(code for code in WORKSPACE_PERMISSIONS if code.endswith(":read"))
EDITOR = frozenset(c for c in WORKSPACE_PERMISSIONS if not c.startswith("workspaces:manage"))
ADMIN = WORKSPACE_PERMISSIONS
ANNOTATOR = frozenset(ANNOTATOR_CODES)

ORG_ADMIN_CODES = frozenset({ORG_READ, ORG_MANAGE, ORG_PATS_CREATE})
ORG_MEMBER_CODES = frozenset({ORG_READ, ORG_PATS_CREATE})
ORG_VIEWER_CODES = frozenset({ORG_READ})


@dataclass(frozen=True)
class Standing:
    """Organization-level codes, and workspace codes in acme/production (None: no role there)."""

    org: frozenset[str]
    workspace: frozenset[str] | None


# The personas of tests/conftest.py's world. None: not a member of acme (the outsider).
PERSONAS: dict[str, Standing | None] = {
    "org_admin": Standing(ORG_ADMIN_CODES, ADMIN),  # Admin in every workspace
    "workspace_admin": Standing(ORG_MEMBER_CODES, ADMIN),
    "editor": Standing(ORG_MEMBER_CODES, EDITOR),
    "viewer": Standing(ORG_MEMBER_CODES, READ),
    "annotator": Standing(ORG_MEMBER_CODES, ANNOTATOR),
    "member_without_workspace": Standing(ORG_MEMBER_CODES, None),
    # Editor in production by membership, but an org viewer is read-only everywhere.
    "org_viewer": Standing(ORG_VIEWER_CODES, READ),
    "outsider": None,
}
# The outsider at home: admin of globex, so their keys pass globex's gate everywhere.
OUTSIDER_AT_HOME = Standing(ORG_ADMIN_CODES, ADMIN)

KEY_ROLES = {"Admin": ADMIN, "Editor": EDITOR, "Viewer": READ, "Annotator": ANNOTATOR}
# Service keys read their organization; an organization-scoped Admin key also manages it.
KEY_ORG_CODES = frozenset({ORG_READ})
ORG_ADMIN_KEY_ORG_CODES = frozenset({ORG_READ, ORG_MANAGE})


@dataclass(frozen=True)
class Principal:
    name: str
    credential: str  # anonymous | session | personal_token | service_key | scim_token
    persona: str | None = None  # the user, for sessions and personal access tokens
    role: str | None = None  # a service key's role
    org_scoped: bool = False
    tenant: bool = False  # sends X-Tenant-Id: acme/production
    rejected: str | None = None  # the 401 error this (dead) key must get
    forged: str | None = None  # a key never issued: "unknown" (well formed) or "malformed"
    scim_of: str | None = None  # a SCIM token's organization: "acme" or "globex"

    @property
    def holds_key(self) -> bool:
        return self.credential in ("personal_token", "service_key")

    @property
    def standing(self) -> Standing | None:
        """What it may do in acme; None for the outsider and for keys that cannot sign in."""
        if self.rejected:
            return None
        if self.credential in ("session", "personal_token"):
            return PERSONAS[self.persona]
        if self.credential == "service_key":
            admin_of_org = self.org_scoped and self.role == "Admin"
            return Standing(
                ORG_ADMIN_KEY_ORG_CODES if admin_of_org else KEY_ORG_CODES, KEY_ROLES[self.role]
            )
        return None

    @property
    def acts_in_a_workspace(self) -> bool:
        """API: does a request act in a workspace without naming it in its path?

        A PAT uses the workspace in X-Tenant-Id, else its user's first one (any, for org
        admins); a workspace key its own; an org-scoped key only the one in X-Tenant-Id.
        """
        if self.tenant:
            return True
        if self.credential == "personal_token":
            standing = self.standing
            return standing is None or standing.workspace is not None
        return not self.org_scoped


PRINCIPALS = [
    Principal("anonymous", "anonymous"),
    *(Principal(f"session:{p}", "session", persona=p) for p in PERSONAS),
    *(Principal(f"pat:{p}", "personal_token", persona=p) for p in PERSONAS),
    Principal("pat:viewer+tenant", "personal_token", persona="viewer", tenant=True),
    *(Principal(f"key:{role}", "service_key", role=role) for role in KEY_ROLES),
    Principal("key:org-scoped", "service_key", role="Admin", org_scoped=True),
    Principal("key:org-scoped+tenant", "service_key", role="Admin", org_scoped=True, tenant=True),
    Principal("key:revoked", "service_key", role="Admin", rejected="revoked_api_key"),
    Principal("key:expired", "service_key", role="Admin", rejected="expired_api_key"),
    Principal(
        "key:legacy-after-sunset", "service_key", role="Admin", rejected="legacy_api_key_sunset"
    ),
    Principal("key:unknown", "service_key", rejected="invalid_api_key", forged="unknown"),
    Principal("key:malformed", "service_key", rejected="invalid_api_key", forged="malformed"),
    # An organization's SCIM bearer token: /scim/v2/ only, never a console page or the API.
    Principal("scim:acme", "scim_token", scim_of="acme"),
    Principal("scim:globex", "scim_token", scim_of="globex"),
    Principal("scim:revoked", "scim_token", scim_of="acme", rejected="revoked"),
]
CONSOLE_PRINCIPALS = PRINCIPALS
# The API never reads the session: one signed-in user stands for all of them there.
API_PRINCIPALS = [p for p in PRINCIPALS if p.credential != "session" or p.persona == "org_admin"]


# --- expected outcomes ------------------------------------------------------------------------


@dataclass(frozen=True)
class Expect:
    outcome: str  # allowed | login | not_found | forbidden | unauthorized | isolated
    error: str | None = None  # API: the body's `error`
    required: str | None = None  # API: the body's `required`; console: X-Required-Permission

    def __str__(self):
        details = [d for d in (self.error, self.required and f"required={self.required}") if d]
        return self.outcome + (f" ({', '.join(details)})" if details else "")


ALLOWED, LOGIN, NOT_FOUND = Expect("allowed"), Expect("login"), Expect("not_found")
ISOLATED = Expect("isolated")  # another tenant's request: acme's named rows unseen and unchanged


def rule_for(view, where):
    rule = gate.rule_of(view)
    if rule is None:
        pytest.fail(f"{where} declares no access rule (the gate refuses it; see rbac.E001/E002)")
    if rule.kind not in (gate.PUBLIC, gate.AUTHENTICATED, gate.PERMISSION):
        pytest.fail(f"{where} declares a rule of kind {rule.kind!r} the matrix does not know")
    return rule


UNAUTHORIZED = Expect("unauthorized")


def expected_on_scim(route, principal, method) -> Expect:
    """/scim/v2/: public to the gate, each request authenticated by an organization's SCIM
    token (scim/auth.py). Acme's live token reaches acme's users and groups; Globex's reaches
    only Globex's, so acme's ids named in the path are not found; anything else is a 401."""
    if principal.credential != "scim_token" or principal.rejected:
        return UNAUTHORIZED
    if method == "POST" and (route.route == SCIM_PREFIX or _names_scim_object(route.route)):
        return ALLOWED  # 405 once the token is accepted: nothing is created at a resource's URL
    if route.route == SCIM_PREFIX:
        return NOT_FOUND  # the base URL serves nothing itself (once the token is accepted)
    if principal.scim_of == "globex" and _names_scim_object(route.route):
        return NOT_FOUND
    return ALLOWED


def expected_on_console(route, principal, method="GET") -> Expect:
    rule = rule_for(route.view, f"console route /{route.route}")
    if route.route.startswith(SCIM_PREFIX):
        return expected_on_scim(route, principal, method)
    if rule.kind == gate.PUBLIC:
        return ALLOWED
    if principal.credential != "session":
        return LOGIN  # console pages never accept keys: with one, you are still signed out
    if rule.kind == gate.AUTHENTICATED:
        return ALLOWED
    params = route.params
    standing = principal.standing
    if "org_slug" in params and standing is None:
        return NOT_FOUND  # another tenant's organization looks like one that does not exist
    held = frozenset()
    if "org_slug" in params:
        held = standing.org
        if "workspace_slug" in params:
            held |= standing.workspace or frozenset()
    missing = [code for code in rule.codes if code not in held]
    return Expect("forbidden", required=", ".join(missing)) if missing else ALLOWED


def expected_on_api(operation, principal) -> Expect:
    rule = rule_for(operation.view, f"API operation {operation}")
    if rule.kind == gate.PUBLIC:
        return ALLOWED
    if principal.credential == "scim_token":
        return Expect("unauthorized", "invalid_api_key")  # a SCIM token is no API key
    if not principal.holds_key:
        return Expect("unauthorized", "missing_api_key")  # the API never uses the session
    if principal.rejected:
        return Expect("unauthorized", principal.rejected)
    standing = principal.standing
    elsewhere = standing is None  # the outsider's key: it acts in globex, where it is admin
    if elsewhere:
        standing = OUTSIDER_AT_HOME
    # Past its own gate, another organization's key must find nothing of acme the path names:
    # reads are a 404 (never a 403), a write may be accepted only if it changed nothing.
    names_acme = any(PATH_PARAMS[name].of_acme for name in operation.params if name in PATH_PARAMS)
    passed = ISOLATED if elsewhere and names_acme else ALLOWED
    if rule.kind == gate.AUTHENTICATED:
        return passed
    if rule.workspace_param is not None:
        # The workspace is the one in the path (acme/production): checked there. One it cannot
        # act in at all (or another organization's) looks like one that is not there.
        if elsewhere or not standing.workspace:
            return NOT_FOUND
        held = standing.org | standing.workspace
    else:
        held = standing.org
        if principal.acts_in_a_workspace:
            held |= standing.workspace or frozenset()
    missing = [code for code in rule.codes if code not in held]
    if not missing:
        return passed
    no_workspace = rule.workspace_param is None and not principal.acts_in_a_workspace
    if no_workspace and any(code in WORKSPACE_PERMISSIONS for code in missing):
        return Expect("forbidden", "org_scoped_key_requires_workspace", missing[0])
    return Expect("forbidden", "permission_denied", missing[0])


# --- the routes, discovered -------------------------------------------------------------------

PARAM = re.compile(r"<(?:(?P<converter>[^>:]+):)?(?P<name>[^>]+)>")
API_PARAM = re.compile(r"{(?:[^}:]+:)?(?P<name>[^}]+)}")
# Values that match each converter, only to see which view a URL reaches at collection time.
PROBE = {"slug": "acme", "uuid": str(uuid.UUID(int=1)), "uuidstr": str(uuid.UUID(int=1))}


@dataclass(frozen=True)
class ConsoleRoute:
    route: str  # as the resolver spells it: "o/<slug:org_slug>/members/"
    view: Callable
    methods: tuple[str, ...]
    buildable: bool  # a path() route, not a regex

    @property
    def params(self) -> tuple[str, ...]:
        return tuple(match["name"] for match in PARAM.finditer(self.route))

    def __str__(self):
        return "/" + self.route


def discover_console_routes():
    """Every URL pattern except the API operations; (routes, shadowed routes nothing reaches)."""
    routes, shadowed = [], []
    for route, pattern, buildable in walk(get_resolver().url_patterns):
        rule = gate.rule_of(pattern.callback)
        if rule is not None and rule.kind == gate.API:
            continue  # an API operation: covered from the OpenAPI documents
        if buildable:
            probe = "/" + PARAM.sub(lambda m: PROBE.get(m["converter"], "x"), route)
            try:
                reached = resolve(probe).func
            except Resolver404:
                reached = pattern.callback
            if reached is not pattern.callback:
                shadowed.append(route)  # an earlier pattern answers this URL
                continue
        routes.append(
            ConsoleRoute(route, pattern.callback, accepted_methods(pattern.callback), buildable)
        )
    return routes, shadowed


def api_root(api) -> str:
    return reverse(f"{api.urls_namespace}:api-root")


@dataclass(frozen=True, eq=False)
class ApiOperation:
    api: str  # the API's URL namespace
    path: str  # as the document spells it: "/api/v1/datasets/{dataset_id}"
    method: str
    spec: dict  # the document's operation object
    components: dict
    root: str  # the API's root URL ("/api/v1/", or "/" for the SDK root API)

    @property
    def params(self) -> tuple[str, ...]:
        return tuple(match["name"] for match in API_PARAM.finditer(self.path))

    @property
    def router_path(self) -> str:
        return "/" + self.path[len(self.root) :]

    @property
    def view(self):
        """The operation function, whose declared rule enforce() checks."""
        return OPERATION_VIEWS.get((self.router_path, self.method))

    def __str__(self):
        return f"{self.method} {self.path}"


def normalize(path: str) -> str:
    return API_PARAM.sub(lambda m: "{" + m["name"] + "}", path)


def documents():
    """Each API's OpenAPI document: the one /api/v1/openapi.json serves, generated alike for
    the SDK root API (it serves no document of its own)."""
    return {each.urls_namespace: (each, each.get_openapi_schema()) for each in APIS}


def discover_api_operations():
    found = []
    for namespace, (each, document) in documents().items():
        components = document.get("components", {}).get("schemas", {})
        for path, item in document["paths"].items():
            for method, spec in item.items():
                if method.upper() in METHODS:
                    found.append(
                        ApiOperation(
                            namespace, path, method.upper(), spec, components, api_root(each)
                        )
                    )
    return found


OPERATION_VIEWS = {(normalize(path), method): view for path, method, view in operations()}
CONSOLE_ROUTES, SHADOWED_ROUTES = discover_console_routes()
API_OPERATIONS = discover_api_operations()
API_PATHS: dict[str, list[ApiOperation]] = {}
for _operation in API_OPERATIONS:
    API_PATHS.setdefault(f"{_operation.api} {_operation.path}", []).append(_operation)


# --- the objects the routes name --------------------------------------------------------------


@dataclass(frozen=True)
class Param:
    find: Callable  # (matrix, route) -> the object the parameter names, or the value itself
    attribute: str | None = "pk"  # what of the object goes in the URL; None: the value itself
    of_acme: bool = True  # names something of acme, which another organization must not reach

    def value(self, matrix, route):
        found = self.find(matrix, route)
        return getattr(found, self.attribute) if self.attribute else found


def _addresses_workspace(route: str) -> bool:
    return "workspace_slug" in route or "/workspaces/" in route


# Path parameter name -> how to fill it. A new route with a new parameter fails until it is here.
PATH_PARAMS: dict[str, Param] = {
    "org_slug": Param(lambda m, route: m.world.org, "slug"),
    "workspace_slug": Param(lambda m, route: m.world.workspace, "slug"),
    "workspace_id": Param(lambda m, route: m.world.workspace),
    # The viewer's membership: of the workspace where the route is about one, else of the org.
    "member_id": Param(
        lambda m, route: m.workspace_membership if _addresses_workspace(route) else m.org_membership
    ),
    "invitation_id": Param(lambda m, route: m.invitation),
    "token": Param(lambda m, route: m.invitation_token, None),  # the invitation link's token
    "role_id": Param(lambda m, route: m.unused_role),
    "campaign_id": Param(lambda m, route: m.campaign),
    "request_id": Param(lambda m, route: m.access_request),
    "token_id": Param(lambda m, route: m.tokens["editor"]),
    "key_id": Param(lambda m, route: m.target_key),
    "project_id": Param(lambda m, route: m.project),
    "session_id": Param(lambda m, route: m.project),  # LangSmith calls projects sessions
    "run_id": Param(lambda m, route: m.run),
    "dataset_id": Param(lambda m, route: m.dataset),
    "example_id": Param(lambda m, route: m.example),
    "prompt_id": Param(lambda m, route: m.prompt),
    "queue_id": Param(lambda m, route: m.queue),
    "feedback_id": Param(lambda m, route: m.feedback),
    "index": Param(lambda m, route: 0, None, of_acme=False),  # a position in an annotation queue
    # The prompt hub names a prompt by owner ("-": the caller's workspace) and name.
    "owner": Param(lambda m, route: "-", None, of_acme=False),
    "repo_name": Param(lambda m, route: m.prompt, "name"),
    "ref": Param(lambda m, route: "latest", None, of_acme=False),
    # Capabilities in the path: a live share link of the kind the route opens, a feedback token.
    "share_token": Param(lambda m, route: m.share_tokens[_shared_kind(route)], None),
    "feedback_token": Param(lambda m, route: m.feedback_token, None),
    # allauth's routes (sign-in stages, MFA, SSO): values that exist nowhere, or acme's slug
    "organization_slug": Param(lambda m, route: m.world.org, "slug"),  # SAML's org in the path
    "provider_id": Param(lambda m, route: "acme", None, of_acme=False),
    "key": Param(lambda m, route: "not-a-key", None, of_acme=False),
    "uidb36": Param(lambda m, route: "0", None, of_acme=False),
    "pk": Param(lambda m, route: 1, None, of_acme=False),  # a passkey's number
    "domain_id": Param(lambda m, route: m.email_domain),  # an email domain acme claimed
    "mapping_id": Param(lambda m, route: m.scim_mapping),  # a SCIM group -> workspace mapping
    # /scim/v2/: public to the gate, which the SCIM token then guards (tests/scim); any id.
    "scim_id": Param(lambda m, route: _scim_id(m, route), None, of_acme=False),
}


SCIM_PREFIX = "scim/v2/"


def _names_scim_object(route: str) -> bool:
    return "Users/" in route or "Groups/" in route


def _scim_id(matrix, route: str) -> str:
    """Acme's own User or Group where the path names one; a schema or resource type else."""
    if "ResourceTypes" in route:
        return "User"
    if "Schemas" in route:
        return "urn:ietf:params:scim:schemas:core:2.0:User"
    return str(matrix.scim_group.pk if "Groups/" in route else matrix.scim_user.pk)


def _shared_kind(route: str) -> str:
    """Which kind of share link a /public/{share_token}/... route (API or page) opens."""
    tail = route.rstrip("/").rsplit("}", 1)[-1].rsplit(">", 1)[-1]
    if tail.startswith(("/datasets", "/examples", "/d")):
        return ShareLink.DATASET
    if tail.startswith(("/prompt", "/p")):
        return ShareLink.PROMPT
    return ShareLink.RUN


def named_objects(params, matrix, route):
    """The rows of acme a route's path names, to see that another tenant left them alone."""
    found = (PATH_PARAMS[name].find(matrix, route) for name in params if name in PATH_PARAMS)
    return [obj for obj in found if hasattr(obj, "_meta")]


def state_of(objects):
    return [type(obj).objects.filter(pk=obj.pk).values().first() for obj in objects]


def fill(route: str, pattern: re.Pattern, matrix) -> str:
    def value(match):
        name = match["name"]
        if name not in PATH_PARAMS:
            pytest.fail(
                f"route {route!r} has the path parameter {name!r}, which the authorization "
                "matrix cannot fill: add it to PATH_PARAMS in tests/rbac/test_authz_matrix.py "
                "(an object of acme/production the test creates)."
            )
        return str(PATH_PARAMS[name].value(matrix, route))

    return pattern.sub(value, route)


def example_of(schema, components, matrix, route, name=None):
    """The smallest value the schema accepts: required fields only, ids of real objects."""
    if "$ref" in schema:
        schema = components[schema["$ref"].rsplit("/", 1)[1]]
    for choice in ("anyOf", "oneOf", "allOf"):
        if choice in schema:
            options = [s for s in schema[choice] if s.get("type") != "null"] or [{}]
            return example_of(options[0], components, matrix, route, name)
    if "enum" in schema:
        return schema["enum"][0]
    kind = schema.get("type")
    if kind == "object":
        return {
            field: example_of(sub, components, matrix, route, field)
            for field, sub in schema.get("properties", {}).items()
            if field in schema.get("required", ())
        }
    if kind == "array":
        return [example_of(schema.get("items", {}), components, matrix, route, name)]
    if kind == "string":
        if name in PATH_PARAMS:
            return str(PATH_PARAMS[name].value(matrix, route))
        if schema.get("format") == "uuid":
            return str(uuid.uuid4())
        if schema.get("format") == "date-time":
            return (timezone.now() + datetime.timedelta(days=1)).isoformat()
        if schema.get("format") == "email" or name == "email":
            return matrix.world.member_without_workspace.email  # someone of acme to add
        alternatives = re.fullmatch(r"\^\(([\w|-]+)\)\$", schema.get("pattern", ""))
        if alternatives:
            return alternatives[1].split("|")[0]
        return "matrix".ljust(schema.get("minLength", 1), "x")
    if kind in ("integer", "number"):
        return schema.get("minimum", 0)
    if kind == "boolean":
        return False
    return None


def query_of(operation, matrix, route) -> str:
    """The query string of the operation's required query parameters (smallest valid values)."""
    values = {
        param["name"]: example_of(
            param.get("schema", {}), operation.components, matrix, route, param["name"]
        )
        for param in operation.spec.get("parameters", ())
        if param.get("in") == "query" and param.get("required")
    }
    return "?" + urlencode(values, doseq=True) if values else ""


def body_of(operation, matrix, route):
    content = operation.spec.get("requestBody", {}).get("content", {})
    schema = content.get("application/json", {}).get("schema")
    if schema is None:
        return None
    return example_of(schema, operation.components, matrix, route)


# --- the world the cells run in ---------------------------------------------------------------


class GatePassed:
    """Test-only middleware right after the gate: its process_view runs only if the gate let
    the request through, so a cell knows the gate's verdict whatever the view did next."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_view(self, request, view_func, view_args, view_kwargs):
        request.passed_gate = True


GATE_MIDDLEWARE = "accesscontrol.rbac.gate.PermissionGateMiddleware"


@dataclass
class Cell:
    response: object
    content: bytes
    changed: bool  # did a watched row change?


# What force_login stored in a persona's session, by (user pk, password hash), once a worker:
# about a tenth of this file's time went to signing in again in every test.
_signed_in = {}


def _session_like(signed_in) -> str:
    """A new session with what a sign-in stored, its sudo mode granted now (one INSERT)."""
    key = get_random_string(32, VALID_KEY_CHARS)
    data = {**signed_in, sudo.SESSION_KEY: time.time() + django_settings.SUDO_MODE_SECONDS}
    Session.objects.create(
        session_key=key,
        session_data=SessionStore().encode(data),
        expire_date=timezone.now() + datetime.timedelta(seconds=django_settings.SESSION_COOKIE_AGE),
    )
    return key


@dataclass
class Matrix:
    world: object
    client: Client
    sessions: dict  # persona -> session key, signed in on first use
    tokens: dict  # persona -> PersonalAccessToken
    raw_keys: dict  # principal name -> raw key
    project: Project
    run: Run
    dataset: Dataset
    example: Example
    prompt: Prompt
    queue: AnnotationQueue
    feedback: Feedback
    campaign: object
    invitation: object
    invitation_token: str
    unused_role: Role
    target_key: ServiceKey
    org_membership: OrganizationMembership
    workspace_membership: WorkspaceMembership
    share_tokens: dict  # ShareLink kind -> the token of a live link to acme's run, dataset, prompt
    feedback_token: uuid.UUID  # a live presigned feedback token for acme's run
    access_request: object
    email_domain: object  # a domain acme claimed for single sign-on
    scim_mapping: object
    scim_user: object  # acme's SCIM User (the editor, provisioned)
    scim_group: object  # acme's SCIM Group (of the mapping)

    def session_of(self, persona) -> str:
        """A signed-in session of the persona (sign-in grants sudo mode, as a real one does)."""
        if persona not in self.sessions:
            user = self.world.persona(persona)
            signed_in = _signed_in.get((user.pk, user.password))
            if signed_in is None:
                self.client.force_login(user)
                key = self.client.cookies[django_settings.SESSION_COOKIE_NAME].value
                _signed_in[(user.pk, user.password)] = SessionStore(key).load()
            else:
                key = _session_like(signed_in)
            self.sessions[persona] = key
        return self.sessions[persona]

    def send(self, principal, method, url, *, api, body=None, watch=()):
        """One cell: a request in a savepoint that is rolled back.

        `watch`: rows whose state before and after the request the cell reports.
        """
        cache.clear()  # rate-limit counters, authorization versions
        forget_cached_principals()
        client = self.client
        client.cookies = SimpleCookie()
        headers = {}
        if principal.credential == "session":
            client.cookies[django_settings.SESSION_COOKIE_NAME] = self.session_of(principal.persona)
        elif principal.credential == "personal_token":
            headers["Authorization"] = f"Bearer {self.raw_keys[principal.name]}"
        elif principal.credential == "service_key":
            headers["X-API-Key"] = self.raw_keys[principal.name]
        elif principal.credential == "scim_token":
            headers["Authorization"] = f"Bearer {self.raw_keys[principal.name]}"
        if principal.tenant:
            headers["X-Tenant-Id"] = str(self.world.workspace.pk)
        with transaction.atomic():
            before = state_of(watch)
            if api:
                data = "" if body is None else json.dumps(body)
                response = client.generic(
                    method, url, data, content_type="application/json", headers=headers
                )
            elif method == "POST":
                response = client.post(url, {}, headers=headers)
            else:
                response = client.generic(method, url, headers=headers)
            if response.streaming:
                content = b"".join(response.streaming_content)
            else:
                content = response.content
            changed = state_of(watch) != before
            transaction.set_rollback(True)
        return Cell(response, content, changed)


def _token(membership):
    """A personal access token made directly: org viewers may hold one from before."""
    raw = keys.generate(keys.PERSONAL)
    token = PersonalAccessToken.objects.create(
        org_membership=membership,
        name="matrix token",
        digest=keys.digest(raw),
        hint=keys.display_hint(raw),
    )
    return token, raw


def _service_key(world, principal):
    org, workspace = world.org, world.workspace
    if principal.forged == "unknown":
        return keys.generate(keys.SERVICE)  # well formed, checksum right, never issued
    if principal.forged == "malformed":
        raw = keys.generate(keys.SERVICE)
        return raw[:-1] + ("0" if raw[-1] != "0" else "1")  # a typo: the checksum is wrong
    if principal.rejected == "legacy_api_key_sunset":
        raw = "ls__" + secrets.token_hex(16)
        import_legacy_key(raw=raw, workspace=workspace, name=principal.name)
        return raw
    role = Role.objects.get(Q(organization=None) | Q(organization=org), name=principal.role)
    key, raw = create_service_key(
        actor=actor_with(ALL_PERMISSIONS),
        organization=org,
        workspace=None if principal.org_scoped else workspace,
        name=principal.name,
        role=role,
    )
    if principal.rejected == "revoked_api_key":
        revoke_service_key(actor=SYSTEM, key=key)
    elif principal.rejected == "expired_api_key":
        expired = timezone.now() - datetime.timedelta(days=1)
        ServiceKey.objects.filter(pk=key.pk).update(expires_at=expired)
    return raw


def _matrix_rows() -> dict:
    """Everything a cell may name: the world, a key per principal, one object of each kind."""
    world = the_world.restore()
    org, workspace = world.org, world.workspace
    memberships = {
        persona: OrganizationMembership.objects.get(user=world.persona(persona))
        for persona in PERSONAS
    }
    tokens, raw_keys = {}, {}
    for persona, membership in memberships.items():
        tokens[persona], raw = _token(membership)
        raw_keys.update({p.name: raw for p in PRINCIPALS if p.persona == persona and p.holds_key})
    for principal in PRINCIPALS:
        if principal.credential == "service_key":
            raw_keys[principal.name] = _service_key(world, principal)
    # SCIM tokens: acme's rotated one (dead), acme's live one, Globex's (made by its admin)
    _, raw_keys["scim:revoked"] = issue_scim_token(actor=world.org_admin, organization=org)
    _, raw_keys["scim:acme"], _ = rotate_scim_token(actor=world.org_admin, organization=org)
    _, raw_keys["scim:globex"] = issue_scim_token(
        actor=world.outsider, organization=world.other_org
    )
    scim_group = ScimGroup.objects.create(organization=org, display_name="matrix group")

    project = Project.objects.create(workspace=workspace, name="matrix project")
    run = Run.objects.create(
        workspace=workspace,
        project=project,
        trace_id=uuid.uuid4(),
        name="matrix run",
        run_type="chain",
        start_time=timezone.now(),
    )
    dataset = Dataset.objects.create(workspace=workspace, name="matrix dataset")
    prompt = Prompt.objects.create(workspace=workspace, name="matrix-prompt")
    PromptCommit.objects.create(prompt=prompt, template="Hello {name}")
    queue = AnnotationQueue.objects.create(workspace=workspace, name="matrix queue")
    QueuedRun.objects.create(queue=queue, run=run)
    invitation, invitation_token = invite_member(
        actor=world.org_admin, organization=org, email="pending@acme.test"
    )
    target_key, _ = create_service_key(
        actor=actor_with(ALL_PERMISSIONS),
        organization=org,
        workspace=workspace,
        name="matrix target",
        role=Role.objects.system("Viewer"),
    )
    share_tokens = {
        kind: ShareLink.objects.create(
            workspace=workspace, kind=kind, object_id=obj.pk, token=uuid.uuid4()
        ).token
        for kind, obj in (
            (ShareLink.RUN, run),
            (ShareLink.DATASET, dataset),
            (ShareLink.PROMPT, prompt),
        )
    }
    ((_, feedback_token),) = create_feedback_tokens(
        actor=SYSTEM,
        workspace=workspace,
        requests=[
            {
                "run_id": run.pk,
                "feedback_key": "matrix",
                "expires_at": timezone.now() + datetime.timedelta(days=1),
            }
        ],
    )
    return dict(
        share_tokens=share_tokens,
        feedback_token=feedback_token,
        world=world,
        tokens=tokens,
        raw_keys=raw_keys,
        project=project,
        run=run,
        dataset=dataset,
        example=Example.objects.create(workspace=workspace, dataset=dataset, inputs={"q": "hi"}),
        prompt=prompt,
        queue=queue,
        feedback=Feedback.objects.create(
            workspace=workspace, run_id=run.pk, key="correct", feedback_source={"type": "api"}
        ),
        campaign=start_campaign(
            actor=world.org_admin,
            organization=org,
            name="matrix review",
            deadline=timezone.now() + datetime.timedelta(days=7),
        ),
        invitation=invitation,
        invitation_token=invitation_token,
        unused_role=RoleFactory(organization=org, name="Unused", permissions=["runs:read"]),
        target_key=target_key,
        org_membership=memberships["viewer"],
        workspace_membership=WorkspaceMembership.objects.get(
            org_membership=memberships["viewer"], workspace=workspace
        ),
        access_request=create_access_request(
            actor=Actor.for_user(world.member_without_workspace, org),
            workspace=workspace,
            permission="datasets:read",
            reason="the matrix asks",
        ),
        email_domain=EmailDomain.objects.create(organization=org, domain="matrix.example.test"),
        scim_mapping=add_group_mapping(
            actor=world.org_admin,
            group=scim_group,
            workspace=workspace,
            role=Role.objects.system("Viewer"),
        ),
        scim_user=ScimUser.objects.create(
            organization=org, user=world.editor, user_name=world.editor.email
        ),
        scim_group=scim_group,
    )


_matrix_rows_snapshot = Snapshot(_matrix_rows)


@pytest.fixture
def matrix(db, settings):
    stack = list(settings.MIDDLEWARE)
    assert GATE_MIDDLEWARE in stack, f"{GATE_MIDDLEWARE} is not in MIDDLEWARE: teach the matrix"
    stack.insert(stack.index(GATE_MIDDLEWARE) + 1, f"{__name__}.GatePassed")
    settings.MIDDLEWARE = stack
    settings.LEGACY_API_KEY_SUNSET = datetime.date(2024, 7, 1)  # passed: ls__ keys are refused
    # The rows are made once per worker and put back for each test (tests/conftest.py Snapshot);
    # sessions are signed in per test, on first use (after a worker's first, with what that
    # sign-in stored), so sudo mode is always as fresh as a real sign-in's.
    return Matrix(
        client=Client(raise_request_exception=False),
        sessions={},
        **_matrix_rows_snapshot.restore(),
    )


# --- what a response says ---------------------------------------------------------------------


def _sudo_url():
    try:
        return reverse("sudo")
    except NoReverseMatch:
        return None


def _location(response) -> str:
    return response.get("Location", "").split("?", 1)[0]


def _crashed(response):
    if response.status_code < 500:
        return None
    exc_info = getattr(response, "exc_info", None)
    return repr(exc_info[1]) if exc_info else f"status {response.status_code}"


def console_got(response) -> Expect:
    """The gate's verdict on a console request, as far as the response shows it."""
    if response.wsgi_request.path.startswith("/" + SCIM_PREFIX):
        # Past the gate (public), the SCIM token's own verdict: 401, or 404 for an id of
        # another organization's.
        if response.status_code == 401:
            return UNAUTHORIZED
        if response.status_code == 404:
            return NOT_FOUND
    passed = getattr(response.wsgi_request, "passed_gate", False)
    # Sudo mode comes after the gate: being asked for the password means the gate let it by.
    if passed or (response.status_code == 302 and _location(response) == _sudo_url()):
        return ALLOWED
    if response.status_code == 302 and _location(response) == resolve_url(
        django_settings.LOGIN_URL
    ):
        return LOGIN
    if response.status_code == 404:
        return NOT_FOUND
    if response.status_code == 403:
        return Expect("forbidden", required=response.get("X-Required-Permission"))
    return Expect(f"refused by the gate with {response.status_code}")


def api_body(response, content) -> dict:
    if response.get("Content-Type", "").startswith("application/json") and content:
        body = json.loads(content)
        return body if isinstance(body, dict) else {}
    return {}


# What the gate's refusals (ninja's authentication included) look like in the API.
GATE_ERRORS = {
    "missing_api_key",
    "invalid_api_key",
    "revoked_api_key",
    "expired_api_key",
    "legacy_api_key_sunset",
    "too_many_requests",
    "invalid_tenant",
    "workspace_not_accessible",
    "org_scoped_key_requires_workspace",
    "undeclared_operation",
}


def api_got(response, content) -> Expect:
    status, body = response.status_code, api_body(response, content)
    error = body.get("error")
    if error in ("validation_error", "invalid_json"):
        # ninja validates input before enforce() runs: this cell says nothing about the gate.
        return Expect("input refused before the gate; make example_of() satisfy the schema", error)
    if status == 401:
        return Expect("unauthorized", error)
    if status == 404:
        return NOT_FOUND
    if status == 403 and (error in GATE_ERRORS or body.get("required") in ALL_PERMISSIONS):
        return Expect("forbidden", error, body.get("required"))
    if status == 429 or error in GATE_ERRORS:
        return Expect(f"refused with {status}", error)
    return ALLOWED  # past the gate; whatever the view made of the input


def verdict(expect, got, cell, method, *, view_may_404=False) -> str | None:
    """None if the cell is as it must be, else what went wrong."""
    response = cell.response
    crash = _crashed(response)
    if crash:
        return f"server error: {crash}"
    if expect == ISOLATED:
        if cell.changed:
            return f"changed acme's rows [{response.status_code}]"
        if got == NOT_FOUND or (method != "GET" and got == ALLOWED):
            return None
    elif expect == got or (view_may_404 and expect == ALLOWED and got == NOT_FOUND):
        return None
    shown = response.get("Location", "")
    if response.get("Content-Type", "").startswith("application/json"):
        shown = cell.content[:300].decode(errors="replace")
    return f"expected {expect}, got {got} [{response.status_code} {shown}]".rstrip()


# --- the matrix -------------------------------------------------------------------------------


def _console_id(route):
    return f"{','.join(route.methods)} /{route.route}"


@pytest.mark.parametrize("route", CONSOLE_ROUTES, ids=_console_id)
def test_console_route(route, matrix, subtests):
    if not route.buildable:
        pytest.fail(f"/{route.route} is a regex URL pattern: the matrix only fills path() routes")
    url = "/" + fill(route.route, PARAM, matrix)
    assert resolve(url).func is route.view, f"{url} does not reach the view of /{route.route}"
    for method in route.methods:
        for principal in CONSOLE_PRINCIPALS:
            expect = expected_on_console(route, principal, method)
            with subtests.test(msg=f"{method} {url} as {principal.name}"):
                cell = matrix.send(principal, method, url, api=False)
                problem = verdict(expect, console_got(cell.response), cell, method)
                assert problem is None, f"{method} {url} as {principal.name}: {problem}"


@pytest.mark.parametrize("path", list(API_PATHS))
def test_api_operation(path, matrix, subtests):
    for operation in API_PATHS[path]:
        if operation.view is None:
            pytest.fail(f"{operation} is in the OpenAPI document but no API operation serves it")
        url = fill(operation.path, API_PARAM, matrix) + query_of(operation, matrix, operation.path)
        body = body_of(operation, matrix, operation.path)
        # Past the gate, a view may answer 404 (an id in the body it does not find); only
        # operations addressing a workspace by path get a 404 from the gate itself.
        view_may_404 = gate.rule_of(operation.view).workspace_param is None
        named = named_objects(operation.params, matrix, operation.path)
        for principal in API_PRINCIPALS:
            expect = expected_on_api(operation, principal)
            with subtests.test(msg=f"{operation.method} {url} as {principal.name}"):
                cell = matrix.send(
                    principal,
                    operation.method,
                    url,
                    api=True,
                    body=body,
                    watch=named if expect == ISOLATED else (),
                )
                got = api_got(cell.response, cell.content)
                problem = verdict(expect, got, cell, operation.method, view_may_404=view_may_404)
                assert problem is None, f"{operation.method} {url} as {principal.name}: {problem}"


# --- the walk itself --------------------------------------------------------------------------


def test_every_api_url_pattern_is_an_operation_of_a_document():
    """Whatever the resolver routes to an API operation is in the matrix through a document."""
    documented = {normalize(op.path) for op in API_OPERATIONS}
    api_routes = [
        "/" + route
        for route, pattern, _ in walk(get_resolver().url_patterns)
        if getattr(gate.rule_of(pattern.callback), "kind", None) == gate.API
    ]
    assert api_routes
    missing = [r for r in api_routes if normalize(PARAM.sub(r"{\g<name>}", r)) not in documented]
    assert not missing, f"API routes missing from every OpenAPI document: {missing}"


def test_every_api_operation_is_in_a_document():
    documented = {(op.router_path, op.method) for op in API_OPERATIONS}
    served = {(normalize(path), method) for path, method, _ in operations()}
    assert served <= documented, f"operations in no document: {sorted(served - documented)}"


def test_the_served_document_is_the_one_walked(client, db):
    for namespace, (each, document) in documents().items():
        if not each.openapi_url:
            continue
        served = client.get(reverse(f"{namespace}:openapi-json")).json()
        walked = {(path, method) for path, item in document["paths"].items() for method in item}
        assert {(path, method) for path, item in served["paths"].items() for method in item} == (
            walked
        )


def test_matrix_size():
    console_cells = sum(len(r.methods) for r in CONSOLE_ROUTES) * len(CONSOLE_PRINCIPALS)
    api_cells = len(API_OPERATIONS) * len(API_PRINCIPALS)
    print(
        f"\nauthorization matrix: {len(CONSOLE_ROUTES)} console routes "
        f"({sum(len(r.methods) for r in CONSOLE_ROUTES)} route-methods) x "
        f"{len(CONSOLE_PRINCIPALS)} principals = {console_cells} cells; "
        f"{len(API_OPERATIONS)} API operations in {len(API_PATHS)} paths x "
        f"{len(API_PRINCIPALS)} principals = {api_cells} cells; "
        f"total {console_cells + api_cells} cells"
        + (f"; shadowed routes nothing reaches: {SHADOWED_ROUTES}" if SHADOWED_ROUTES else "")
    )
    assert len(CONSOLE_ROUTES) >= 60
    assert len(API_OPERATIONS) >= 90
    # SCIM (#15): its routes against every principal, and organizations' SCIM tokens against
    # every route (sessions and keys get 401 there; a SCIM token is no session and no key).
    assert sum(r.route.startswith(SCIM_PREFIX) for r in CONSOLE_ROUTES) >= 9
    assert {"scim:acme", "scim:globex", "scim:revoked"} <= {p.name for p in PRINCIPALS}
    assert console_cells + api_cells >= 4000
