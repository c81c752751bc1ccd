"""The console's actions: every page and form beyond the read-only ones of console/test_pages.py.

One table (CASES) says what each page and action needs; each persona's permissions are written
down once (PERSONA_PERMISSIONS) from the product rules, and the expected status of every
page and persona is derived from the two. The sections after it exercise each action in depth:
what it writes, what it audits, what it refuses, and what each role gets to see.
"""

import hashlib
import html
import json
import re
import secrets
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from html.parser import HTMLParser

import pytest
from django.core import mail
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import resolve, reverse
from django.utils import timezone

from accesscontrol import urls as console_urls
from accesscontrol.apikeys import shown_once
from accesscontrol.apikeys.models import PersonalAccessToken, ServiceKey
from accesscontrol.audit.models import AuditEvent
from accesscontrol.organizations.models import Invitation, Organization, OrganizationMembership
from accesscontrol.organizations.services import find_invitation, invite_member
from accesscontrol.rbac.gate import PERMISSION
from accesscontrol.rbac.models import Role
from accesscontrol.rbac.permissions import WORKSPACE_PERMISSIONS
from accesscontrol.workspaces.models import Workspace, WorkspaceMembership
from tests.factories import (
    ANNOTATOR_CODES,
    RoleFactory,
    WorkspaceFactory,
    add_member,
    pat_for,
    service_key_for,
    system_role,
)

ORG_READ, ORG_MANAGE, ORG_PATS = (
    "organization:read",
    "organization:manage",
    "organization:pats:create",
)
MANAGE, MANAGE_MEMBERS = "workspaces:manage", "workspaces:manage-members"

# --- who may do what (the product rules, written down independently of the resolver) -------

READ_CODES = frozenset(c for c in WORKSPACE_PERMISSIONS if c.endswith(":read"))
EDITOR_CODES = WORKSPACE_PERMISSIONS - {MANAGE, MANAGE_MEMBERS}
ORG_ADMIN_CODES = frozenset({ORG_READ, ORG_MANAGE, ORG_PATS})
ORG_MEMBER_CODES = frozenset({ORG_READ, ORG_PATS})
ORG_VIEWER_CODES = frozenset({ORG_READ})

# persona: (organization-level permissions, permissions in the workspace "production");
# None: not a member of acme at all (the outsider, admin of globex).
PERSONA_PERMISSIONS = {
    "org_admin": (ORG_ADMIN_CODES, WORKSPACE_PERMISSIONS),
    "workspace_admin": (ORG_MEMBER_CODES, WORKSPACE_PERMISSIONS),
    "editor": (ORG_MEMBER_CODES, EDITOR_CODES),
    "viewer": (ORG_MEMBER_CODES, READ_CODES),
    "annotator": (ORG_MEMBER_CODES, frozenset(ANNOTATOR_CODES)),
    "member_without_workspace": (ORG_MEMBER_CODES, frozenset()),
    # An org viewer is read-only everywhere, although their workspace role is Editor.
    "org_viewer": (ORG_VIEWER_CODES, READ_CODES),
    "outsider": None,
}
PERSONAS = list(PERSONA_PERMISSIONS)
MEMBERS = [p for p in PERSONAS if p != "outsider"]


def permissions_of(persona, scope):
    org_codes, workspace_codes = PERSONA_PERMISSIONS[persona]
    return org_codes if scope == "org" else org_codes | workspace_codes


def expected_status(persona, case):
    if PERSONA_PERMISSIONS[persona] is None:
        return 404  # another tenant's organization looks like one that does not exist
    missing = set(case.needs) - permissions_of(persona, case.scope)
    return 403 if missing else case.ok


# --- URLs and pages -----------------------------------------------------------------------

WORKSPACE_URLS = {
    "workspace-member-add",
    "workspace-member-suggestions",
    "workspace-member-role",
    "workspace-member-remove",
    "workspace-settings",
    "workspace-archive",
    "workspace-delete",
    "workspace-members-bulk-role",
    "service-keys",
    "service-key-revoke",
    "service-key-rotate",
    "service-key-ip-allow-list",
    "workspace-home",
    "workspace-members",
}
TARGET_PARAM = {
    "org-member-role": "member_id",
    "org-member-remove": "member_id",
    "invitation-resend": "invitation_id",
    "invitation-cancel": "invitation_id",
    "role-edit": "role_id",
    "role-delete": "role_id",
    "personal-token-revoke": "token_id",
    "workspace-member-role": "member_id",
    "workspace-member-remove": "member_id",
    "service-key-revoke": "key_id",
    "personal-token-rotate": "token_id",
    "service-key-rotate": "key_id",
    "service-key-ip-allow-list": "key_id",
}


def url(name, target=None):
    """A URL in acme (and its workspace production); `target` is the id the URL names."""
    kwargs = {"org_slug": "acme"}
    if name in WORKSPACE_URLS:
        kwargs["workspace_slug"] = "production"
    if name in TARGET_PARAM:
        kwargs[TARGET_PARAM[name]] = target
    return reverse(name, kwargs=kwargs)


def text_of(response):
    return response.content.decode()


HX = {"HX-Request": "true"}
ORG_MEMBERS = reverse("org-members", args=["acme"])
WS_MEMBERS = reverse("workspace-members", args=["acme", "production"])
WS_HOME = reverse("workspace-home", args=["acme", "production"])


def toasts(response):
    """The flash messages a page shows, as (level, text)."""
    return [
        (level, html.unescape(message))
        for level, message in re.findall(
            r'<div class="toast toast-(\w+)">(.*?)</div>', text_of(response), re.S
        )
    ]


def events(action):
    return AuditEvent.objects.filter(action=action)


class Page(HTMLParser):
    """Links, forms and selects of a page: what the role-awareness tests look at."""

    def __init__(self, body):
        super().__init__()
        self.links = []  # attrs of every <a>
        self.forms = []  # {"attrs": ..., "fields": [names]}
        self.selects = []
        self.checkboxes = []
        self._form = None
        self.feed(body)
        self.close()

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "a":
            self.links.append(attrs)
        elif tag == "form":
            self._form = {"attrs": attrs, "fields": []}
            self.forms.append(self._form)
        elif tag in ("input", "select", "textarea"):
            if tag == "select":
                self.selects.append(attrs.get("name"))
            if attrs.get("type") == "checkbox":
                self.checkboxes.append(attrs)
            if self._form is not None and attrs.get("name"):
                self._form["fields"].append(attrs["name"])

    def handle_startendtag(self, tag, attrs):
        self.handle_starttag(tag, attrs)

    def handle_endtag(self, tag):
        if tag == "form":
            self._form = None

    def hrefs(self):
        return {a["href"] for a in self.links if a.get("href")}


def page(response):
    return Page(text_of(response))


def opened_as(client, world, persona, path):
    """`path` as `persona` sees it (it must open for them)."""
    client.force_login(world.persona(persona))
    response = client.get(path)
    assert response.status_code == 200
    return response


def annotator_role_in_use(world):
    """The Annotator role, held by the annotator and now by a service key of 'production'."""
    service_key_for(world.workspace, "Annotator")
    return Role.objects.get(organization=world.org, name="Annotator")


# --- the state a refused request must leave alone -----------------------------------------


def snapshot():
    def rows(qs, *fields):
        return sorted(tuple(str(v) for v in row) for row in qs.values_list(*fields))

    return {
        "audit": AuditEvent.objects.count(),
        "organizations": rows(
            Organization.objects,
            "id",
            "plan",
            "max_key_lifetime_days",
            "allow_personal_access_tokens",
            "ip_allow_list",
        ),
        "org_members": rows(OrganizationMembership.objects, "id", "org_role"),
        "workspace_members": rows(WorkspaceMembership.objects, "id", "role_id"),
        "workspaces": rows(Workspace.objects, "id", "name", "slug", "archived"),
        "roles": rows(Role.objects, "id", "name", "description", "permissions"),
        "invitations": rows(Invitation.objects, "id", "digest", "expires_at", "cancelled_at"),
        "service_keys": rows(ServiceKey.objects, "id", "revoked_at", "ip_allow_list"),
        "tokens": rows(PersonalAccessToken.objects, "id", "revoked_at"),
        "mail": len(mail.outbox),
    }


def assert_form_refused(client, path, data, error, *, htmx_too=False):
    """The form post is answered 422 with `error` on the page, and nothing is written; with
    `htmx_too`, the same post from htmx gets the form alone back, also 422."""
    before = snapshot()
    response = client.post(path, data)
    assert response.status_code == 422
    assert error in html.unescape(text_of(response))
    if htmx_too:
        fragment = client.post(path, data, headers=HX)
        assert fragment.status_code == 422
        assert text_of(fragment).lstrip().startswith("<form")
    assert snapshot() == before
    return response


# --- objects the actions act on -----------------------------------------------------------


def membership_of(world, user):
    return OrganizationMembership.objects.get(organization=world.org, user=user)


def workspace_membership_of(world, user, workspace=None):
    return WorkspaceMembership.objects.get(
        org_membership__user=user, workspace=workspace or world.workspace
    )


def make_token(membership, name="mine", **fields):
    """A personal access token row, made directly (org viewers may hold old ones too)."""
    return PersonalAccessToken.objects.create(
        org_membership=membership,
        name=name,
        digest=secrets.token_hex(32),
        hint="lsv2_pt_…abcd",
        **fields,
    )


@dataclass
class Things:
    invitation: Invitation
    invitation_token: str
    unused_role: Role
    annotator_role: Role
    key: ServiceKey


@pytest.fixture
def things(world):
    invitation, raw = invite_member(
        actor=world.org_admin, organization=world.org, email="pending@acme.test"
    )
    service_key_for(world.workspace, "Viewer")
    return Things(
        invitation=invitation,
        invitation_token=raw,
        unused_role=RoleFactory(organization=world.org, name="Unused", permissions=["runs:read"]),
        annotator_role=Role.objects.get(organization=world.org, name="Annotator"),
        key=ServiceKey.objects.get(workspace=world.workspace),
    )


# --- the table: every console page and action not covered in tests/console/test_pages.py ---


@dataclass(frozen=True)
class Case:
    name: str
    method: str
    needs: tuple[str, ...]  # what the persona must hold (the product rule, not the decorator)
    ok: int  # the status when allowed
    event: str | None = None  # the audit event an allowed POST records
    target: Callable | None = None  # (world, things, persona) -> the id in the URL
    data: Callable | None = None  # (world, things) -> the form

    @property
    def scope(self):
        return "workspace" if self.name in WORKSPACE_URLS else "org"

    @property
    def id(self):
        return f"{self.method} {self.name}"


def _editor_membership(world, things, persona):
    return membership_of(world, world.editor).pk


def _viewer_membership(world, things, persona):
    return membership_of(world, world.viewer).pk


def _invitation(world, things, persona):
    return things.invitation.pk


def _annotator_role(world, things, persona):
    return things.annotator_role.pk


def _unused_role(world, things, persona):
    return things.unused_role.pk


def _a_day(world, things):
    return {"grace_hours": "24"}


def _own_token(world, things, persona):
    """The persona's own token; the outsider gets acme's editor's (they cannot reach it)."""
    owner = world.editor if persona == "outsider" else world.persona(persona)
    return make_token(membership_of(world, owner)).pk


def _viewer_in_production(world, things, persona):
    return workspace_membership_of(world, world.viewer).pk


def _key(world, things, persona):
    return things.key.pk


# Forms too long for a row.


def _plus_plan(world, things):
    return {"plan": "plus", "max_key_lifetime_days": "", "allow_personal_access_tokens": "on"}


