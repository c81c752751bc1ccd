"""The REST API under /api/v1/: every endpoint against every kind of key (issue 3, §6-7).

The expectations are derived, not listed: a table of endpoints with the permission each one
declares (read from the code, and checked against the declarations below), a table of principals
with the permissions they should hold (worked out by hand from ARCHITECTURE §5 and checked against
GET /auth/whoami), and one rule that turns the two into a status and an error body.
"""

import hashlib
import json
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

import pytest
from django.db import connection

from accesscontrol.access_requests.models import AccessRequest
from accesscontrol.access_requests.services import create_access_request
from accesscontrol.apikeys.models import PersonalAccessToken, ServiceKey
from accesscontrol.apikeys.services import create_personal_access_token
from accesscontrol.audit.models import AuditEvent
from accesscontrol.organizations.models import Invitation, OrganizationMembership
from accesscontrol.rbac.actor import Actor
from accesscontrol.rbac.gate import PUBLIC
from accesscontrol.rbac.models import Role
from accesscontrol.sso.models import EmailDomain, OrganizationSso
from accesscontrol.sso.services import save_sso
from accesscontrol.workspaces.models import Workspace, WorkspaceMembership
from tests.conftest import Snapshot, the_world
from tests.factories import (
    EDITOR,
    ORG_ADMIN_CODES,
    ORG_MANAGE,
    ORG_PATS,
    ORG_READ,
    PRINCIPALS,
    READ,
    WS,
    Caller,
    OrganizationMembershipFactory,
    PrincipalSpec,
    RoleFactory,
    UserFactory,
    WorkspaceMembershipFactory,
    as_member,
    make_caller,
    pat_for,
    service_key_for,
    system_role,
)
from tests.support.api import api_call, api_set_member_role

KEY_RE = re.compile(r"^lsv2_(pt|sk)_[0-9a-f]{32}_[0-9a-f]{8}$")


# ---------------------------------------------------------------------------------------------
# The objects the id-addressed endpoints act on.


@dataclass
class Targets:
    world: object
    role: Role  # an unused custom role of Acme
    member: WorkspaceMembership  # someone's Viewer membership in 'production'
    org_member: OrganizationMembership  # member_without_workspace's Acme membership
    service_key: ServiceKey  # an active service key of 'production'
    access_request: AccessRequest  # member_without_workspace asks for Viewer in 'production'
    email_domain: EmailDomain  # a domain Acme claimed
    token: PersonalAccessToken | None = None  # the caller's own second token, if it has a user
    caller: Caller | None = None
    extra: dict = field(default_factory=dict)

    def ids(self, path) -> dict:
        """What each placeholder of the table's `path` names (`member_id`: a workspace's member,
        or under /orgs/ the organization's)."""
        member = self.org_member if path.startswith("/orgs/") else self.member
        ids = {
            "role_id": self.role.pk,
            "workspace_id": self.world.workspace.pk,
            "member_id": member.pk,
            "key_id": self.service_key.pk,
            "request_id": self.access_request.pk,
            "domain_id": self.email_domain.pk,
        }
        if "{token_id}" in path:  # the caller's own, or for a service key someone else's
            ids["token_id"] = self.token.pk if self.token else self.extra["someone_token"]
        return ids


def _build_targets() -> Targets:
    world = the_world.result  # the world's objects as built: the rows every restore puts back
    role = RoleFactory(organization=world.org, name="Spare", permissions=["datasets:read"])
    target_user = UserFactory(email="target@example.test")
    org_membership = OrganizationMembershipFactory(user=target_user, organization=world.org)
    member = WorkspaceMembershipFactory(
        org_membership=org_membership, workspace=world.workspace, role=system_role("Viewer")
    )
    service_key_for(world.workspace, "Viewer")
    victim = ServiceKey.objects.get(workspace=world.workspace, name="Viewer key")
    ServiceKey.objects.filter(pk=victim.pk).update(name="victim key")
    victim.refresh_from_db()
    # Acme's single sign-on (OpenID Connect) and a domain it claimed (as if its admin had).
    save_sso(
        actor=Actor.system("targets"),
        organization=world.org,
        protocol="oidc",
        oidc_issuer="https://idp.example.test",
        oidc_client_id="acme",
        oidc_client_secret="acme-oidc-secret",
    )
    email_domain = EmailDomain.objects.create(organization=world.org, domain="acme.example.test")
    return Targets(
        email_domain=email_domain,
        world=None,
        role=role,
        member=member,
        org_member=OrganizationMembership.objects.get(
            user=world.member_without_workspace, organization=world.org
        ),
        service_key=victim,
        access_request=create_access_request(
            actor=Actor.for_user(world.member_without_workspace, world.org),
            workspace=world.workspace,
            role=system_role("Viewer"),
            permission="datasets:read",
            reason="the matrix asks",
        ),
    )


# Built once a worker, on top of the world, and put back for each test like the world itself.
the_targets = Snapshot(_build_targets)


@pytest.fixture
def targets(world) -> Targets:
    restored = the_targets.restore()
    restored.world = world
    return restored


def db_state() -> dict:
    """Everything an endpoint could change (last_used_at aside: every request may touch it)."""
    tables = {
        "roles": Role.objects.values_list(
            "pk", "organization", "name", "description", "permissions"
        ),
        "workspaces": Workspace.objects.values_list(
            "pk", "organization", "name", "slug", "archived"
        ),
        "ws_members": WorkspaceMembership.objects.values_list(
            "pk", "org_membership", "workspace", "role"
        ),
        "org_members": OrganizationMembership.objects.values_list(
            "pk", "user", "organization", "org_role"
        ),
        "invitations": Invitation.objects.values_list(
            "pk", "email", "org_role", "cancelled_at", "accepted_at"
        ),
        "service_keys": ServiceKey.objects.values_list(
            "pk", "name", "workspace", "role", "revoked_at"
        ),
        "pats": PersonalAccessToken.objects.values_list(
            "pk", "name", "org_membership", "revoked_at"
        ),
        "access_requests": AccessRequest.objects.values_list(
            "pk", "requester", "workspace", "status"
        ),
    }
    if connection.vendor != "postgresql":
        state = {name: sorted(map(repr, rows)) for name, rows in tables.items()}
        return {**state, "audit": AuditEvent.objects.count()}
    # On PostgreSQL in one statement (this runs twice in each of some 800 tests): each table's
    # rows as text, sorted, then the audit count.
    columns, params = [], []
    for rows in tables.values():
        query, query_params = rows.query.sql_with_params()
        columns.append(
            f"(SELECT coalesce(array_agg(r::text ORDER BY r::text), '{{}}') FROM ({query}) r)"
        )
        params += query_params
    columns.append(f"(SELECT count(*) FROM {AuditEvent._meta.db_table})")
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {', '.join(columns)}", params)
        *state, audit = cursor.fetchone()
    return {**dict(zip(tables, state, strict=True)), "audit": audit}


# ---------------------------------------------------------------------------------------------
# The endpoints: what each declares, a valid request, and what success must have done.


def _sha(raw):
    return hashlib.sha256(raw.encode()).hexdigest()


def check_whoami(t, body):
    spec = t.caller.spec
    assert set(body["permissions"]) == spec.perms
    assert body["role"] == spec.role
    assert body["principal"] == t.caller.label
    assert body["organization"]["id"] == str(t.world.org.pk)
    expected_ws = str(t.world.workspace.pk) if spec.has_workspace else None
    assert (body["workspace"] or {}).get("id") == expected_ws
    assert body["kind"] == ("personal_access_token" if spec.kind == "pat" else "service_key")
    assert t.caller.key not in json.dumps(body)


def check_permissions(t, body):
    codes = {code for resource in body["workspace"] for code in resource["codes"]}
    assert codes == WS
    assert set(body["organization"]) == ORG_ADMIN_CODES
    assert {k: set(v) for k, v in body["system_roles"].items()} == {
        "Admin": WS,
        "Editor": EDITOR,
        "Viewer": READ,
    }


