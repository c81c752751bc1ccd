"""Who has access (who can act in a workspace, what exactly, and why), its CSV, the member
access page and the "what can this key do?" page.

The property-based test generates organizations and checks that, for every principal, the
page's permissions are the resolver's (people) and what the key itself is told by the real
`GET /api/v1/auth/whoami` (keys), and that the page and the CSV say the same.
"""

import csv
import datetime
import io
import itertools
import re
from dataclasses import dataclass
from html.parser import HTMLParser

import pytest
from django.contrib.auth.hashers import make_password
from django.core.paginator import Paginator
from django.db import connection, transaction
from django.db.models import Q
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from hypothesis import given
from hypothesis import strategies as st

from accesscontrol.accounts.models import User
from accesscontrol.apikeys import keys
from accesscontrol.apikeys.models import PersonalAccessToken, ServiceKey
from accesscontrol.apikeys.services import create_service_key
from accesscontrol.organizations.models import Organization, OrganizationMembership
from accesscontrol.rbac import who_has_access
from accesscontrol.rbac.models import Role
from accesscontrol.rbac.permissions import (
    ADMIN_EVERYWHERE_ROLES,
    ALL_PERMISSIONS,
    READ_PERMISSIONS,
    WORKSPACE_PERMISSIONS,
)
from accesscontrol.rbac.resolver import REASONS, compute_access, effective_permissions, role_fields
from accesscontrol.workspaces.models import Workspace, WorkspaceMembership
from tests.factories import (
    OrganizationFactory,
    OrganizationMembershipFactory,
    RoleFactory,
    UserFactory,
    WorkspaceFactory,
    WorkspaceMembershipFactory,
    actor_with,
    pat_for,
    persona_statuses,
    system_role,
)
from tests.support.api import api_call
from tests.support.examples import db_examples
from tests.support.pages import open_as

REVIEW = "/o/acme/w/production/access/"
EXPORT = "/o/acme/w/production/access/export.csv"
HTMX = {"HTTP_HX_REQUEST": "true"}
DAYS = datetime.timedelta(days=1)
EDITOR_CODES = WORKSPACE_PERMISSIONS - {"workspaces:manage", "workspaces:manage-members"}


# Reading the page and the CSV ----------------------------------------------------------------


class Rows(HTMLParser):
    """The body rows of the tables of a page: each a list of cells (text, codes, links)."""

    def __init__(self):
        super().__init__()
        self.rows, self._row, self._cell, self._in_code, self._in_tbody = [], None, None, 0, 0

    def handle_starttag(self, tag, attrs):
        if tag == "tbody":
            self._in_tbody += 1
        elif tag == "tr" and self._in_tbody:
            self._row = []
            self.rows.append(self._row)
        elif tag in ("td", "th") and self._row is not None:
            self._cell = {"text": "", "codes": [], "links": [], "parts": []}
            self._row.append(self._cell)
        elif tag == "code":
            self._in_code += 1
        elif tag == "a" and self._cell is not None:
            self._cell["links"].append(dict(attrs).get("href"))

    def handle_endtag(self, tag):
        if tag == "tbody":
            self._in_tbody -= 1
        elif tag == "tr":
            self._row = None
        elif tag in ("td", "th"):
            self._cell = None
        elif tag == "code":
            self._in_code -= 1

    def handle_data(self, data):
        if self._cell is None:
            return
        self._cell["text"] += data
        if data.strip():
            self._cell["parts"].append(data.strip())
        if self._in_code:
            self._cell["codes"].append(data.strip())


def table_rows(response):
    parser = Rows()
    parser.feed(response.content.decode())
    return parser.rows


@dataclass(frozen=True)
class Shown:
    label: str
    role: str
    why: str
    permissions: tuple[str, ...]
    stale: bool


def page_principals(response) -> dict[str, Shown]:
    assert response.status_code == 200, response.status_code
    shown = {}
    for principal, role, why, permissions, last_active in table_rows(response):
        label = principal["parts"][0]
        shown[label] = Shown(
            label,
            role["text"].strip().replace("—", ""),
            why["text"].strip(),
            tuple(sorted(c for c in permissions["codes"] if c)),
            "stale" in last_active["parts"],
        )
    return shown


def csv_principals(response) -> dict[str, Shown]:
    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    text = b"".join(response.streaming_content).decode()
    header, *rows = list(csv.reader(io.StringIO(text)))
    columns = "principal,kind,role,why,permissions,last_active,stale,active_personal_tokens"
    assert ",".join(header) == columns
    return {r[0]: Shown(r[0], r[2], r[3], tuple(sorted(r[4].split())), r[6] == "yes") for r in rows}


def key_row(raw):
    return ServiceKey.objects.get(digest=keys.digest(raw))


def make_key(workspace, role, *, name, org_scoped=False, **kwargs):
    """A key made by the system (no creator), so any role can be given."""
    return create_service_key(
        actor=actor_with(ALL_PERMISSIONS),
        organization=workspace.organization,
        workspace=None if org_scoped else workspace,
        name=name,
        role=role,
        **kwargs,
    )


