"""Cross-tenant object access (BOLA / IDOR), generated from the routes themselves.

ARCHITECTURE §6.4: object lookups go through the current workspace, and another tenant's object
is a 404, never a 403, so existence does not leak. No route is listed by hand:

- console routes come from walking `django.urls.get_resolver()`, API operations from the OpenAPI
  documents (`/api/v1/openapi.json` and the SDK root API's); a route is *object-addressing* when
  it has a path parameter other than `org_slug` / `workspace_slug`;
- each parameter NAME maps to a kind of object (`PARAM_KINDS`), and a `Family` builds one object
  of every kind in a given workspace (and its organization). A parameter without a kind fails
  its route's test with "add a builder for <param>", so a new route is covered the day it lands.

Principals with full rights in Acme/production: on the console the org admin and production's
workspace admin, on the API production's Admin service key and the org admin's token with
X-Tenant-Id production. For every route, method it accepts and principal:

- control: the principal's own objects. Success (2xx; a 200 page or a <400 form post on the
  console) proves the builders and the body reach the lookup; a 403 means the route is not the
  principal's at all, and every request below must then be refused exactly like a made-up id;
- nonexistent: random ids, the reference the refusals are compared with;
- other-workspace (a): objects of Acme/staging in the principal's own context (production's URL
  or tenant), all at once and, on nested routes, one parameter at a time. Skipped for
  organization-level objects (members, roles, invitations, reviews), which an org admin reaches
  from any workspace, and for the org admin when the path names the workspace itself;
- other-workspace-url: staging's objects under /o/acme/w/staging/, to production's workspace
  admin who has no access there: refused exactly like a made-up id;
- other-org (b): objects of Globex in the principal's own context (all at once and one at a
  time), and on the console under Globex's own URL;
- wrong-type: an id of another kind of object (a dataset id where a project id goes);
- mismatched-parent: on nested routes, a child of another parent (a run of another project).

The answers that do not depend on who asks (wrong types, mismatched parents, Globex's URL) are
asked by the org admin only. A principal allowed to use the route must get a 404 (the console's
404 page; JSON with `error`/`detail` on the API), never a 403, 2xx or 500; nothing of the
target may appear in the body; and nothing may change: every request runs in a savepoint,
rolled back after comparing row counts and an md5 of every row of every app table (the audit
log included) with the snapshot taken before.
"""

import datetime
import functools
import hashlib
import json
import re
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from urllib.parse import urlencode

import pytest
from allauth.account.internal.flows import login as login_flow
from django.apps import apps
from django.core.cache import cache
from django.db import connection, transaction
from django.http import HttpResponse
from django.shortcuts import get_object_or_404
from django.test import Client
from django.urls import get_resolver, reverse
from django.urls import path as url_path
from django.utils import timezone
from django.utils.functional import cached_property
from django.views.decorators.http import require_GET, require_POST

from accesscontrol import urls as console_urlconf
from accesscontrol.access_requests.services import create_access_request
from accesscontrol.accounts import sudo
from accesscontrol.api.api import api, operations, sdk_root_api
from accesscontrol.apikeys.authentication import forget_cached_principals
from accesscontrol.apikeys.models import ServiceKey
from accesscontrol.apikeys.services import create_personal_access_token, create_service_key
from accesscontrol.organizations.services import invite_member
from accesscontrol.rbac.actor import Actor
from accesscontrol.rbac.gate import API, PUBLIC, requires, rule_of
from accesscontrol.rbac.permissions import ALL_PERMISSIONS
from accesscontrol.resources import services as resources
from accesscontrol.resources import sharing
from accesscontrol.resources.models import Dataset
from accesscontrol.reviews.services import start_campaign
from accesscontrol.scim.models import ScimGroup
from accesscontrol.scim.services import add_group_mapping
from accesscontrol.sso.models import EmailDomain
from accesscontrol.workspaces.models import Workspace
from tests.factories import (
    SYSTEM,
    OrganizationMembershipFactory,
    RoleFactory,
    UserFactory,
    WorkspaceMembershipFactory,
    actor_with,
    langchain_prompt,
    pat_for,
    service_key_for,
    system_role,
)
from tests.support.urls import walk

METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
CONTEXT_PARAMS = {"org_slug", "workspace_slug"}
API_PREFIX = "/api/v1"

# --- what each path parameter names ----------------------------------------------------------

# The kinds of object, by the level that owns them. Workspace-level objects of another workspace
# of the same organization are out of reach; organization-level ones (members, roles,
# invitations, access reviews) are legitimately an org admin's in every workspace; user-level
# ones (personal access tokens) belong to one person only. The order matters: `wrong_kinds`
# takes the neighbours, so the kinds most easily confused sit side by side.
KIND_LEVELS = {
    "project": "workspace",
    "dataset": "workspace",
    "example": "workspace",
    "run": "workspace",
    "feedback": "workspace",
    "queue": "workspace",
    "prompt": "workspace",
    "workspace": "workspace",
    "service_key": "workspace",
    "token": "user",
    "passkey": "user",
    "org_member": "org",
    "workspace_member": "workspace",
    "invitation": "org",
    "role": "org",
    "campaign": "org",
    # Org admins decide requests of every workspace from the organization's pages.
    "access_request": "org",
    "email_domain": "org",  # claimed for single sign-on
    # SCIM group -> workspace role mappings, edited on the organization's Provisioning page.
    "scim_mapping": "org",
}
KINDS = list(KIND_LEVELS)

# Parameter name -> kind. `member_id` names an organization membership on organization routes
# and a workspace membership on workspace routes (see Route.scope).
PARAM_KINDS = {
    "project_id": "project",
    "session_id": "project",  # LangSmith calls tracing projects "sessions"
    "run_id": "run",
    "dataset_id": "dataset",
    "example_id": "example",
    "feedback_id": "feedback",
    "queue_id": "queue",
    "prompt_id": "prompt",
    "workspace_id": "workspace",
    "key_id": "service_key",
    "token_id": "token",
    "member_id": {"org": "org_member", "workspace": "workspace_member"},
    "invitation_id": "invitation",
    "role_id": "role",
    "campaign_id": "campaign",
    "repo_name": "prompt",  # the prompt hub names a prompt by its name, under an owner
    "request_id": "access_request",
    "pk": "passkey",  # allauth's MFA pages name a passkey by its number
    "domain_id": "email_domain",
    "mapping_id": "scim_mapping",
}
# What of the object goes in the path, where it is not the primary key.
PARAM_ATTRIBUTES = {"repo_name": "name"}
# Parameters that address no object: a position in a list.
VALUE_PARAMS = {"index": 0, "owner": "-", "ref": "latest"}
SCIM_PREFIX = "/scim/v2/"
# Public links whose secret is the capability (an invitation link works for whoever holds it).
CAPABILITY_PARAMS = {"token", "share_token", "feedback_token", "key", "uidb36"}
# Public sign-in entry points named by what they sign in to (an organization's SAML endpoints,
# an OIDC provider's login and callback): no object of anyone's is read or changed through them.
ENTRY_POINT_PARAMS = {"organization_slug", "provider_id"}