def _newcomer(world, things):
    """member_without_workspace, as a Viewer."""
    return {"email": world.member_without_workspace.email, "role": system_role("Viewer").pk}


def _viewer_to_editor(world, things):
    """The bulk form, for the viewer alone."""
    viewer = workspace_membership_of(world, world.viewer)
    return {"members": [viewer.pk], "role": system_role("Editor").pk}


def form(name, needs, event, target=None, data=None, ok=302):
    """A page that is a form (or a confirmation): the GET shows it to whoever may submit it, the
    POST does it and records `event`."""
    return [
        Case(name, "GET", needs, 200, target=target),
        Case(name, "POST", needs, ok, event, target, data),
    ]


CASES = [
    *form(
        "org-invite",
        (ORG_MANAGE,),
        "invitation.sent",
        data=lambda w, t: {"email": "newcomer@acme.test", "org_role": "member"},
    ),
    Case(
        "org-member-role",
        "POST",
        (ORG_MANAGE,),
        302,
        "org_member.role_changed",
        _editor_membership,
        lambda w, t: {"org_role": "viewer"},
    ),
    *form("org-member-remove", (ORG_MANAGE,), "org_member.removed", _viewer_membership),
    Case("invitation-resend", "POST", (ORG_MANAGE,), 302, "invitation.resent", _invitation),
    *form("invitation-cancel", (ORG_MANAGE,), "invitation.cancelled", _invitation),
    Case("org-workspaces", "GET", (ORG_READ,), 200),
    *form(
        "org-workspace-create",
        (ORG_MANAGE,),
        "workspace.created",
        data=lambda w, t: {"name": "Research", "slug": ""},
    ),
    *form("org-settings", (ORG_MANAGE,), "organization.plan_changed", data=_plus_plan),
    Case("roles", "GET", (ORG_READ,), 200),
    *form(
        "role-create",
        (ORG_MANAGE,),
        "role.created",
        data=lambda w, t: {"name": "Triage", "permissions": ["runs:read", "feedback:create"]},
    ),
    *form(
        "role-edit",
        (ORG_MANAGE,),
        "role.updated",
        _annotator_role,
        lambda w, t: {"name": "Annotator", "permissions": [*ANNOTATOR_CODES, "runs:share"]},
    ),
    *form("role-delete", (ORG_MANAGE,), "role.deleted", _unused_role),
    Case("personal-tokens", "GET", (ORG_READ,), 200),
    # Creating a token needs organization:pats:create, which org viewers do not hold.
    # Making a token redirects to the list, which shows it once (apikeys/shown_once.py).
    Case(
        "personal-tokens",
        "POST",
        (ORG_READ, ORG_PATS),
        302,
        "personal_access_token.created",
        data=lambda w, t: {"name": "laptop", "expires_in": "30"},
    ),
    *form("personal-token-revoke", (ORG_READ,), "personal_access_token.revoked", _own_token),
    *form("workspace-member-add", (MANAGE_MEMBERS,), "workspace_member.added", data=_newcomer),
    Case(
        "workspace-member-role",
        "POST",
        (MANAGE_MEMBERS,),
        302,
        "workspace_member.role_changed",
        _viewer_in_production,
        lambda w, t: {"role": system_role("Editor").pk},
    ),
    *form(
        "workspace-member-remove",
        (MANAGE_MEMBERS,),
        "workspace_member.removed",
        _viewer_in_production,
    ),
    *form(
        "workspace-settings",
        (MANAGE,),
        "workspace.renamed",
        data=lambda w, t: {"name": "Production EU"},
    ),
    *form("workspace-archive", (MANAGE, ORG_MANAGE), "workspace.archived"),
    *form(
        "workspace-delete",
        (MANAGE, ORG_MANAGE),
        "workspace.deleted",
        data=lambda w, t: {"confirmation": "production"},
    ),
    Case(
        "workspace-members-bulk-role",
        "POST",
        (MANAGE_MEMBERS,),
        302,
        "workspace_member.role_changed",
        data=_viewer_to_editor,
    ),
    # The list of keys is also where the form posts; it redirects back, showing the key once.
    *form(
        "service-keys",
        (MANAGE,),
        "service_key.created",
        data=lambda w, t: {"name": "CI", "role": system_role("Viewer").pk, "expires_in": "30"},
    ),
    *form("service-key-revoke", (MANAGE,), "service_key.revoked", _key),
    # Rotating redirects to the list, which shows the new key once.
    *form("service-key-rotate", (MANAGE,), "service_key.rotated", _key, _a_day),
    *form(
        "personal-token-rotate",
        (ORG_READ, ORG_PATS),
        "personal_access_token.rotated",
        _own_token,
        _a_day,
    ),
    *form(
        "service-key-ip-allow-list",
        (MANAGE,),
        "service_key.ip_allow_list_changed",
        _key,
        lambda w, t: {"ip_allow_list": "2001:db8::/32"},
    ),
    *form(
        "org-ip-allow-list",
        (ORG_MANAGE,),
        "organization.ip_allow_list_changed",
        data=lambda w, t: {"ip_allow_list": "203.0.113.0/24\n2001:db8::/32"},
    ),
    *form(
        "org-sso",
        (ORG_MANAGE,),
        "sso.configured",
        data=lambda w, t: {
            "protocol": "oidc",
            "oidc_issuer": "https://idp.example.test",
            "oidc_client_id": "acme",
            "oidc_client_secret": "secret",
            "default_org_role": "member",
        },
    ),
    *form(
        "org-authentication",
        (ORG_MANAGE,),
        "organization.mfa_requirement_changed",
        data=lambda w, t: {"require_mfa": "admins"},
    ),
]

# What each view declares with @requires: the gate checks exactly these.
DECLARED = {
    "org-invite": (ORG_MANAGE,),
    "org-member-role": (ORG_MANAGE,),
    "org-member-remove": (ORG_MANAGE,),
    "invitation-resend": (ORG_MANAGE,),
    "invitation-cancel": (ORG_MANAGE,),
    "org-workspaces": (ORG_READ,),
    "org-workspace-create": (ORG_MANAGE,),
    "org-settings": (ORG_MANAGE,),
    "roles": (ORG_READ,),
    "role-create": (ORG_MANAGE,),
    "role-edit": (ORG_MANAGE,),
    "role-delete": (ORG_MANAGE,),
    "personal-tokens": (ORG_READ,),  # creating also needs pats:create, checked in the view
    "personal-token-revoke": (ORG_READ,),
    "workspace-member-add": (MANAGE_MEMBERS,),
    "workspace-member-role": (MANAGE_MEMBERS,),
    "workspace-member-remove": (MANAGE_MEMBERS,),
    "workspace-settings": (MANAGE,),
    "workspace-archive": (MANAGE, ORG_MANAGE),
    "workspace-delete": (MANAGE, ORG_MANAGE),
    "workspace-members-bulk-role": (MANAGE_MEMBERS,),
    "service-keys": (MANAGE,),
    "service-key-revoke": (MANAGE,),
    "service-key-rotate": (MANAGE,),
    "personal-token-rotate": (ORG_PATS,),
    "service-key-ip-allow-list": (MANAGE,),
    "org-ip-allow-list": (ORG_MANAGE,),
    "org-sso": (ORG_MANAGE,),
    "org-authentication": (ORG_MANAGE,),
}
# Covered by tests/console/test_pages.py (and the public or personal pages outside the tenant gate).
COVERED_ELSEWHERE = {
    "home",
    "login",
    "logout",
    "health",
    "invitation-accept",
    "org-overview",
    "org-members",
    "workspace-home",
    "workspace-members",
    "sudo",  # tests/accounts/test_sudo.py
}
# Pages of other features (audit log, who has access), with their own test files.
OTHER_FEATURES = {
    "audit-log",
    "audit-export",
    "audit-export-ocsf",
    "member-access",
    "workspace-access",
    "workspace-access-export",
    "key-access",
    "personal-token",  # tests/apikeys/test_narrowed_tokens_console.py
    # tests/resources/test_share_links.py (public, the link is the credential) and
    # tests/api/test_langsmith_sdk_hub.py (the SDK's run URL)
    "shared-run",
    "shared-dataset",
    "shared-prompt",
    "sdk-run-url",
    # Single sign-on: tests/sso/ (the settings with personas and bad input in test_settings.py,
    # domains and their IDOR there too; sign-in and sudo at the IdP in test_oidc.py)
    "org-sso-domains",
    "org-sso-domain-release",
    "org-sso-remove",
    "sso-sign-in",
    "sudo-sso",
    # Settings → Provisioning (SCIM): tests/scim/test_console.py
    "org-provisioning",
    "org-provisioning-token",
    "org-provisioning-default-role",
    "org-provisioning-token-rotate",
    "org-provisioning-token-revoke",
    "org-provisioning-mapping-add",
    "org-provisioning-mapping",
    "org-provisioning-mapping-remove",
    # The add dialog's suggestions: tests/workspaces/test_add_member_by_email.py
    "workspace-member-suggestions",
}


def test_the_table_covers_every_console_page():
    names = {p.name for p in console_urls.urlpatterns if getattr(p, "name", None)}
    assert names - COVERED_ELSEWHERE - OTHER_FEATURES == set(DECLARED)
    assert {c.name for c in CASES} == set(DECLARED)


@pytest.mark.parametrize("name", sorted(DECLARED))
def test_each_view_declares_the_permissions_the_table_expects(name):
    target = uuid.uuid4() if name in TARGET_PARAM else None
    rule = resolve(url(name, target)).func.access_rule
    assert rule.kind == PERMISSION
    assert rule.codes == DECLARED[name]


def prepare(case, world, things, persona):
    """The request: its path (with the target made beforehand) and its form."""
    target = case.target(world, things, persona) if case.target else None
    data = case.data(world, things) if case.data else {}
    return url(case.name, target), data


def send(client, case, path, data):
    return client.get(path) if case.method == "GET" else client.post(path, data)


ALLOWED = [
    pytest.param(case, persona, id=f"{case.id}-{persona}")
    for case in CASES
    for persona in PERSONAS
    if expected_status(persona, case) == case.ok
]


@pytest.mark.parametrize(("case", "persona"), ALLOWED)
def test_allowed_personas_get_the_page_or_do_the_action(client, world, things, case, persona):
    client.force_login(world.persona(persona))
    path, data = prepare(case, world, things, persona)
    before = snapshot()
    recorded_before = events(case.event).count() if case.event else 0

    response = send(client, case, path, data)

    assert response.status_code == case.ok, text_of(response)[:500]
    if case.method == "GET":
        assert snapshot() == before  # looking changes nothing
    elif case.event:
        assert events(case.event).count() == recorded_before + 1
        assert events(case.event).latest("id").actor_user == world.persona(persona)


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_refused_personas_get_403_or_404_and_change_nothing(client, world, things, case, subtests):
    """Persona by persona (one subtest each): refused requests never reach the action."""
    refused = [p for p in PERSONAS if expected_status(p, case) != case.ok]
    assert "outsider" in refused
    for persona in refused:
        with subtests.test(persona=persona):
            expected = expected_status(persona, case)
            client.force_login(world.persona(persona))
            path, data = prepare(case, world, things, persona)
            before = snapshot()

            response = send(client, case, path, data)

            assert response.status_code == expected, text_of(response)[:300]
            body = text_of(response)
            if expected == 403:  # the page explains what was missing
                missing = set(case.needs) - permissions_of(persona, case.scope)
                assert "You don't have access to this" in body
                assert any(f"<code>{code}</code>" in body for code in missing), body
            else:  # acme looks like an organization that does not exist
                assert "Acme" not in body
            if case.method == "POST":  # a forged POST changed nothing at all
                assert snapshot() == before
            else:
                assert AuditEvent.objects.count() == before["audit"]