def check_audit_listed(t, body):
    assert body["events"], "the fixture's changes are in the log"
    orgs = {e["organization_id"] for e in body["events"]}
    assert orgs == {str(t.world.org.pk)}, "only this organization's events"


def check_audit_exported(t, lines):
    """JSON lines of OCSF API Activity (tests/audit/test_ocsf_export.py validates each)."""
    assert lines, "the fixture's changes are in the export"
    events = [json.loads(line) for line in lines]
    assert {e["class_uid"] for e in events} == {6003}
    orgs = {e["unmapped"]["original_audit_log"]["organization_id"] for e in events}
    assert orgs == {str(t.world.org.pk)}, "only this organization's events"


def check_roles_listed(t, body):
    names = [r["name"] for r in body]
    assert {"Admin", "Editor", "Viewer", "Annotator", "Spare"} <= set(names)
    assert "Globex role" not in names


def check_role_created(t, body):
    role = Role.objects.get(organization=t.world.org, name="Matrix role")
    assert str(role.pk) == body["id"]
    assert role.permissions == ["datasets:read", "runs:read"]


def check_role_updated(t, body):
    t.role.refresh_from_db()
    assert t.role.permissions == ["datasets:read", "feedback:create"]
    assert body["permissions"] == ["datasets:read", "feedback:create"]


def check_role_deleted(t, body):
    assert not Role.objects.filter(pk=t.role.pk).exists()


def check_workspaces_listed(t, body):
    ids = {w["id"] for w in body}
    assert str(t.world.workspace.pk) in ids
    assert str(t.world.other_workspace_of_other_org.pk) not in ids


def check_workspace_created(t, body):
    ws = Workspace.objects.get(organization=t.world.org, name="Matrix workspace")
    assert str(ws.pk) == body["id"]


def check_workspace_read(t, body):
    assert body["id"] == str(t.world.workspace.pk)
    assert body["name"] == "production"


def check_workspace_renamed(t, body):
    t.world.workspace.refresh_from_db()
    assert t.world.workspace.name == "production (renamed)"


def check_workspace_archived(t, body):
    t.world.workspace.refresh_from_db()
    assert t.world.workspace.archived is True
    assert body["archived"] is True


def check_members_listed(t, body):
    emails = {m["email"] for m in body}
    assert "target@example.test" in emails
    assert t.world.outsider.email not in emails


def check_member_added(t, body):
    membership = WorkspaceMembership.objects.get(
        org_membership=t.org_member, workspace=t.world.workspace
    )
    assert membership.role == system_role("Viewer")
    assert body["id"] == str(membership.pk)


def check_member_role_changed(t, body):
    t.member.refresh_from_db()
    assert t.member.role == system_role("Editor")
    assert body["role_name"] == "Editor"


def check_member_removed(t, body):
    assert not WorkspaceMembership.objects.filter(pk=t.member.pk).exists()


def check_org_members_listed(t, body):
    emails = {m["email"] for m in body["members"]}
    assert t.world.member_without_workspace.email in emails
    assert t.world.outsider.email not in emails
    assert body["pending"] == []


def check_invited(t, body):
    invitation = Invitation.objects.get(organization=t.world.org, email="invitee@example.test")
    assert invitation.org_role == "member"
    assert invitation.accepted_at is None and invitation.cancelled_at is None
    assert body["id"] == str(invitation.pk)


def check_org_role_changed(t, body):
    t.org_member.refresh_from_db()
    assert t.org_member.org_role == "viewer"


def check_org_member_removed(t, body):
    assert not OrganizationMembership.objects.filter(pk=t.org_member.pk).exists()


def check_keys_listed(t, body):
    by_id = {k["id"]: k for k in body}
    assert str(t.service_key.pk) in by_id
    listed = by_id[str(t.service_key.pk)]
    assert listed["hint"] == t.service_key.hint
    assert listed["role"] == "Viewer"
    assert listed["created_by"] == "system"
    assert listed["status"] == "active"
    assert all("key" not in k for k in body)
    assert t.caller.key not in json.dumps(body)


def check_key_created(t, body):
    raw = body["key"]
    assert KEY_RE.match(raw) and raw.startswith("lsv2_sk_")
    key = ServiceKey.objects.get(pk=body["id"])
    assert key.name == "matrix key"
    assert key.workspace_id == t.world.workspace.pk
    assert key.role.name == "Admin"
    assert key.digest == _sha(raw)
    assert key.created_by_label == t.caller.label
    assert raw not in repr(ServiceKey.objects.filter(pk=key.pk).values().get())


def check_key_revoked(t, body):
    t.service_key.refresh_from_db()
    assert t.service_key.revoked_at is not None
    assert body["status"] == "revoked"


def check_tokens_listed(t, body):
    ids = {tok["id"] for tok in body}
    assert str(t.token.pk) in ids
    assert all("key" not in tok for tok in body)
    assert t.caller.key not in json.dumps(body)
    own = PersonalAccessToken.objects.filter(org_membership__user=t.caller.user)
    assert ids == {str(pk) for pk in own.values_list("pk", flat=True)}


def check_token_created(t, body):
    raw = body["key"]
    assert KEY_RE.match(raw) and raw.startswith("lsv2_pt_")
    token = PersonalAccessToken.objects.get(pk=body["id"])
    assert token.org_membership.user == t.caller.user
    assert token.name == "matrix token"
    assert token.digest == _sha(raw)


def check_token_revoked(t, body):
    t.token.refresh_from_db()
    assert t.token.revoked_at is not None
    assert body["status"] == "revoked"


def check_key_rotated(t, body):
    t.service_key.refresh_from_db()
    successor = ServiceKey.objects.get(pk=body["id"])
    assert t.service_key.rotated_to_id == successor.pk
    assert body["rotated_from"]["id"] == str(t.service_key.pk)
    assert successor.digest == _sha(body["key"]) and KEY_RE.match(body["key"])
    assert (successor.name, successor.role_id) == (t.service_key.name, t.service_key.role_id)


def check_token_rotated(t, body):
    t.token.refresh_from_db()
    successor = PersonalAccessToken.objects.get(pk=body["id"])
    assert t.token.rotated_to_id == successor.pk
    assert successor.org_membership_id == t.token.org_membership_id
    assert successor.digest == _sha(body["key"]) and body["key"].startswith("lsv2_pt_")


def check_self_revoked(t, body):
    model = PersonalAccessToken if t.caller.key.startswith("lsv2_pt_") else ServiceKey
    key = model.objects.get(digest=_sha(t.caller.key))
    assert key.revoked_at is not None and key.revoked_reason == "self"
    assert body["hint"] == key.hint


def check_ip_allow_list_read(t, body):
    assert body == {"ip_allow_list": [], "your_address": "127.0.0.1"}


def check_ip_allow_list_set(t, body):
    expected = ["127.0.0.1/32", "2001:db8::/32"]
    assert body["ip_allow_list"] == expected
    t.world.org.refresh_from_db()
    assert t.world.org.ip_allow_list == expected


def check_key_ip_allow_list_set(t, body):
    t.service_key.refresh_from_db()
    assert t.service_key.ip_allow_list == body["ip_allow_list"] == ["127.0.0.0/8"]


def check_sso_read(t, body):
    assert body["configured"] is True
    assert (body["protocol"], body["oidc_client_id"]) == ("oidc", "acme")
    assert body["oidc_client_secret_set"] is True
    assert "acme-oidc-secret" not in json.dumps(body)  # write-only
    assert [d["domain"] for d in body["domains"]] == ["acme.example.test"]


def check_sso_set(t, body):
    sso = OrganizationSso.objects.get(organization=t.world.org)
    assert body["oidc_issuer"] == sso.oidc_issuer == "https://login.example.test"
    assert sso.oidc_client_secret == "acme-oidc-secret"  # left out: kept
    assert sso.social_app.settings["server_url"] == "https://login.example.test"
    assert "acme-oidc-secret" not in json.dumps(body)