def whoami(client, raw, tenant):
    return api_call(client, "get", "/auth/whoami", raw, tenant=tenant)


@pytest.fixture
def admin(client, world):
    client.force_login(world.org_admin)
    return client


LISTED_KEYS = ("ci", "fleet", "triage")


@pytest.fixture
def world_keys(world):
    """Keys around production, name -> (key, raw): the review lists LISTED_KEYS only."""
    annotator, admin_role = Role.objects.get(name="Annotator"), system_role("Admin")
    made = {
        "ci": make_key(world.workspace, system_role("Editor"), name="ci"),
        "fleet": make_key(world.workspace, admin_role, name="fleet", org_scoped=True),
        "triage": make_key(world.workspace, annotator, name="triage", org_scoped=True),
        "staging only": make_key(world.other_workspace, admin_role, name="staging only"),
        "revoked": make_key(world.workspace, admin_role, name="revoked"),
        "expired": make_key(
            world.workspace, admin_role, name="expired", expires_at=timezone.now() + DAYS
        ),
        "globex": make_key(
            world.other_workspace_of_other_org, admin_role, name="globex", org_scoped=True
        ),
    }
    ServiceKey.objects.filter(name="revoked").update(revoked_at=timezone.now())
    ServiceKey.objects.filter(name="expired").update(expires_at=timezone.now() - DAYS)
    return made


# Who may see it ------------------------------------------------------------------------------


@pytest.mark.parametrize(("persona", "status"), persona_statuses("org_admin", "workspace_admin"))
@pytest.mark.parametrize("url", [REVIEW, EXPORT])
def test_the_review_needs_workspaces_manage(client, world, persona, status, url):
    # workspaces:manage, not manage-members: it survives archiving (the review must too).
    response = open_as(client, world, persona, url, status, "workspaces:manage")
    if status != 200:
        assert "Who can act in" not in response.content.decode()
        assert not table_rows(response)


# What it says ------------------------------------------------------------------------------

ORG_ADMIN = "organization admins are Admin in every workspace"


def expected_people(world):
    annotator = set(Role.objects.get(name="Annotator").permissions)
    return {
        world.org_admin.email: ("Admin", ORG_ADMIN, WORKSPACE_PERMISSIONS),
        world.workspace_admin.email: ("Admin", "workspace membership", WORKSPACE_PERMISSIONS),
        world.editor.email: ("Editor", "workspace membership", EDITOR_CODES),
        world.viewer.email: ("Viewer", "workspace membership", READ_PERMISSIONS),
        world.annotator.email: ("Annotator", "workspace membership", annotator),
        # An organization viewer is read-only whatever the workspace role says.
        world.org_viewer.email: ("Editor", "workspace membership", READ_PERMISSIONS),
    }


def test_the_review_lists_every_principal_with_role_reason_and_permissions(
    admin, world, world_keys
):
    annotator = set(Role.objects.get(name="Annotator").permissions)
    expected = {
        email: Shown(email, role, why, tuple(sorted(codes)), False)
        for email, (role, why, codes) in expected_people(world).items()
    } | {
        "service key 'ci'": Shown(
            "service key 'ci'",
            "Editor",
            "the role given to this key",
            tuple(sorted(EDITOR_CODES)),
            False,
        ),
        "service key 'fleet'": Shown(
            "service key 'fleet'",
            "Admin",
            "organization-wide key: the role given to this key",
            tuple(sorted(WORKSPACE_PERMISSIONS)),
            False,
        ),
        "service key 'triage'": Shown(
            "service key 'triage'",
            "Annotator",
            "organization-wide key: the role given to this key",
            tuple(sorted(annotator)),
            False,
        ),
    }
    assert page_principals(admin.get(REVIEW)) == expected
    assert csv_principals(admin.get(EXPORT)) == expected


def test_the_review_agrees_with_the_resolver_and_whoami(client, world, world_keys):
    reviewed = {r.label: r for r in who_has_access.workspace_access(world.workspace)}
    for email in expected_people(world):
        user = User.objects.get(email=email)
        assert reviewed[email].permissions == effective_permissions(user, world.workspace)
    for name, (key, raw) in world_keys.items():
        response = whoami(client, raw, world.workspace.pk)
        if name in LISTED_KEYS:
            assert reviewed[key.audit_label].permissions == set(response.json()["permissions"])
        else:
            assert key.audit_label not in reviewed
            assert response.status_code in (401, 403)
    # Not listed: the member without a workspace, the outsider.
    assert world.member_without_workspace.email not in reviewed
    assert world.outsider.email not in reviewed
    assert not effective_permissions(world.member_without_workspace, world.workspace) & (
        WORKSPACE_PERMISSIONS
    )


def test_the_people_column_links_to_each_member_access_page_for_org_admins(admin, world):
    rows = table_rows(admin.get(REVIEW))
    membership = OrganizationMembership.objects.get(user=world.editor)
    editor_row = next(r for r in rows if r[0]["parts"][0] == world.editor.email)
    assert editor_row[0]["links"] == [f"/o/acme/members/{membership.pk}/access/"]