# Kinds numbered by integers (allauth's passkeys) rather than UUIDs: an id of the other shape is
# refused by the URL or the schema before any lookup, so they are wrong types only to each other.
INTEGER_KINDS = {"passkey"}


def wrong_kinds(kind):
    """Two other kinds, the neighbours in KINDS of ids of the same shape (a dataset where a
    project goes, ...)."""
    alike = [k for k in KINDS if (k in INTEGER_KINDS) == (kind in INTEGER_KINDS)]
    if len(alike) < 2:
        return []
    i = alike.index(kind)
    return sorted({alike[i - 1], alike[(i + 1) % len(alike)]} - {kind})


# --- the routes -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Route:
    surface: str  # "console" | "api"
    template: str  # "/o/<slug:org_slug>/..." or "/api/v1/sessions/{session_id}"
    methods: tuple[str, ...]
    params: tuple[str, ...]  # the object-addressing ones, in path order
    scope: str  # "workspace" | "org": the context the route acts in
    workspace_param: str | None = None  # API: a workspace addressed by path (checked there)
    bodies: tuple = ()  # API: (method, JSON schema of the body) pairs

    @property
    def id(self):
        return f"{self.surface} {self.template}"

    def kind_of(self, param):
        kind = PARAM_KINDS.get(param)
        return kind[self.scope] if isinstance(kind, dict) else kind

    def unknown_params(self):
        return [p for p in self.params if p not in PARAM_KINDS and p not in VALUE_PARAMS]

    @property
    def object_params(self):
        return [p for p in self.params if p not in VALUE_PARAMS]

    def body_schema(self, method):
        return dict(self.bodies).get(method)


ROUTE_PARAM = re.compile(r"<(?:(?P<converter>[^>:]+):)?(?P<name>\w+)>")


def _walk(patterns):
    for template, pattern, _buildable in walk(patterns, prefix="/"):
        yield template, pattern


def accepted_methods(view):
    """The methods a view's @require_http_methods lets through; all of them without one. A
    class-based view (allauth's) accepts the methods it has handlers for."""
    view_class = getattr(view, "view_class", None)
    if view_class is not None:
        return tuple(m for m in METHODS if hasattr(view_class, m.lower()))
    seen, todo = set(), [view]
    while todo:
        fn = todo.pop()
        if fn is None or id(fn) in seen:
            continue
        seen.add(id(fn))
        code, closure = getattr(fn, "__code__", None), getattr(fn, "__closure__", None) or ()
        cells = dict(zip(code.co_freevars, closure, strict=True)) if code else {}
        if "request_method_list" in cells:
            return tuple(m for m in METHODS if m in cells["request_method_list"].cell_contents)
        todo.append(getattr(fn, "__wrapped__", None))
        for cell in cells.values():
            try:
                contents = cell.cell_contents
            except ValueError:  # an empty cell
                continue
            if callable(contents):
                todo.append(contents)
    return METHODS


def console_routes():
    routes = []
    for template, pattern in _walk(get_resolver().url_patterns):
        rule = rule_of(pattern.callback)
        if rule is not None and rule.kind == API:
            continue  # the REST API's patterns: covered from its OpenAPI documents
        names = [m["name"] for m in ROUTE_PARAM.finditer(template)]
        params = tuple(n for n in names if n not in CONTEXT_PARAMS)
        if not params:
            continue
        if rule is not None and rule.kind == PUBLIC and set(params) <= CAPABILITY_PARAMS:
            continue  # a capability link: whoever holds the secret may open it
        if rule is not None and rule.kind == PUBLIC and set(params) <= ENTRY_POINT_PARAMS:
            continue
        if template.startswith(SCIM_PREFIX):
            # An organization's SCIM token is the only way in (none of the principals here
            # holds one: each gets 401); tests/scim/test_tokens_and_tenancy.py sends every
            # SCIM route another organization's token and checks the 404s and that nothing
            # changed.
            continue
        routes.append(
            Route(
                surface="console",
                template=template,
                methods=accepted_methods(pattern.callback),
                params=params,
                scope="workspace" if "workspace_slug" in names else "org",
                # A workspace named by id in the path (the SDK's run URL): checked there.
                workspace_param="workspace_id" if "workspace_id" in params else None,
            )
        )
    return routes


OPENAPI_PARAM = re.compile(r"{(?:\w+:)?(\w+)}")


def _rules_by_operation():
    """(path without the API prefix, METHOD) -> the operation's access rule."""
    return {
        (OPENAPI_PARAM.sub(r"{\1}", path), method): rule_of(view)
        for path, method, view in operations()
    }


# (path, METHOD) of the public operations whose path carries a capability, left out of the walk.
CAPABILITY_OPERATIONS: set[tuple[str, str]] = set()


def _api_routes(document, prefix):
    rules = _rules_by_operation()
    routes = []
    for path, operations_of_path in document["paths"].items():
        methods, params, bodies, workspace_param = [], (), [], None
        for method, operation in operations_of_path.items():
            method = method.upper()
            path_params = tuple(
                p["name"] for p in operation.get("parameters", ()) if p["in"] == "path"
            )
            if not path_params:
                continue
            params = path_params
            methods.append(method)
            schema = (
                operation.get("requestBody", {})
                .get("content", {})
                .get("application/json", {})
                .get("schema")
            )
            if schema is not None:
                bodies.append((method, _resolved(schema, document)))
            rule = rules.get((path.removeprefix(prefix), method))
            workspace_param = workspace_param or (rule.workspace_param if rule else None)
            if rule is not None and rule.kind == PUBLIC and CAPABILITY_PARAMS & set(params):
                # A link whose secret is the capability: whoever holds it may use it. What it
                # opens, and only that, is tested in tests/resources/test_share_links.py and
                # test_feedback_tokens.py.
                methods.pop()
                CAPABILITY_OPERATIONS.add((path, method))
        if not methods:
            continue
        segments = path.split("/")
        routes.append(
            Route(
                surface="api",
                template=path,
                methods=tuple(m for m in METHODS if m in methods),
                params=params,
                scope="workspace" if "workspaces" in segments else "org",
                workspace_param=workspace_param,
                bodies=tuple(bodies),
            )
        )
    return routes