def test_the_table_expects_each_status_where_the_rules_say(world):
    """A check on the table itself: who gets what, counted (52 requests x 8 personas)."""
    statuses = [expected_status(p, c) for c in CASES for p in PERSONAS]
    assert len(statuses) == 416
    assert statuses.count(404) == len(CASES)
    # Only the org admin may do everything; the workspace admin has the workspace's pages.
    assert all(expected_status("org_admin", c) == c.ok for c in CASES)
    assert {c.id for c in CASES if expected_status("workspace_admin", c) == c.ok} >= {
        "GET service-keys",
        "POST workspace-member-role",
        "POST workspace-settings",
    }
    assert expected_status("workspace_admin", _case("POST workspace-archive")) == 403
    assert expected_status("org_viewer", _case("POST personal-tokens")) == 403
    assert expected_status("member_without_workspace", _case("POST personal-tokens")) == 302
    assert expected_status("editor", _case("GET service-keys")) == 403
    assert expected_status("workspace_admin", _case("POST service-key-ip-allow-list")) == 302
    assert expected_status("workspace_admin", _case("POST org-ip-allow-list")) == 403


def _case(case_id):
    return next(c for c in CASES if c.id == case_id)


def test_anonymous_posts_go_to_login_and_change_nothing(client, world, things, subtests):
    requests = [(c, *prepare(c, world, things, "org_admin")) for c in CASES if c.method == "POST"]
    before = snapshot()
    for case, path, data in requests:
        with subtests.test(case=case.id):
            response = send(client, case, path, data)
            assert response.status_code == 302
            assert response["Location"] == f"{reverse('login')}?next={path}"
    assert snapshot() == before


def test_an_id_that_does_not_exist_is_404_and_changes_nothing(client, world, things, subtests):
    client.force_login(world.org_admin)
    before = snapshot()
    for case in [c for c in CASES if c.target]:
        with subtests.test(case=case.id):
            data = case.data(world, things) if case.data else {}
            response = send(client, case, url(case.name, uuid.uuid4()), data)
            assert response.status_code == 404
    assert snapshot() == before


@pytest.mark.parametrize("name", sorted(TARGET_PARAM))
def test_garbage_ids_in_urls_are_404_not_500(client, world, name):
    client.force_login(world.org_admin)
    zero = str(uuid.UUID(int=0))
    for garbage in ["not-a-uuid", "1", "%27%20OR%201=1", "0" * 40, zero[:-1] + "g"]:
        path = url(name, zero).replace(zero, garbage)
        assert client.get(path).status_code == 404, path
        assert client.post(path).status_code == 404, path


# --- organization: invite -----------------------------------------------------------------


def invite_form(email, workspace, role_name):
    """The invite form: `email` as a member, with a system role in one workspace."""
    return {
        "email": email,
        "org_role": "member",
        "workspaces": [workspace.pk],
        "workspace_role": system_role(role_name).pk,
    }


def test_invite_form_offers_email_roles_and_workspaces(client, world):
    response = opened_as(client, world, "org_admin", url("org-invite"))
    form = next(f for f in page(response).forms if f["attrs"].get("action") == url("org-invite"))
    assert {"email", "org_role", "workspaces", "workspace_role"} <= set(form["fields"])
    body = text_of(response)
    assert "production" in body and "staging" in body
    assert "Annotator" in body  # custom roles can be given on the enterprise plan

    fragment = client.get(url("org-invite"), headers=HX)
    assert fragment.status_code == 200
    assert text_of(fragment).lstrip().startswith("<form")
    assert "<html" not in text_of(fragment)


def test_invite_sends_an_invitation_redirects_and_flashes(
    client, world, django_capture_on_commit_callbacks
):
    client.force_login(world.org_admin)
    with django_capture_on_commit_callbacks(execute=True):
        form = invite_form("New.Person@Acme.TEST", world.workspace, "Editor")
        response = client.post(url("org-invite"), form)
    assert response.status_code == 302
    assert response["Location"] == url("org-members")

    invitation = Invitation.objects.get(email="new.person@acme.test")
    assert invitation.org_role == "member"
    assert list(invitation.workspaces.all()) == [world.workspace]
    assert invitation.workspace_role == system_role("Editor")
    assert invitation.created_by == world.org_admin
    event = events("invitation.sent").get()
    assert event.actor_user == world.org_admin
    assert event.target_label == "new.person@acme.test"
    assert len(mail.outbox) == 1
    assert mail.outbox[0].to == ["new.person@acme.test"]
    raw = re.search(r"/invitations/([^/\s]+)/", mail.outbox[0].body).group(1)
    assert find_invitation(raw) == invitation

    members = client.get(response["Location"])
    flashed = [(level, text.lower()) for level, text in toasts(members)]
    assert ("success", "invitation sent to new.person@acme.test.") in flashed
    assert "new.person@acme.test" in text_of(members)  # listed under pending invitations


def test_invite_by_htmx_answers_with_hx_redirect(client, world):
    client.force_login(world.org_admin)
    response = client.post(
        url("org-invite"), {"email": "htmx@acme.test", "org_role": "viewer"}, headers=HX
    )
    assert response.status_code == 204
    assert response["HX-Redirect"] == url("org-members")
    assert Invitation.objects.filter(email="htmx@acme.test", org_role="viewer").exists()


INVALID_INVITES = [
    ({"email": "not-an-email", "org_role": "member"}, "Enter a valid email address."),
    ({"email": "", "org_role": "member"}, "This field is required."),
    ({"email": "a@acme.test", "org_role": "owner"}, "Select a valid choice."),
    ({"email": "a@acme.test", "org_role": "member", "workspaces": ["nope"]}, "valid"),
    (
        {"email": "a@acme.test", "org_role": "member", "workspace_role": "123"},
        "Select a valid choice.",
    ),
    # Initial workspaces need a role for them.
    (
        {"email": "a@acme.test", "org_role": "member", "workspaces": ["W"]},
        "Choose the role for those workspaces.",
    ),
    # Already a member.
    ({"email": "EDITOR", "org_role": "member"}, "is already a member of Acme"),
    # Already invited.
    ({"email": "pending@acme.test", "org_role": "member"}, "already has a pending invitation"),
]


def test_invalid_invite_is_422_with_the_error_and_writes_nothing(
    client, world, things, django_capture_on_commit_callbacks, subtests
):
    for data, error in INVALID_INVITES:
        with subtests.test(data=data, error=error):
            data = dict(data)
            if data["email"] == "EDITOR":
                data["email"] = world.editor.email
            if data.get("workspaces") == ["W"]:
                data["workspaces"] = [world.workspace.pk]
            client.force_login(world.org_admin)
            with django_capture_on_commit_callbacks(execute=True):
                response = assert_form_refused(
                    client, url("org-invite"), data, error, htmx_too=True
                )
            assert 'class="field-error"' in text_of(response) or 'role="alert"' in text_of(response)


def test_invite_cannot_name_a_workspace_of_another_organization(client, world):
    client.force_login(world.org_admin)
    before = snapshot()
    form = invite_form("a@acme.test", world.other_workspace_of_other_org, "Viewer")
    response = client.post(url("org-invite"), form)
    assert response.status_code == 422
    assert snapshot() == before


# --- organization: member role and removal ------------------------------------------------


def test_changing_an_org_role_by_plain_post_redirects_with_a_message(client, world):
    client.force_login(world.org_admin)
    membership = membership_of(world, world.editor)
    response = client.post(url("org-member-role", membership.pk), {"org_role": "viewer"})
    assert response.status_code == 302
    assert response["Location"] == url("org-members")
    membership.refresh_from_db()
    assert membership.org_role == "viewer"
    event = events("org_member.role_changed").get()
    assert event.changes == {"before": {"org_role": "member"}, "after": {"org_role": "viewer"}}
    assert event.target_label == world.editor.email
    assert ("success", f"{world.editor.email} is now viewer.") in toasts(
        client.get(response["Location"])
    )


def test_changing_an_org_role_by_htmx_swaps_the_row_and_triggers_a_toast(client, world):
    client.force_login(world.org_admin)
    membership = membership_of(world, world.editor)
    # A promotion to org admin is asked first, in the dialog, saying what it allows.
    before = snapshot()
    asked = client.post(url("org-member-role", membership.pk), {"org_role": "admin"}, headers=HX)
    assert asked.status_code == 200
    assert (asked["HX-Retarget"], asked["HX-Reswap"]) == ("#modal-body", "innerHTML")
    question = html.unescape(text_of(asked))
    assert f"Make {world.editor.email} organization admin?" in question
    assert "will be able to: Manages the organization; Admin in every workspace." in question
    assert f'hx-target="#member-{membership.pk}"' in question
    assert '<input type="hidden" name="confirmed" value="1">' in question
    assert re.search(r"data-safe autofocus>Keep the current role</a>", question)
    assert snapshot() == before

    response = client.post(
        url("org-member-role", membership.pk), {"org_role": "admin", "confirmed": "1"}, headers=HX
    )
    assert response.status_code == 200
    body = text_of(response).strip()
    assert body.startswith(f'<tr id="member-{membership.pk}">')
    assert body.endswith("</tr>")
    assert '<option value="admin" selected>' in body
    trigger = json.loads(response["HX-Trigger"])
    assert trigger == {
        "closeModal": True,
        "toast": {"message": f"{world.editor.email} is now admin.", "level": "success"},
    }
    membership.refresh_from_db()
    assert membership.org_role == "admin"
    assert events("org_member.role_changed").count() == 1


UNKNOWN_ORG_ROLES = ["owner", "", "ADMIN", "'; DROP TABLE x; --"]


def test_an_unknown_org_role_is_a_422_row_with_the_error(client, world, subtests):
    for role in UNKNOWN_ORG_ROLES:
        with subtests.test(role=role):
            client.force_login(world.org_admin)
            membership = membership_of(world, world.editor)
            before = snapshot()
            response = client.post(
                url("org-member-role", membership.pk), {"org_role": role}, headers=HX
            )
            assert response.status_code == 422
            body = html.unescape(text_of(response))
            assert body.strip().startswith(f'<tr id="member-{membership.pk}">')
            assert "Unknown organization role" in body
            assert '<option value="member" selected>' in text_of(response)
            assert json.loads(response["HX-Trigger"])["toast"]["level"] == "error"
            assert snapshot() == before

            plain = client.post(url("org-member-role", membership.pk), {"org_role": role})
            assert plain.status_code == 302
            assert any(level == "error" for level, _ in toasts(client.get(plain["Location"])))
            assert snapshot() == before


def test_nobody_changes_their_own_org_role(client, world):
    client.force_login(world.org_admin)
    own = membership_of(world, world.org_admin)
    before = snapshot()
    response = client.post(url("org-member-role", own.pk), {"org_role": "member"}, headers=HX)
    assert response.status_code == 422
    assert "You cannot change your own organization role." in text_of(response)
    plain = client.post(url("org-member-role", own.pk), {"org_role": "member"})
    assert ("error", "You cannot change your own organization role.") in toasts(
        client.get(plain["Location"])
    )
    assert snapshot() == before


def test_a_membership_of_another_organization_is_404(client, world):
    client.force_login(world.org_admin)
    foreign = OrganizationMembership.objects.get(user=world.outsider)
    before = snapshot()
    role_change = client.post(url("org-member-role", foreign.pk), {"org_role": "viewer"})
    assert role_change.status_code == 404
    assert client.get(url("org-member-remove", foreign.pk)).status_code == 404
    assert client.post(url("org-member-remove", foreign.pk)).status_code == 404
    assert snapshot() == before