def test_a_workspace_admin_sees_no_links_to_organization_pages(client, world):
    client.force_login(world.workspace_admin)
    rows = table_rows(client.get(REVIEW))
    assert len(rows) == 6
    assert all(not r[0]["links"] for r in rows)


def test_service_keys_link_to_what_they_can_do(admin, world, world_keys):
    rows = table_rows(admin.get(REVIEW))
    fleet = world_keys["fleet"][0]
    row = next(r for r in rows if r[0]["parts"][0] == "service key 'fleet'")
    assert row[0]["links"] == [f"/o/acme/w/production/keys/{fleet.pk}/"]
    assert fleet.hint in row[0]["text"]


@pytest.mark.parametrize(
    ("code", "who"),
    [
        (
            "workspaces:manage-members",
            {"org_admin", "workspace_admin", "service key 'fleet'"},
        ),
        (
            "feedback:create",
            {
                "org_admin",
                "workspace_admin",
                "editor",
                "annotator",
                "service key 'ci'",
                "service key 'fleet'",
                "service key 'triage'",
            },
        ),
        (
            "datasets:delete",
            {"org_admin", "workspace_admin", "editor", "service key 'ci'", "service key 'fleet'"},
        ),
    ],
)
def test_who_can_a_permission(admin, world, world_keys, code, who):
    def label(name):
        return name if name.startswith("service key") else world.persona(name).email

    expected = {label(n) for n in who}
    page = page_principals(admin.get(REVIEW, {"permission": code}))
    assert set(page) == expected
    assert all(code in shown.permissions for shown in page.values())
    assert set(page_principals(admin.get(REVIEW, {"permission": code}, **HTMX))) == expected
    export = admin.get(EXPORT, {"permission": code})
    assert set(csv_principals(export)) == expected
    assert f"production-{code.replace(':', '-')}.csv" in export["Content-Disposition"]


def test_who_can_with_an_unknown_code_lists_everyone(admin, world, world_keys):
    everyone = page_principals(admin.get(REVIEW))
    for code in ("organization:manage", "nonsense", "projects:read' OR 1=1"):
        assert page_principals(admin.get(REVIEW, {"permission": code})) == everyone


def test_the_htmx_filter_returns_only_the_principals(admin, world):
    body = admin.get(REVIEW, {"permission": "runs:delete"}, **HTMX).content.decode().strip()
    assert body.startswith('<div id="principals">')
    assert "<html" not in body and "<form" not in body
    assert "can <code>runs:delete</code>" in body


def test_nobody_can_says_so(admin, world):
    body = admin.get(REVIEW, {"permission": "runs:delete"}).content.decode()
    assert "principals can <code>runs:delete</code>." in body
    WorkspaceMembership.objects.filter(workspace=world.workspace).delete()
    OrganizationMembership.objects.filter(org_role="admin").update(org_role="member")
    client = admin
    client.force_login(world.workspace_admin)
    WorkspaceMembershipFactory(
        org_membership=OrganizationMembership.objects.get(user=world.workspace_admin),
        workspace=world.workspace,
        role=RoleFactory(organization=world.org, permissions=["workspaces:manage"]),
    )
    response = client.get(REVIEW, {"permission": "runs:delete"})
    assert "Nobody can <code>runs:delete</code> here." in response.content.decode()
    assert page_principals(response) == {}


@pytest.mark.parametrize("plan", ["plus", "developer"])
def test_below_enterprise_every_member_is_admin_because_of_the_plan(admin, world, plan):
    Organization.objects.filter(pk=world.org.pk).update(plan=plan)
    shown = page_principals(admin.get(REVIEW))
    why = f"on the {plan} plan every workspace member is Admin"
    for persona in ("workspace_admin", "editor", "viewer", "annotator"):
        email = world.persona(persona).email
        assert (shown[email].role, shown[email].why) == ("Admin", why)
        assert shown[email].permissions == tuple(sorted(WORKSPACE_PERMISSIONS))
    viewer = shown[world.org_viewer.email]  # still read-only: the org role caps it
    assert (viewer.role, viewer.why, viewer.permissions) == (
        "Admin",
        why,
        tuple(sorted(READ_PERMISSIONS)),
    )
    assert csv_principals(admin.get(EXPORT)) == shown


def test_an_archived_workspace_can_still_be_reviewed_by_org_admins(admin, world):
    """Its members can still read everything there, so who they are must stay reviewable."""
    Workspace.objects.filter(pk=world.workspace.pk).update(archived=True)
    response = admin.get(REVIEW)
    assert response.status_code == 200, response.get("X-Required-Permission")
    shown = page_principals(response)
    read_and_manage = tuple(sorted(READ_PERMISSIONS | {"workspaces:manage"}))
    assert shown[world.org_admin.email].permissions == read_and_manage
    assert shown[world.workspace_admin.email].permissions == read_and_manage
    assert shown[world.editor.email].permissions == tuple(sorted(READ_PERMISSIONS))


