"""The demo seed: what `manage.py seed_demo` promises, and that running it again changes nothing."""

import json
from io import StringIO

import pytest
from django.core.management import call_command
from django.urls import reverse

from accesscontrol.accounts.models import User
from accesscontrol.audit.models import AuditEvent
from accesscontrol.organizations.models import Organization, OrganizationMembership
from accesscontrol.rbac.models import Role
from accesscontrol.rbac.permissions import READ_PERMISSIONS, WORKSPACE_PERMISSIONS
from accesscontrol.rbac.resolver import effective_permissions, resolve_access
from accesscontrol.workspaces.models import Workspace, WorkspaceMembership

# The five logins of the seed: their organization, their role in it, where signing in lands.
LOGINS = {
    "admin@acme.test": ("acme", "admin", "/o/acme/w/production/"),
    "editor@acme.test": ("acme", "member", "/o/acme/w/production/"),
    "viewer@acme.test": ("acme", "member", "/o/acme/w/production/"),
    "annotator@acme.test": ("acme", "member", "/o/acme/w/production/"),
    "admin@globex.test": ("globex", "admin", "/o/globex/w/default/"),
}


def seed(*args) -> str:
    out = StringIO()
    call_command("seed_demo", *args, stdout=out)
    return out.getvalue()


def counts() -> dict[str, int]:
    return {
        "users": User.objects.count(),
        "organizations": Organization.objects.count(),
        "org_memberships": OrganizationMembership.objects.count(),
        "workspaces": Workspace.objects.count(),
        "workspace_memberships": WorkspaceMembership.objects.count(),
        "roles": Role.objects.count(),
        "audit_events": AuditEvent.objects.count(),
    }


@pytest.fixture
def seeded(db):
    seed()


def workspace(org_slug, slug) -> Workspace:
    return Workspace.objects.select_related("organization").get(
        organization__slug=org_slug, slug=slug
    )


def access_of(email, org_slug, workspace_slug):
    ws = workspace(org_slug, workspace_slug)
    return resolve_access(User.objects.get(email=email), ws.organization_id, ws)


def test_seed_twice_changes_nothing(db):
    before = counts()
    seed()
    first = counts()
    seed()
    assert counts() == first
    assert first["users"] == before["users"] + 5
    assert first["organizations"] == before["organizations"] + 2
    assert first["audit_events"] > before["audit_events"]


def test_seed_runs_again_after_partial_data(db):
    # Someone already made the Acme admin by hand; the seed adopts the account.
    User.objects.create_user("admin@acme.test", "a-password-of-their-own", full_name="Ada")
    seed()
    assert User.objects.filter(email="admin@acme.test").count() == 1
    assert OrganizationMembership.objects.get(user__email="admin@acme.test").org_role == "admin"


def test_seed_creates_acme_enterprise_with_production_and_staging(seeded):
    acme = Organization.objects.get(slug="acme")
    assert acme.name == "Acme"
    assert acme.plan == "enterprise"
    slugs = sorted(acme.workspaces.values_list("slug", flat=True))
    assert slugs == ["production", "staging"]


def test_seed_creates_globex_on_plus(seeded):
    globex = Organization.objects.get(slug="globex")
    assert globex.name == "Globex"
    assert globex.plan == "plus"
    assert globex.workspaces.exists()


@pytest.mark.parametrize("email", LOGINS)
def test_each_persona_belongs_to_exactly_its_organization(seeded, email):
    org_slug, org_role, _ = LOGINS[email]
    memberships = list(
        OrganizationMembership.objects.filter(user__email=email).values_list(
            "organization__slug", "org_role"
        )
    )
    assert memberships == [(org_slug, org_role)]