def test_remove_confirmation_says_what_happens(client, world):
    membership = membership_of(world, world.viewer)
    pat_for(world.viewer, world.org)
    pat_for(world.viewer, world.org)
    make_token(membership, name="old", revoked_at=timezone.now())
    response = opened_as(client, world, "org_admin", url("org-member-remove", membership.pk))
    body = html.unescape(text_of(response))
    assert f"Remove {world.viewer.email}?" in body
    assert "Their membership in 1 workspace(s) ends." in body
    assert "Their 2 active personal access token(s) are deleted." in body
    form = page(response).forms[-1]
    assert form["attrs"]["action"] == url("org-member-remove", membership.pk)
    assert form["attrs"]["method"] == "post"
    assert f'href="{url("org-members")}"' in body  # cancel goes back

    dialog = client.get(url("org-member-remove", membership.pk), headers=HX)
    assert text_of(dialog).lstrip().startswith("<form")
    assert OrganizationMembership.objects.filter(pk=membership.pk).exists()


def test_removing_a_member_deletes_memberships_and_tokens_and_audits(client, world):
    membership = membership_of(world, world.viewer)
    pat_for(world.viewer, world.org)
    make_token(membership, name="old", revoked_at=timezone.now())
    client.force_login(world.org_admin)

    response = client.post(url("org-member-remove", membership.pk))
    assert response.status_code == 302
    assert response["Location"] == url("org-members")
    assert not OrganizationMembership.objects.filter(pk=membership.pk).exists()
    assert not WorkspaceMembership.objects.filter(org_membership_id=membership.pk).exists()
    assert not PersonalAccessToken.objects.filter(org_membership_id=membership.pk).exists()
    removed = events("org_member.removed").get()
    assert removed.target_label == world.viewer.email
    assert removed.changes["before"] == {"org_role": "member", "workspaces": ["production"]}
    assert events("personal_access_token.deleted").count() == 2
    assert ("success", f"{world.viewer.email} was removed from Acme.") in toasts(
        client.get(response["Location"])
    )


def test_removing_by_htmx_answers_with_hx_redirect(client, world):
    membership = membership_of(world, world.viewer)
    client.force_login(world.org_admin)
    response = client.post(url("org-member-remove", membership.pk), headers=HX)
    assert response.status_code == 204
    assert response["HX-Redirect"] == url("org-members")
    assert not OrganizationMembership.objects.filter(pk=membership.pk).exists()


def test_the_last_admin_cannot_be_removed(client, world):
    own = membership_of(world, world.org_admin)
    client.force_login(world.org_admin)
    before = snapshot()
    response = client.post(url("org-member-remove", own.pk))
    assert response.status_code == 302
    assert (
        "error",
        "An organization must keep at least one admin. Make someone else an admin first.",
    ) in toasts(client.get(response["Location"]))
    assert snapshot() == before


def test_another_admin_can_be_removed_while_one_remains(client, world):
    second = add_member(world.org, org_role="admin")
    client.force_login(world.org_admin)
    response = client.post(url("org-member-remove", membership_of(world, second).pk))
    assert response.status_code == 302
    assert not OrganizationMembership.objects.filter(user=second).exists()
    assert events("org_member.removed").count() == 1


# --- organization: invitations ------------------------------------------------------------


def test_resending_an_invitation_mails_a_new_link_and_kills_the_old_one(
    client, world, things, django_capture_on_commit_callbacks
):
    old = Invitation.objects.get(pk=things.invitation.pk)
    client.force_login(world.org_admin)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(url("invitation-resend", old.pk))
    assert response.status_code == 302
    assert response["Location"] == url("org-members")

    renewed = Invitation.objects.get(pk=old.pk)
    assert renewed.digest != old.digest
    assert renewed.expires_at >= old.expires_at
    assert find_invitation(things.invitation_token) is None
    assert len(mail.outbox) == 1
    raw = re.search(r"/invitations/([^/\s]+)/", mail.outbox[0].body).group(1)
    assert find_invitation(raw) == renewed
    assert events("invitation.resent").get().target_label == "pending@acme.test"
    assert ("success", "A new invitation link went to pending@acme.test.") in toasts(
        client.get(response["Location"])
    )
    old_link = client.get(reverse("invitation-accept", args=[things.invitation_token]))
    assert old_link.status_code == 404


def test_cancel_invitation_confirms_then_cancels(client, world, things):
    client.force_login(world.org_admin)
    confirm = client.get(url("invitation-cancel", things.invitation.pk))
    assert confirm.status_code == 200
    assert "Cancel the invitation of pending@acme.test?" in html.unescape(text_of(confirm))
    assert Invitation.objects.pending().filter(pk=things.invitation.pk).exists()

    response = client.post(url("invitation-cancel", things.invitation.pk))
    assert response.status_code == 302
    assert Invitation.objects.get(pk=things.invitation.pk).cancelled_at is not None
    assert find_invitation(things.invitation_token) is None
    assert events("invitation.cancelled").get().target_label == "pending@acme.test"
    assert ("success", "The invitation of pending@acme.test was cancelled.") in toasts(
        client.get(response["Location"])
    )


def test_a_cancelled_invitation_can_be_neither_resent_nor_cancelled_again(client, world, things):
    client.force_login(world.org_admin)
    client.post(url("invitation-cancel", things.invitation.pk))
    before = snapshot()
    assert client.post(url("invitation-resend", things.invitation.pk)).status_code == 404
    assert client.post(url("invitation-cancel", things.invitation.pk)).status_code == 404
    assert snapshot() == before


def test_an_invitation_of_another_organization_is_404(client, world):
    foreign, _ = invite_member(
        actor=world.outsider, organization=world.other_org, email="x@globex.test"
    )
    client.force_login(world.org_admin)
    before = snapshot()
    assert client.post(url("invitation-resend", foreign.pk)).status_code == 404
    assert client.post(url("invitation-cancel", foreign.pk)).status_code == 404
    assert snapshot() == before


def test_members_page_lists_pending_invitations_with_controls_for_admins(client, world, things):
    client.force_login(world.org_admin)
    body = text_of(client.get(reverse("org-members", args=["acme"])))
    assert "pending@acme.test" in body
    assert f'action="{url("invitation-resend", things.invitation.pk)}"' in body
    assert f'href="{url("invitation-cancel", things.invitation.pk)}"' in body

    client.force_login(world.editor)
    body = text_of(client.get(reverse("org-members", args=["acme"])))
    assert "pending@acme.test" not in body
    assert url("invitation-resend", things.invitation.pk) not in body


# --- organization: workspaces -------------------------------------------------------------


def test_workspaces_list_shows_every_workspace_and_what_you_can_enter(client, world):
    WorkspaceFactory(organization=world.org, name="Old", slug="old", archived=True)
    response = opened_as(client, world, "editor", url("org-workspaces"))
    body = text_of(response)
    assert f'href="{reverse("workspace-home", args=["acme", "production"])}"' in body
    assert reverse("workspace-home", args=["acme", "staging"]) not in body
    assert "(not a member)" in body
    assert "Archived" in body
    assert "globex" not in body.lower()
    assert "New workspace" not in body

    client.force_login(world.org_admin)
    body = text_of(client.get(url("org-workspaces")))
    assert f'href="{url("org-workspace-create")}"' in body
    assert "(not a member)" not in body


def test_creating_a_workspace(client, world):
    client.force_login(world.org_admin)
    form = client.get(url("org-workspace-create"))
    assert form.status_code == 200
    assert {"name", "slug"} <= set(page(form).forms[-1]["fields"])

    response = client.post(url("org-workspace-create"), {"name": "Research Lab", "slug": ""})
    assert response.status_code == 302
    assert response["Location"] == reverse("workspace-home", args=["acme", "research-lab"])
    workspace = Workspace.objects.get(organization=world.org, slug="research-lab")
    assert workspace.name == "Research Lab"
    event = events("workspace.created").get()
    assert event.workspace_id == workspace.pk
    assert event.changes["after"] == {"name": "Research Lab", "slug": "research-lab"}
    assert ("success", "Workspace Research Lab created.") in toasts(
        client.get(response["Location"])
    )


def test_creating_a_workspace_with_an_explicit_slug(client, world):
    client.force_login(world.org_admin)
    response = client.post(url("org-workspace-create"), {"name": "EU", "slug": "eu-prod"})
    assert response.status_code == 302
    assert Workspace.objects.filter(organization=world.org, slug="eu-prod", name="EU").exists()


def test_a_slug_used_only_by_another_organization_is_free(client, world):
    client.force_login(world.org_admin)
    response = client.post(url("org-workspace-create"), {"name": "Default", "slug": "default"})
    assert response.status_code == 302
    assert Workspace.objects.filter(slug="default").count() == 2


INVALID_WORKSPACES = [
    ({"name": "Prod again", "slug": "production"}, "A workspace with slug"),
    ({"name": "", "slug": "x"}, "This field is required."),
    ({"name": "Bad", "slug": "Not A Slug!"}, "Enter a valid"),
    ({"name": "x" * 101, "slug": ""}, "at most 100 characters"),
]


def test_invalid_workspace_is_422_and_creates_nothing(client, world, subtests):
    for data, error in INVALID_WORKSPACES:
        with subtests.test(data=data, error=error):
            client.force_login(world.org_admin)
            assert_form_refused(client, url("org-workspace-create"), data, error, htmx_too=True)


# --- organization: settings ---------------------------------------------------------------


def settings_form(**overrides):
    data = {"plan": "enterprise", "max_key_lifetime_days": "", "allow_personal_access_tokens": "on"}
    data.update(overrides)
    return {k: v for k, v in data.items() if v is not None}


def test_settings_page_shows_the_current_values(client, world):
    Organization.objects.filter(pk=world.org.pk).update(max_key_lifetime_days=45)
    response = opened_as(client, world, "org_admin", url("org-settings"))
    body = text_of(response)
    assert '<option value="enterprise" selected>' in body
    assert 'name="max_key_lifetime_days" value="45"' in body
    assert re.search(r'name="allow_personal_access_tokens"[^>]*checked', body)


def test_switching_the_plan_is_saved_and_audited(client, world):
    client.force_login(world.org_admin)
    response = client.post(url("org-settings"), settings_form(plan="developer"))
    assert response.status_code == 302
    assert response["Location"] == url("org-settings")
    assert Organization.objects.get(pk=world.org.pk).plan == "developer"
    event = events("organization.plan_changed").get()
    assert event.changes == {"before": {"plan": "enterprise"}, "after": {"plan": "developer"}}
    assert not events("organization.settings_changed").exists()
    assert ("success", "Settings saved.") in toasts(client.get(response["Location"]))


def test_unchanged_settings_record_nothing(client, world):
    client.force_login(world.org_admin)
    before = snapshot()
    assert client.post(url("org-settings"), settings_form()).status_code == 302
    assert snapshot() == before


@pytest.mark.parametrize("days", ["1", "3650", "90"])
def test_key_lifetime_within_bounds_is_saved(client, world, days):
    client.force_login(world.org_admin)
    response = client.post(url("org-settings"), settings_form(max_key_lifetime_days=days))
    assert response.status_code == 302
    assert Organization.objects.get(pk=world.org.pk).max_key_lifetime_days == int(days)
    event = events("organization.settings_changed").get()
    assert event.changes == {
        "before": {"max_key_lifetime_days": None},
        "after": {"max_key_lifetime_days": int(days)},
    }


INVALID_SETTINGS = [
    ({"max_key_lifetime_days": "0"}, "greater than or equal to 1"),
    ({"max_key_lifetime_days": "3651"}, "less than or equal to 3650"),
    ({"max_key_lifetime_days": "-5"}, "greater than or equal to 1"),
    ({"max_key_lifetime_days": "ten"}, "Enter a whole number."),
    ({"max_key_lifetime_days": "1e3"}, "Enter a whole number."),
    ({"plan": "platinum"}, "Select a valid choice."),
    ({"plan": None}, "This field is required."),
]