def test_the_review_function_of_an_archived_workspace(world):
    Workspace.objects.filter(pk=world.workspace.pk).update(archived=True)
    world.workspace.refresh_from_db()
    reviewed = {r.label: r for r in who_has_access.workspace_access(world.workspace)}
    read_and_manage = READ_PERMISSIONS | {"workspaces:manage"}
    assert reviewed[world.org_admin.email].permissions & WORKSPACE_PERMISSIONS == read_and_manage
    assert reviewed[world.editor.email].permissions & WORKSPACE_PERMISSIONS == READ_PERMISSIONS
    for r in reviewed.values():
        user = User.objects.get(email=r.label)
        assert r.permissions == effective_permissions(user, world.workspace)


# Stale access ---------------------------------------------------------------------------------


def long_ago(days):
    return timezone.now() - days * DAYS


def age_membership(user, workspace, days):
    WorkspaceMembership.objects.filter(org_membership__user=user, workspace=workspace).update(
        created_at=long_ago(days)
    )
    OrganizationMembership.objects.filter(user=user).update(created_at=long_ago(days))


def test_stale_marks_members_and_keys_without_activity_for_90_days(admin, world):
    # Inactive for 100 days: stale. Active 89 days ago: not stale.
    for user in (world.editor, world.viewer, world.annotator, world.org_viewer):
        age_membership(user, world.workspace, 200)
    User.objects.filter(pk=world.editor.pk).update(last_login=long_ago(100))
    User.objects.filter(pk=world.viewer.pk).update(last_login=long_ago(89))
    # Never signed in, but a member for 200 days: stale; for 10 days: not stale.
    age_membership(world.workspace_admin, world.workspace, 10)
    # Signed in long ago, but their token was used yesterday: active.
    User.objects.filter(pk=world.annotator.pk).update(last_login=long_ago(300))
    raw = pat_for(world.annotator, world.org)
    PersonalAccessToken.objects.filter(digest=keys.digest(raw)).update(last_used_at=long_ago(1))
    # The org admin: an admin for a year, never signed in.
    age_membership(world.org_admin, world.workspace, 365)
    User.objects.filter(pk=world.org_admin.pk).update(last_login=None)

    # Keys: created 200 days ago and never used, used 91 days ago, used 10 days ago, new.
    for name, created, used in (
        ("never used", 200, None),
        ("used 91 days ago", 200, 91),
        ("used 10 days ago", 200, 10),
        ("new", 0, None),
    ):
        key, _ = make_key(world.workspace, system_role("Viewer"), name=name)
        ServiceKey.objects.filter(pk=key.pk).update(
            created_at=long_ago(created), last_used_at=long_ago(used) if used else None
        )

    expected = {
        world.org_admin.email: True,
        world.workspace_admin.email: False,
        world.editor.email: True,
        world.viewer.email: False,
        world.annotator.email: False,
        world.org_viewer.email: True,
        "service key 'never used'": True,
        "service key 'used 91 days ago'": True,
        "service key 'used 10 days ago'": False,
        "service key 'new'": False,
    }
    page = admin.get(REVIEW)
    assert {label: s.stale for label, s in page_principals(page).items()} == expected
    export = csv_principals(admin.get(EXPORT))
    assert {label: s.stale for label, s in export.items()} == expected
    assert "no activity for 90 days" in page.content.decode()

    annotator_row = next(r for r in table_rows(page) if r[0]["parts"][0] == world.annotator.email)
    assert "1 active token" in annotator_row[0]["text"]
    assert annotator_row[4]["parts"][0] == long_ago(1).strftime("%Y-%m-%d")


def test_the_export_says_when_each_principal_was_last_active(admin, world):
    User.objects.filter(pk=world.editor.pk).update(last_login=long_ago(3))
    text = b"".join(admin.get(EXPORT).streaming_content).decode()
    rows = {r[0]: r for r in csv.reader(io.StringIO(text))}
    editor = rows[world.editor.email]
    assert datetime.datetime.fromisoformat(editor[5]).date() == long_ago(3).date()
    assert rows[world.viewer.email][5] == ""
    assert rows[world.viewer.email][7] == "0"


# The member access page ---------------------------------------------------------------------


def member_url(user, org=None):
    membership = OrganizationMembership.objects.get(
        user=user, **({"organization": org} if org else {})
    )
    return f"/o/{membership.organization.slug}/members/{membership.pk}/access/"


def workspace_rows(response):
    assert response.status_code == 200
    rows = table_rows(response)
    return {
        r[0]["parts"][0]: (r[1]["text"].strip(), r[2]["text"].strip(), r[3]["text"].strip())
        for r in rows
        if len(r) == 4
    }