def _resolved(schema, document):
    """The schema with every $ref inlined (bodies here are small and not recursive)."""
    if isinstance(schema, dict):
        if "$ref" in schema:
            name = schema["$ref"].rsplit("/", 1)[-1]
            return _resolved(document["components"]["schemas"][name], document)
        return {k: _resolved(v, document) for k, v in schema.items()}
    if isinstance(schema, list):
        return [_resolved(v, document) for v in schema]
    return schema


def api_documents():
    """(OpenAPI document, path prefix) of each API: /api/v1/ and the SDK's root paths.

    Each as served (the prefix is the API's own root), so the document the other modules walk
    too: an API generates it once per prefix (api.DocumentedOnceAPI); test_the_walk_finds_every_
    object_route holds the paths to the ones served."""
    return [
        (api.get_openapi_schema(), API_PREFIX),
        (sdk_root_api.get_openapi_schema(), ""),
    ]


def api_routes():
    return [
        route for document, prefix in api_documents() for route in _api_routes(document, prefix)
    ]


CONSOLE_ROUTES = console_routes()
API_ROUTES = api_routes()
ROUTES = CONSOLE_ROUTES + API_ROUTES


# --- bugs found: each (route, method) runs in its own strict xfail test until it is fixed -----

# "METHOD path template" -> what is wrong. Remove an entry when its strict xfail starts passing.
KNOWN_BUGS: dict[str, str] = {}


# --- objects of every kind, in one workspace ----------------------------------------------------


class Family:
    """One object of every kind, made on demand, in one workspace and its organization.

    Every name carries the family's tag, so a response that shows a foreign object gives it away.
    """

    def __init__(self, tag, workspace, admin, *, owner=None, own=False, org_wide=False):
        self.tag, self.workspace, self.org = tag, workspace, workspace.organization
        self.admin = admin  # acts where an actor is needed (invitations, reviews)
        self._owner = owner
        self.own = own  # the principals' own objects: tokens are the acting user's
        # Service keys and access reviews of the whole organization rather than the workspace:
        # an org-scoped key is visible from every workspace of its organization, so only the
        # organization filter stands between it and another tenant.
        self.org_wide = org_wide
        self._tokens = {}

    def _name(self, kind):
        return f"{self.tag}-{kind}-{uuid.uuid4().hex[:8]}"

    def get(self, kind, user=None):
        if kind in ("token", "passkey"):
            mine = user if self.own and user is not None else self.owner
            return getattr(self, kind)(mine)
        return getattr(self, kind)

    @cached_property
    def owner(self):
        """Someone of this workspace whose tokens the principals must not touch."""
        if self._owner is not None:
            return self._owner
        return self.workspace_member.org_membership.user

    @cached_property
    def project(self):
        return resources.create_project(
            actor=SYSTEM, workspace=self.workspace, name=self._name("project")
        )

    @cached_property
    def run(self):
        run_id = uuid.uuid4()
        resources.ingest_runs(
            actor=SYSTEM,
            workspace=self.workspace,
            posts=[
                {
                    "id": run_id,
                    "session_id": self.project.pk,
                    "name": self._name("run"),
                    "run_type": "chain",
                    "inputs": {"question": self.tag},
                }
            ],
        )
        return resources.models.Run.objects.get(pk=run_id)

    @cached_property
    def dataset(self):
        dataset = resources.create_dataset(
            actor=SYSTEM, workspace=self.workspace, name=self._name("dataset")
        )
        sharing.share(actor=SYSTEM, obj=dataset)  # GET .../share reads a live link
        return dataset

    @cached_property
    def example(self):
        (example,) = resources.create_examples(
            actor=SYSTEM,
            workspace=self.workspace,
            examples=[{"dataset_id": self.dataset.pk, "inputs": {"question": self.tag}}],
        )
        return example

    @cached_property
    def feedback(self):
        return resources.add_feedback(
            actor=SYSTEM, run=self.run, key=self._name("feedback"), score=1.0
        )

    @cached_property
    def queue(self):
        queue = resources.create_annotation_queue(
            actor=SYSTEM, workspace=self.workspace, name=self._name("queue")
        )
        resources.queue_runs(actor=SYSTEM, queue=queue, run_ids=[self.run.pk])
        return queue

    @cached_property
    def prompt(self):
        prompt = resources.create_prompt(
            actor=SYSTEM,
            workspace=self.workspace,
            name=self._name("prompt"),
            template=f"{self.tag} {{x}}",
        )
        sharing.share(actor=SYSTEM, obj=prompt)  # GET .../share reads a live link
        return prompt

    @cached_property
    def service_key(self):
        return create_service_key(
            actor=actor_with(ALL_PERMISSIONS),
            organization=self.org,
            workspace=None if self.org_wide else self.workspace,
            name=self._name("key"),
            role=system_role("Viewer"),
        )[0]

    def token(self, user):
        if user.pk not in self._tokens:
            self._tokens[user.pk] = create_personal_access_token(
                user=user, organization=self.org, name=self._name("token")
            )[0]
        return self._tokens[user.pk]

    def passkey(self, user):
        """A passkey of the user's (allauth's WebAuthn authenticator): only its name is read by
        the pages that address it."""
        from allauth.mfa.models import Authenticator

        found = Authenticator.objects.filter(user=user, type=Authenticator.Type.WEBAUTHN).first()
        return found or Authenticator.objects.create(
            user=user,
            type=Authenticator.Type.WEBAUTHN,
            data={"name": self._name("passkey"), "passwordless": False, "credential": {}},
        )

    def _user(self, kind):
        return UserFactory(email=f"{self._name(kind)}@example.test", full_name=self._name(kind))

    @cached_property
    def org_member(self):
        return OrganizationMembershipFactory(
            user=self._user("member"), organization=self.org, org_role="member"
        )

    @cached_property
    def workspace_member(self):
        membership = OrganizationMembershipFactory(
            user=self._user("wsmember"), organization=self.org, org_role="member"
        )
        return WorkspaceMembershipFactory(
            org_membership=membership, workspace=self.workspace, role=system_role("Viewer")
        )

    @cached_property
    def invitation(self):
        return invite_member(
            actor=self.admin,
            organization=self.org,
            email=f"{self._name('invitee')}@example.test",
        )[0]

    @cached_property
    def role(self):
        return RoleFactory(
            organization=self.org, name=self._name("role"), permissions=["runs:read"]
        )

    @cached_property
    def campaign(self):
        return start_campaign(
            actor=self.admin,
            organization=self.org,
            workspace=None if self.org_wide else self.workspace,
            name=self._name("review"),
            deadline=timezone.now() + datetime.timedelta(days=7),
        )

    @cached_property
    def scim_mapping(self):
        group = ScimGroup.objects.create(organization=self.org, display_name=self._name("group"))
        return add_group_mapping(
            actor=self.admin, group=group, workspace=self.workspace, role=system_role("Viewer")
        )

    @cached_property
    def access_request(self):
        requester = OrganizationMembershipFactory(
            user=self._user("requester"), organization=self.org, org_role="member"
        ).user
        return create_access_request(
            actor=Actor.for_user(requester, self.org),
            workspace=self.workspace,
            permission="datasets:read",
            reason=self._name("reason"),
        )

    @cached_property
    def email_domain(self):
        return EmailDomain.objects.create(
            organization=self.org, domain=f"{self._name('domain')}.example.test"
        )