def check_sso_removed(t, body):
    assert not OrganizationSso.objects.filter(organization=t.world.org).exists()


def check_domain_claimed(t, body):
    assert body["domain"] == "example.test"
    assert EmailDomain.objects.get(domain="example.test").organization == t.world.org


def check_domain_released(t, body):
    assert not EmailDomain.objects.filter(pk=t.email_domain.pk).exists()


def check_access_request_created(t, body):
    made = AccessRequest.objects.get(pk=body["id"])
    assert made.requester.user == t.caller.user and made.workspace == t.world.other_workspace
    assert body["status"] == "pending" and body["role_name"] == "Spare"


def check_access_requests_listed(t, body):
    assert isinstance(body, list)
    orgs = {AccessRequest.objects.get(pk=r["id"]).organization_id for r in body}
    assert orgs <= {t.world.org.pk}


def check_access_request_read(t, body):
    assert body["id"] == str(t.access_request.pk) and body["status"] == "pending"


def check_access_request_approved(t, body):
    assert body["status"] == "approved" and body["granted"] == "Viewer"
    membership = WorkspaceMembership.objects.get(
        org_membership=t.org_member, workspace=t.world.workspace
    )
    assert membership.role.name == "Viewer"
    assert membership.expires_at is not None
    assert body["expires_at"] is not None


def check_access_request_denied(t, body):
    assert body["status"] == "denied" and body["note"] == "not now"
    assert not WorkspaceMembership.objects.filter(org_membership=t.org_member).exists()


@dataclass(frozen=True)
class Endpoint:
    method: str
    path: str  # as declared, with ninja's parameter names
    required: str | None  # None: any valid key (@authenticated)
    status: int
    check: Callable
    body: Callable | None = None
    workspace_param: bool = False  # the workspace is addressed by path, not selected
    user_only: bool = False  # refuses principals without a user (service keys)

    @property
    def id(self):
        return f"{self.method} {self.path}"

    @property
    def is_write(self):
        return self.method != "GET"

    def url(self, t):
        return self.path.format(**t.ids(self.path))


ENDPOINTS = [
    Endpoint("GET", "/auth/whoami", None, 200, check_whoami),
    Endpoint("GET", "/permissions", None, 200, check_permissions),
    Endpoint("GET", "/orgs/current/roles", ORG_READ, 200, check_roles_listed),
    Endpoint(
        "POST",
        "/orgs/current/roles",
        ORG_MANAGE,
        201,
        check_role_created,
        body=lambda t: {"name": "Matrix role", "permissions": ["runs:read", "datasets:read"]},
    ),
    Endpoint(
        "PATCH",
        "/orgs/current/roles/{role_id}",
        ORG_MANAGE,
        200,
        check_role_updated,
        body=lambda t: {"permissions": ["feedback:create", "datasets:read"]},
    ),
    Endpoint(
        "DELETE",
        "/orgs/current/roles/{role_id}",
        ORG_MANAGE,
        204,
        check_role_deleted,
    ),
    Endpoint("GET", "/workspaces", ORG_READ, 200, check_workspaces_listed),
    Endpoint(
        "POST",
        "/workspaces",
        ORG_MANAGE,
        201,
        check_workspace_created,
        body=lambda t: {"name": "Matrix workspace"},
    ),
    Endpoint(
        "GET",
        "/workspaces/{workspace_id}",
        "workspaces:read",
        200,
        check_workspace_read,
        workspace_param=True,
    ),
    Endpoint(
        "PATCH",
        "/workspaces/{workspace_id}",
        "workspaces:manage",
        200,
        check_workspace_renamed,
        body=lambda t: {"name": "production (renamed)"},
        workspace_param=True,
    ),
    Endpoint(
        "DELETE",
        "/workspaces/{workspace_id}",
        ORG_MANAGE,
        200,
        check_workspace_archived,
        workspace_param=True,
    ),
    Endpoint("GET", "/workspaces/current/members", "workspaces:read", 200, check_members_listed),
    Endpoint(
        "POST",
        "/workspaces/current/members",
        "workspaces:manage-members",
        201,
        check_member_added,
        body=lambda t: {
            "email": t.world.member_without_workspace.email,
            "role_id": str(system_role("Viewer").pk),
        },
    ),
    Endpoint(
        "PATCH",
        "/workspaces/current/members/{member_id}",
        "workspaces:manage-members",
        200,
        check_member_role_changed,
        body=lambda t: {"role_id": str(system_role("Editor").pk)},
    ),
    Endpoint(
        "DELETE",
        "/workspaces/current/members/{member_id}",
        "workspaces:manage-members",
        204,
        check_member_removed,
    ),
    Endpoint("GET", "/orgs/current/members", ORG_READ, 200, check_org_members_listed),
    Endpoint(
        "POST",
        "/orgs/current/members",
        ORG_MANAGE,
        201,
        check_invited,
        body=lambda t: {"email": "invitee@example.test", "org_role": "member"},
    ),
    Endpoint(
        "PATCH",
        "/orgs/current/members/{member_id}",
        ORG_MANAGE,
        200,
        check_org_role_changed,
        body=lambda t: {"org_role": "viewer"},
    ),
    Endpoint(
        "DELETE",
        "/orgs/current/members/{member_id}",
        ORG_MANAGE,
        204,
        check_org_member_removed,
    ),
    Endpoint("GET", "/api-key", "workspaces:manage", 200, check_keys_listed),
    Endpoint(
        "POST",
        "/api-key",
        "workspaces:manage",
        201,
        check_key_created,
        body=lambda t: {"name": "matrix key"},
    ),
    Endpoint(
        "DELETE",
        "/api-key/{key_id}",
        "workspaces:manage",
        200,
        check_key_revoked,
    ),
    Endpoint(
        "PUT",
        "/api-key/{key_id}/ip-allow-list",
        "workspaces:manage",
        200,
        check_key_ip_allow_list_set,
        body=lambda t: {"ip_allow_list": ["127.0.0.0/8"]},
    ),
    Endpoint("GET", "/orgs/current/ip-allow-list", ORG_MANAGE, 200, check_ip_allow_list_read),
    Endpoint(
        "PUT",
        "/orgs/current/ip-allow-list",
        ORG_MANAGE,
        200,
        check_ip_allow_list_set,
        body=lambda t: {"ip_allow_list": ["127.0.0.1", "2001:DB8::/32"]},
    ),
    Endpoint("GET", "/orgs/current/sso", ORG_MANAGE, 200, check_sso_read),
    Endpoint(
        "PUT",
        "/orgs/current/sso",
        ORG_MANAGE,
        200,
        check_sso_set,
        body=lambda t: {
            "protocol": "oidc",
            "oidc_issuer": "https://login.example.test",
            "oidc_client_id": "acme",
        },
    ),
    Endpoint("DELETE", "/orgs/current/sso", ORG_MANAGE, 204, check_sso_removed),
    Endpoint(
        "POST",
        "/orgs/current/sso/domains",
        ORG_MANAGE,
        201,
        check_domain_claimed,
        body=lambda t: {"domain": "example.test"},
        user_only=True,  # the claimer's own email must be at the domain
    ),
    Endpoint(
        "DELETE",
        "/orgs/current/sso/domains/{domain_id}",
        ORG_MANAGE,
        204,
        check_domain_released,
    ),
    Endpoint(
        "GET",
        "/orgs/current/personal-access-tokens",
        ORG_READ,
        200,
        check_tokens_listed,
        user_only=True,
    ),
    Endpoint(
        "POST",
        "/orgs/current/personal-access-tokens",
        ORG_PATS,
        201,
        check_token_created,
        body=lambda t: {"name": "matrix token"},
        user_only=True,
    ),
    Endpoint(
        "DELETE",
        "/orgs/current/personal-access-tokens/{token_id}",
        ORG_READ,
        200,
        check_token_revoked,
        user_only=True,
    ),
    Endpoint(
        "POST",
        "/api-key/{key_id}/rotate",
        "workspaces:manage",
        201,
        check_key_rotated,
        body=lambda t: {"grace_hours": 24},
    ),
    Endpoint(
        "POST",
        "/orgs/current/personal-access-tokens/{token_id}/rotate",
        ORG_PATS,
        201,
        check_token_rotated,
        body=lambda t: {"grace_hours": 1},
        user_only=True,
    ),
    Endpoint("DELETE", "/auth/self", None, 200, check_self_revoked),
    Endpoint("GET", "/audit-logs", ORG_MANAGE, 200, check_audit_listed),
    Endpoint("GET", "/audit-logs/export", ORG_MANAGE, 200, check_audit_exported),
    Endpoint(
        "POST",
        "/access-requests",
        ORG_READ,
        201,
        check_access_request_created,
        body=lambda t: {
            "workspace_id": str(t.world.other_workspace.pk),
            "role_id": str(t.role.pk),
            "reason": "for the matrix",
        },
        user_only=True,
    ),
    Endpoint("GET", "/access-requests", ORG_READ, 200, check_access_requests_listed),
    Endpoint(
        "GET",
        "/access-requests/{request_id}",
        "workspaces:manage-members",
        200,
        check_access_request_read,
    ),
    Endpoint(
        "POST",
        "/access-requests/{request_id}/approve",
        "workspaces:manage-members",
        200,
        check_access_request_approved,
        body=lambda t: {"expiry": "1h"},
    ),
    Endpoint(
        "POST",
        "/access-requests/{request_id}/deny",
        "workspaces:manage-members",
        200,
        check_access_request_denied,
        body=lambda t: {"note": "not now"},
    ),
]
ENDPOINT_BY_ID = {e.id: e for e in ENDPOINTS}