def test_member_access_lists_each_workspace_role_and_why(admin, world):
    staging = WorkspaceMembershipFactory(
        workspace=world.other_workspace,
        org_membership=OrganizationMembership.objects.get(user=world.editor),
        role=system_role("Viewer"),
    )
    assert staging.role.name == "Viewer"
    rows = workspace_rows(admin.get(member_url(world.editor)))
    assert {ws: row[:2] for ws, row in rows.items()} == {
        "production": ("Editor", "workspace membership"),
        "staging": ("Viewer", "workspace membership"),
    }
    counts = {ws: int(re.fullmatch(r"(\d+) permissions", row[2])[1]) for ws, row in rows.items()}
    assert counts["production"] > counts["staging"] >= len(READ_PERMISSIONS)
    admin_rows = workspace_rows(admin.get(member_url(world.org_admin)))
    assert set(admin_rows) == {"production", "staging"}
    assert {row[:2] for row in admin_rows.values()} == {("Admin", "organization admin")}
    assert workspace_rows(admin.get(member_url(world.member_without_workspace))) == {}
    assert (
        "No access to any workspace."
        in admin.get(member_url(world.member_without_workspace)).content.decode()
    )


def test_member_access_on_a_lower_plan_says_the_plan_makes_them_admin(admin, world):
    Organization.objects.filter(pk=world.org.pk).update(plan="plus")
    rows = workspace_rows(admin.get(member_url(world.viewer)))
    assert rows["production"][:2] == ("Admin", "Plus plan: members are Admin")


def test_member_access_marks_archived_workspaces(admin, world):
    Workspace.objects.filter(pk=world.workspace.pk).update(archived=True)
    body = admin.get(member_url(world.editor)).content.decode()
    assert re.search(r"production</a> <span class=\"badge\">archived</span>", body)


def test_member_access_lists_their_tokens_with_last_use(admin, client, world):
    used = pat_for(world.editor, world.org)
    revoked = pat_for(world.editor, world.org)
    pat_for(world.viewer, world.org)  # someone else's
    assert whoami(client, used, None).status_code == 200
    PersonalAccessToken.objects.filter(digest=keys.digest(revoked)).update(
        revoked_at=timezone.now()
    )
    client.force_login(world.org_admin)
    rows = [r for r in table_rows(client.get(member_url(world.editor))) if len(r) == 6]
    tokens = {r[1]["parts"][0]: (r[3]["parts"][0], r[5]["parts"][0]) for r in rows}
    used_row = PersonalAccessToken.objects.get(digest=keys.digest(used))
    revoked_row = PersonalAccessToken.objects.get(digest=keys.digest(revoked))
    assert tokens == {
        used_row.hint: (
            timezone.localtime(used_row.last_used_at).strftime("%Y-%m-%d %H:%M"),
            "Active",
        ),
        revoked_row.hint: ("never", "Revoked"),
    }


@pytest.mark.parametrize(
    ("persona", "status"),
    [("org_admin", 200), ("workspace_admin", 403), ("editor", 403), ("outsider", 404)],
)
def test_member_access_needs_organization_manage(client, world, persona, status):
    client.force_login(world.persona(persona))
    assert client.get(member_url(world.editor)).status_code == status


def test_member_access_of_another_organization_is_not_found(admin, world):
    globex_membership = OrganizationMembership.objects.get(user=world.outsider)
    assert admin.get(f"/o/acme/members/{globex_membership.pk}/access/").status_code == 404


# The key access page --------------------------------------------------------------------------


def key_url(key, workspace="production"):
    return f"/o/acme/w/{workspace}/keys/{key.pk}/"


def allowed(response):
    assert response.status_code == 200
    return set(re.findall(r"([a-z-]+:[a-z-]+) allowed</span>", response.content.decode()))


@pytest.mark.parametrize(
    ("role", "org_scoped"),
    [("Editor", False), ("Viewer", True), ("Annotator", False), ("Admin", True)],
)
def test_key_access_shows_what_whoami_says(admin, client, world, role, org_scoped):
    key, raw = make_key(
        world.workspace,
        Role.objects.get(name=role),
        name=f"{role} key",
        org_scoped=org_scoped,
    )
    body = whoami(client, raw, world.workspace.pk).json()
    client.force_login(world.org_admin)
    assert allowed(client.get(key_url(key))) == set(body["permissions"]) & WORKSPACE_PERMISSIONS
    page = client.get(key_url(key)).content.decode()
    assert f"<dd>{role}</dd>" in page
    assert key.hint in page
    assert ("the whole organization" in page) == org_scoped


def test_an_org_scoped_key_is_reviewed_in_each_workspace(admin, world):
    key, _ = make_key(world.workspace, system_role("Editor"), name="fleet", org_scoped=True)
    Workspace.objects.filter(pk=world.other_workspace.pk).update(archived=True)
    assert allowed(admin.get(key_url(key))) == EDITOR_CODES
    assert allowed(admin.get(key_url(key, "staging"))) == READ_PERMISSIONS


@pytest.mark.parametrize("state", ["revoked", "expired"])
def test_a_dead_key_can_do_nothing(admin, world, state):
    key, _ = make_key(world.workspace, system_role("Admin"), name="old", expires_at=None)
    field = {"revoked": "revoked_at", "expired": "expires_at"}[state]
    ServiceKey.objects.filter(pk=key.pk).update(**{field: timezone.now() - DAYS})
    response = admin.get(key_url(key))
    assert allowed(response) == set()
    assert f"This key is {state}: it can do nothing." in response.content.decode()