def test_invalid_settings_are_422_and_change_nothing(client, world, subtests):
    for overrides, error in INVALID_SETTINGS:
        with subtests.test(overrides=overrides, error=error):
            client.force_login(world.org_admin)
            assert_form_refused(client, url("org-settings"), settings_form(**overrides), error)


def test_turning_off_personal_access_tokens(client, world):
    client.force_login(world.org_admin)
    response = client.post(
        url("org-settings"), settings_form(allow_personal_access_tokens=None, plan="enterprise")
    )
    assert response.status_code == 302
    assert Organization.objects.get(pk=world.org.pk).allow_personal_access_tokens is False
    assert events("organization.settings_changed").get().changes["after"] == {
        "allow_personal_access_tokens": False
    }


def test_emptying_the_key_lifetime_removes_the_cap(client, world):
    Organization.objects.filter(pk=world.org.pk).update(max_key_lifetime_days=30)
    client.force_login(world.org_admin)
    assert client.post(url("org-settings"), settings_form()).status_code == 302
    assert Organization.objects.get(pk=world.org.pk).max_key_lifetime_days is None


# --- roles --------------------------------------------------------------------------------


def test_roles_page_shows_system_roles_read_only(client, world):
    response = opened_as(client, world, "org_admin", url("roles"))
    body = text_of(response)
    for name in ("Admin", "Editor", "Viewer"):
        assert f"<h3>{name}</h3>" in body
        assert url("role-edit", system_role(name).pk) not in body
        assert url("role-delete", system_role(name).pk) not in body
    assert "Built-in roles cannot be changed." in body
    assert page(response).checkboxes == []  # nothing to tick: the matrices are read-only
    # Viewer can read datasets but not delete them; Admin can manage members.
    assert '<span class="perm perm-yes" title="datasets:read">' in body
    annotator = Role.objects.get(organization=world.org, name="Annotator")
    assert f'href="{url("role-edit", annotator.pk)}"' in body
    assert "1 member, 0 keys" in body


def test_system_roles_cannot_be_edited_or_deleted_even_by_forged_requests(client, world):
    client.force_login(world.org_admin)
    admin = system_role("Admin")
    before = snapshot()
    assert client.get(url("role-edit", admin.pk)).status_code == 404
    assert (
        client.post(url("role-edit", admin.pk), {"name": "Admin", "permissions": []}).status_code
        == 404
    )
    assert client.post(url("role-delete", admin.pk)).status_code == 404
    assert snapshot() == before


def test_a_role_of_another_organization_is_404(client, world):
    foreign = Role.objects.get_or_create(organization=world.other_org, name="Globex role")[0]
    client.force_login(world.org_admin)
    before = snapshot()
    assert client.get(url("role-edit", foreign.pk)).status_code == 404
    assert client.post(url("role-edit", foreign.pk), {"name": "x"}).status_code == 404
    assert client.post(url("role-delete", foreign.pk)).status_code == 404
    assert snapshot() == before


@pytest.mark.parametrize("persona", ["org_admin", "editor"])
@pytest.mark.parametrize("plan", ["developer", "plus"])
def test_below_enterprise_the_roles_page_explains_custom_roles_are_unavailable(
    client, world, persona, plan
):
    Organization.objects.filter(pk=world.org.pk).update(plan=plan)
    response = opened_as(client, world, persona, url("roles"))
    body = text_of(response)
    assert "Custom roles are an Enterprise feature." in body
    assert "New custom role" not in body
    assert url("role-create") not in body
    assert "<h3>Viewer</h3>" in body


def test_below_enterprise_role_creation_is_refused(client, world):
    Organization.objects.filter(pk=world.org.pk).update(plan="plus")
    client.force_login(world.org_admin)
    before = snapshot()
    response = client.post(url("role-create"), {"name": "Sneaky", "permissions": ["runs:read"]})
    assert response.status_code == 302
    assert ("error", "Custom roles are available on the Enterprise plan.") in toasts(
        client.get(response["Location"])
    )
    assert client.get(url("role-create")).status_code == 302
    assert snapshot() == before


def test_role_form_is_a_permission_grid(client, world):
    response = opened_as(client, world, "org_admin", url("role-create"))
    boxes = {b["value"] for b in page(response).checkboxes if b.get("name") == "permissions"}
    assert boxes == set(WORKSPACE_PERMISSIONS)
    assert "Select all read" in text_of(response)
    assert "data-check=\"input[value$=':read']\"" in text_of(response)


def test_creating_a_custom_role(client, world):
    client.force_login(world.org_admin)
    response = client.post(
        url("role-create"),
        {
            "name": "Triage",
            "description": "Looks at runs",
            "permissions": ["runs:read", "feedback:create", "runs:read"],
        },
    )
    assert response.status_code == 302
    assert response["Location"] == url("roles")
    role = Role.objects.get(organization=world.org, name="Triage")
    assert role.permissions == ["feedback:create", "runs:read"]
    assert role.description == "Looks at runs"
    assert events("role.created").get().changes["after"] == {
        "name": "Triage",
        "permissions": ["feedback:create", "runs:read"],
    }
    assert ("success", "Role Triage created.") in toasts(client.get(response["Location"]))


INVALID_ROLES = [
    ({"name": "Boss", "permissions": ["organization:manage"]}, "Select a valid choice."),
    ({"name": "Boss", "permissions": ["organization:pats:create"]}, "Select a valid choice."),
    ({"name": "Boss", "permissions": ["datasets:fly"]}, "Select a valid choice."),
    ({"name": "Boss", "permissions": ["runs:read", "*"]}, "Select a valid choice."),
    ({"name": "", "permissions": ["runs:read"]}, "This field is required."),
    ({"name": "annotator", "permissions": []}, "already exists"),
    ({"name": "Admin", "permissions": []}, "is a built-in role name"),
    ({"name": "x" * 61, "permissions": []}, "at most 60 characters"),
]


def test_invalid_or_forged_role_is_refused_with_422(client, world, subtests):
    for data, error in INVALID_ROLES:
        with subtests.test(data=data, error=error):
            client.force_login(world.org_admin)
            assert_form_refused(client, url("role-create"), data, error)


def open_role_in_use(client, world, name):
    """The org admin opens the page `name` of the Annotator role, held by a member and a key."""
    role = annotator_role_in_use(world)
    return role, opened_as(client, world, "org_admin", url(name, role.pk))


def test_role_edit_page_shows_how_many_members_and_keys_it_affects(client, world):
    _, response = open_role_in_use(client, world, "role-edit")
    body = html.unescape(text_of(response))
    assert "Saving changes what 1 member and 1 service key may do" in body
    assert f"{world.annotator.email} in production" in body
    ticked = {b["value"] for b in page(response).checkboxes if "checked" in b}
    assert ticked == set(ANNOTATOR_CODES)


def test_role_edit_page_of_an_unused_role_says_nobody_is_affected(client, world, things):
    client.force_login(world.org_admin)
    body = text_of(client.get(url("role-edit", things.unused_role.pk)))
    assert "0 members and 0 service keys" in body


def test_editing_a_role_saves_and_audits_the_difference(client, world):
    role = Role.objects.get(organization=world.org, name="Annotator")
    codes = [c for c in ANNOTATOR_CODES if c != "feedback:update"] + ["runs:share"]
    client.force_login(world.org_admin)
    response = client.post(
        url("role-edit", role.pk), {"name": "Labeller", "description": "", "permissions": codes}
    )
    assert response.status_code == 302
    role.refresh_from_db()
    assert role.name == "Labeller"
    assert role.permissions == sorted(codes)
    after = events("role.updated").get().changes["after"]
    assert after["added"] == ["runs:share"]
    assert after["removed"] == ["feedback:update"]
    assert (
        "success",
        "Role Labeller saved; it applies at once to the 1 member(s) and key(s) holding it.",
    ) in toasts(client.get(response["Location"]))


FORGED_ROLE_CODES = [["organization:manage"], ["runs:read", "organization:read"], ["datasets:fly"]]


def test_a_forged_role_edit_with_codes_outside_the_catalog_is_refused(client, world, subtests):
    for codes in FORGED_ROLE_CODES:
        with subtests.test(codes=codes):
            role = Role.objects.get(organization=world.org, name="Annotator")
            client.force_login(world.org_admin)
            before = snapshot()
            response = client.post(
                url("role-edit", role.pk), {"name": "Annotator", "permissions": codes}
            )
            assert response.status_code == 422
            assert snapshot() == before


def test_deleting_an_unused_role_confirms_then_deletes(client, world, things):
    client.force_login(world.org_admin)
    confirm = client.get(url("role-delete", things.unused_role.pk))
    assert confirm.status_code == 200
    assert "Delete the role Unused?" in text_of(confirm)
    assert Role.objects.filter(pk=things.unused_role.pk).exists()

    response = client.post(url("role-delete", things.unused_role.pk))
    assert response.status_code == 302
    assert not Role.objects.filter(pk=things.unused_role.pk).exists()
    assert events("role.deleted").get().changes["before"]["name"] == "Unused"
    assert ("success", "Role Unused deleted.") in toasts(client.get(response["Location"]))


def test_a_role_in_use_lists_where_and_is_not_deleted(client, world):
    role, response = open_role_in_use(client, world, "role-delete")
    body = html.unescape(text_of(response))
    assert "Annotator cannot be deleted yet" in body
    assert f"{world.annotator.email} in production" in body
    assert "service key 'Annotator key' (production)" in body
    assert url("role-delete", role.pk) not in re.findall(r'action="([^"]*)"', body)

    before = snapshot()
    forged = client.post(url("role-delete", role.pk))
    assert forged.status_code == 302
    levels = [level for level, _ in toasts(client.get(forged["Location"]))]
    assert levels == ["error"]
    assert snapshot() == before
    assert Role.objects.filter(pk=role.pk).exists()


# --- workspace members --------------------------------------------------------------------


def test_add_member_suggests_org_members_not_yet_here(client, world):
    path = url("workspace-member-suggestions") + "?email=%40"
    body = text_of(opened_as(client, world, "workspace_admin", path))
    assert world.member_without_workspace.email in body
    assert world.viewer.email not in body  # already a member
    assert world.org_admin.email not in body  # org admins are Admin everywhere already
    assert world.outsider.email not in body


def test_adding_a_workspace_member(client, world):
    membership = membership_of(world, world.member_without_workspace)
    client.force_login(world.workspace_admin)
    response = client.post(
        url("workspace-member-add"),
        {"email": world.member_without_workspace.email, "role": system_role("Editor").pk},
    )
    assert response.status_code == 302
    assert response["Location"] == reverse("workspace-members", args=["acme", "production"])
    added = WorkspaceMembership.objects.get(org_membership=membership, workspace=world.workspace)
    assert added.role == system_role("Editor")
    event = events("workspace_member.added").get()
    assert event.workspace_id == world.workspace.pk
    assert event.changes["after"] == {"role": "Editor"}
    assert (
        "success",
        f"{world.member_without_workspace.email} joined production as Editor.",
    ) in toasts(client.get(response["Location"]))


INVALID_ADDITIONS = [
    ("abc", "viewer"),
    ("member_without_workspace", "abc"),
    ("member_without_workspace", "random"),
    ("viewer", "viewer"),  # already a member of production
    ("outsider", "viewer"),  # not in acme
    ("member_without_workspace", "globex"),  # a role of another organization
    ("member_without_workspace", None),
]