@dataclass
class Families:
    own: Family  # Acme/production: the principals' own
    own2: Family  # Acme/production again: other parents for nested routes
    staging: Family  # Acme/staging: out of reach from production's context
    globex: Family  # another organization


def make_families(world):
    return Families(
        own=Family("zqown", world.workspace, world.org_admin, own=True),
        own2=Family("zqsecond", world.workspace, world.org_admin, own=True),
        staging=Family("zqstaging", world.other_workspace, world.org_admin),
        globex=Family(
            "zqglobex",
            world.other_workspace_of_other_org,
            world.outsider,
            owner=world.outsider,
            org_wide=True,
        ),
    )


# --- the principals ------------------------------------------------------------------------------


@dataclass
class Principal:
    name: str
    surface: str
    user: object  # the person acting (None for a service key)
    send: object  # (method, path template, values, context, body) -> response
    has_staging_access: bool = False  # reaches Acme/staging under staging's own URL/tenant
    # Also sends the requests whose answer does not depend on who asks (wrong types, nested
    # mismatches, another organization's URL): one principal per surface is enough for those.
    primary: bool = False


CONTEXTS = {
    "own": ("acme", "production"),
    "staging": ("acme", "staging"),
    "globex": ("globex", "default"),
}


def console_url(template, values, context):
    org, workspace = CONTEXTS[context]
    values = {**values, "org_slug": org, "workspace_slug": workspace}
    return ROUTE_PARAM.sub(lambda m: str(values[m["name"]]), template)


# Query strings an operation needs before it reaches its lookup, by the path's last segment.
API_QUERIES = {
    "version": "?tag=latest",
    "diff": "?from_version=latest&to_version=latest",
}


def api_url(template, values):
    url = OPENAPI_PARAM.sub(lambda m: str(values[m[1]]), template)
    return url + API_QUERIES.get(template.rstrip("/").rsplit("/", 1)[-1], "")


@dataclass
class Multipart:
    """A multipart/form-data body (LangSmith's examples endpoints): (name, JSON value) parts."""

    parts: list

    def encode(self):
        boundary = f"idor{uuid.uuid4().hex}"
        chunks = [
            (
                f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n'
                f"Content-Type: application/json\r\n\r\n{json.dumps(value)}\r\n"
            ).encode()
            for name, value in self.parts
        ]
        body = b"".join(chunks) + f"--{boundary}--\r\n".encode()
        return body, f"multipart/form-data; boundary={boundary}"


def console_principal(name, user, **kwargs):
    client = Client()
    client.force_login(user)  # signing in grants sudo mode; made explicit, far from expiry:
    session = client.session
    session[sudo.SESSION_KEY] = time.time() + 3600
    # ... and a sign-in allauth counts as recent (its MFA pages ask again otherwise)
    session[login_flow.AUTHENTICATION_METHODS_SESSION_KEY] = [
        {"method": "password", "at": time.time(), "reauthenticated": True, "email": user.email}
    ]
    session[login_flow._AUTHENTICATION_METHODS_USER_SESSION_KEY] = str(user.pk)
    session.save()

    def send(method, template, values, context, body):
        url = console_url(template, values, context)
        if method == "GET":
            return client.get(url)
        return client.generic(
            method,
            url,
            urlencode(body or {}, doseq=True),
            content_type="application/x-www-form-urlencoded",
        )

    return Principal(name, "console", user, send, **kwargs)


def api_principal(name, key, user=None, tenant=None, **kwargs):
    client = Client()
    headers = {"X-API-Key": key}
    if tenant is not None:
        headers["X-Tenant-Id"] = str(tenant)

    def send(method, template, values, context, body):
        url = api_url(template, values)
        if body is NO_BODY:
            return client.generic(method, url, headers=headers)
        if isinstance(body, Multipart):
            data, content_type = body.encode()
            return client.generic(method, url, data, content_type=content_type, headers=headers)
        return client.generic(
            method, url, json.dumps(body), content_type="application/json", headers=headers
        )

    return Principal(name, "api", user, send, **kwargs)


def principals_for(surface, world):
    if surface == "console":
        return [
            console_principal("org admin", world.org_admin, has_staging_access=True, primary=True),
            console_principal("workspace admin of production", world.workspace_admin),
        ]
    return [
        api_principal("Admin service key of production", service_key_for(world.workspace)),
        api_principal(
            "org admin's token, X-Tenant-Id production",
            pat_for(world.org_admin, world.org),
            user=world.org_admin,
            tenant=world.workspace.pk,
            has_staging_access=True,
            primary=True,
        ),
    ]


# --- request bodies: valid for the principal's own objects, so the request reaches the lookup ---

NO_BODY = object()
CHANGED = "changed-by-idor-test"


def console_form(route, families):
    """One form for every console POST: fields a view does not know are ignored."""
    own = families.own
    form = {
        "name": CHANGED,
        "description": CHANGED,
        "org_role": "viewer",
        "role": system_role("Editor").pk,
        "key": CHANGED,
        "score": "0",
        "comment": CHANGED,
        "inputs": '{"changed": true}',
        "outputs": '{"changed": true}',
        "metadata": '{"changed": true}',
        "split": "changed",
        "template": f"{CHANGED} {{x}}",
        "message": CHANGED,
        "rubric_instructions": CHANGED,
        "rubric_items": "changed: by the test",
        "permissions": ["runs:read", "datasets:read"],
        "decision": "revoke",
    }
    kinds = {route.kind_of(p) for p in route.object_params}
    if "run" in kinds:
        form["queue"] = own.queue.pk  # add a run to one of the principal's own queues
    if "campaign" in kinds:
        form["item"] = [item.pk for item in own.campaign.items.all()]
    return form