def test_key_access_of_keys_that_do_not_act_here_is_not_found(admin, world):
    staging_key, _ = make_key(world.other_workspace, system_role("Admin"), name="staging")
    globex_key, _ = make_key(world.other_workspace_of_other_org, system_role("Admin"), name="g")
    assert admin.get(key_url(staging_key)).status_code == 404
    assert admin.get(key_url(globex_key)).status_code == 404
    assert admin.get(key_url(staging_key, "staging")).status_code == 200


@pytest.mark.parametrize(
    ("persona", "status"),
    [("org_admin", 200), ("workspace_admin", 200), ("editor", 403), ("outsider", 404)],
)
def test_key_access_needs_workspaces_manage(client, world, persona, status):
    key, _ = make_key(world.workspace, system_role("Viewer"), name="k")
    client.force_login(world.persona(persona))
    assert client.get(key_url(key)).status_code == status


# The review equals the resolver: property-based ---------------------------------------------

CODES = sorted(WORKSPACE_PERMISSIONS)
SYSTEM_ROLES = ["Admin", "Editor", "Viewer"]

member_spec = st.fixed_dictionaries(
    {
        "org_role": st.sampled_from(["admin", "member", "member", "viewer"]),
        # A role index into system + custom roles, or None: not a member of the workspace.
        "role": st.one_of(st.none(), st.integers(0, 5)),
        "other_role": st.one_of(st.none(), st.integers(0, 5)),
    }
)
key_spec = st.fixed_dictionaries(
    {
        "role": st.integers(0, 5),
        "scope": st.sampled_from(["here", "elsewhere", "organization"]),
        "state": st.sampled_from(["active", "active", "active", "revoked", "expired"]),
    }
)
org_spec = st.fixed_dictionaries(
    {
        "plan": st.sampled_from(["enterprise", "enterprise", "plus", "developer"]),
        "archived": st.booleans(),
        "custom_roles": st.lists(st.frozensets(st.sampled_from(CODES)), max_size=3),
        "members": st.lists(member_spec, max_size=6),
        "keys": st.lists(key_spec, max_size=4),
    }
)

EXAMPLES = itertools.count()


def build(spec, n):
    """The organization the spec describes (created on the enterprise plan, then set)."""
    org = OrganizationFactory(name=f"Gen {n}", slug=f"gen-{n}", plan="enterprise")
    here = WorkspaceFactory(organization=org, name="here", slug="here")
    elsewhere = WorkspaceFactory(organization=org, name="elsewhere", slug="elsewhere")
    roles = [system_role(name) for name in SYSTEM_ROLES] + [
        RoleFactory(organization=org, name=f"custom {i}", permissions=sorted(codes))
        for i, codes in enumerate(spec["custom_roles"])
    ]
    reviewer = UserFactory(email=f"reviewer{n}@gen.test")
    OrganizationMembershipFactory(user=reviewer, organization=org, org_role="admin")
    people = [reviewer]
    for i, m in enumerate(spec["members"]):
        user = UserFactory(email=f"p{i}-{n}@gen.test")
        membership = OrganizationMembershipFactory(
            user=user, organization=org, org_role=m["org_role"]
        )
        for workspace, index in ((here, m["role"]), (elsewhere, m["other_role"])):
            if index is not None:
                WorkspaceMembershipFactory(
                    org_membership=membership, workspace=workspace, role=roles[index % len(roles)]
                )
        people.append(user)
    raws = {}
    for i, k in enumerate(spec["keys"]):
        key, raw = make_key(
            elsewhere if k["scope"] == "elsewhere" else here,
            roles[k["role"] % len(roles)],
            name=f"k{i}",
            org_scoped=k["scope"] == "organization",
        )
        if k["state"] == "revoked":
            ServiceKey.objects.filter(pk=key.pk).update(revoked_at=timezone.now())
        elif k["state"] == "expired":
            ServiceKey.objects.filter(pk=key.pk).update(expires_at=timezone.now() - DAYS)
        raws[key.audit_label] = (key, raw, k)
    Organization.objects.filter(pk=org.pk).update(plan=spec["plan"])
    Workspace.objects.filter(pk=here.pk).update(archived=spec["archived"])
    org.refresh_from_db()
    here.refresh_from_db()
    return org, here, reviewer, people, raws


@db_examples(25)
@given(spec=org_spec)
def test_the_review_equals_the_resolver_for_every_principal(client, db, spec):
    with transaction.atomic():
        check_generated_organization(client, spec, next(EXAMPLES))
        transaction.set_rollback(True)