def expectation(endpoint: Endpoint, spec: PrincipalSpec):
    """(status, error) this principal must get from this endpoint, from the two tables alone."""
    if endpoint.required is None:
        return endpoint.status, None
    if endpoint.required not in spec.perms_for(endpoint):
        in_workspace = spec.has_workspace or endpoint.workspace_param
        if not in_workspace and endpoint.required in WS:
            return 403, "org_scoped_key_requires_workspace"
        return 403, "permission_denied"
    if endpoint.user_only and spec.is_service_key:
        return 403, "no_user"
    return endpoint.status, None


def assert_denied(resp, *, required, caller, role, workspace):
    """The self-explaining 403 of ARCHITECTURE §6."""
    body = resp.json()
    assert resp.status_code == 403, body
    assert body["error"] == "permission_denied", body
    assert body["required"] == required, body
    assert body["principal"] == caller.label, body
    assert body["role"] == role, body
    assert body["workspace"] == (str(workspace.pk) if workspace else None), body
    assert body["detail"], body


def prepare(world, targets, spec):
    caller = make_caller(world, spec)
    targets.caller = caller
    if caller.user is not None:
        targets.token = as_member(
            caller.user,
            world.org,
            lambda: create_personal_access_token(
                user=caller.user, organization=world.org, name="spare token"
            )[0],
        )
    else:
        someone = create_personal_access_token(
            user=world.editor, organization=world.org, name="editor's token"
        )[0]
        targets.extra["someone_token"] = someone.pk
    return caller


# ---------------------------------------------------------------------------------------------
# The tables themselves are checked, so the matrix cannot drift from the code.


RESOURCES_PACKAGE = "accesscontrol.resources."  # api.py, api_hub.py, api_sharing.py
RESOURCES_TAG = "(LangSmith-compatible)"  # resources, prompt hub, share links


def test_endpoint_table_matches_every_declared_operation():
    from accesscontrol.api.api import operations
    from accesscontrol.rbac.gate import rule_of

    declared, public = {}, set()
    for path, method, view in operations():
        if view.__module__.startswith(RESOURCES_PACKAGE):
            continue  # the LangSmith-compatible resources have their own test module
        rule = rule_of(view)
        assert rule is not None, f"{method} {path} declares nothing"
        if rule.kind == PUBLIC:
            public.add(f"{method} {path}")
            continue
        declared[f"{method} {path}"] = (
            rule.codes[0] if rule.codes else None,
            rule.workspace_param is not None,
        )
    table = {e.id: (e.required, e.workspace_param) for e in ENDPOINTS}
    assert table == declared
    assert len(ENDPOINTS) == 43
    # Taking no key at all, it has no row here: signed reports, tests/apikeys/test_leak_reports.py
    assert public == {"POST /secret-scanning/reports"}


@pytest.mark.parametrize("spec", PRINCIPALS, ids=lambda s: s.name)
def test_whoami_states_the_expected_permission_set(client, world, spec):
    caller = make_caller(world, spec)
    resp = api_call(client, "GET", "/auth/whoami", caller.key, tenant=caller.tenant)
    assert resp.status_code == 200, resp.content
    body = resp.json()
    assert set(body["permissions"]) == spec.perms
    assert body["role"] == spec.role
    assert body["principal"] == caller.label
    expected_ws = str(world.workspace.pk) if spec.has_workspace else None
    assert (body["workspace"] or {}).get("id") == expected_ws
    if spec.kind == "pat":
        assert body["user_email"] == caller.user.email
    else:
        assert body["user_email"] is None


# ---------------------------------------------------------------------------------------------
# The matrix: every endpoint x every principal.


@pytest.mark.parametrize("spec", PRINCIPALS, ids=lambda s: s.name)
@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=lambda e: e.id)
def test_matrix(client, world, targets, endpoint, spec):
    caller = prepare(world, targets, spec)
    before = db_state()
    body = endpoint.body(targets) if endpoint.body else None
    resp = api_call(
        client, endpoint.method, endpoint.url(targets), caller.key, tenant=caller.tenant, json=body
    )
    status, error = expectation(endpoint, spec)
    assert resp.status_code == status, resp.content
    after = db_state()

    if error is None:
        if resp.streaming:  # an export: JSON lines
            payload = b"".join(resp.streaming_content).decode().splitlines()
        else:
            payload = resp.json() if resp.content else None
        endpoint.check(targets, payload)
        if endpoint.is_write:
            assert after != before
            assert after["audit"] > before["audit"], "a change that left no audit event"
        else:
            assert after == before
        return

    assert after == before, "a refused request changed something"
    if error == "permission_denied":
        ws = world.workspace if (spec.has_workspace or endpoint.workspace_param) else None
        assert_denied(resp, required=endpoint.required, caller=caller, role=spec.role, workspace=ws)
    elif error == "org_scoped_key_requires_workspace":
        data = resp.json()
        # The langsmith SDK's code; ours before it stays in the body as an alias.
        assert data["error"] == "org_scoped_key_requires_workspace", data
        assert data["alias"] == "workspace_required", data
        assert data["required"] == endpoint.required
        assert data["principal"] == caller.label
        assert "X-Tenant-Id" in data["detail"]
    else:  # a service key on an endpoint about one's own person
        data = resp.json()
        assert data["error"] == "permission_denied", data
        assert "service key" in data["detail"].lower()
        # The 403 contract (issue 3 §7): every denial names principal, role and workspace.
        for name in ("required", "principal", "role", "workspace"):
            assert name in data, f"403 body lacks {name!r}: {data}"
        assert data["principal"] == caller.label


BAD_KEYS = [
    (None, "missing_api_key"),
    ("lsv2_sk_00000000000000000000000000000000_00000000", "invalid_api_key"),  # bad checksum
    ("lsv2_pt_0123456789abcdef0123456789abcdef_12345678", "invalid_api_key"),
    ("not a key at all", "invalid_api_key"),
]


@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=lambda e: e.id)
def test_every_endpoint_refuses_requests_without_a_valid_key(client, world, targets, endpoint):
    targets.extra["someone_token"] = uuid.uuid4()
    before = db_state()
    body = endpoint.body(targets) if endpoint.body else None
    for key, error in BAD_KEYS:
        resp = api_call(client, endpoint.method, endpoint.url(targets), key, json=body)
        assert resp.status_code == 401, (key, resp.content)
        assert resp.json()["error"] == error, key
        assert resp.json()["detail"], key
    assert db_state() == before