def api_body_hints(families):
    """Values for body fields no schema can invent (keyed by field name; a top-level body by
    the path's last segment)."""
    return {
        "role_id": lambda: str(system_role("Editor").pk),
        "org_role": lambda: "viewer",
        "runs": lambda: [str(families.own.run.pk)],  # POST .../{queue_id}/runs: runs to queue
        # The prompt hub: a commit's LangChain manifest, a tag on the prompt's own commit.
        "manifest": lambda: langchain_prompt(
            "prompt.PromptTemplate", template=CHANGED, input_variables=[]
        ),
        "tag_name": lambda: "changed",
        "parent_commit": lambda: None,  # on top of the latest commit, whichever it is
        "commit_id": lambda: str(families.own.prompt.commits.first().pk),
        # PUT /datasets/{id}/tags: a version of the principal's own dataset, exactly.
        "as_of": lambda: families.own.example.dataset.versions.first().as_of.isoformat(),
        "example_ids": lambda: [str(families.own.example.pk)],
        "operations": lambda: [{"key": "changed", "operation": "SET", "value": CHANGED}],
    }


def api_multipart(route, method, families):
    """The multipart body of LangSmith's examples endpoints: a new example to create, or the
    principal's own example to change."""
    if not route.template.endswith("/platform/datasets/{dataset_id}/examples"):
        return None
    example_id = uuid.uuid4() if method == "POST" else families.own.example.pk
    return Multipart([(str(example_id), {}), (f"{example_id}.inputs", {"changed": True})])


class MissingHint(Exception):
    pass


def example_of(schema, name, hints, required):
    """A valid value for `schema`: hints first; optional plain fields get a visible change."""
    if name in hints:
        return hints[name]()
    options = schema.get("anyOf")
    if options:
        usable = [o for o in options if o.get("type") != "null"]
        return example_of({**schema, **usable[0], "anyOf": None}, name, hints, required)
    kind = schema.get("type")
    if kind == "object":
        if "properties" not in schema:
            return {"changed": True}
        wanted = set(schema.get("required", ()))
        body = {}
        for prop, sub in schema["properties"].items():
            value = example_of(sub, prop, hints, prop in wanted)
            if value is not NO_BODY:
                body[prop] = value
        return body
    plain_string = kind == "string" and not {"format", "pattern", "enum"} & set(schema)
    if plain_string:
        text = CHANGED[: schema.get("maxLength", len(CHANGED))]
        return text.ljust(schema.get("minLength", 0), "x")
    if not required:
        return NO_BODY  # leave what the schema cannot tell us how to fill
    if kind == "array" and not schema.get("minItems"):
        return []
    if kind == "boolean":
        return False
    if kind in ("integer", "number"):
        return schema.get("minimum", 0)
    if kind == "string" and schema.get("format") == "date-time":
        return (timezone.now() + datetime.timedelta(days=1)).isoformat()
    raise MissingHint(f"the body field {name!r} ({schema}) needs a value in api_body_hints")


def api_body(route, method, families):
    multipart = api_multipart(route, method, families)
    if multipart is not None:
        return multipart
    schema = route.body_schema(method)
    if schema is None:
        return NO_BODY
    last_segment = route.template.rstrip("/").rsplit("/", 1)[-1]
    return example_of(schema, last_segment, api_body_hints(families), True)


# --- the state a refused request must leave alone -----------------------------------------------

VOLATILE_FIELDS = {"last_used_at", "last_login"}  # touched by any authenticated request


@functools.cache
def snapshot_models():
    return [
        model
        for model in apps.get_models(include_auto_created=True)
        if model.__module__.startswith("accesscontrol.")  # M2M tables carry their owner's
    ]


def _columns(model):
    return [f.column for f in model._meta.concrete_fields if f.name not in VOLATILE_FIELDS]


@functools.cache
def _snapshot_sql(labels=None):
    """PostgreSQL: each table's (every table's, or those of `labels`) row count and an md5 of
    its sorted rows, in one query."""
    quote = connection.ops.quote_name
    parts = []
    for model in snapshot_models():
        if labels is not None and model._meta.label not in labels:
            continue
        row = f"ROW({', '.join(quote(c) for c in _columns(model))})::text"
        parts.append(
            f"SELECT '{model._meta.label}', count(*), "
            f"md5(coalesce(string_agg({row}, E'\\n' ORDER BY {row}), '')) "
            f"FROM {quote(model._meta.db_table)}"
        )
    return " UNION ALL ".join(parts)


def snapshot(labels=None):
    """Row count and a digest of every row, per table of the app (audit log included); with
    `labels`, of those tables only (PostgreSQL)."""
    if connection.vendor == "postgresql":
        if labels is not None and not labels:
            return {}
        with connection.cursor() as cursor:
            cursor.execute(_snapshot_sql(labels))
            return {label: (count, digest) for label, count, digest in cursor.fetchall()}
    state = {}
    for model in snapshot_models():
        fields = [f.attname for f in model._meta.concrete_fields if f.name not in VOLATILE_FIELDS]
        rows = sorted(repr(row) for row in model._base_manager.values_list(*fields))
        digest = hashlib.sha256("\n".join(rows).encode()).hexdigest()[:16]
        state[model._meta.label] = (len(rows), digest)
    return state


def writes():
    """PostgreSQL: rows inserted, updated and deleted so far in this transaction (savepoints
    included, rolled back or not), per table of the app; None elsewhere."""
    if connection.vendor != "postgresql":
        return None
    tables = {model._meta.db_table: model._meta.label for model in snapshot_models()}
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT relname, n_tup_ins + n_tup_upd + n_tup_del FROM pg_stat_xact_user_tables "
            "WHERE schemaname = current_schema() AND relname = ANY(%s)",
            [list(tables)],
        )
        return {tables[name]: count for name, count in cursor.fetchall()}


def snapshot_since(baseline, writes_before):
    """snapshot(), reading again only the tables a statement wrote to since `writes_before`
    (what writes() said then): each request starts from the baseline's rows, and a table
    nothing wrote to still holds them."""
    if writes_before is None:
        return snapshot()
    written = writes()
    labels = frozenset(label for label, n in written.items() if writes_before.get(label) != n)
    return {**baseline, **snapshot(labels)}


def changed_tables(before, after):
    return sorted(label for label in before if before[label] != after.get(label))


class _RolledBack(Exception):
    pass


@dataclass
class Outcome:
    status: int | None
    body: str
    changed: list[str]
    error: str | None = None
    location: str = ""  # where a redirect goes

    def json(self):
        try:
            return json.loads(self.body)
        except ValueError:
            return None