@pytest.mark.parametrize(
    ("email", "workspace_slug", "role", "reason"),
    [
        ("admin@acme.test", "production", "Admin", "org_admin"),
        ("admin@acme.test", "staging", "Admin", "org_admin"),
        ("editor@acme.test", "production", "Editor", "membership"),
        ("editor@acme.test", "staging", "Viewer", "membership"),
        ("viewer@acme.test", "production", "Viewer", "membership"),
        ("viewer@acme.test", "staging", None, "not_workspace_member"),
        ("annotator@acme.test", "production", "Annotator", "membership"),
        ("annotator@acme.test", "staging", None, "not_workspace_member"),
    ],
)
def test_acme_personas_hold_their_documented_roles(seeded, email, workspace_slug, role, reason):
    access = access_of(email, "acme", workspace_slug)
    assert access.role == role
    assert access.reason == reason


def test_editor_can_create_in_production_but_only_read_in_staging(seeded):
    editor = User.objects.get(email="editor@acme.test")
    production = effective_permissions(editor, workspace("acme", "production"))
    staging = effective_permissions(editor, workspace("acme", "staging"))
    assert "datasets:create" in production
    assert "workspaces:manage" not in production
    assert "datasets:create" not in staging
    assert "datasets:read" in staging


def test_viewer_is_read_only_in_production(seeded):
    codes = effective_permissions(
        User.objects.get(email="viewer@acme.test"), workspace("acme", "production")
    )
    assert "datasets:read" in codes
    assert "workspaces:read" in codes
    # Read-only in the workspace (creating a personal token is an org-member right, not this).
    assert codes & WORKSPACE_PERMISSIONS == READ_PERMISSIONS


def test_annotator_is_a_custom_role_that_writes_feedback_but_not_datasets(seeded):
    role = Role.objects.get(name="Annotator")
    assert role.organization.slug == "acme"
    assert not role.is_system

    codes = effective_permissions(
        User.objects.get(email="annotator@acme.test"), workspace("acme", "production")
    )
    assert "feedback:create" in codes
    assert "annotation-queues:update" in codes
    assert "datasets:read" in codes
    assert "datasets:create" not in codes
    assert "runs:delete" not in codes
    assert "workspaces:manage-members" not in codes


def test_globex_admin_has_nothing_in_acme(seeded):
    gus = User.objects.get(email="admin@globex.test")
    assert effective_permissions(gus, workspace("acme", "production")) == frozenset()


def test_seed_records_its_changes_in_the_audit_log(seeded):
    acme = Organization.objects.get(slug="acme")
    actions = set(AuditEvent.objects.for_organization(acme).values_list("action", flat=True))
    assert {"organization.created", "workspace.created", "workspace_member.added"} <= actions


def test_json_output_lists_the_five_logins(db):
    payload = json.loads(seed("--json"))
    logins = payload["logins"]
    organizations = {email: org for email, (org, _, _) in LOGINS.items()}
    assert {login["email"]: login["organization"] for login in logins} == organizations
    assert all(login["password"] for login in logins)
    assert all(login["role"] for login in logins)


def test_json_output_is_the_same_on_a_second_run(db):
    assert json.loads(seed("--json")) == json.loads(seed("--json"))


def test_plain_output_lists_every_login(db):
    out = seed()
    for email in LOGINS:
        assert email in out


@pytest.mark.parametrize("email", LOGINS)
def test_the_demo_password_signs_in_through_the_login_view(client, db, email):
    landing = LOGINS[email][2]
    logins = {login["email"]: login for login in json.loads(seed("--json"))["logins"]}
    response = client.post(
        reverse("login"),
        {"login": email, "password": logins[email]["password"]},
        follow=True,
    )
    assert response.status_code == 200
    assert response.redirect_chain[-1][0] == landing
    assert client.session["_auth_user_id"] == str(User.objects.get(email=email).pk)


def test_a_wrong_password_does_not_sign_in_a_demo_user(client, seeded):
    response = client.post(
        reverse("login"), {"login": "editor@acme.test", "password": "not-the-demo-password"}
    )
    assert response.status_code == 400
    assert "_auth_user_id" not in client.session