# ---------------------------------------------------------------------------------------------
# Tenancy: another organization's objects are not found, both ways, and nothing changes.


@pytest.fixture
def globex(world):
    org, ws = world.other_org, world.other_workspace_of_other_org
    role = RoleFactory(organization=org, name="Globex role", permissions=["runs:read"])
    user = UserFactory(email="globex-member@example.test")
    org_membership = OrganizationMembershipFactory(user=user, organization=org)
    member = WorkspaceMembershipFactory(
        org_membership=org_membership, workspace=ws, role=system_role("Viewer")
    )
    service_key_for(ws, "Viewer")
    key = ServiceKey.objects.get(workspace=ws)
    token = create_personal_access_token(user=world.outsider, organization=org, name="globex")[0]
    globex_request = create_access_request(
        actor=Actor.for_user(user, org, ws),
        workspace=ws,
        permission="datasets:create",
        reason="globex asks",
    )
    globex_domain = EmailDomain.objects.create(organization=org, domain="globex.example.test")
    return {
        "domain_id": globex_domain.pk,
        "request_id": globex_request.pk,
        "role_id": role.pk,
        "workspace_id": ws.pk,
        "ws_member_id": member.pk,
        "org_member_id": org_membership.pk,
        "key_id": key.pk,
        "token_id": token.pk,
    }


def _acme_ids(world, targets):
    """Acme's objects, for Globex callers."""
    token = create_personal_access_token(user=world.org_admin, organization=world.org, name="a")[0]
    return {
        "role_id": targets.role.pk,
        "workspace_id": world.workspace.pk,
        "ws_member_id": targets.member.pk,
        "org_member_id": targets.org_member.pk,
        "key_id": targets.service_key.pk,
        "token_id": token.pk,
        "request_id": targets.access_request.pk,
        "domain_id": targets.email_domain.pk,
    }


ID_ADDRESSED = [
    ("PATCH", "/orgs/current/roles/{role_id}", {"permissions": ["runs:read"]}),
    ("DELETE", "/orgs/current/roles/{role_id}", None),
    ("GET", "/workspaces/{workspace_id}", None),
    ("PATCH", "/workspaces/{workspace_id}", {"name": "taken over"}),
    ("DELETE", "/workspaces/{workspace_id}", None),
    ("PATCH", "/workspaces/current/members/{ws_member_id}", "EDITOR_ROLE"),
    ("DELETE", "/workspaces/current/members/{ws_member_id}", None),
    ("PATCH", "/orgs/current/members/{org_member_id}", {"org_role": "admin"}),
    ("DELETE", "/orgs/current/members/{org_member_id}", None),
    ("DELETE", "/api-key/{key_id}", None),
    ("PUT", "/api-key/{key_id}/ip-allow-list", {"ip_allow_list": []}),
    ("DELETE", "/orgs/current/personal-access-tokens/{token_id}", None),
    ("GET", "/access-requests/{request_id}", None),
    ("POST", "/access-requests/{request_id}/approve", {"expiry": "1h"}),
    ("POST", "/access-requests/{request_id}/deny", {"note": "x"}),
    ("DELETE", "/orgs/current/sso/domains/{domain_id}", None),
]


def _declared(method, path):
    template = re.sub(r"\{(ws_member_id|org_member_id)\}", "{member_id}", path)
    return ENDPOINT_BY_ID[f"{method} {template}"]


def _cross_tenant_expectation(method, path, perms, is_service_key):
    """404 wherever the caller may use the endpoint at all; its own 403 otherwise."""
    endpoint = _declared(method, path)
    if endpoint.workspace_param:
        return 404, "not_found"  # the workspace is looked up before anything else
    if endpoint.required not in perms:
        return 403, "permission_denied"
    if endpoint.user_only and is_service_key:
        return 403, "permission_denied"
    return 404, "not_found"


# Acme's callers that may use every id-addressed endpoint they are pointed at (or most of them).
ACME_CROSS_CALLERS = ["pat:org_admin", "sk:Admin", "sk_org:Admin+tenant"]


def _editor_role_body(body):
    return {"role_id": str(system_role("Editor").pk)} if body == "EDITOR_ROLE" else body


@pytest.mark.parametrize("method,path,body", ID_ADDRESSED, ids=lambda v: str(v)[:60])
def test_acme_keys_do_not_find_globex_objects(client, world, targets, globex, method, path, body):
    body = _editor_role_body(body)
    for name in ACME_CROSS_CALLERS:
        spec = next(s for s in PRINCIPALS if s.name == name)
        caller = make_caller(world, spec)
        before = db_state()
        resp = api_call(
            client, method, path.format(**globex), caller.key, tenant=caller.tenant, json=body
        )
        status, error = _cross_tenant_expectation(method, path, spec.perms, spec.is_service_key)
        assert (resp.status_code, resp.json()["error"]) == (status, error), (name, resp.content)
        assert db_state() == before, name


def _globex_callers(world):
    """(name, raw key, X-Tenant-Id, permissions, is a service key) of Globex's callers."""
    ws = world.other_workspace_of_other_org
    return [
        ("pat:outsider", pat_for(world.outsider, world.other_org), None, WS | ORG_ADMIN_CODES, 0),
        ("sk:globex-Admin", service_key_for(ws, "Admin"), None, WS | {ORG_READ}, 1),
        (
            "sk_org:globex-Admin",
            service_key_for(ws, "Admin", org_scoped=True),
            ws.pk,
            WS | {ORG_READ, ORG_MANAGE},
            1,
        ),
    ]


@pytest.mark.parametrize("method,path,body", ID_ADDRESSED, ids=lambda v: str(v)[:60])
def test_globex_keys_do_not_find_acme_objects(client, world, targets, method, path, body):
    ids = _acme_ids(world, targets)
    body = _editor_role_body(body)
    for name, key, tenant, perms, is_sk in _globex_callers(world):
        before = db_state()
        resp = api_call(client, method, path.format(**ids), key, tenant=tenant, json=body)
        status, error = _cross_tenant_expectation(method, path, perms, is_sk)
        assert (resp.status_code, resp.json()["error"]) == (status, error), (name, resp.content)
        assert db_state() == before, name


def test_another_users_token_in_the_same_org_is_not_found(client, world):
    key = pat_for(world.org_admin, world.org)
    token = create_personal_access_token(user=world.editor, organization=world.org, name="e")[0]
    before = db_state()
    resp = api_call(client, "DELETE", f"/orgs/current/personal-access-tokens/{token.pk}", key)
    assert resp.status_code == 404
    assert resp.json()["error"] == "not_found"
    assert db_state() == before


def test_a_workspace_key_does_not_reach_a_sibling_workspace(client, world):
    key = service_key_for(world.workspace, "Admin")
    staging = world.other_workspace
    for method in ("GET", "PATCH", "DELETE"):
        resp = api_call(client, method, f"/workspaces/{staging.pk}", key, json={"name": "x"})
        assert resp.status_code == 404, (method, resp.content)
        assert resp.json()["error"] == "not_found"
    staging.refresh_from_db()
    assert (staging.name, staging.archived) == ("staging", False)


@pytest.mark.parametrize("org_scoped", [False, True], ids=["pat", "org-scoped-key"])
def test_selecting_another_orgs_workspace_is_refused(client, world, org_scoped):
    key = (
        service_key_for(world.workspace, "Admin", org_scoped=True)
        if org_scoped
        else pat_for(world.org_admin, world.org)
    )
    resp = api_call(
        client, "GET", "/auth/whoami", key, tenant=world.other_workspace_of_other_org.pk
    )
    assert resp.status_code == 403
    assert resp.json()["error"] == "workspace_not_accessible"