def attempt(send, baseline):
    """Send one request in a savepoint, see what it changed, and undo it all."""
    outcome = None
    try:
        with transaction.atomic():
            writes_before = writes()
            try:
                response = send()
            except Exception as exc:  # the test client re-raises what a view raised (a 500)
                outcome = Outcome(None, "", ["(not checked: the request failed)"], repr(exc))
            else:
                outcome = Outcome(
                    response.status_code,
                    response.content.decode(errors="replace"),
                    changed_tables(baseline, snapshot_since(baseline, writes_before)),
                    location=response.get("Location", ""),
                )
            raise _RolledBack
    except _RolledBack:
        pass
    # Throttle counters, authorization versions and cached principals live outside the database.
    cache.clear()
    forget_cached_principals()
    return outcome


# --- one route: every principal, method and scenario ----------------------------------------


@dataclass
class Tally:
    requests: Counter = field(default_factory=Counter)  # scenario -> requests checked
    combos: set = field(default_factory=set)  # (route, principal, method) that were checked
    authorized: set = field(default_factory=set)  # ... by a principal allowed to use the route


TALLY = Tally()


def describe(outcome):
    if outcome.error:
        return f"500 ({outcome.error})"
    return f"{outcome.status} {outcome.body[:160]!r}"


def is_success(route, method, outcome):
    if outcome.error or outcome.status is None:
        return False
    if route.surface == "api":
        return 200 <= outcome.status < 300
    return outcome.status == 200 if method == "GET" else 200 <= outcome.status < 400


def looks_not_found(route, outcome):
    """The 404 the surface promises: the console's page, the API's JSON error."""
    if outcome.status != 404:
        return False
    if route.surface == "console":
        return "Not found" in outcome.body
    body = outcome.json()
    return isinstance(body, dict) and bool(body.get("error") or body.get("detail"))


@dataclass
class Request:
    scenario: str
    note: str
    values: dict
    context: str = "own"
    leak_tags: tuple = ()


class RouteCheck:
    def __init__(self, route, world, tally=TALLY):
        self.route = route
        self.tally = tally
        self.families = make_families(world)
        unknown = route.unknown_params()
        if unknown:
            pytest.fail(
                f"{route.id}: add a builder for {', '.join(unknown)} "
                "(PARAM_KINDS maps a parameter name to a kind, Family builds it)"
            )
        self.principals = principals_for(route.surface, world)
        self._bodies = {}
        self.prepare()
        self.baseline = snapshot()

    # -- the objects ---------------------------------------------------------------------------

    def kind(self, param):
        return self.route.kind_of(param)

    def value(self, family, param, principal):
        if param in VALUE_PARAMS:
            return VALUE_PARAMS[param]
        found = family.get(self.kind(param), principal.user)
        return getattr(found, PARAM_ATTRIBUTES.get(param, "pk"))

    def values(self, principal, default, **overrides):
        """Path values: every parameter from `default`, some from other families."""
        return {
            p: overrides[p] if p in overrides else self.value(default, p, principal)
            for p in self.route.params
        }

    def prepare(self):
        """Make every object any request will address, and the bodies, before the baseline."""
        for principal in self.principals:
            self.values(principal, self.families.own)  # the control's
            for method in self.route.methods:
                self.requests_for(principal, method)
                self.body(method)

    def body(self, method):
        if method not in self._bodies:
            if self.route.surface == "console":
                self._bodies[method] = console_form(self.route, self.families)
            else:
                self._bodies[method] = api_body(self.route, method, self.families)
        return self._bodies[method]

    # -- the requests --------------------------------------------------------------------------

    def _one_from(self, principal, kind, fam, where, params):
        """One request per parameter: that one from `fam`, the others the principal's own."""
        return [
            Request(
                kind,
                f"{p} from {where}",
                self.values(principal, self.families.own, **{p: self.value(fam, p, principal)}),
                leak_tags=(fam.tag,),
            )
            for p in params
        ]

    def _all_from(self, principal, fam, scenario, note, context="own", **values):
        """A request with its objects from `fam` (those in `values` aside): what it may leak is
        `fam`'s."""
        return Request(
            scenario,
            note,
            self.values(principal, fam, **values),
            context=context,
            leak_tags=(fam.tag,),
        )

    def requests_for(self, principal, method):
        """Every cross-tenant request of this principal and method, as Request rows."""
        route, fams = self.route, self.families
        params = route.object_params
        rows = []
        levels = {p: KIND_LEVELS[self.kind(p)] for p in params}

        # (a) another workspace of the same organization, in the principal's own context.
        reachable = [p for p in params if levels[p] in ("workspace", "user")]
        if principal.has_staging_access:
            # The org admin may address staging when the path itself names the workspace.
            reachable = [p for p in reachable if p != route.workspace_param]
        if reachable:
            kept_own = self._from(fams.own, principal, params, reachable)
            rows.append(
                self._all_from(
                    principal,
                    fams.staging,
                    "other-workspace",
                    "all from Acme/staging",
                    **kept_own,
                )
            )
            if len(params) > 1:
                rows += self._one_from(
                    principal, "other-workspace", fams.staging, "Acme/staging", reachable
                )

        staging_url = route.surface == "console" and route.scope == "workspace"
        if staging_url and not principal.has_staging_access:
            # ... and staging's objects under staging's URL, to someone with no access there.
            rows.append(
                self._all_from(
                    principal,
                    fams.staging,
                    "other-workspace-url",
                    "under /o/acme/w/staging/",
                    context="staging",
                )
            )

        # (b) another organization, in the principal's own context, ...
        rows.append(self._all_from(principal, fams.globex, "other-org", "all from Globex"))
        if len(params) > 1:
            rows += self._one_from(principal, "other-org", fams.globex, "Globex", params)
        if route.surface == "console" and principal.primary:
            # ... and under Globex's own URL.
            rows.append(
                self._all_from(
                    principal, fams.globex, "other-org-url", "under /o/globex/", context="globex"
                )
            )

        if not principal.primary:
            return rows
        # An id of another kind; a child of another parent.
        for p in params:
            for kind in wrong_kinds(self.kind(p)):
                rows.append(
                    Request(
                        "wrong-type",
                        f"a {kind} id as {p}",
                        self.values(
                            principal, fams.own, **{p: fams.own.get(kind, principal.user).pk}
                        ),
                    )
                )
        if len(params) > 1:
            for p in params[1:]:
                rows.append(
                    Request(
                        "mismatched-parent",
                        f"{p} of another parent",
                        self.values(
                            principal, fams.own, **{p: self.value(fams.own2, p, principal)}
                        ),
                    )
                )
        return rows

    def _from(self, family, principal, params, varied):
        """Values from `family` for the parameters not in `varied`."""
        return {p: self.value(family, p, principal) for p in params if p not in varied}

    def random_values(self):
        return {p: VALUE_PARAMS.get(p, uuid.uuid4()) for p in self.route.params}

    # -- running ---------------------------------------------------------------------------------

    def send(self, principal, method, values, context="own"):
        body = self.body(method)
        return attempt(
            lambda: principal.send(method, self.route.template, values, context, body),
            self.baseline,
        )

    def check(self, principal, method):
        """Every request of one principal and method; returns the failures, as sentences."""
        route, fams = self.route, self.families
        failures = []
        self.tally.combos.add((route.id, principal.name, method))

        control = self.send(principal, method, self.values(principal, fams.own))
        if control.location.startswith(reverse("sudo")):
            return [
                f"control: {principal.name} {method} was sent to confirm its password; grant "
                "sudo mode in console_principal the way accesscontrol/accounts/sudo.py does now"
            ]
        if is_success(route, method, control):
            authorized = True
            self.tally.authorized.add((route.id, principal.name, method))
        elif control.status == 403:
            authorized = False  # the route is not this principal's at all
        else:
            return [
                f"control: {principal.name} {method} on its own objects answered "
                f"{describe(control)}; the builders or the request body do not reach the "
                "lookup (see Family, console_form, api_body_hints)"
            ]
        references = {}

        def reference(context):
            if context not in references:
                references[context] = self.send(principal, method, self.random_values(), context)
            return references[context]

        missing = reference("own")
        self.tally.requests["nonexistent"] += 1
        if authorized and not looks_not_found(route, missing):
            failures.append(f"nonexistent ids: expected 404, got {describe(missing)}")
        if missing.changed:
            failures.append(f"nonexistent ids: changed {', '.join(missing.changed)}")

        for request in self.requests_for(principal, method):
            if not authorized and request.scenario in ("wrong-type", "mismatched-parent"):
                continue  # refused before any lookup: the nonexistent reference says it all
            outcome = self.send(principal, method, request.values, request.context)
            self.tally.requests[request.scenario] += 1
            problems = []
            # Outside its organization anyone gets a 404; in its own context a principal allowed
            # to use the route gets a 404 from the scoped lookup; otherwise (no access to the
            # route, or to the workspace of the URL) the refusal must be the made-up id's.
            must_be_404 = request.context == "globex" or (request.context == "own" and authorized)
            if outcome.error or (outcome.status or 500) >= 500:
                problems.append(f"got {describe(outcome)}")
            elif must_be_404:
                if not looks_not_found(route, outcome):
                    problems.append(f"expected 404, got {describe(outcome)}")
            else:
                expected = reference(request.context)
                if outcome.status != expected.status or outcome.status < 400:
                    problems.append(
                        f"expected the same refusal as for a made-up id ({expected.status}), "
                        f"got {describe(outcome)}"
                    )
            leaked = [tag for tag in request.leak_tags if tag in outcome.body]
            if leaked:
                problems.append(f"the body shows the target ({leaked[0]}…)")
            if outcome.changed:
                problems.append(f"changed: {', '.join(outcome.changed)}")
            if problems:
                failures.append(
                    f"{request.scenario} ({request.note}): {'; '.join(problems)} "
                    f"[{self.describe_values(request)}]"
                )
        return failures

    def describe_values(self, request):
        org, workspace = CONTEXTS[request.context]
        where = f"/o/{org}/w/{workspace}" if self.route.surface == "console" else "own tenant"
        return f"{where}, " + ", ".join(f"{k}={v}" for k, v in request.values.items())