def test_invalid_add_member_is_422_and_adds_nothing(client, world, subtests):
    for member, role in INVALID_ADDITIONS:
        with subtests.test(member=member, role=role):
            roles = {
                "viewer": system_role("Viewer").pk,
                "globex": Role.objects.get_or_create(
                    organization=world.other_org, name="Globex role"
                )[0].pk,
                "random": uuid.uuid4(),
            }
            data = {"email": member if member == "abc" else world.persona(member).email}
            if role is not None:
                data["role"] = roles.get(role, role)
            client.force_login(world.org_admin)
            before = snapshot()
            response = client.post(url("workspace-member-add"), data)
            assert response.status_code == 422
            assert 'class="field-error"' in text_of(response) or 'role="alert"' in text_of(response)
            assert snapshot() == before


def test_changing_a_workspace_role_by_plain_post(client, world):
    target = workspace_membership_of(world, world.viewer)
    client.force_login(world.workspace_admin)
    response = client.post(
        url("workspace-member-role", target.pk), {"role": system_role("Editor").pk}
    )
    assert response.status_code == 302
    target.refresh_from_db()
    assert target.role == system_role("Editor")
    assert events("workspace_member.role_changed").get().changes == {
        "before": {"role": "Viewer"},
        "after": {"role": "Editor"},
    }
    assert ("success", f"{world.viewer.email} is now Editor in production.") in toasts(
        client.get(response["Location"])
    )


def test_changing_a_workspace_role_by_htmx_swaps_the_row(client, world):
    target = workspace_membership_of(world, world.viewer)
    annotator = Role.objects.get(organization=world.org, name="Annotator")
    client.force_login(world.org_admin)
    response = client.post(
        url("workspace-member-role", target.pk), {"role": annotator.pk}, headers=HX
    )
    assert response.status_code == 200
    body = text_of(response).strip()
    assert body.startswith(f'<tr id="ws-member-{target.pk}">')
    assert f'<option value="{annotator.pk}" selected>' in body
    assert json.loads(response["HX-Trigger"]) == {
        "closeModal": True,
        "toast": {
            "message": f"{world.viewer.email} is now Annotator in production.",
            "level": "success",
        },
    }
    target.refresh_from_db()
    assert target.role == annotator


INVALID_WORKSPACE_ROLES = ["", "abc", "GLOBEX", "RANDOM"]


def test_an_invalid_workspace_role_is_a_422_row(client, world, subtests):
    for role in INVALID_WORKSPACE_ROLES:
        with subtests.test(role=role):
            globex_role = Role.objects.get_or_create(
                organization=world.other_org, name="Globex role"
            )[0]
            role = {"GLOBEX": str(globex_role.pk), "RANDOM": str(uuid.uuid4())}.get(role, role)
            target = workspace_membership_of(world, world.viewer)
            client.force_login(world.org_admin)
            before = snapshot()
            response = client.post(
                url("workspace-member-role", target.pk), {"role": role}, headers=HX
            )
            assert response.status_code == 422
            assert "Choose one of the roles offered." in text_of(response)
            assert text_of(response).strip().startswith(f'<tr id="ws-member-{target.pk}">')
            assert json.loads(response["HX-Trigger"])["toast"]["level"] == "error"
            assert snapshot() == before


def test_nobody_changes_their_own_workspace_role(client, world):
    own = workspace_membership_of(world, world.workspace_admin)
    client.force_login(world.workspace_admin)
    before = snapshot()
    response = client.post(
        url("workspace-member-role", own.pk), {"role": system_role("Viewer").pk}, headers=HX
    )
    assert response.status_code == 422
    assert "You cannot change your own role." in text_of(response)
    assert snapshot() == before


@pytest.fixture
def member_manager(world):
    """Reads everything and manages members, but cannot delete datasets (nor much else)."""
    role = RoleFactory(
        organization=world.org,
        name="Member manager",
        permissions=[*sorted(READ_CODES), MANAGE_MEMBERS],
    )
    return add_member(world.org, world.workspace, role)


def test_a_member_manager_cannot_grant_a_role_stronger_than_their_own(
    client, world, member_manager
):
    target = workspace_membership_of(world, world.viewer)
    client.force_login(member_manager)
    before = snapshot()

    response = client.post(
        url("workspace-member-role", target.pk), {"role": system_role("Editor").pk}, headers=HX
    )
    assert response.status_code == 422
    body = html.unescape(text_of(response))
    assert "The role 'Editor' holds permissions you do not" in body
    assert "datasets:delete" in body

    plain = client.post(
        url("workspace-member-role", target.pk), {"role": system_role("Admin").pk, "confirmed": "1"}
    )
    assert plain.status_code == 302
    added = client.post(
        url("workspace-member-add"),
        {
            "email": world.member_without_workspace.email,
            "role": system_role("Editor").pk,
        },
    )
    assert added.status_code == 422
    assert "datasets:delete" in html.unescape(text_of(added))
    assert snapshot() == before

    # Within their own permissions they can act.
    allowed = client.post(
        url("workspace-member-add"),
        {
            "email": world.member_without_workspace.email,
            "role": system_role("Viewer").pk,
        },
    )
    assert allowed.status_code == 302
    assert events("workspace_member.added").count() == 1


def test_remove_workspace_member_confirms_then_removes(client, world):
    target = workspace_membership_of(world, world.viewer)
    client.force_login(world.workspace_admin)
    confirm = client.get(url("workspace-member-remove", target.pk))
    assert confirm.status_code == 200
    assert f"Remove {world.viewer.email} from production?" in text_of(confirm)
    assert WorkspaceMembership.objects.filter(pk=target.pk).exists()

    response = client.post(url("workspace-member-remove", target.pk))
    assert response.status_code == 302
    assert not WorkspaceMembership.objects.filter(pk=target.pk).exists()
    assert OrganizationMembership.objects.filter(user=world.viewer).exists()  # stays in the org
    event = events("workspace_member.removed").get()
    assert event.target_label == world.viewer.email
    assert event.changes["before"] == {"role": "Viewer"}


def test_a_membership_of_another_workspace_is_404_here(client, world):
    elsewhere = WorkspaceMembership.objects.create(
        org_membership=membership_of(world, world.viewer),
        workspace=world.other_workspace,
        role=system_role("Viewer"),
    )
    client.force_login(world.org_admin)
    before = snapshot()
    assert (
        client.post(
            url("workspace-member-role", elsewhere.pk), {"role": system_role("Editor").pk}
        ).status_code
        == 404
    )
    assert client.post(url("workspace-member-remove", elsewhere.pk)).status_code == 404
    assert snapshot() == before


# --- workspace settings, archive, restore -------------------------------------------------


def test_renaming_a_workspace(client, world):
    client.force_login(world.workspace_admin)
    form = client.get(url("workspace-settings"))
    assert form.status_code == 200
    assert 'value="production"' in text_of(form)
    assert str(world.workspace.pk) in text_of(form)

    response = client.post(url("workspace-settings"), {"name": "  Production EU "})
    assert response.status_code == 302
    assert response["Location"] == url("workspace-settings")
    assert Workspace.objects.get(pk=world.workspace.pk).name == "Production EU"
    assert Workspace.objects.get(pk=world.workspace.pk).slug == "production"
    event = events("workspace.renamed").get()
    assert event.changes["before"]["name"] == "production"
    assert event.changes["after"]["name"] == "Production EU"
    assert ("success", "Workspace renamed.") in toasts(client.get(response["Location"]))


INVALID_WORKSPACE_NAMES = ["", "   ", "x" * 101]


def test_an_invalid_workspace_name_is_422(client, world, subtests):
    for name in INVALID_WORKSPACE_NAMES:
        with subtests.test(name=name):
            client.force_login(world.workspace_admin)
            before = snapshot()
            response = client.post(url("workspace-settings"), {"name": name})
            assert response.status_code == 422
            assert 'class="field-error"' in text_of(response)
            assert snapshot() == before


@pytest.mark.parametrize(("persona", "shown"), [("org_admin", True), ("workspace_admin", False)])
def test_only_org_admins_see_the_archive_control(client, world, persona, shown):
    client.force_login(world.persona(persona))
    body = text_of(client.get(url("workspace-settings")))
    assert (f'href="{url("workspace-archive")}"' in body) is shown
    assert ("Archive workspace" in body) is shown


def test_archive_confirms_then_makes_the_workspace_read_only(client, world):
    client.force_login(world.editor)
    assert 'class="perm perm-yes" title="datasets:create"' in text_of(client.get(WS_HOME))
    client.force_login(world.workspace_admin)
    assert client.get(url("workspace-member-add")).status_code == 200

    client.force_login(world.org_admin)
    confirm = client.get(url("workspace-archive"))
    assert confirm.status_code == 200
    body = text_of(confirm)
    assert "Archive production?" in body
    assert "read-only for everyone" in body
    assert not Workspace.objects.get(pk=world.workspace.pk).archived

    response = client.post(url("workspace-archive"))
    assert response.status_code == 302
    assert response["Location"] == url("workspace-settings")
    assert Workspace.objects.get(pk=world.workspace.pk).archived
    assert events("workspace.archived").get().changes["after"]["archived"] is True
    settings_page = client.get(response["Location"])
    assert ("success", "production was archived.") in toasts(settings_page)
    assert "Restore workspace" in text_of(settings_page)

    # Read-only for an editor now: nothing they could write before is allowed.
    client.force_login(world.editor)
    home = text_of(client.get(WS_HOME))
    assert 'class="perm perm-no" title="datasets:create"' in home
    assert 'class="perm perm-yes" title="datasets:read"' in home
    # And a write page 403s for someone who could use it before.
    client.force_login(world.workspace_admin)
    refused = client.get(url("workspace-member-add"))
    assert refused.status_code == 403
    assert f"<code>{MANAGE_MEMBERS}</code>" in text_of(refused)
    before = snapshot()
    forged = client.post(
        url("workspace-member-add"),
        {
            "email": world.member_without_workspace.email,
            "role": system_role("Viewer").pk,
        },
    )
    assert forged.status_code == 403
    assert snapshot() == before


def test_restore_confirms_then_restores(client, world):
    Workspace.objects.filter(pk=world.workspace.pk).update(archived=True)
    client.force_login(world.org_admin)
    confirm = client.get(url("workspace-archive"))
    assert confirm.status_code == 200
    assert "Restore production?" in text_of(confirm)

    response = client.post(url("workspace-archive"))
    assert response.status_code == 302
    assert not Workspace.objects.get(pk=world.workspace.pk).archived
    assert events("workspace.restored").count() == 1
    assert not events("workspace.archived").exists()
    client.force_login(world.workspace_admin)
    assert client.get(url("workspace-member-add")).status_code == 200


# --- service keys -------------------------------------------------------------------------


def key_form(**overrides):
    data = {"name": "CI pipeline", "role": system_role("Viewer").pk, "expires_in": "30"}
    data.update(overrides)
    return data


SECRET = r"lsv2_sk_[0-9a-f]{32}_[0-9a-f]{8}"


def shown_key(response):
    found = re.findall(r"lsv2_sk_[0-9a-f]{32}_[0-9a-f]{8}", text_of(response))
    assert len(found) == 1, found
    return found[0]


def assert_not_cached(response):
    cache_control = response["Cache-Control"]
    assert "no-store" in cache_control
    assert "no-cache" in cache_control


def created_key(client, data, list_url=None):
    """POST the form, follow its redirect: the one page that shows the new key."""
    response = client.post(url("service-keys"), data)
    assert response.status_code == 302, text_of(response)[:300]
    assert response["Location"] == (list_url or url("service-keys"))
    assert "lsv2_" not in text_of(response)
    return client.get(response["Location"])