def test_listings_show_only_the_callers_tenant(client, world, targets, globex):
    key = service_key_for(world.workspace, "Admin")
    service_key_for(world.other_workspace, "Admin")  # staging's: not this key's business
    keys = api_call(client, "GET", "/api-key", key).json()
    assert {k["id"] for k in keys} == {
        str(pk)
        for pk in ServiceKey.objects.filter(workspace=world.workspace).values_list("pk", flat=True)
    }
    roles = api_call(client, "GET", "/orgs/current/roles", key).json()
    assert "Globex role" not in {r["name"] for r in roles}
    members = api_call(client, "GET", "/orgs/current/members", key).json()
    assert "globex-member@example.test" not in {m["email"] for m in members["members"]}


# ---------------------------------------------------------------------------------------------
# Invalid input: 422 with a JSON error and detail, never a 500, nothing written.

NOT_UUID = "not-a-uuid"

INVALID = [
    # (method, path, body)
    ("POST", "/orgs/current/roles", {}),
    ("POST", "/orgs/current/roles", {"name": 42}),
    ("POST", "/orgs/current/roles", {"name": "x" * 61}),
    ("POST", "/orgs/current/roles", {"name": "   "}),
    ("POST", "/orgs/current/roles", {"name": "R", "permissions": ["datasets:fly"]}),
    ("POST", "/orgs/current/roles", {"name": "R", "permissions": ["organization:manage"]}),
    ("POST", "/orgs/current/roles", {"name": "R", "permissions": "datasets:read"}),
    ("POST", "/orgs/current/roles", {"name": "R", "permissions": [1, 2]}),
    ("POST", "/orgs/current/roles", {"name": "R", "description": "d" * 301}),
    ("POST", "/orgs/current/roles", {"name": "viewer"}),  # a built-in role's name
    ("POST", "/orgs/current/roles", {"name": "annotator"}),  # taken, case-insensitively
    ("PATCH", "/orgs/current/roles/{role}", {"permissions": ["nope:nope"]}),
    ("PATCH", "/orgs/current/roles/{role}", {"permissions": ["organization:pats:create"]}),
    ("PATCH", "/orgs/current/roles/{role}", {"name": ""}),
    ("PATCH", "/orgs/current/roles/{role}", {"name": "y" * 61}),
    ("PATCH", f"/orgs/current/roles/{NOT_UUID}", {"name": "ok"}),
    ("DELETE", f"/orgs/current/roles/{NOT_UUID}", None),
    ("POST", "/workspaces", {}),
    ("POST", "/workspaces", {"name": ""}),
    ("POST", "/workspaces", {"name": "n" * 101}),
    ("POST", "/workspaces", {"name": ["list"]}),
    ("POST", "/workspaces", {"name": "ok", "slug": "not a slug!"}),
    ("POST", "/workspaces", {"name": "ok", "slug": "s" * 61}),
    ("GET", f"/workspaces/{NOT_UUID}", None),
    ("GET", "/workspaces/123", None),
    ("PATCH", "/workspaces/{workspace}", {"archived": "maybe"}),
    ("PATCH", "/workspaces/{workspace}", {"name": "n" * 101}),
    ("PATCH", "/workspaces/{workspace}", {"name": ""}),
    ("PATCH", f"/workspaces/{NOT_UUID}", {"name": "ok"}),
    ("DELETE", f"/workspaces/{NOT_UUID}", None),
    ("POST", "/workspaces/current/members", {"email": "target@example.test"}),
    ("POST", "/workspaces/current/members", {"email": "mww", "role_id": NOT_UUID}),
    ("POST", "/workspaces/current/members", {"email": "nobody@example.test", "role_id": "VIEWER"}),
    ("POST", "/workspaces/current/members", {"email": "mww", "role_id": str(uuid.UUID(int=7))}),
    ("POST", "/workspaces/current/members", {"email": "mww", "role_id": "GLOBEX_ROLE"}),
    ("PATCH", "/workspaces/current/members/{member}", {"role_id": 123}),
    ("PATCH", "/workspaces/current/members/{member}", {}),
    ("PATCH", "/workspaces/current/members/{member}", {"role_id": str(uuid.UUID(int=7))}),
    ("PATCH", f"/workspaces/current/members/{NOT_UUID}", {"role_id": "VIEWER"}),
    ("DELETE", "/workspaces/current/members/1", None),
    ("POST", "/orgs/current/members", {}),
    ("POST", "/orgs/current/members", {"email": "new@example.test", "org_role": "owner"}),
    ("POST", "/orgs/current/members", {"email": "not-an-email"}),
    ("POST", "/orgs/current/members", {"email": "new@example.test", "workspace_ids": ["zzz"]}),
    ("POST", "/orgs/current/members", {"email": "new@example.test", "workspace_ids": "GLOBEX_WS"}),
    ("POST", "/orgs/current/members", {"email": "new@example.test", "workspace_ids": "OWN_WS"}),
    ("PATCH", "/orgs/current/members/{org_member}", {"org_role": "superadmin"}),
    ("PATCH", "/orgs/current/members/{org_member}", {}),
    ("PATCH", "/orgs/current/members/{org_member}", {"org_role": None}),
    ("PATCH", f"/orgs/current/members/{NOT_UUID}", {"org_role": "viewer"}),
    ("DELETE", f"/orgs/current/members/{NOT_UUID}", None),
    ("POST", "/api-key", {}),
    ("POST", "/api-key", {"name": ""}),
    ("POST", "/api-key", {"name": "k" * 101}),
    ("POST", "/api-key", {"name": "k", "scope": "galaxy"}),
    ("POST", "/api-key", {"name": "k", "role_id": str(uuid.UUID(int=7))}),
    ("POST", "/api-key", {"name": "k", "role_id": "GLOBEX_ROLE"}),
    ("POST", "/api-key", {"name": "k", "role_id": NOT_UUID}),
    ("POST", "/api-key", {"name": "k", "expires_at": "tomorrow-ish"}),
    ("POST", "/api-key", {"name": "k", "expires_at": "2001-01-01T00:00:00Z"}),
    ("DELETE", f"/api-key/{NOT_UUID}", None),
    ("POST", "/orgs/current/personal-access-tokens", {}),
    ("POST", "/orgs/current/personal-access-tokens", {"name": "t" * 101}),
    ("POST", "/orgs/current/personal-access-tokens", {"name": "t", "expires_at": "2001-01-01"}),
    ("POST", "/orgs/current/personal-access-tokens", {"name": "t", "expires_at": 12.5}),
    ("DELETE", f"/orgs/current/personal-access-tokens/{NOT_UUID}", None),
    # JSON that is not the object the endpoint expects.
    ("POST", "/orgs/current/personal-access-tokens", "[1, 2]"),
    ("POST", "/workspaces", "null"),
    ("POST", "/orgs/current/members", '"just a string"'),
]


def _fill(value, world, targets, globex_role, globex_ws):
    """Replace the placeholders in a path or body with this test's objects."""
    substitutions = {
        "VIEWER": str(system_role("Viewer").pk),
        "GLOBEX_ROLE": str(globex_role.pk),
        "mww": world.member_without_workspace.email,
    }
    if isinstance(value, str):
        if value == "GLOBEX_WS":
            return [str(globex_ws.pk)]
        if value == "OWN_WS":
            return [str(world.workspace.pk)]  # a workspace without a role for it
        return substitutions.get(value, value)
    if isinstance(value, dict):
        return {k: _fill(v, world, targets, globex_role, globex_ws) for k, v in value.items()}
    if isinstance(value, list):
        return [_fill(v, world, targets, globex_role, globex_ws) for v in value]
    return value