def report(route, method, principal, failures):
    return f"{method} {route.template} as {principal.name}:\n  " + "\n  ".join(failures)


def run_route(route, world, subtests, methods):
    checker = RouteCheck(route, world)
    for principal in checker.principals:
        for method in methods:
            with subtests.test(principal=principal.name, method=method):
                failures = checker.check(principal, method)
                assert not failures, report(route, method, principal, failures)


# --- the tests ------------------------------------------------------------------------------------


def _route_params():
    params = []
    for route in ROUTES:
        methods = tuple(m for m in route.methods if f"{m} {route.template}" not in KNOWN_BUGS)
        if methods:
            params.append(pytest.param(route, methods, id=route.id))
    return params


@pytest.mark.parametrize(("route", "methods"), _route_params())
def test_another_tenants_object_is_404_and_nothing_changes(route, methods, world, subtests):
    before = set(TALLY.authorized)
    run_route(route, world, subtests, methods)
    checked = {c for c in TALLY.authorized - before if c[0] == route.id}
    # Every route is someone's to use: at least one principal got past the gate, so the 404s
    # above came from the scoped lookup and not from a refusal.
    assert checked, f"{route.id}: no principal was allowed to use it; nothing was really checked"


@pytest.mark.parametrize(
    ("route", "method"),
    [
        pytest.param(
            route,
            method,
            id=f"{route.id} {method}",
            marks=pytest.mark.xfail(reason=KNOWN_BUGS[f"{method} {route.template}"], strict=True),
        )
        for route in ROUTES
        for method in route.methods
        if f"{method} {route.template}" in KNOWN_BUGS
    ],
)
def test_known_cross_tenant_bugs(route, method, world):
    """No subtests here: a strict xfail must see the failure of the test itself."""
    checker = RouteCheck(route, world)
    failures = [
        report(route, method, principal, found)
        for principal in checker.principals
        if (found := checker.check(principal, method))
    ]
    assert not failures, "\n".join(failures)