def check_generated_organization(client, spec, n):
    org, here, reviewer, people, raws = build(spec, n)
    reviewed = {r.label: r for r in who_has_access.workspace_access(here)}

    # The page and the CSV say the same, and say what the review computed. (An archived
    # workspace's page is refused to everyone: see
    # test_an_archived_workspace_can_still_be_reviewed_by_org_admins.)
    if not here.archived:
        base = f"/o/{org.slug}/w/{here.slug}/access/"
        client.force_login(reviewer)
        page = page_principals(client.get(base))
        export = csv_principals(client.get(base + "export.csv"))
        assert page == export
        assert set(page) == set(reviewed)
        for label, r in reviewed.items():
            assert page[label].permissions == tuple(r.workspace_permissions)
            assert (page[label].role, page[label].why) == (r.role or "", r.reason)

    # People: exactly the org admins and the workspace's members, with the resolver's answer.
    for user in people:
        membership = OrganizationMembership.objects.get(user=user, organization=org)
        expected = effective_permissions(user, here)
        in_workspace = WorkspaceMembership.objects.filter(
            org_membership=membership, workspace=here
        ).exists()
        if membership.org_role == "admin" or in_workspace:
            assert user.email in reviewed, user.email
            assert reviewed[user.email].permissions == expected, user.email
        else:
            assert user.email not in reviewed
            assert not expected & WORKSPACE_PERMISSIONS

    # Keys: exactly the live keys that can act here, with what the key is told by whoami.
    for label, (key, raw, k) in raws.items():
        response = whoami(client, raw, here.pk)
        if k["state"] != "active":
            assert label not in reviewed
            assert response.status_code == 401
        elif k["scope"] == "elsewhere":
            assert label not in reviewed
            assert response.status_code == 403
            assert response.json()["error"] == "workspace_not_accessible"
        else:
            assert response.status_code == 200, response.content
            body = response.json()
            assert body["workspace"]["id"] == str(here.pk)
            assert reviewed[label].permissions == frozenset(body["permissions"]), label
            assert reviewed[label].role == body["role"]


# Constant queries ----------------------------------------------------------------------------

# Pinned: a change here is a change to the review's cost per request.
#   page: session, user, workspace (+ organization), access (read once, then kept in the process:
#     rbac/resolver.console_access), the review's at most four (the combinations of roles
#     counted, then the rows of each section the page reaches: org admins with their tokens,
#     workspace members with users, roles and tokens, keys with roles), sidebar organizations,
#     sidebar workspaces = at most 10
#   CSV (after the page: access kept): session, user, workspace, the review's four = 7
REVIEW_QUERIES, EXPORT_QUERIES = 10, 7


def add_principals(world, n):
    """n more principals: 10% org admins, 60% workspace members (half with a token), 30% keys."""
    org, workspace = world.org, world.workspace
    admins, members = n // 10, n * 6 // 10
    keys_count = n - admins - members
    password = make_password(None)
    users = User.objects.bulk_create(
        [User(email=f"bulk{i:04d}@acme.test", password=password) for i in range(admins + members)]
    )
    memberships = OrganizationMembership.objects.bulk_create(
        [
            OrganizationMembership(
                user=u, organization=org, org_role="admin" if i < admins else "member"
            )
            for i, u in enumerate(users)
        ]
    )
    roles = [system_role("Editor"), system_role("Viewer"), Role.objects.get(name="Annotator")]
    WorkspaceMembership.objects.bulk_create(
        [
            WorkspaceMembership(org_membership=m, workspace=workspace, role=roles[i % 3])
            for i, m in enumerate(memberships[admins:])
        ]
    )
    PersonalAccessToken.objects.bulk_create(
        [
            PersonalAccessToken(
                org_membership=m, name="bulk", digest=f"{i:064x}", hint="lsv2_pt_…bulk"
            )
            for i, m in enumerate(memberships[admins::2])
        ]
    )
    ServiceKey.objects.bulk_create(
        [
            ServiceKey(
                organization=org,
                workspace=None if i % 2 else workspace,
                name=f"bulk key {i:04d}",
                role=roles[i % 3],
                digest=f"{i + 10**6:064x}",
                hint="lsv2_sk_…bulk",
            )
            for i in range(keys_count)
        ]
    )