@pytest.mark.parametrize("method,path,body", INVALID, ids=lambda v: str(v)[:50])
def test_invalid_input_is_a_422_that_writes_nothing(client, world, targets, method, path, body):
    globex_role = RoleFactory(organization=world.other_org, name="Globex role")
    key = pat_for(world.org_admin, world.org)  # may do everything: only the input is wrong
    url = path.format(
        role=targets.role.pk,
        workspace=world.workspace.pk,
        member=targets.member.pk,
        org_member=targets.org_member.pk,
    )
    if isinstance(body, dict):
        body = _fill(body, world, targets, globex_role, world.other_workspace_of_other_org)
    before = db_state()
    resp = api_call(client, method, url, key, json=body)
    assert resp.status_code == 422, resp.content
    data = resp.json()
    assert isinstance(data["error"], str) and data["error"], data
    assert data["detail"], data
    assert db_state() == before


@pytest.mark.parametrize(
    "method,path,body",
    [
        ("POST", "/orgs/current/roles", "{not json"),
        ("POST", "/api-key", "{not json"),
        ("POST", "/workspaces/current/members", '{"email": "a@b.c",'),
        ("PATCH", "/orgs/current/members/{org_member}", "org_role=viewer"),
        ("POST", "/orgs/current/personal-access-tokens", "\x00\xff"),
    ],
    ids=["roles", "api-key", "members-truncated", "org-member-form-encoded", "pat-binary"],
)
def test_malformed_json_body_is_a_422_that_writes_nothing(
    client, world, targets, method, path, body
):
    key = pat_for(world.org_admin, world.org)
    url = path.format(org_member=targets.org_member.pk)
    before = db_state()
    resp = api_call(client, method, url, key, json=body)
    assert resp.status_code == 422, resp.content
    data = resp.json()
    assert data["error"] and data["detail"], data
    assert db_state() == before


@pytest.mark.parametrize(
    "path,name",
    [("/api-key", "naive key"), ("/orgs/current/personal-access-tokens", "naive token")],
)
@pytest.mark.parametrize("expires_at", ["2099-01-01T00:00:00", "2099-01-01"])
def test_an_expiry_without_a_timezone_is_never_a_500(client, world, path, name, expires_at):
    """A date or naive datetime is either read as UTC (201) or refused (422); never a 500."""
    key = pat_for(world.org_admin, world.org)
    before = db_state()
    resp = api_call(client, "POST", path, key, json={"name": name, "expires_at": expires_at})
    assert resp.status_code in {201, 422}, resp.content
    if resp.status_code == 201:
        assert api_call(client, "GET", "/auth/whoami", resp.json()["key"]).status_code == 200
    else:
        assert resp.json()["error"] and resp.json()["detail"]
        assert db_state() == before


def test_a_tenant_that_is_not_a_uuid_is_a_clear_400(client, world):
    key = pat_for(world.org_admin, world.org)
    resp = api_call(client, "GET", "/auth/whoami", key, tenant="production")
    assert resp.status_code == 400
    assert resp.json()["error"] == "invalid_tenant"
    assert "X-Tenant-Id" in resp.json()["detail"]


@pytest.mark.parametrize(
    "path,body,field_name",
    [
        ("/orgs/current/roles", {"name": "x" * 61}, "name"),
        ("/api-key", {"name": "k", "scope": "galaxy"}, "scope"),
        (
            "/orgs/current/roles",
            {"name": "R", "permissions": ["organization:manage"]},
            "permissions",
        ),
        ("/workspaces/current/members", {"email": "a@b.c"}, "role_id"),
    ],
)
def test_422_names_the_field(client, world, path, body, field_name):
    key = pat_for(world.org_admin, world.org)
    resp = api_call(client, "POST", path, key, json=body)
    assert resp.status_code == 422
    assert field_name in json.dumps(resp.json()["detail"]) + json.dumps(resp.json().get("fields"))


# ---------------------------------------------------------------------------------------------
# Escalation and self-service limits.


def test_an_editor_key_cannot_create_keys(client, world):
    key = service_key_for(world.workspace, "Editor")
    before = db_state()
    resp = api_call(client, "POST", "/api-key", key, json={"name": "mine"})
    spec = next(s for s in PRINCIPALS if s.name == "sk:Editor")
    caller = Caller(spec, key, None, "service key 'Editor key'", None)
    assert_denied(
        resp, required="workspaces:manage", caller=caller, role="Editor", workspace=world.workspace
    )
    assert db_state() == before


@pytest.fixture
def key_maker(world):
    """A custom role that may manage the workspace but not delete datasets."""
    codes = sorted(WS - {"datasets:delete"})
    RoleFactory(organization=world.org, name="KeyMaker", permissions=codes)
    return service_key_for(world.workspace, "KeyMaker")


@pytest.mark.parametrize("role_name", ["Editor", "Admin", None])
def test_a_key_cannot_mint_a_stronger_key(client, world, key_maker, role_name):
    body = {"name": "stronger"}
    if role_name:
        body["role_id"] = str(system_role(role_name).pk)  # None: the default, Admin
    before = db_state()
    resp = api_call(client, "POST", "/api-key", key_maker, json=body)
    assert resp.status_code == 403, resp.content
    assert resp.json()["error"] == "escalation"
    assert "datasets:delete" in resp.json()["detail"]
    assert db_state() == before


def test_a_key_can_mint_a_weaker_key_that_works(client, world, key_maker):
    body = {"name": "weaker", "role_id": str(system_role("Viewer").pk)}
    resp = api_call(client, "POST", "/api-key", key_maker, json=body)
    assert resp.status_code == 201, resp.content
    whoami = api_call(client, "GET", "/auth/whoami", resp.json()["key"])
    assert whoami.status_code == 200
    assert set(whoami.json()["permissions"]) == READ | {ORG_READ}


def test_a_member_manager_cannot_grant_a_stronger_role(client, world):
    codes = sorted(READ | {"workspaces:manage-members"})
    RoleFactory(organization=world.org, name="Usher", permissions=codes)
    key = service_key_for(world.workspace, "Usher")
    before = db_state()
    resp = api_call(
        client,
        "POST",
        "/workspaces/current/members",
        key,
        json={
            "email": world.member_without_workspace.email,
            "role_id": str(system_role("Editor").pk),
        },
    )
    assert resp.status_code == 403, resp.content
    assert resp.json()["error"] == "escalation"
    assert db_state() == before


def test_a_workspace_key_cannot_create_an_org_scoped_key(client, world):
    key = service_key_for(world.workspace, "Admin")
    before = db_state()
    resp = api_call(client, "POST", "/api-key", key, json={"name": "org", "scope": "organization"})
    assert resp.status_code == 403, resp.content
    assert db_state() == before


def test_nobody_changes_their_own_workspace_role(client, world):
    key = pat_for(world.workspace_admin, world.org)
    own = WorkspaceMembership.objects.get(
        org_membership__user=world.workspace_admin, workspace=world.workspace
    )
    before = db_state()
    resp = api_set_member_role(client, key, own, "Viewer")
    assert resp.status_code == 403, resp.content
    assert resp.json()["error"] in {"permission", "permission_denied"}
    assert "own role" in resp.json()["detail"]
    assert db_state() == before


def test_nobody_changes_their_own_org_role(client, world):
    key = pat_for(world.org_admin, world.org)
    own = OrganizationMembership.objects.get(user=world.org_admin, organization=world.org)
    before = db_state()
    resp = api_call(
        client, "PATCH", f"/orgs/current/members/{own.pk}", key, json={"org_role": "member"}
    )
    assert resp.status_code == 403, resp.content
    assert "own" in resp.json()["detail"]
    assert db_state() == before


@pytest.mark.parametrize(
    "method,path,body,status,error",
    [
        ("PATCH", "/orgs/current/roles/{admin}", {"name": "Boss"}, 409, "system_role"),
        ("DELETE", "/orgs/current/roles/{admin}", None, 409, "system_role"),
        ("DELETE", "/orgs/current/roles/{annotator}", None, 409, "role_in_use"),
        ("DELETE", "/orgs/current/members/{org_admin}", None, 409, "last_admin"),
        ("PATCH", "/orgs/current/members/{org_admin}", {"org_role": "member"}, 409, "last_admin"),
    ],
)
def test_refused_business_rules(client, world, method, path, body, status, error):
    key = service_key_for(world.workspace, "Admin", org_scoped=True)
    url = path.format(
        admin=system_role("Admin").pk,
        annotator=Role.objects.get(organization=world.org, name="Annotator").pk,
        org_admin=OrganizationMembership.objects.get(user=world.org_admin).pk,
    )
    before = db_state()
    resp = api_call(client, method, url, key, json=body)
    assert resp.status_code == status, resp.content
    assert resp.json()["error"] == error
    assert db_state() == before