def test_the_walk_finds_every_object_route(client, db):
    """The enumeration itself: a floor, every parameter known, nothing hidden from it."""
    unknown = {p: r.id for r in ROUTES for p in r.unknown_params()}
    assert not unknown, "add a builder for: " + ", ".join(f"{p} ({r})" for p, r in unknown.items())

    # The served OpenAPI document is the one walked.
    served = client.get(f"{API_PREFIX}/openapi.json").json()
    walked = {
        (r.template, m) for r in API_ROUTES if r.template.startswith(API_PREFIX) for m in r.methods
    }
    from_served = {
        (path, method.upper())
        for path, ops in served["paths"].items()
        for method, op in ops.items()
        if any(p["in"] == "path" for p in op.get("parameters", ()))
    }
    assert walked == from_served - CAPABILITY_OPERATIONS

    # No operation with a path parameter is missing from the documents (include_in_schema=False).
    documented = {(r.template.removeprefix(API_PREFIX), m) for r in API_ROUTES for m in r.methods}
    documented |= {(path.removeprefix(API_PREFIX), m) for path, m in CAPABILITY_OPERATIONS}
    served_ops = {
        (OPENAPI_PARAM.sub(r"{\1}", path), method)
        for path, method, _view in operations()
        if "{" in path
    }
    assert served_ops <= documented, served_ops - documented

    combos = sum(len(r.methods) for r in ROUTES) * 2  # two principals per surface
    print(
        f"\nIDOR walk: {len(CONSOLE_ROUTES)} console routes "
        f"({sum(len(r.methods) for r in CONSOLE_ROUTES)} route-methods), "
        f"{len(API_ROUTES)} API paths ({sum(len(r.methods) for r in API_ROUTES)} operations); "
        f"{combos} route x principal x method combinations"
    )
    assert len(CONSOLE_ROUTES) >= 30
    assert sum(len(r.methods) for r in CONSOLE_ROUTES) >= 50
    assert sum(len(r.methods) for r in API_ROUTES) >= 60
    assert {"project_id", "run_id", "dataset_id", "member_id", "key_id"} <= {
        p for r in CONSOLE_ROUTES for p in r.params
    }
    assert {"session_id", "dataset_id", "workspace_id", "member_id"} <= {
        p for r in API_ROUTES for p in r.params
    }


def test_an_unknown_parameter_fails_with_a_clear_message(world):
    route = Route(
        "console", "/o/<slug:org_slug>/widgets/<uuid:widget_id>/", ("GET",), ("widget_id",), "org"
    )
    with pytest.raises(pytest.fail.Exception, match="add a builder for widget_id"):
        RouteCheck(route, world)


def test_accepted_methods_are_read_from_the_views():
    methods = {r.template: r.methods for r in CONSOLE_ROUTES}
    assert methods["/o/<slug:org_slug>/members/<uuid:member_id>/role/"] == ("POST",)
    assert methods["/o/<slug:org_slug>/roles/<uuid:role_id>/"] == ("GET", "POST")
    assert methods["/o/<slug:org_slug>/members/<uuid:member_id>/access/"] == ("GET",)


# The harness itself: two views that forget the tenant must be caught, through the same walk.


@requires("datasets:read")
@require_GET
def leaky_dataset(request, org_slug, workspace_slug, dataset_id):
    dataset = get_object_or_404(Dataset.objects.all(), pk=dataset_id)  # not in_workspace(...)
    return HttpResponse(dataset.name)


@requires("datasets:update")
@require_POST
def leaky_dataset_rename(request, org_slug, workspace_slug, dataset_id):
    Dataset.objects.filter(pk=dataset_id).update(name=request.POST["name"])  # not scoped
    return HttpResponse("renamed")


class LeakyUrls:
    urlpatterns = [
        url_path(
            "o/<slug:org_slug>/w/<slug:workspace_slug>/leaky/<uuid:dataset_id>/", leaky_dataset
        ),
        url_path(
            "o/<slug:org_slug>/w/<slug:workspace_slug>/leaky/<uuid:dataset_id>/rename/",
            leaky_dataset_rename,
        ),
        *console_urlconf.urlpatterns,
    ]


def test_the_harness_catches_a_lookup_that_forgets_the_tenant(world, settings):
    settings.ROOT_URLCONF = LeakyUrls
    leaky = {r.template: r for r in console_routes() if "/leaky/" in r.template}
    assert set(leaky) == {
        "/o/<slug:org_slug>/w/<slug:workspace_slug>/leaky/<uuid:dataset_id>/",
        "/o/<slug:org_slug>/w/<slug:workspace_slug>/leaky/<uuid:dataset_id>/rename/",
    }
    read, rename = sorted(leaky.values(), key=lambda r: len(r.template))
    assert (read.methods, rename.methods) == (("GET",), ("POST",))

    checker = RouteCheck(read, world, tally=Tally())
    failures = "\n".join(checker.check(checker.principals[0], "GET"))
    assert "other-workspace (all from Acme/staging): expected 404, got 200" in failures
    assert "other-org (all from Globex): expected 404, got 200" in failures
    assert "the body shows the target (zqglobex" in failures

    checker = RouteCheck(rename, world, tally=Tally())
    failures = "\n".join(checker.check(checker.principals[1], "POST"))
    assert "other-org (all from Globex): expected 404, got 200" in failures
    assert "changed: resources.Dataset" in failures
    assert Dataset.objects.filter(name=CHANGED).count() == 0  # every attempt was rolled back


def test_the_snapshot_sees_every_change_but_key_use(world):
    service_key_for(world.workspace)  # a key row to touch
    before = snapshot()
    ServiceKey.objects.update(last_used_at=timezone.now())
    assert snapshot() == before
    Workspace.objects.filter(pk=world.other_workspace.pk).update(name="renamed")
    assert changed_tables(before, snapshot()) == ["workspaces.Workspace"]


def test_the_snapshot_since_reads_again_what_was_written(world, on_postgres):
    """attempt() reads again only the tables written during the request: an update, an insert
    and a delete are each seen, and a write that changes nothing is not a change."""
    service_key_for(world.workspace)
    baseline = snapshot()
    for change, label in [
        (lambda: ServiceKey.objects.update(last_used_at=timezone.now()), None),
        (lambda: Workspace.objects.filter(pk=world.workspace.pk).update(name="x"), "workspaces"),
        (lambda: Dataset.objects.create(workspace=world.workspace, name="new"), "resources"),
        (lambda: ServiceKey.objects.all().delete(), "apikeys"),
    ]:
        with transaction.atomic():
            before = writes()
            change()
            changed = changed_tables(baseline, snapshot_since(baseline, before))
            assert changed == changed_tables(baseline, snapshot())
            assert [c.split(".")[0] for c in changed] == ([label] if label else [])
            transaction.set_rollback(True)


@pytest.fixture(scope="module", autouse=True)
def print_the_tally(request):
    yield
    if not TALLY.combos:
        return
    line = (
        f"IDOR: {len({c[0] for c in TALLY.combos})} routes, "
        f"{len(TALLY.combos)} route x principal x method combinations "
        f"({len(TALLY.authorized)} by a principal allowed to use the route), "
        f"{sum(TALLY.requests.values())} cross-tenant requests: "
        + ", ".join(f"{k} {v}" for k, v in sorted(TALLY.requests.items()))
    )
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    if reporter is None or capture is None:  # an xdist worker: the line goes to its stdout
        print(line)
        return
    with capture.global_and_fixture_disabled():
        reporter.write_line("")
        reporter.write_line(line)