@pytest.mark.parametrize("n", [10, 1000])
def test_the_review_costs_the_same_at_10_and_1000_principals(admin, world, n):
    add_principals(world, n)
    expected = 6 + n  # the world's six people with access here, and the new principals

    with CaptureQueriesContext(connection) as queries:
        response = admin.get(REVIEW)
    assert len(page_principals(response)) == min(expected, 100)  # 100 a page
    assert f"{expected} principals" in response.content.decode()
    assert len(queries) <= REVIEW_QUERIES, "\n".join(q["sql"] for q in queries.captured_queries)
    if expected > 100:
        last_page = admin.get(REVIEW, {"page": (expected + 99) // 100})
        assert len(page_principals(last_page)) == expected % 100 or 100

    with CaptureQueriesContext(connection) as queries:
        rows = csv_principals(admin.get(EXPORT))
    assert len(rows) == expected
    assert len(queries) == EXPORT_QUERIES, "\n".join(q["sql"] for q in queries.captured_queries)


# The paginated review equals the full computation --------------------------------------------


def full_review(workspace, code, now):
    """The review computed the plain way, as it was before it paginated in SQL: every principal
    row by row through compute_access, then filtered in Python. The oracle of the tests below."""
    org = workspace.organization
    tokens = who_has_access.tokens_in_use(org)

    def person(membership, kind, role, since):
        access = compute_access(
            org_role=membership.org_role,
            plan=org.plan,
            archived=workspace.archived,
            **role_fields(role),
        )
        last_active = who_has_access.person_last_active(membership, tokens)
        token_row = tokens.get(membership.pk, {})
        return who_has_access.Principal(
            kind=kind,
            label=membership.user.email,
            role=access.role,
            reason=REASONS[access.reason].format(plan=org.plan),
            permissions=access.permissions,
            last_active=last_active,
            stale=who_has_access.is_stale(last_active, since, now),
            object_id=str(membership.pk),
            user_id=membership.user.pk,
            tokens=token_row.get("count", 0),
            tokens_last_used=token_row.get("last"),
        )

    everyone = [
        person(m, "org_admin", None, m.created_at)
        for m in OrganizationMembership.objects.filter(
            organization=org, org_role__in=ADMIN_EVERYWHERE_ROLES
        )
        .select_related("user")
        .order_by("user__email")
    ]
    everyone += [
        person(wm.org_membership, "member", wm.role, wm.created_at)
        for wm in workspace.memberships.exclude(org_membership__org_role__in=ADMIN_EVERYWHERE_ROLES)
        .select_related("org_membership__user", "role")
        .order_by("org_membership__user__email")
    ]
    for key in (
        ServiceKey.objects.active()
        .filter(organization=org)
        .filter(Q(workspace=workspace) | Q(workspace__isnull=True))
        .select_related("role", "organization")
        .order_by("name")
    ):
        if key.role is None:
            continue
        # A key's row is built as the review builds it, key by key (who_has_access._key): what
        # this oracle holds the review to for keys is which ones, in what order, and the filter.
        everyone.append(who_has_access._key(key, workspace, now))
    return [p for p in everyone if not code or code in p.permissions]


activity_spec = st.lists(
    st.fixed_dictionaries(
        {
            "last_login": st.one_of(st.none(), st.integers(0, 200)),  # days ago
            "tokens": st.lists(
                st.fixed_dictionaries(
                    {
                        "last_used": st.one_of(st.none(), st.integers(0, 200)),
                        "state": st.sampled_from(["active", "active", "revoked", "expired"]),
                    }
                ),
                max_size=2,
            ),
        }
    ),
    max_size=7,
)


def add_activity(org, people, activity, now):
    """Sign-ins and personal access tokens, in use or not, for the generated people."""
    for i, (user, spec) in enumerate(zip(people, activity, strict=False)):
        if spec["last_login"] is not None:
            User.objects.filter(pk=user.pk).update(last_login=now - spec["last_login"] * DAYS)
        membership = OrganizationMembership.objects.get(user=user, organization=org)
        for j, token in enumerate(spec["tokens"]):
            used = token["last_used"]
            PersonalAccessToken.objects.create(
                org_membership=membership,
                name=f"t{j}",
                digest=f"{org.pk.hex}{i:04d}{j:04d}".ljust(64, "0"),
                hint="lsv2_pt_…gen",
                last_used_at=None if used is None else now - used * DAYS,
                revoked_at=now if token["state"] == "revoked" else None,
                expires_at=now - DAYS if token["state"] == "expired" else None,
            )


@db_examples(30)
@given(
    spec=org_spec,
    activity=activity_spec,
    code=st.sampled_from(["", *CODES]),
    per_page=st.integers(1, 7),
)
def test_every_page_of_the_review_is_the_full_computation_sliced(
    db, spec, activity, code, per_page
):
    with transaction.atomic():
        org, here, _, people, _ = build(spec, next(EXAMPLES))
        now = timezone.now()
        add_activity(org, people, activity, now)
        expected = full_review(here, code, now)

        review = who_has_access.Review(here, code, now=now)
        assert review.count() == len(review) == len(expected)
        assert list(review) == expected  # the CSV: every principal, in order
        paginator = Paginator(who_has_access.Review(here, code, now=now), per_page)
        pages = [paginator.page(n).object_list for n in paginator.page_range]
        assert [p for page in pages for p in page] == expected
        for n, page in zip(paginator.page_range, pages, strict=True):
            assert page == expected[(n - 1) * per_page : n * per_page]
        transaction.set_rollback(True)


def test_a_page_of_the_review_reads_only_that_page(world, django_assert_max_num_queries):
    add_principals(world, 1000)
    now = timezone.now()
    for code in ("", "datasets:delete"):
        wanted = full_review(world.workspace, code, now)
        for start in (0, 50, 100, len(wanted) - 30):
            review = who_has_access.Review(world.workspace, code, now=now)
            # the combinations counted, and the rows of each section the page reaches
            with django_assert_max_num_queries(4) as queries:
                assert len(review) == len(wanted)
                rows = review[start : start + 50]
            assert rows == wanted[start : start + 50]
            sliced = [q["sql"] for q in queries.captured_queries if "LIMIT" in q["sql"]]
            assert sliced  # sliced by the database, not in Python