def test_service_key_is_shown_exactly_once_and_only_its_digest_is_stored(client, world):
    client.force_login(world.workspace_admin)
    response = created_key(client, key_form())
    assert response.status_code == 200
    assert_not_cached(response)
    raw = shown_key(response)
    assert text_of(response).count(raw) == 1
    assert "This is the only time it is shown." in text_of(response)
    assert 'data-copy-target="new-key"' in text_of(response)

    key = ServiceKey.objects.get(name="CI pipeline")
    assert key.digest == hashlib.sha256(raw.encode()).hexdigest()
    assert key.workspace == world.workspace
    assert key.role == system_role("Viewer")
    assert key.created_by == world.workspace_admin
    assert raw not in json.dumps([str(v) for v in ServiceKey.objects.values_list().get(pk=key.pk)])
    event = events("service_key.created").get()
    assert raw not in json.dumps(event.changes)
    assert event.workspace_id == world.workspace.pk

    # A reload (of the page, or of the POST's redirect) shows no key and makes none.
    before = snapshot()
    reload = client.get(url("service-keys"))
    assert reload.status_code == 200
    assert_not_cached(reload)
    assert raw not in text_of(reload)
    assert "lsv2_sk_" + raw[8:] not in text_of(reload)
    assert key.hint in text_of(reload)
    assert "CI pipeline" in text_of(reload)
    assert snapshot() == before
    assert shown_once.SESSION_KEY not in client.session


def test_the_held_key_is_shown_only_on_its_own_page_and_not_after_a_few_minutes(client, world):
    client.force_login(world.org_admin)
    response = client.post(url("service-keys"), key_form())
    other = reverse("service-keys", args=["acme", world.other_workspace.slug])
    assert not re.search(SECRET, text_of(client.get(other)))  # another workspace's list
    raw = shown_key(client.get(response["Location"]))  # still held for its own page
    assert raw.startswith("lsv2_sk_")

    client.post(url("service-keys"), key_form(name="Later"))
    session = client.session
    session[shown_once.SESSION_KEY]["at"] -= shown_once.MAX_AGE_SECONDS + 1
    session.save()
    assert not re.search(SECRET, text_of(client.get(url("service-keys"))))


def test_the_held_key_is_in_neither_the_session_nor_the_cookie_alone(client, world):
    client.force_login(world.org_admin)
    response = client.post(url("service-keys"), key_form())
    pad = response.cookies[shown_once.COOKIE]
    assert pad["httponly"] and pad["samesite"] == "Strict" and pad["path"] == url("service-keys")
    stored = json.dumps(dict(client.session)) + pad.value
    key = ServiceKey.objects.get(name="CI pipeline")
    assert key.hint[:8] not in stored  # "lsv2_sk_" appears in neither half

    # Without the cookie half the session's half shows nothing, and is gone all the same.
    del client.cookies[shown_once.COOKIE]
    assert not re.search(SECRET, text_of(client.get(url("service-keys"))))
    assert shown_once.SESSION_KEY not in client.session

    response = client.post(url("service-keys"), key_form(name="Second"))
    shown = client.get(response["Location"])
    assert re.search(SECRET, text_of(shown))
    assert shown.cookies[shown_once.COOKIE]["max-age"] == 0  # the cookie half is dropped


def test_the_role_of_a_new_key_is_a_choice_with_the_weakest_first_and_recommended(client, world):
    client.force_login(world.org_admin)
    form_page = client.get(url("service-keys") + "?new")
    select = re.search(r'<select name="role".*?</select>', text_of(form_page), re.S)[0]
    options = re.findall(r'<option value="([^"]*)"( selected)?>([^<]*)</option>', select)
    assert options[0] == ("", " selected", "Choose a role…")  # nothing preselected
    assert [label for _, _, label in options[1:4]] == ["Viewer (recommended)", "Editor", "Admin"]
    assert not any(selected for _, selected, _ in options[1:])
    before = snapshot()
    refused = client.post(url("service-keys"), key_form(role=""))
    assert refused.status_code == 422
    assert "This field is required." in text_of(refused)
    assert snapshot() == before


def test_the_new_service_key_works_against_the_api(client, world):
    client.force_login(world.org_admin)
    raw = shown_key(created_key(client, key_form(role=system_role("Admin").pk)))
    whoami = client.get("/api/v1/auth/whoami", headers={"X-API-Key": raw})
    assert whoami.status_code == 200


def test_service_keys_list_shows_prefix_role_creator_and_status(client, world, things):
    client.force_login(world.org_admin)
    body = text_of(client.get(url("service-keys")))
    assert things.key.hint in body
    assert "Viewer key" in body
    assert "system" in body  # created by
    assert '<span class="status-active">Active</span>' in body
    assert f'href="{url("service-key-revoke", things.key.pk)}"' in body


INVALID_SERVICE_KEYS = [
    {"name": ""},
    {"name": "x" * 101},
    {"role": "abc"},
    {"role": str(uuid.uuid4())},
    {"expires_in": "forever"},
    {"expires_in": "-1"},
    {"expires_in": "9999"},
]


def test_invalid_service_key_is_422_and_shows_no_key(client, world, subtests):
    for overrides in INVALID_SERVICE_KEYS:
        with subtests.test(overrides=overrides):
            client.force_login(world.org_admin)
            before = snapshot()
            response = client.post(url("service-keys"), key_form(**overrides))
            assert response.status_code == 422
            assert "lsv2_sk_" not in text_of(response)
            assert 'class="field-error"' in text_of(response)
            assert snapshot() == before


def test_service_key_expiry_respects_the_organization_cap(client, world):
    Organization.objects.filter(pk=world.org.pk).update(max_key_lifetime_days=30)
    client.force_login(world.org_admin)
    body = text_of(client.get(url("service-keys") + "?new"))
    assert '<option value="90"' not in body
    assert 'value=""' not in re.search(r'<select name="expires_in".*?</select>', body, re.S)[0]
    before = snapshot()
    assert client.post(url("service-keys"), key_form(expires_in="90")).status_code == 422
    assert snapshot() == before
    assert client.post(url("service-keys"), key_form(expires_in="30")).status_code == 302


def test_a_key_manager_cannot_make_a_key_stronger_than_their_role(client, world):
    manager_role = RoleFactory(
        organization=world.org, name="Key manager", permissions=[*sorted(READ_CODES), MANAGE]
    )
    manager = add_member(world.org, world.workspace, manager_role)
    client.force_login(manager)
    before = snapshot()
    response = client.post(url("service-keys"), key_form(role=system_role("Editor").pk))
    assert response.status_code == 422
    assert "datasets:delete" in html.unescape(text_of(response))
    assert "lsv2_sk_" not in text_of(response)
    assert snapshot() == before


def test_revoking_a_service_key_confirms_then_revokes(client, world, things):
    client.force_login(world.workspace_admin)
    confirm = client.get(url("service-key-revoke", things.key.pk))
    assert confirm.status_code == 200
    body = html.unescape(text_of(confirm))
    assert "Revoke Viewer key?" in body
    assert things.key.hint in body
    assert ServiceKey.objects.get(pk=things.key.pk).revoked_at is None

    response = client.post(url("service-key-revoke", things.key.pk))
    assert response.status_code == 302
    assert response["Location"] == url("service-keys")
    assert ServiceKey.objects.get(pk=things.key.pk).revoked_at is not None
    assert events("service_key.revoked").get().target_label == "service key 'Viewer key'"
    listing = client.get(response["Location"])
    assert ("success", "Viewer key was revoked.") in toasts(listing)
    assert '<span class="status-revoked">Revoked</span>' in text_of(listing)
    assert url("service-key-revoke", things.key.pk) not in text_of(listing)

    before = snapshot()
    assert client.post(url("service-key-revoke", things.key.pk)).status_code == 404
    assert snapshot() == before


@pytest.mark.parametrize("where", ["staging", "globex"])
def test_a_key_of_another_workspace_or_organization_is_404(client, world, where):
    workspace = world.other_workspace if where == "staging" else world.other_workspace_of_other_org
    service_key_for(workspace, "Viewer")
    key = ServiceKey.objects.get(workspace=workspace)
    client.force_login(world.org_admin)
    before = snapshot()
    assert client.get(url("service-key-revoke", key.pk)).status_code == 404
    assert client.post(url("service-key-revoke", key.pk)).status_code == 404
    assert key.hint not in text_of(client.get(url("service-keys")))
    assert snapshot() == before


# --- personal access tokens ---------------------------------------------------------------


def test_personal_token_is_shown_exactly_once(client, world):
    client.force_login(world.editor)
    posted = client.post(url("personal-tokens"), {"name": "laptop", "expires_in": "30"})
    assert posted.status_code == 302
    assert posted["Location"] == url("personal-tokens")
    assert "lsv2_pt_" not in text_of(posted)
    response = client.get(posted["Location"])
    assert response.status_code == 200
    assert_not_cached(response)
    found = re.findall(r"lsv2_pt_[0-9a-f]{32}_[0-9a-f]{8}", text_of(response))
    assert len(found) == 1
    raw = found[0]

    token = PersonalAccessToken.objects.get(name="laptop")
    assert token.org_membership == membership_of(world, world.editor)
    assert token.digest == hashlib.sha256(raw.encode()).hexdigest()
    assert token.expires_at > timezone.now()
    event = events("personal_access_token.created").get()
    assert event.actor_user == world.editor
    assert raw not in json.dumps(event.changes)

    before = snapshot()
    reload = client.get(url("personal-tokens"))
    assert_not_cached(reload)
    assert raw not in text_of(reload)
    assert token.hint in text_of(reload)
    assert snapshot() == before
    whoami = client.get("/api/v1/auth/whoami", headers={"X-API-Key": raw})
    assert whoami.status_code == 200


def test_personal_tokens_page_lists_only_your_own_tokens(client, world):
    pat_for(world.viewer, world.org)
    mine = make_token(membership_of(world, world.editor), name="editor-only")
    client.force_login(world.editor)
    body = text_of(client.get(url("personal-tokens")))
    assert "editor-only" in body
    assert body.count("test token") == 0  # the viewer's token
    assert f'href="{url("personal-token-revoke", mine.pk)}"' in body


def test_org_viewer_sees_no_create_form(client, world):
    response = opened_as(client, world, "org_viewer", url("personal-tokens"))
    body = text_of(response)
    assert "Organization viewers cannot create personal access tokens." in body
    assert "Create token" not in body
    assert not [f for f in page(response).forms if "name" in f["fields"]]


def test_a_forged_token_post_by_an_org_viewer_is_refused_with_403(client, world):
    client.force_login(world.org_viewer)
    before = snapshot()
    response = client.post(url("personal-tokens"), {"name": "sneaky", "expires_in": "30"})
    assert "lsv2_pt_" not in text_of(response)
    assert snapshot() == before
    assert response.status_code == 403
    assert f"<code>{ORG_PATS}</code>" in text_of(response)


@pytest.mark.parametrize("persona", ["editor", "org_admin"])
def test_when_tokens_are_disabled_the_form_is_hidden_and_a_post_refused(client, world, persona):
    Organization.objects.filter(pk=world.org.pk).update(allow_personal_access_tokens=False)
    client.force_login(world.persona(persona))
    response = client.get(url("personal-tokens"))
    body = text_of(response)
    assert "Acme does not allow personal access tokens." in body
    assert "Create token" not in body

    before = snapshot()
    forged = client.post(url("personal-tokens"), {"name": "sneaky", "expires_in": "30"})
    assert forged.status_code in (302, 403)
    assert "lsv2_pt_" not in text_of(forged)
    assert snapshot() == before