# ---------------------------------------------------------------------------------------------
# Issue 3, "Done when".


def test_done_when_viewer_key_is_refused_with_workspaces_manage(client, world):
    key = service_key_for(world.workspace, "Viewer")
    before = db_state()
    resp = api_call(client, "POST", "/api-key", key, json={"name": "ci"})
    assert resp.status_code == 403
    assert resp.json()["error"] == "permission_denied"
    assert resp.json()["required"] == "workspaces:manage"
    assert resp.json()["role"] == "Viewer"
    assert db_state() == before


@pytest.mark.parametrize("bearer", [False, True], ids=["x-api-key", "bearer"])
def test_done_when_admin_key_creates_a_working_key_and_revoking_it_kills_it(client, world, bearer):
    admin = service_key_for(world.workspace, "Admin")
    created = api_call(client, "POST", "/api-key", admin, json={"name": "ci"}, bearer=bearer)
    assert created.status_code == 201, created.content
    new = created.json()
    assert KEY_RE.match(new["key"])

    whoami = api_call(client, "GET", "/auth/whoami", new["key"], bearer=bearer)
    assert whoami.status_code == 200
    assert whoami.json()["key_id"] == new["id"]
    assert whoami.json()["workspace"]["id"] == str(world.workspace.pk)

    revoked = api_call(client, "DELETE", f"/api-key/{new['id']}", admin, bearer=bearer)
    assert revoked.status_code == 200
    assert revoked.json()["status"] == "revoked"
    assert "key" not in revoked.json()

    after = api_call(client, "GET", "/auth/whoami", new["key"], bearer=bearer)
    assert after.status_code == 401
    assert after.json()["error"] == "revoked_api_key"


def test_a_revoked_pat_fails_on_the_next_request(client, world):
    key = pat_for(world.editor, world.org)
    token_id = api_call(client, "GET", "/auth/whoami", key).json()["key_id"]
    resp = api_call(client, "DELETE", f"/orgs/current/personal-access-tokens/{token_id}", key)
    assert resp.status_code == 200
    after = api_call(client, "GET", "/auth/whoami", key)
    assert after.status_code == 401
    assert after.json()["error"] == "revoked_api_key"


# ---------------------------------------------------------------------------------------------
# Raw keys: shown once at creation, never listed.


def test_keys_are_shown_once_and_never_listed(client, world):
    admin = pat_for(world.org_admin, world.org)
    raws = []
    for path, body in [
        ("/api-key", {"name": "one"}),
        ("/api-key", {"name": "two", "role_id": str(system_role("Viewer").pk)}),
        ("/orgs/current/personal-access-tokens", {"name": "mine"}),
    ]:
        resp = api_call(client, "POST", path, admin, json=body)
        assert resp.status_code == 201, resp.content
        assert KEY_RE.match(resp.json()["key"])
        raws.append(resp.json()["key"])
    raws.append(admin)

    for path in ("/api-key", "/orgs/current/personal-access-tokens", "/auth/whoami"):
        resp = api_call(client, "GET", path, admin)
        assert resp.status_code == 200
        text = resp.content.decode()
        assert not any(raw in text for raw in raws), path
        items = resp.json() if isinstance(resp.json(), list) else [resp.json()]
        assert all("key" not in item for item in items), path
        # Nor the secret part alone.
        assert not any(raw.split("_")[2] in text for raw in raws), path

    keys = api_call(client, "GET", "/api-key", admin).json()
    by_name = {k["name"]: k for k in keys}
    assert by_name["one"]["role"] == "Admin"
    assert by_name["two"]["role"] == "Viewer"
    for item in (by_name["one"], by_name["two"]):
        assert item["status"] == "active"
        assert (
            item["created_by"] == f"personal access token 'test token' of {world.org_admin.email}"
        )
        assert item["hint"].startswith("lsv2_sk_") and len(item["hint"]) < 20
    # Only digests are stored.
    for raw in raws:
        assert not ServiceKey.objects.filter(digest=raw).exists()
        assert (
            ServiceKey.objects.filter(digest=_sha(raw)).exists()
            or PersonalAccessToken.objects.filter(digest=_sha(raw)).exists()
        )


def test_listing_shows_a_revoked_key_as_revoked(client, world, targets):
    admin = service_key_for(world.workspace, "Admin")
    api_call(client, "DELETE", f"/api-key/{targets.service_key.pk}", admin)
    listed = {k["id"]: k for k in api_call(client, "GET", "/api-key", admin).json()}
    assert listed[str(targets.service_key.pk)]["status"] == "revoked"
    assert listed[str(targets.service_key.pk)]["revoked_at"] is not None


# ---------------------------------------------------------------------------------------------
# The OpenAPI document and the docs page.


def _openapi_path(path):
    return "/api/v1" + path


def test_openapi_document_validates_and_lists_every_endpoint_with_security(client, db):
    validator = pytest.importorskip(
        "openapi_spec_validator",
        reason="openapi-spec-validator is not installed (.venv/bin/pip install "
        "openapi-spec-validator)",
    )
    resp = client.get("/api/v1/openapi.json")
    assert resp.status_code == 200
    doc = resp.json()
    validator.validate(doc)

    schemes = doc["components"]["securitySchemes"]
    assert {"ApiKeyHeader", "BearerKey"} <= set(schemes)
    assert schemes["ApiKeyHeader"]["type"] == "apiKey"
    assert schemes["ApiKeyHeader"]["in"] == "header"
    assert schemes["ApiKeyHeader"]["name"] == "X-API-Key"
    assert schemes["BearerKey"]["type"] == "http"
    assert schemes["BearerKey"]["scheme"].lower() == "bearer"

    for endpoint in ENDPOINTS:
        path = _openapi_path(endpoint.path)
        assert path in doc["paths"], f"{endpoint.id} missing from the OpenAPI document"
        operation = doc["paths"][path].get(endpoint.method.lower())
        assert operation is not None, f"{endpoint.id} missing from the OpenAPI document"
        security = operation.get("security") or doc.get("security")
        assert security, f"{endpoint.id} has no security requirement"
        named = {name for requirement in security for name in requirement}
        assert {"ApiKeyHeader", "BearerKey"} <= named, endpoint.id
    documented = {
        f"{method.upper()} {path.removeprefix('/api/v1')}"
        for path, item in doc["paths"].items()
        for method, operation in item.items()
        if method in {"get", "post", "patch", "put", "delete"}
        and not any(tag.endswith(RESOURCES_TAG) for tag in operation.get("tags", []))
        and operation.get("security") is not None  # the public report endpoint: no key
    }
    assert documented == set(ENDPOINT_BY_ID)
    report = doc["paths"][_openapi_path("/secret-scanning/reports")]["post"]
    assert "security" not in report and "requestBody" in report


def test_docs_page_needs_no_key(client, db):
    resp = client.get("/api/v1/docs")
    assert resp.status_code == 200
    assert b"openapi.json" in resp.content


def test_the_api_never_uses_the_session(client, world):
    client.force_login(world.org_admin)
    resp = client.get("/api/v1/auth/whoami")
    assert resp.status_code == 401
    assert resp.json()["error"] == "missing_api_key"


def test_keys_in_the_query_string_are_ignored(client, world):
    key = service_key_for(world.workspace, "Admin")
    resp = client.get(f"/api/v1/auth/whoami?api_key={key}&X-API-Key={key}")
    assert resp.status_code == 401