INVALID_TOKENS = [
    {"name": "", "expires_in": "30"},
    {"name": "x" * 101, "expires_in": "30"},
    {"name": "t", "expires_in": "-5"},
    {"name": "t", "expires_in": "abc"},
]


def test_invalid_token_is_422_and_shows_no_token(client, world, subtests):
    for data in INVALID_TOKENS:
        with subtests.test(data=data):
            client.force_login(world.editor)
            before = snapshot()
            response = client.post(url("personal-tokens"), data)
            assert response.status_code == 422
            assert "lsv2_pt_" not in text_of(response)
            assert snapshot() == before


def test_token_expiry_respects_the_organization_cap(client, world):
    Organization.objects.filter(pk=world.org.pk).update(max_key_lifetime_days=7)
    client.force_login(world.editor)
    before = snapshot()
    assert client.post(url("personal-tokens"), {"name": "t", "expires_in": "30"}).status_code == 422
    assert client.post(url("personal-tokens"), {"name": "t", "expires_in": "3650"}).status_code == (
        422
    )
    assert snapshot() == before
    assert client.post(url("personal-tokens"), {"name": "t", "expires_in": "7"}).status_code == 302
    # No choice means the longest allowed, never "forever".
    assert client.post(url("personal-tokens"), {"name": "u", "expires_in": ""}).status_code == 302
    capped = PersonalAccessToken.objects.get(name="u").expires_at
    assert capped is not None
    assert abs((capped - timezone.now()).total_seconds() - 7 * 86400) < 600


def test_revoking_your_own_token(client, world):
    pat_for(world.editor, world.org)
    token = PersonalAccessToken.objects.get(org_membership__user=world.editor)
    client.force_login(world.editor)
    confirm = client.get(url("personal-token-revoke", token.pk))
    assert confirm.status_code == 200
    assert "Revoke test token?" in text_of(confirm)
    assert PersonalAccessToken.objects.get(pk=token.pk).revoked_at is None

    response = client.post(url("personal-token-revoke", token.pk))
    assert response.status_code == 302
    assert response["Location"] == url("personal-tokens")
    assert PersonalAccessToken.objects.get(pk=token.pk).revoked_at is not None
    assert events("personal_access_token.revoked").get().actor_user == world.editor
    assert ("success", "test token was revoked.") in toasts(client.get(response["Location"]))


@pytest.mark.parametrize("owner", ["viewer", "org_admin", "outsider"])
def test_another_users_token_is_404(client, world, owner):
    org = world.other_org if owner == "outsider" else world.org
    pat_for(world.persona(owner), org)
    token = PersonalAccessToken.objects.get(org_membership__user=world.persona(owner))
    client.force_login(world.editor)
    before = snapshot()
    assert client.get(url("personal-token-revoke", token.pk)).status_code == 404
    assert client.post(url("personal-token-revoke", token.pk)).status_code == 404
    # Not even an org admin revokes someone else's token from this page.
    client.force_login(world.org_admin)
    if owner != "org_admin":
        assert client.post(url("personal-token-revoke", token.pk)).status_code == 404
    assert snapshot() == before


# --- role-awareness: controls are rendered only for those who may use them ------------------


def assert_controls_follow(
    client, world, subtests, path, personas, needed, controls, selects=(), always=()
):
    """On `path`, each persona is shown the `controls` (text of the page) and the `selects`
    (select fields) exactly when it holds `needed` (a code, and "org" or "workspace"); the text
    in `always`, whatever it holds."""
    code, scope = needed
    for persona in personas:
        with subtests.test(persona=persona):
            response = opened_as(client, world, persona, path)
            body, fields = text_of(response), page(response).selects
            shown = code in permissions_of(persona, scope)
            assert {c: c in body for c in controls} == dict.fromkeys(controls, shown)
            assert {f: f in fields for f in selects} == dict.fromkeys(selects, shown)
            assert all(text in body for text in always)


def test_org_members_page_shows_management_controls_only_to_org_admins(client, world, subtests):
    controls = [
        "Invite people",
        f'href="{url("org-invite")}"',
        ">Remove</a>",
        "Pending invitations",
    ]
    needed = (ORG_MANAGE, "org")
    assert_controls_follow(
        client, world, subtests, ORG_MEMBERS, MEMBERS, needed, controls, selects=["org_role"]
    )


def test_workspace_members_page_shows_controls_only_to_member_managers(client, world, subtests):
    controls = ["Add member", f'href="{url("workspace-member-add")}"', ">Remove</a>"]
    personas = [p for p in MEMBERS if p != "member_without_workspace"]
    needed = (MANAGE_MEMBERS, "workspace")
    assert_controls_follow(
        client, world, subtests, WS_MEMBERS, personas, needed, controls, selects=["role"]
    )


def test_roles_page_shows_role_controls_only_to_org_admins(client, world, subtests):
    annotator = Role.objects.get(organization=world.org, name="Annotator")
    controls = ["New custom role", url("role-edit", annotator.pk), url("role-delete", annotator.pk)]
    needed = (ORG_MANAGE, "org")
    # Everyone may see which roles exist.
    assert_controls_follow(
        client, world, subtests, url("roles"), MEMBERS, needed, controls, always=["Annotator"]
    )


def test_workspaces_page_offers_new_workspace_only_to_org_admins(client, world, subtests):
    for persona in MEMBERS:
        with subtests.test(persona=persona):
            client.force_login(world.persona(persona))
            body = text_of(client.get(url("org-workspaces")))
            assert ("New workspace" in body) is (ORG_MANAGE in permissions_of(persona, "org"))


def test_navigation_links_follow_the_role(client, world, subtests):
    for persona in [p for p in MEMBERS if p != "member_without_workspace"]:
        with subtests.test(persona=persona):
            client.force_login(world.persona(persona))
            hrefs = page(client.get(WS_HOME)).hrefs()
            workspace_manager = MANAGE in permissions_of(persona, "workspace")
            assert (url("service-keys") in hrefs) is workspace_manager
            assert (url("workspace-settings") in hrefs) is workspace_manager
            assert (url("org-settings") in hrefs) is (ORG_MANAGE in permissions_of(persona, "org"))
            assert url("roles") in hrefs
            assert url("org-workspaces") in hrefs
            assert url("personal-tokens") in hrefs


def visible_pages(persona):
    pages = [
        reverse("org-overview", args=["acme"]),
        ORG_MEMBERS,
        url("org-workspaces"),
        url("roles"),
        url("personal-tokens"),
    ]
    workspace = permissions_of(persona, "workspace")
    if "workspaces:read" in workspace:
        pages += [WS_HOME, WS_MEMBERS]
    if MANAGE in workspace:
        pages += [url("service-keys"), url("workspace-settings")]
    if ORG_MANAGE in permissions_of(persona, "org"):
        pages += [url("org-settings")]
    return pages


def scope_permissions(persona, path):
    kwargs = resolve(path).kwargs
    if "workspace_slug" not in kwargs:
        return permissions_of(persona, "org")
    if kwargs["workspace_slug"] == "production":
        return permissions_of(persona, "workspace")
    if persona == "org_admin":
        return permissions_of(persona, "workspace")
    return permissions_of(persona, "org")  # a member of production only


@pytest.mark.parametrize("persona", MEMBERS)
def test_every_control_shown_is_one_the_persona_may_use(client, world, things, persona):
    """Each link opens (no 403/404), and each form posts to an action the persona may take."""
    pat_for(world.org_admin, world.org)
    client.force_login(world.persona(persona))
    links, actions = set(), set()
    for path in visible_pages(persona):
        response = client.get(path)
        assert response.status_code == 200, path
        parsed = page(response)
        for a in parsed.links:
            if a.get("hx-get"):
                assert a.get("href") == a["hx-get"], a  # works without JavaScript too
            if a.get("href", "").startswith("/"):
                links.add(a["href"])
        for form in parsed.forms:
            if form["attrs"].get("method", "get").lower() == "post":
                actions.add(form["attrs"].get("action") or path)
    for link in sorted(links):
        status = client.get(link).status_code
        assert status in (200, 302), f"{persona} is shown {link} but gets {status}"
    for action in sorted(actions):
        rule = resolve(action.split("?")[0]).func.access_rule
        if rule.kind == PERMISSION:
            missing = set(rule.codes) - scope_permissions(persona, action)
            assert not missing, f"{persona} is shown a form to {action} but lacks {missing}"


# --- constant query counts ----------------------------------------------------------------


def add_workspaces(world, n):
    Workspace.objects.bulk_create(
        Workspace(organization=world.org, name=f"Bulk {i:04d}", slug=f"bulk-{i:04d}")
        for i in range(n)
    )
    return "Bulk 0000"


def add_roles(world, n):
    Role.objects.bulk_create(
        Role(organization=world.org, name=f"Bulk role {i:04d}", permissions=["runs:read"])
        for i in range(n)
    )
    return "Bulk role 0000"


def _key_rows(model, n, **fields):
    return model.objects.bulk_create(
        model(
            name=f"Bulk key {i:04d}",
            digest=secrets.token_hex(32),
            hint=f"lsv2_xx_…{i:04d}",
            **fields,
        )
        for i in range(n)
    )


def add_service_keys(world, n):
    _key_rows(
        ServiceKey,
        n,
        organization=world.org,
        workspace=world.workspace,
        role=system_role("Editor"),
        created_by=world.org_admin,
        created_by_label=world.org_admin.email,
    )
    return "Bulk key 0000"


def add_tokens(world, n):
    _key_rows(PersonalAccessToken, n, org_membership=membership_of(world, world.org_admin))
    return "Bulk key 0000"


@dataclass
class Listing:
    path: str
    add: Callable
    queries: int


# Pinned: a change here is a change to the page's cost per request. Every page pays session,
# user, the tenant (organization, or workspace with its organization), the access check, and
# the sidebar's organizations and workspaces; then:
#   org-workspaces: the count and a page (50) of workspaces with member counts, workspaces
#     this user can enter                                                                  = 9
#   roles: system roles, the count and a page (50) of custom roles with usage counts       = 9
#   service-keys: the count and a page (50) of keys with their roles (the form that makes
#     one is a dialog of its own, `?new`)                                                  = 8
#   personal-tokens: the count and a page (50) of the user's tokens (the form is `?new`)   = 8
PAGINATED = {"service-keys": 50, "personal-tokens": 50, "roles": 50, "org-workspaces": 50}
LISTINGS = {
    "org-workspaces": Listing(url("org-workspaces"), add_workspaces, 9),
    "roles": Listing(url("roles"), add_roles, 9),
    "service-keys": Listing(url("service-keys"), add_service_keys, 8),
    "personal-tokens": Listing(url("personal-tokens"), add_tokens, 8),
}


@pytest.mark.parametrize("rows", [10, 200])
@pytest.mark.parametrize("name", sorted(LISTINGS))
def test_list_pages_use_a_constant_number_of_queries(client, world, name, rows):
    listing = LISTINGS[name]
    first = listing.add(world, rows)
    last = first.replace("0000", f"{rows - 1:04d}")
    client.force_login(world.org_admin)
    with CaptureQueriesContext(connection) as queries:
        response = client.get(listing.path)
    assert response.status_code == 200
    body = text_of(response)
    if name in PAGINATED and rows > PAGINATED[name]:
        # A page of rows (first or last of them by the list's default order), and the count of
        # them all (the world's own workspaces and roles among them).
        total = re.search(r"· (\d+) in all", body)
        assert (first in body or last in body) and total and int(total.group(1)) >= rows
    else:
        assert first in body and last in body  # every row is on the page
    assert len(queries) == listing.queries, "\n".join(q["sql"] for q in queries.captured_queries)
