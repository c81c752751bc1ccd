"""Every service that changes access records exactly the expected audit events.

The services modules are enumerated: a public function with no scenario in the table below (and
not listed as a pure helper or reader, with the reason) fails `test_every_service_has_a_scenario`.
Each scenario arranges what it needs, then calls the service inside `act`; exactly the audit
rows written during `act` are compared, in order, with what the scenario expects: action, actor,
organization, workspace, target and before/after. The request context (IP, user agent, request
id) is bound during `act` and must reach every row.

Then the events no service function writes: sign-ins through the real /login/ view, expired keys
still in use (once a day per key) and legacy keys refused after the sunset; and no audit row
ever contains a key.
"""

import copy
import datetime
import inspect
import uuid
from dataclasses import dataclass, field

import pytest
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.utils import timezone

from accesscontrol.access_requests import services as access_requests
from accesscontrol.accounts import services as accounts
from accesscontrol.apikeys import keys, rotation
from accesscontrol.apikeys import services as apikeys
from accesscontrol.apikeys.models import PersonalAccessToken, ServiceKey
from accesscontrol.audit import context
from accesscontrol.audit.models import AuditEvent
from accesscontrol.organizations import services as organizations
from accesscontrol.organizations.models import Organization, OrganizationMembership
from accesscontrol.rbac import services as rbac
from accesscontrol.rbac.actor import Actor
from accesscontrol.rbac.models import Role
from accesscontrol.rbac.permissions import ALL_PERMISSIONS, WORKSPACE_PERMISSIONS
from accesscontrol.reviews import services as reviews
from accesscontrol.scim import protocol as scim_protocol
from accesscontrol.scim import services as scim
from accesscontrol.scim.models import GroupMapping, ScimToken
from accesscontrol.sso import services as sso
from accesscontrol.workspaces import services as workspaces
from accesscontrol.workspaces.models import WorkspaceMembership
from tests.factories import (
    PASSWORD,
    SYSTEM,
    OrganizationMembershipFactory,
    UserFactory,
    actor_of_key,
    actor_with,
    oidc_sso,
    pat_for,
    service_key_for,
    system_role,
)
from tests.support.api import api_call
from tests.support.db import KEY, assert_no_key_in_audit

SERVICE_MODULES = [
    accounts,
    organizations,
    workspaces,
    rbac,
    apikeys,
    rotation,
    reviews,
    access_requests,
    sso,
    scim,
]

# Public functions of those modules that change nothing, so record nothing, and why.
NOT_CHANGING_ACCESS = {
    "accounts.sign_up": "creates an account that belongs to no organization yet; joining is "
    "audited by accept_invitation (org_member.added, invitation.accepted)",
    "organizations.unique_slug": "pure helper: picks a free slug",
    "organizations.clean_slug": "pure validator",
    "organizations.clean_name": "pure validator",
    "organizations.org_members": "selector: reads",
    "organizations.pending_invitations": "selector: reads",
    "organizations.invitable_workspaces": "selector: reads",
    "organizations.invited_workspaces": "selector: reads",
    "organizations.invitation_link": "pure helper: builds a URL",
    "organizations.find_invitation": "reader: looks an invitation up by its token",
    "workspaces.assignable_roles": "reader",
    "workspaces.grantable_roles": "selector: reads",
    "workspaces.workspace_members": "selector: reads",
    "rbac.role_by_id": "selector: reads",
    "rbac.clean_permissions": "pure validator",
    "rbac.role_usage": "reader",
    "rbac.check_can_grant": "pure check, raises or returns",
    "rbac.check_role_assignable": "pure check, raises or returns",
    "rbac.roles_assignable_in": "selector: reads",
    "rbac.check_can_grant_org_role": "pure check, raises or returns",
    "rbac.check_not_self": "pure check, raises or returns",
    "rbac.people_behind": "pure helper: the users an actor acts for",
    "rbac.person_behind": "pure helper: the user an actor acts for",
    "apikeys.own_tokens": "selector: reads",
    "apikeys.visible_service_keys": "selector: reads",
    "reviews.with_progress": "selector: reads",
    "reviews.overdue_campaigns": "selector: reads",
    "workspaces.enterable_workspaces": "selector: reads",
    "workspaces.workspaces_of": "selector: reads",
    "workspaces.members_to_add": "selector: reads",
    "workspaces.org_member_by_email": "reader: one member by address",
    "rbac.check_holds_all": "pure check, raises or returns",
    "apikeys.clean_expiry": "pure validator",
    "apikeys.clean_grace": "pure validator",
    "apikeys.check_may_create_personal_access_token": "pure check, raises or returns",
    "apikeys.check_may_revoke_personal_access_token": "pure check, raises or returns",
    "apikeys.check_may_create_service_key": "pure check, raises or returns",
    "apikeys.check_may_revoke_service_key": "pure check, raises or returns",
    "workspaces.clean_expiry": "pure validator",
    "workspaces.expiry_from_choice": "pure helper: a duration's end",
    "access_requests.suggested_role": "reader: the weakest system role granting a code",
    "access_requests.suggested_org_role": "pure helper",
    "access_requests.admins_to_ask": "selector: reads",
    "access_requests.requests_to_decide": "selector: reads",
    "access_requests.pending_count": "selector: reads",
    "access_requests.pending_in_organizations": "pure helper: a query expression",
    "access_requests.own_requests": "selector: reads",
    "access_requests.request_by_id": "selector: reads",
    "access_requests.workspace_named": "selector: reads",
    "sso.sso_of": "selector: reads",
    "sso.sign_in_methods": "selector: reads",
    "organizations.identity_provider_may_adopt": "pure check: reads",
    "sso.email_domains": "selector: reads",
    "sso.org_admin_named": "selector: reads",
    "sso.domain_of": "pure helper",
    "sso.sso_for_email": "reader: which organization's SSO an email goes to",
    "sso.sso_for_provider": "reader",
    "sso.sso_of_user": "reader",
    "sso.invitations_refusal": "pure check: a sentence or None",
    "sso.password_sign_in_refusal": "pure check: a sentence or None",
    "sso.clean_domain": "pure validator",
    "sso.parse_idp_metadata": "pure validator",
    "scim.default_org_role": "reader: the org role provisioned people get",
}

CONTEXT = context.RequestContext("198.51.100.7", "audit-trail-test/1.0", "req-audit-trail")
DAY = datetime.timedelta(days=1)


def qualified(function) -> str:
    return f"{function.__module__.split('.')[-2]}.{function.__name__}"


def public_functions(module):
    return {
        qualified(f)
        for name, f in inspect.getmembers(module, inspect.isfunction)
        if f.__module__ == module.__name__ and not name.startswith("_")
    }


# Expected events ------------------------------------------------------------------------------


def actor_columns(actor):
    if actor is None:
        return ("system", "system", "", None)
    if isinstance(actor, Actor) and actor.is_system:
        return ("system", actor.label, "", None)
    if isinstance(actor, PersonalAccessToken):
        return ("personal_access_token", actor.audit_label, str(actor.pk), actor.user.pk)
    if isinstance(actor, ServiceKey):
        return ("service_key", actor.audit_label, str(actor.pk), None)
    if isinstance(actor, ScimToken):
        return ("scim_token", actor.audit_label, str(actor.pk), None)
    return ("user", actor.email, str(actor.pk), actor.pk)


@dataclass
class E:
    """One expected audit row."""

    action: str
    actor: object
    target: object = None
    target_label: str | None = None  # None: str(target)
    organization: object = None  # None: the workspace's organization
    workspace: object = None
    changes: dict = field(default_factory=dict)

    def columns(self):
        org = self.organization or (self.workspace.organization if self.workspace else None)
        return {
            "action": self.action,
            "actor": actor_columns(self.actor),
            "organization_id": org.pk if org else None,
            "workspace_id": self.workspace.pk if self.workspace else None,
            "target_type": self.target._meta.model_name if self.target is not None else "",
            "target_id": str(self.target.pk) if self.target is not None else "",
            "target_label": self.target_label
            if self.target_label is not None
            else str(self.target or ""),
            "changes": self.changes,
            "context": (CONTEXT.ip_address, CONTEXT.user_agent, CONTEXT.request_id),
        }


def row_columns(row):
    return {
        "action": row.action,
        "actor": (row.actor_kind, row.actor_label, row.actor_id, row.actor_user_id),
        "organization_id": row.organization_id,
        "workspace_id": row.workspace_id,
        "target_type": row.target_type,
        "target_id": row.target_id,
        "target_label": row.target_label,
        "changes": row.changes,
        "context": (row.ip_address, row.user_agent, row.request_id),
    }


class Act:
    """`with act:` marks the call under test: the rows it writes are the ones compared."""

    def __init__(self):
        self.entered = 0
        self.rows = None

    def __enter__(self):
        self.entered += 1
        self.first = AuditEvent.objects.order_by("-id").values_list("id", flat=True).first() or 0
        self.token = context.bind(CONTEXT)
        return self

    def __exit__(self, *exc):
        context.reset(self.token)
        self.rows = list(AuditEvent.objects.filter(id__gt=self.first).order_by("id"))
        return False


# The table -----------------------------------------------------------------------------------

SCENARIOS = []
COVERED = set()


def scenario(*services, silent=False):
    """Register `run(world, act)` for these services; `silent`: it must record nothing."""

    def register(run):
        names = [qualified(s) for s in services]
        COVERED.update(names)
        SCENARIOS.append(pytest.param(run, names, silent, id=run.__name__))
        return run

    return register


def org_membership(user, org):
    return OrganizationMembership.objects.select_related("user", "organization").get(
        user=user, organization=org
    )


def ws_membership(user, workspace):
    return WorkspaceMembership.objects.select_related(
        "workspace__organization", "org_membership__user", "role"
    ).get(org_membership__user=user, workspace=workspace)


def custom_role(w, name="Triage", permissions=("runs:read", "feedback:create")):
    return rbac.create_role(
        actor=w.org_admin, organization=w.org, name=name, permissions=list(permissions)
    )


# The events several scenarios expect, each written once.


def token_deleted(w, actor, token, status="active"):
    """A personal access token deleted with its owner's membership."""
    return E(
        "personal_access_token.deleted",
        actor,
        token,
        token.audit_label,
        organization=w.org,
        changes={
            "before": {"name": "test token", "hint": token.hint, "status": status},
            "after": {"reason": "user removed from the organization"},
        },
    )


def editor_removed_from_acme(w, actor, membership):
    """The editor (a member, in 'production' only) removed from the organization."""
    return E(
        "org_member.removed",
        actor,
        membership,
        w.editor.email,
        organization=w.org,
        changes={"before": {"org_role": "member", "workspaces": ["production"]}},
    )


def viewer_removed_from_production(w, actor, membership):
    return E(
        "workspace_member.removed",
        actor,
        membership,
        w.viewer.email,
        workspace=w.workspace,
        changes={"before": {"role": "Viewer"}},
    )


def key_revoked(w, actor, key):
    return E(
        "service_key.revoked",
        actor,
        key,
        key.audit_label,
        workspace=w.workspace,
        changes={"after": {"revoked_at": key.revoked_at.isoformat()}},
    )


def editor_made_viewer(w, membership):
    """The workspace admin makes the editor a Viewer of 'production'."""
    return E(
        "workspace_member.role_changed",
        w.workspace_admin,
        membership,
        w.editor.email,
        workspace=w.workspace,
        changes={"before": {"role": "Editor"}, "after": {"role": "Viewer"}},
    )


def workspace_updated(w, action, before, after):
    """What update_workspace records of 'production': (name, archived) before and after."""
    (old_name, was_archived), (name, archived) = before, after
    changes = {
        "before": {"name": old_name, "archived": was_archived},
        "after": {"name": name, "archived": archived},
    }
    return E(action, w.org_admin, w.workspace, name, workspace=w.workspace, changes=changes)


def key_of(raw):
    if raw.startswith("lsv2_pt_"):
        tokens = PersonalAccessToken.objects.select_related("org_membership__user")
        return tokens.get(digest=keys.digest(raw))
    return ServiceKey.objects.get(digest=keys.digest(raw))


# organizations


@scenario(organizations.create_organization)
def create_organization(w, act):
    with act:
        org = organizations.create_organization(creator=w.viewer, name="Initech", plan="plus")
    membership = org_membership(w.viewer, org)
    return [
        E(
            "organization.created",
            w.viewer,
            org,
            organization=org,
            changes={"after": {"name": "Initech", "slug": "initech", "plan": "plus"}},
        ),
        E(
            "org_member.added",
            w.viewer,
            membership,
            w.viewer.email,
            organization=org,
            changes={"after": {"org_role": "admin"}},
        ),
    ]


@scenario(organizations.create_organization, silent=True)
def create_organization_with_a_taken_slug_records_nothing(w, act):
    with act, pytest.raises(ValidationError):
        organizations.create_organization(creator=w.viewer, name="Acme again", slug="acme")
    return []


@scenario(organizations.add_org_member)
def add_org_member(w, act):
    newcomer = UserFactory()
    with act:
        membership = organizations.add_org_member(
            actor=w.org_admin, organization=w.org, user=newcomer, org_role="viewer"
        )
    return [
        E(
            "org_member.added",
            w.org_admin,
            membership,
            newcomer.email,
            organization=w.org,
            changes={"after": {"org_role": "viewer"}},
        )
    ]


@scenario(organizations.add_org_member, silent=True)
def add_org_member_twice_records_nothing(w, act):
    with act, pytest.raises(ValidationError):
        organizations.add_org_member(actor=w.org_admin, organization=w.org, user=w.editor)
    return []


@scenario(organizations.change_org_role)
def change_org_role(w, act):
    membership = org_membership(w.editor, w.org)
    with act:
        organizations.change_org_role(actor=w.org_admin, membership=membership, org_role="admin")
    return [
        E(
            "org_member.role_changed",
            w.org_admin,
            membership,
            w.editor.email,
            organization=w.org,
            changes={"before": {"org_role": "member"}, "after": {"org_role": "admin"}},
        )
    ]


@scenario(organizations.change_org_role, silent=True)
def change_org_role_to_the_same_role_records_nothing(w, act):
    membership = org_membership(w.editor, w.org)
    with act:
        organizations.change_org_role(actor=w.org_admin, membership=membership, org_role="member")
    return []


@scenario(organizations.change_org_role, silent=True)
def demoting_the_last_admin_records_nothing(w, act):
    membership = org_membership(w.org_admin, w.org)
    with act, pytest.raises(ValidationError):
        organizations.change_org_role(actor=SYSTEM, membership=membership, org_role="member")
    return []


@scenario(organizations.remove_org_member)
def remove_org_member_with_their_tokens(w, act):
    older = key_of(pat_for(w.editor, w.org))
    apikeys.revoke_personal_access_token(actor=w.editor, token=older)
    newer = key_of(pat_for(w.editor, w.org))
    PersonalAccessToken.objects.filter(pk=older.pk).update(created_at=timezone.now() - DAY)
    membership = org_membership(w.editor, w.org)
    with act:
        organizations.remove_org_member(actor=w.org_admin, membership=membership)
    assert not OrganizationMembership.objects.filter(pk=membership.pk).exists()
    return [
        token_deleted(w, w.org_admin, newer),
        token_deleted(w, w.org_admin, older, status="revoked"),
        editor_removed_from_acme(w, w.org_admin, membership),
    ]


@scenario(organizations.remove_org_member, silent=True)
def removing_the_last_admin_records_nothing(w, act):
    membership = org_membership(w.org_admin, w.org)
    with act, pytest.raises(ValidationError):
        organizations.remove_org_member(actor=w.workspace_admin, membership=membership)
    return []


def invite(w, email="new.person@example.test"):
    return organizations.invite_member(
        actor=actor_with(ALL_PERMISSIONS, w.org_admin),
        organization=w.org,
        email=email,
        workspaces=[w.other_workspace, w.workspace],
        workspace_role=system_role("Viewer"),
    )[0]


@scenario(organizations.invite_member)
def invite_member(w, act):
    with act:
        invitation = invite(w, "New.Person@Example.test")
    return [
        E(
            "invitation.sent",
            w.org_admin,
            invitation,
            "new.person@example.test",
            organization=w.org,
            changes={
                "after": {
                    "org_role": "member",
                    "workspaces": ["production", "staging"],
                    "workspace_role": "Viewer",
                }
            },
        )
    ]


@scenario(organizations.invite_member, silent=True)
def inviting_a_member_records_nothing(w, act):
    with act, pytest.raises(ValidationError):
        invite(w, w.editor.email)
    return []


@scenario(organizations.resend_invitation)
def resend_invitation(w, act):
    invitation = invite(w)
    with act:
        resent, _ = organizations.resend_invitation(actor=w.org_admin, invitation=invitation)
    resent.refresh_from_db()
    return [
        E(
            "invitation.resent",
            w.org_admin,
            invitation,
            invitation.email,
            organization=w.org,
            changes={"after": {"expires_at": resent.expires_at.isoformat()}},
        )
    ]


@scenario(organizations.cancel_invitation)
def cancel_invitation(w, act):
    invitation = invite(w)
    with act:
        organizations.cancel_invitation(actor=w.org_admin, invitation=invitation)
    return [
        E("invitation.cancelled", w.org_admin, invitation, invitation.email, organization=w.org)
    ]


@scenario(organizations.cancel_invitation, silent=True)
def cancelling_twice_records_nothing(w, act):
    invitation = invite(w)
    organizations.cancel_invitation(actor=w.org_admin, invitation=invitation)
    with act, pytest.raises(ValidationError):
        organizations.cancel_invitation(actor=w.org_admin, invitation=invitation)
    return []


@scenario(organizations.accept_invitation)
def accept_invitation(w, act):
    invitation = invite(w)
    person = accounts.sign_up(
        email="new.person@example.test", full_name="New Person", password="Plum-Teapot-73"
    )
    with act:
        membership = organizations.accept_invitation(invitation=invitation, user=person)
    return joined(w, person, membership, invitation)


@scenario(organizations.sign_up_and_accept)
def sign_up_and_accept(w, act):
    invitation = invite(w)
    with act:
        person = organizations.sign_up_and_accept(
            invitation=invitation, full_name="New Person", password="Plum-Teapot-73"
        )
    membership = OrganizationMembership.objects.get(user=person, organization=w.org)
    return joined(w, person, membership, invitation)


def joined(w, person, membership, invitation):
    """What an invited person's joining records: the organization, each invited workspace (by
    name), the invitation."""
    via = {"via": "invitation"}
    return [
        E(
            "org_member.added",
            person,
            membership,
            person.email,
            organization=w.org,
            changes={"after": {"org_role": "member", **via}},
        ),
        *[
            E(
                "workspace_member.added",
                person,
                ws_membership(person, workspace),
                person.email,
                workspace=workspace,
                changes={"after": {"role": "Viewer", **via}},
            )
            for workspace in (w.workspace, w.other_workspace)
        ],
        E("invitation.accepted", person, invitation, person.email, organization=w.org),
    ]


@scenario(organizations.update_organization_settings)
def update_plan_and_settings(w, act):
    with act:
        organizations.update_organization_settings(
            actor=w.org_admin,
            organization=w.org,
            plan="plus",
            max_key_lifetime_days=30,
            allow_personal_access_tokens=False,
        )
    return [
        E(
            "organization.plan_changed",
            w.org_admin,
            w.org,
            organization=w.org,
            changes={"before": {"plan": "enterprise"}, "after": {"plan": "plus"}},
        ),
        E(
            "organization.settings_changed",
            w.org_admin,
            w.org,
            organization=w.org,
            changes={
                "before": {"max_key_lifetime_days": None, "allow_personal_access_tokens": True},
                "after": {"max_key_lifetime_days": 30, "allow_personal_access_tokens": False},
            },
        ),
    ]


@scenario(organizations.update_organization_settings)
def update_one_setting(w, act):
    with act:
        organizations.update_organization_settings(
            actor=w.org_admin, organization=w.org, max_key_lifetime_days=90
        )
    return [
        E(
            "organization.settings_changed",
            w.org_admin,
            w.org,
            organization=w.org,
            changes={
                "before": {"max_key_lifetime_days": None},
                "after": {"max_key_lifetime_days": 90},
            },
        )
    ]


@scenario(organizations.update_organization_settings, silent=True)
def unchanged_settings_record_nothing(w, act):
    with act:
        organizations.update_organization_settings(
            actor=w.org_admin, organization=w.org, plan="enterprise", max_key_lifetime_days=None
        )
    return []


@scenario(organizations.set_ip_allow_list)
def set_the_organizations_ip_allow_list(w, act):
    organizations.set_ip_allow_list(
        actor=w.org_admin, organization=w.org, ip_allow_list=["203.0.113.0/24"]
    )
    with act:
        organizations.set_ip_allow_list(
            actor=w.org_admin, organization=w.org, ip_allow_list=["2001:DB8::/32", "192.0.2.1"]
        )
    return [
        E(
            "organization.ip_allow_list_changed",
            w.org_admin,
            w.org,
            organization=w.org,
            changes={
                "before": {"ip_allow_list": ["203.0.113.0/24"]},
                "after": {"ip_allow_list": ["2001:db8::/32", "192.0.2.1/32"]},
            },
        )
    ]


@scenario(organizations.set_require_mfa)
def require_mfa_of_the_organizations_admins(w, act):
    with act:
        organizations.set_require_mfa(actor=w.org_admin, organization=w.org, require_mfa="admins")
    return [
        E(
            "organization.mfa_requirement_changed",
            w.org_admin,
            w.org,
            organization=w.org,
            changes={"before": {"require_mfa": "off"}, "after": {"require_mfa": "admins"}},
        )
    ]


@scenario(organizations.set_require_mfa, silent=True)
def an_unchanged_or_refused_mfa_requirement_records_nothing(w, act):
    with act:
        organizations.set_require_mfa(actor=w.org_admin, organization=w.org, require_mfa="off")
        with pytest.raises(ValidationError):
            organizations.set_require_mfa(
                actor=w.org_admin, organization=w.org, require_mfa="sometimes"
            )
        with pytest.raises(ValidationError):
            organizations.set_require_mfa(
                actor=w.editor, organization=w.org, require_mfa="everyone"
            )
    return []


@scenario(organizations.set_ip_allow_list, silent=True)
def an_unchanged_or_refused_ip_allow_list_records_nothing(w, act):
    with act:
        organizations.set_ip_allow_list(actor=w.org_admin, organization=w.org, ip_allow_list=[])
        with pytest.raises(ValidationError):
            organizations.set_ip_allow_list(
                actor=w.org_admin, organization=w.org, ip_allow_list=["10.0.0.1/8"]
            )
        with pytest.raises(ValidationError):
            organizations.set_ip_allow_list(
                actor=w.editor, organization=w.org, ip_allow_list=["10.0.0.0/8"]
            )
    return []


# workspaces


@scenario(workspaces.create_workspace)
def create_workspace(w, act):
    with act:
        workspace = workspaces.create_workspace(
            actor=w.org_admin, organization=w.org, name="Research Lab"
        )
    return [
        E(
            "workspace.created",
            w.org_admin,
            workspace,
            workspace=workspace,
            changes={"after": {"name": "Research Lab", "slug": "research-lab"}},
        )
    ]


@scenario(workspaces.update_workspace)
def archive_workspace(w, act):
    with act:
        workspaces.update_workspace(actor=w.org_admin, workspace=w.workspace, archived=True)
    return [workspace_updated(w, "workspace.archived", ("production", False), ("production", True))]


@scenario(workspaces.update_workspace)
def restore_workspace(w, act):
    workspaces.update_workspace(actor=w.org_admin, workspace=w.workspace, archived=True)
    with act:
        workspaces.update_workspace(actor=w.org_admin, workspace=w.workspace, archived=False)
    return [workspace_updated(w, "workspace.restored", ("production", True), ("production", False))]


@scenario(workspaces.update_workspace)
def rename_workspace(w, act):
    with act:
        renamed = workspaces.update_workspace(actor=w.org_admin, workspace=w.workspace, name="prod")
    assert renamed.name == "prod"
    return [workspace_updated(w, "workspace.renamed", ("production", False), ("prod", False))]


@scenario(workspaces.update_workspace, silent=True)
def unchanged_workspace_records_nothing(w, act):
    with act:
        workspaces.update_workspace(
            actor=w.org_admin, workspace=w.workspace, name="production", archived=False
        )
    return []


@scenario(workspaces.add_workspace_member)
def add_workspace_member(w, act):
    with act:
        membership = workspaces.add_workspace_member(
            actor=actor_with(ALL_PERMISSIONS, w.workspace_admin),
            workspace=w.workspace,
            user=w.member_without_workspace,
            role=system_role("Viewer"),
        )
    return [
        E(
            "workspace_member.added",
            w.workspace_admin,
            membership,
            w.member_without_workspace.email,
            workspace=w.workspace,
            changes={"after": {"role": "Viewer"}},
        )
    ]


def expired_grant(w):
    """A day's Viewer grant for the member of no workspace, as if the day had passed (the row as
    the database holds it): the person, the membership, and when it ended."""
    person = w.member_without_workspace
    membership = workspaces.add_workspace_member(
        actor=w.org_admin,
        workspace=w.workspace,
        user=person,
        role=system_role("Viewer"),
        expires_at=timezone.now() + DAY,
    )
    ends = timezone.now() - DAY
    WorkspaceMembership.objects.filter(pk=membership.pk).update(expires_at=ends)
    return person, membership, ends


def grant_expired(w, person, membership, ends):
    return E(
        "workspace_member.grant_expired",
        Actor.system("grant_expiry"),
        membership,
        person.email,
        workspace=w.workspace,
        changes={"before": {"role": "Viewer", "expires_at": ends.isoformat()}},
    )


@scenario(workspaces.remove_expired_grants)
def remove_expired_grants(w, act):
    person, membership, ends = expired_grant(w)
    with act:
        assert workspaces.remove_expired_grants() == 1
    return [grant_expired(w, person, membership, ends)]


@scenario(workspaces.end_expired_grants)
def end_expired_grants(w, act):
    """An expired grant still in the table makes way for a new one (invitation acceptance)."""
    person, membership, ends = expired_grant(w)
    org_membership = membership.org_membership
    with act:
        workspaces.end_expired_grants(org_membership, w.workspace)
    assert not WorkspaceMembership.objects.filter(pk=membership.pk).exists()
    return [grant_expired(w, person, membership, ends)]


def _ask(w, person, **kwargs):
    return access_requests.create_access_request(
        actor=Actor.for_user(person, w.org),
        workspace=w.workspace,
        permission="datasets:read",
        reason="audit trail",
        **kwargs,
    )


@scenario(access_requests.create_access_request)
def create_access_request(w, act):
    person = w.member_without_workspace
    with act:
        request = _ask(w, person)
    after = {"permission": "datasets:read", "role": None, "reason": "audit trail"}
    return [
        E(
            "access_request.created",
            person,
            request,
            person.email,
            workspace=w.workspace,
            changes={"after": after},
        )
    ]


@scenario(access_requests.approve_access_request)
def approve_access_request(w, act):
    person = w.member_without_workspace
    request = _ask(w, person)
    with act:
        access_requests.approve_access_request(
            actor=w.org_admin, access_request=request, expiry="permanent"
        )
    membership = WorkspaceMembership.objects.get(org_membership__user=person, workspace=w.workspace)
    return [
        E(
            "workspace_member.added",
            w.org_admin,
            membership,
            person.email,
            workspace=w.workspace,
            changes={"after": {"role": "Viewer"}},
        ),
        E(
            "access_request.approved",
            w.org_admin,
            request,
            person.email,
            workspace=w.workspace,
            changes={
                "before": {"status": "pending"},
                "after": {"status": "approved", "note": None, "role": "Viewer", "expires_at": None},
            },
        ),
    ]


@scenario(access_requests.deny_access_request)
def deny_access_request(w, act):
    person = w.member_without_workspace
    request = _ask(w, person)
    with act:
        access_requests.deny_access_request(actor=w.org_admin, access_request=request, note="no")
    return [
        E(
            "access_request.denied",
            w.org_admin,
            request,
            person.email,
            workspace=w.workspace,
            changes={"before": {"status": "pending"}, "after": {"status": "denied", "note": "no"}},
        )
    ]


@scenario(access_requests.approve_access_request, silent=True)
def a_viewer_approving_records_nothing(w, act):
    request = _ask(w, w.member_without_workspace)
    with act, pytest.raises(ValidationError):
        access_requests.approve_access_request(
            actor=Actor.for_user(w.viewer, w.org, w.workspace), access_request=request
        )
    return []


@scenario(workspaces.add_workspace_member, silent=True)
def adding_an_outsider_to_a_workspace_records_nothing(w, act):
    with act, pytest.raises(ValidationError):
        workspaces.add_workspace_member(
            actor=w.org_admin, workspace=w.workspace, user=w.outsider, role=system_role("Viewer")
        )
    return []


@scenario(workspaces.change_workspace_role)
def change_workspace_role(w, act):
    membership = ws_membership(w.editor, w.workspace)
    with act:
        workspaces.change_workspace_role(
            actor=actor_with(WORKSPACE_PERMISSIONS, w.workspace_admin),
            membership=membership,
            role=system_role("Viewer"),
        )
    return [editor_made_viewer(w, membership)]


@scenario(workspaces.change_workspace_role, silent=True)
def escalating_a_workspace_role_records_nothing(w, act):
    membership = ws_membership(w.viewer, w.workspace)
    editor_permissions = WORKSPACE_PERMISSIONS - {"workspaces:manage", "workspaces:manage-members"}
    with act, pytest.raises(ValidationError):
        workspaces.change_workspace_role(
            actor=actor_with(editor_permissions, w.editor),
            membership=membership,
            role=system_role("Admin"),
        )
    return []


@scenario(workspaces.change_workspace_roles)
def change_workspace_roles_in_bulk(w, act):
    editor, viewer = ws_membership(w.editor, w.workspace), ws_membership(w.viewer, w.workspace)
    with act:
        workspaces.change_workspace_roles(
            actor=actor_with(WORKSPACE_PERMISSIONS, w.workspace_admin),
            memberships=[editor, viewer],
            role=system_role("Viewer"),
        )
    # The viewer already was one: one event, for the one change.
    return [editor_made_viewer(w, editor)]


@scenario(workspaces.change_workspace_roles, silent=True)
def a_bulk_change_with_one_refusal_records_nothing(w, act):
    viewer = ws_membership(w.viewer, w.workspace)
    own = ws_membership(w.workspace_admin, w.workspace)  # nobody changes their own role
    with act, pytest.raises(ValidationError):
        workspaces.change_workspace_roles(
            actor=actor_with(WORKSPACE_PERMISSIONS, w.workspace_admin),
            memberships=[viewer, own],
            role=system_role("Editor"),
        )
    assert ws_membership(w.viewer, w.workspace).role.name == "Viewer"
    return []


@scenario(workspaces.delete_workspace)
def delete_workspace(w, act):
    workspace = copy.copy(w.other_workspace)  # deleting clears the pk of the one passed in
    with act:
        workspaces.delete_workspace(
            actor=w.org_admin, workspace=w.other_workspace, confirmation="staging"
        )
    return [
        E(
            "workspace.deleted",
            w.org_admin,
            workspace,
            workspace=workspace,
            changes={"before": {"name": "staging", "slug": "staging"}},
        )
    ]


@scenario(workspaces.delete_workspace, silent=True)
def deleting_a_workspace_without_its_name_records_nothing(w, act):
    with act, pytest.raises(ValidationError):
        workspaces.delete_workspace(actor=w.org_admin, workspace=w.workspace, confirmation="prod")
    return []


@scenario(workspaces.remove_workspace_member)
def remove_workspace_member(w, act):
    membership = ws_membership(w.viewer, w.workspace)
    with act:
        workspaces.remove_workspace_member(actor=w.workspace_admin, membership=membership)
    return [viewer_removed_from_production(w, w.workspace_admin, membership)]


# rbac


def triage_role_event(w, action, role, side):
    """custom_role()'s role (its permissions deduplicated and sorted) before or after `action`."""
    triage = {"name": "Triage", "permissions": ["feedback:create", "runs:read"]}
    return E(action, w.org_admin, role, organization=w.org, changes={side: triage})


@scenario(rbac.create_role)
def create_role(w, act):
    with act:
        role = custom_role(w, permissions=["runs:read", "feedback:create", "runs:read"])
    return [triage_role_event(w, "role.created", role, "after")]


@scenario(rbac.create_role, silent=True)
def creating_a_role_on_a_lower_plan_records_nothing(w, act):
    Organization.objects.filter(pk=w.org.pk).update(plan="plus")
    w.org.refresh_from_db()
    with act, pytest.raises(ValidationError):
        custom_role(w)
    return []


def role_fields(name, permissions, description=""):
    """A role as its audit events spell it out."""
    return {"name": name, "description": description, "permissions": permissions}


@scenario(rbac.update_role)
def update_role_records_the_permission_diff(w, act):
    role = custom_role(w)
    with act:
        saved = rbac.update_role(
            actor=w.org_admin,
            role=role,
            name="Triager",
            permissions=["runs:read", "datasets:read"],
        )
    return [
        E(
            "role.updated",
            w.org_admin,
            saved,
            "Triager",
            organization=w.org,
            changes={
                "before": role_fields("Triage", ["feedback:create", "runs:read"]),
                "after": {
                    **role_fields("Triager", ["datasets:read", "runs:read"]),
                    "added": ["datasets:read"],
                    "removed": ["feedback:create"],
                },
            },
        )
    ]


@scenario(rbac.update_role, silent=True)
def unchanged_role_records_nothing(w, act):
    role = custom_role(w)
    with act:
        rbac.update_role(actor=w.org_admin, role=role, permissions=["runs:read", "feedback:create"])
    return []


@scenario(rbac.delete_role)
def delete_role(w, act):
    role = custom_role(w)
    with act:
        rbac.delete_role(actor=w.org_admin, role=role)
    return [triage_role_event(w, "role.deleted", role, "before")]


@scenario(rbac.delete_role, silent=True)
def deleting_a_role_in_use_records_nothing(w, act):
    annotator = Role.objects.get(organization=w.org, name="Annotator")
    with act, pytest.raises(ValidationError):
        rbac.delete_role(actor=w.org_admin, role=annotator)
    return []


# apikeys


@scenario(apikeys.create_personal_access_token)
def create_personal_access_token(w, act):
    expires = timezone.now() + 30 * DAY
    with act:
        token, _ = apikeys.create_personal_access_token(
            user=w.editor, organization=w.org, name="laptop", expires_at=expires
        )
    return [
        E(
            "personal_access_token.created",
            w.editor,
            token,
            token.audit_label,
            organization=w.org,
            changes={
                "after": {"name": "laptop", "hint": token.hint, "expires_at": expires.isoformat()}
            },
        )
    ]


@scenario(apikeys.create_personal_access_token, silent=True)
def org_viewers_create_no_token_and_nothing_is_recorded(w, act):
    with act, pytest.raises(ValidationError):
        apikeys.create_personal_access_token(user=w.org_viewer, organization=w.org, name="t")
    return []


@scenario(apikeys.revoke_personal_access_token)
def revoke_personal_access_token_with_itself(w, act):
    token = key_of(pat_for(w.editor, w.org))
    with act:
        apikeys.revoke_personal_access_token(actor=actor_of_key(token), token=token)
    token.refresh_from_db()
    return [
        E(
            "personal_access_token.revoked",
            token,
            token,
            token.audit_label,
            organization=w.org,
            changes={"after": {"revoked_at": token.revoked_at.isoformat()}},
        )
    ]


@scenario(apikeys.create_service_key)
def create_service_key(w, act):
    with act:
        key, _ = apikeys.create_service_key(
            actor=actor_with(WORKSPACE_PERMISSIONS, w.workspace_admin),
            organization=w.org,
            workspace=w.workspace,
            name="ci",
            role=system_role("Editor"),
        )
    return [
        E(
            "service_key.created",
            w.workspace_admin,
            key,
            "service key 'ci'",
            workspace=w.workspace,
            changes={
                "after": {
                    "name": "ci",
                    "hint": key.hint,
                    "role": "Editor",
                    "scope": "workspace",
                    "expires_at": None,
                }
            },
        )
    ]


@scenario(apikeys.create_service_key)
def create_org_scoped_service_key_by_a_key(w, act):
    maker = key_of(service_key_for(w.workspace, org_scoped=True))
    with act:
        key, _ = apikeys.create_service_key(
            actor=actor_with(ALL_PERMISSIONS, maker),
            organization=w.org,
            workspace=None,
            name="fleet",
        )
    assert key.created_by_label == maker.audit_label
    return [
        E(
            "service_key.created",
            maker,
            key,
            "service key 'fleet'",
            organization=w.org,
            changes={
                "after": {
                    "name": "fleet",
                    "hint": key.hint,
                    "role": "Admin",
                    "scope": "organization",
                    "expires_at": None,
                }
            },
        )
    ]


@scenario(apikeys.create_service_key, silent=True)
def escalating_service_key_records_nothing(w, act):
    with act, pytest.raises(ValidationError):
        apikeys.create_service_key(
            actor=actor_with(WORKSPACE_PERMISSIONS - {"workspaces:manage-members"}, w.editor),
            organization=w.org,
            workspace=w.workspace,
            name="sneaky",
        )
    return []


@scenario(apikeys.revoke_service_key)
def revoke_service_key(w, act):
    key = key_of(service_key_for(w.workspace))
    with act:
        apikeys.revoke_service_key(actor=w.workspace_admin, key=key)
    key.refresh_from_db()
    return [key_revoked(w, w.workspace_admin, key)]


@scenario(apikeys.revoke_presented_key)
def revoke_a_key_with_itself(w, act):
    key = key_of(service_key_for(w.workspace, "Viewer"))
    with act:
        apikeys.revoke_presented_key(actor=actor_of_key(key))
    key.refresh_from_db()
    return [
        E(
            "service_key.revoked",
            key,
            key,
            key.audit_label,
            workspace=w.workspace,
            changes={"after": {"revoked_at": key.revoked_at.isoformat(), "revoked_reason": "self"}},
        )
    ]


@scenario(apikeys.revoke_leaked_key)
def revoke_a_leaked_token(w, act):
    token = key_of(pat_for(w.editor, w.org))
    url = "https://github.com/octo/app/blob/main/.env"
    with act:
        apikeys.revoke_leaked_key(scanner="github", key=token, url=url, source="content")
    token.refresh_from_db()
    return [
        E(
            "personal_access_token.leaked",
            Actor.system("secret scanner github"),
            token,
            token.audit_label,
            organization=w.org,
            changes={
                "after": {
                    "revoked_at": token.revoked_at.isoformat(),
                    "revoked_reason": "leaked",
                    "leak_reported_by": "github",
                    "leak_url": url,
                    "leak_source": "content",
                }
            },
        )
    ]


@scenario(apikeys.revoke_leaked_key, silent=True)
def a_dead_leaked_key_records_nothing(w, act):
    key = key_of(service_key_for(w.workspace))
    apikeys.revoke_service_key(actor=w.org_admin, key=key)
    with act:
        assert apikeys.revoke_leaked_key(scanner="github", key=key) is None
    return []


@scenario(rotation.rotate_service_key)
def rotate_a_service_key(w, act):
    key = key_of(service_key_for(w.workspace, "Editor"))
    with act:
        successor, _, old = rotation.rotate_service_key(
            actor=w.workspace_admin, key=key, grace_hours=24
        )
    return [
        E(
            "service_key.rotated",
            w.workspace_admin,
            key,
            key.audit_label,
            workspace=w.workspace,
            changes={
                "before": {"hint": key.hint, "expires_at": None},
                "after": {
                    "expires_at": old.expires_at.isoformat(),
                    "grace_hours": 24,
                    "successor": {
                        "id": str(successor.pk),
                        "hint": successor.hint,
                        "expires_at": None,
                    },
                },
            },
        )
    ]


@scenario(rotation.rotate_personal_access_token)
def rotate_a_token_with_itself(w, act):
    token = key_of(pat_for(w.editor, w.org, expires_at=timezone.now() + 30 * DAY))
    with act:
        successor, _, old = rotation.rotate_personal_access_token(
            actor=actor_of_key(token), token=token, grace_hours=1
        )
    return [
        E(
            "personal_access_token.rotated",
            token,
            token,
            token.audit_label,
            organization=w.org,
            changes={
                "before": {"hint": token.hint, "expires_at": token.expires_at.isoformat()},
                "after": {
                    "expires_at": old.expires_at.isoformat(),
                    "grace_hours": 1,
                    "successor": {
                        "id": str(successor.pk),
                        "hint": successor.hint,
                        "expires_at": successor.expires_at.isoformat(),
                    },
                },
            },
        )
    ]


@scenario(apikeys.revoke_service_key, silent=True)
def revoking_twice_records_once(w, act):
    key = key_of(service_key_for(w.workspace))
    apikeys.revoke_service_key(actor=w.workspace_admin, key=key)
    with act:
        apikeys.revoke_service_key(actor=w.org_admin, key=key)
    return []


@scenario(apikeys.set_service_key_ip_allow_list)
def set_a_service_keys_ip_allow_list(w, act):
    key = key_of(service_key_for(w.workspace, ip_allow_list=["203.0.113.0/24"]))
    with act:
        apikeys.set_service_key_ip_allow_list(
            actor=w.workspace_admin, key=key, ip_allow_list=["2001:db8::/48"]
        )
    return [
        E(
            "service_key.ip_allow_list_changed",
            w.workspace_admin,
            key,
            key.audit_label,
            workspace=w.workspace,
            changes={
                "before": {"ip_allow_list": ["203.0.113.0/24"]},
                "after": {"ip_allow_list": ["2001:db8::/48"]},
            },
        )
    ]


@scenario(apikeys.set_service_key_ip_allow_list, silent=True)
def an_unchanged_or_refused_key_ip_allow_list_records_nothing(w, act):
    key = key_of(service_key_for(w.workspace))
    with act:
        apikeys.set_service_key_ip_allow_list(actor=w.workspace_admin, key=key, ip_allow_list=[])
        with pytest.raises(ValidationError):
            apikeys.set_service_key_ip_allow_list(
                actor=w.editor, key=key, ip_allow_list=["10.0.0.0/8"]
            )
    return []


LEGACY = "ls__" + "Ab3" * 10


@scenario(apikeys.import_legacy_key)
def import_legacy_key(w, act):
    with act:
        key = apikeys.import_legacy_key(raw=LEGACY, workspace=w.workspace, name="old ingest")
    return [
        E(
            "service_key.legacy_imported",
            Actor.system("import_legacy_keys"),
            key,
            "legacy service key 'old ingest'",
            workspace=w.workspace,
            changes={
                "after": {
                    "name": "old ingest",
                    "hint": "ls__…3Ab3",
                    "role": "Admin",
                    "expires_at": None,  # Acme sets no key lifetime cap
                }
            },
        )
    ]


@scenario(apikeys.import_legacy_key, silent=True)
def importing_a_legacy_key_twice_records_once(w, act):
    apikeys.import_legacy_key(raw=LEGACY, workspace=w.workspace, name="old ingest")
    with act, pytest.raises(ValidationError):
        apikeys.import_legacy_key(raw=LEGACY, workspace=w.workspace, name="old ingest")
    return []


# reviews


NEXT_WEEK = datetime.timedelta(days=7)


def start(w, workspace=None, actor=None):
    return reviews.start_campaign(
        actor=actor or w.org_admin,
        organization=w.org,
        workspace=workspace,
        name="Q3 review",
        deadline=timezone.now() + NEXT_WEEK,
    )


def review_started(w, actor, campaign, scope, items):
    """Where the review is held: its workspace, or (none) the whole organization."""
    after = {"scope": scope, "items": items, "deadline": campaign.deadline.isoformat()}
    return E(
        "access_review.started",
        actor,
        campaign,
        "Q3 review",
        organization=w.org,
        workspace=campaign.workspace,
        changes={"after": after},
    )


def review_completed(w, campaign, kept, revoked):
    after = {"kept": kept, "revoked": revoked}
    return E(
        "access_review.completed",
        w.org_admin,
        campaign,
        "Q3 review",
        organization=w.org,
        workspace=campaign.workspace,
        changes={"after": after},
    )


def item_for(campaign, label):
    return campaign.items.get(label=label)


@scenario(reviews.start_campaign)
def start_a_workspace_review(w, act):
    service_key_for(w.workspace)
    with act:
        campaign = start(w, w.workspace)
    # five members who are not org admins, and the workspace's key
    assert campaign.items.count() == 6
    assert campaign.workspace == w.workspace
    return [review_started(w, w.org_admin, campaign, "production", 6)]


@scenario(reviews.start_campaign)
def start_an_organization_review_by_a_key(w, act):
    maker = key_of(service_key_for(w.workspace, org_scoped=True))
    with act:
        campaign = start(w, actor=actor_of_key(maker))
    assert campaign.created_by_label == maker.audit_label
    assert campaign.workspace is None
    # the organization's seven members and its one key
    return [review_started(w, maker, campaign, "the whole organization", 8)]


@scenario(reviews.start_campaign, silent=True)
def a_review_with_a_past_deadline_records_nothing(w, act):
    with act, pytest.raises(ValidationError):
        reviews.start_campaign(
            actor=w.org_admin, organization=w.org, name="late", deadline=timezone.now() - DAY
        )
    return []


def decided(w, campaign, item, before, after, actor=None):
    return E(
        "access_review.decided",
        actor or w.org_admin,
        item,
        f"{item.label} (Q3 review)",
        workspace=campaign.workspace,
        organization=w.org,
        changes={"before": {"decision": before}, "after": {"decision": after}},
    )


@scenario(reviews.decide)
def decide_one_item(w, act):
    campaign = start(w, w.workspace)
    item = item_for(campaign, w.viewer.email)
    with act:
        reviews.decide(actor=w.org_admin, campaign=campaign, item_ids=[item.pk], decision="revoke")
    return [decided(w, campaign, item, None, "revoke")]


@scenario(reviews.decide)
def decide_in_bulk_and_change_a_decision(w, act):
    campaign = start(w, w.workspace)
    items = list(campaign.items.order_by("kind", "label")[:3])
    reviews.decide(actor=w.org_admin, campaign=campaign, item_ids=[items[1].pk], decision="revoke")
    with act:
        count = reviews.decide(
            actor=w.org_admin,
            campaign=campaign,
            item_ids=[i.pk for i in reversed(items)],
            decision="keep",
        )
    assert count == 3
    return [
        decided(w, campaign, items[0], None, "keep"),
        decided(w, campaign, items[1], "revoke", "keep"),
        decided(w, campaign, items[2], None, "keep"),
    ]


@scenario(reviews.decide, silent=True)
def deciding_in_a_completed_review_records_nothing(w, act):
    campaign = start(w, w.workspace)
    reviews.decide(
        actor=w.org_admin,
        campaign=campaign,
        item_ids=list(campaign.items.values_list("pk", flat=True)),
        decision="keep",
    )
    reviews.complete_campaign(actor=w.org_admin, campaign=campaign)
    item = item_for(campaign, w.viewer.email)
    with act, pytest.raises(ValidationError):
        reviews.decide(actor=w.org_admin, campaign=campaign, item_ids=[item.pk], decision="revoke")
    return []


def decide_all(w, campaign, revoke=()):
    for item in campaign.items.all():
        decision = "revoke" if item.label in revoke else "keep"
        reviews.decide(actor=w.org_admin, campaign=campaign, item_ids=[item.pk], decision=decision)


@scenario(reviews.complete_campaign)
def complete_a_workspace_review(w, act):
    key = key_of(service_key_for(w.workspace, "Viewer"))
    campaign = start(w, w.workspace)
    decide_all(w, campaign, revoke={w.viewer.email, key.audit_label})
    membership = ws_membership(w.viewer, w.workspace)
    with act:
        result = reviews.complete_campaign(actor=w.org_admin, campaign=campaign)
    assert result == {"kept": 4, "revoked": 2}
    key.refresh_from_db()
    campaign.refresh_from_db()
    assert campaign.workspace == w.workspace
    return [  # items in their order: service keys before workspace members
        key_revoked(w, w.org_admin, key),
        viewer_removed_from_production(w, w.org_admin, membership),
        review_completed(w, campaign, kept=4, revoked=2),
    ]


@scenario(reviews.complete_campaign)
def complete_an_organization_review(w, act):
    token = key_of(pat_for(w.editor, w.org))
    campaign = start(w)
    decide_all(w, campaign, revoke={w.editor.email})
    membership = org_membership(w.editor, w.org)
    with act:
        reviews.complete_campaign(actor=w.org_admin, campaign=campaign)
    return [
        token_deleted(w, w.org_admin, token),
        editor_removed_from_acme(w, w.org_admin, membership),
        review_completed(w, campaign, kept=6, revoked=1),
    ]


@scenario(reviews.complete_campaign, silent=True)
def a_completion_that_cannot_apply_records_nothing(w, act):
    campaign = start(w)
    decide_all(w, campaign, revoke={w.editor.email, w.org_admin.email})
    with act, pytest.raises(ValidationError, match="at least one admin"):
        reviews.complete_campaign(actor=w.org_admin, campaign=campaign)
    assert OrganizationMembership.objects.filter(user=w.editor, organization=w.org).exists()
    return []


@scenario(reviews.complete_campaign, silent=True)
def completing_with_undecided_items_records_nothing(w, act):
    campaign = start(w, w.workspace)
    with act, pytest.raises(ValidationError, match="no decision"):
        reviews.complete_campaign(actor=w.org_admin, campaign=campaign)
    return []


# accounts


@scenario(accounts.record_login_failed)
def login_failed_in_every_organization_of_the_account(w, act):
    OrganizationMembershipFactory(user=w.editor, organization=w.other_org, org_role="viewer")
    with act:
        accounts.record_login_failed(f"  {w.editor.email.upper()} ")
    after = {"after": {"email": w.editor.email}}
    return [
        E("login.failed", None, None, w.editor.email, organization=org, changes=after)
        for org in (w.org, w.other_org)  # by name: Acme, Globex
    ]


@scenario(accounts.record_login_failed)
def login_failed_for_a_password_typed_as_the_email(w, act):
    with act:
        accounts.record_login_failed("hunter2 is my password")
    label = "(not an email address)"
    return [E("login.failed", None, None, label, changes={"after": {"email": label}})]


@scenario(accounts.record_login_succeeded)
def login_succeeded(w, act):
    with act:
        accounts.record_login_succeeded(w.viewer)
    return [E("login.succeeded", w.viewer, w.viewer, w.viewer.email, organization=w.org)]


# sso


def acme_oidc(w, **changes):
    return oidc_sso(w, **{"oidc_client_secret": "s3cret", **changes})


SSO_CONFIGURED = {
    "protocol": "oidc",
    "oidc_issuer": "https://idp.example.test",
    "oidc_client_id": "acme",
    "saml_entity_id": "",
    "saml_metadata_url": "",
    "saml_metadata": "",
    "jit_provisioning": True,
    "default_org_role": "viewer",
    "default_workspace_roles": ["production: Viewer"],
    "invitations_enabled": True,
    "require_sso": False,
    "break_glass_admin": None,
}


@scenario(sso.save_sso)
def configure_single_sign_on(w, act):
    with act:
        configured = acme_oidc(
            w,
            jit_provisioning=True,
            default_org_role="viewer",
            default_workspace_roles=[(w.workspace, system_role("Viewer"))],
        )
    # The secret is never in the log, only that it changed.
    after = {**SSO_CONFIGURED, "oidc_client_secret": "changed"}
    label = "OpenID Connect (Acme)"
    return [E("sso.configured", w.org_admin, configured, label, w.org, changes={"after": after})]


@scenario(sso.save_sso)
def change_single_sign_on(w, act):
    acme_oidc(w)
    with act:
        configured = acme_oidc(w, oidc_client_secret=None, invitations_enabled=False)
    changes = {"before": {"invitations_enabled": True}, "after": {"invitations_enabled": False}}
    label = "OpenID Connect (Acme)"
    return [E("sso.configured", w.org_admin, configured, label, w.org, changes=changes)]


@scenario(sso.save_sso, silent=True)
def unchanged_or_refused_single_sign_on_records_nothing(w, act):
    acme_oidc(w)
    with act:
        acme_oidc(w, oidc_client_secret=None)
        with pytest.raises(ValidationError):
            sso.save_sso(actor=w.editor, organization=w.org, protocol="oidc")
        with pytest.raises(ValidationError):  # nobody would be left to sign in with a password
            acme_oidc(w, require_sso=True)
    return []


@scenario(sso.remove_sso)
def remove_single_sign_on(w, act):
    configured = acme_oidc(w)
    with act:
        sso.remove_sso(actor=w.org_admin, organization=w.org)
    before = {
        **SSO_CONFIGURED,
        "jit_provisioning": False,
        "default_org_role": "member",
        "default_workspace_roles": [],
    }
    label = "OpenID Connect (Acme)"
    return [E("sso.removed", w.org_admin, configured, label, w.org, changes={"before": before})]


@scenario(sso.claim_domain)
def claim_an_email_domain(w, act):
    with act:
        claimed = sso.claim_domain(actor=w.org_admin, organization=w.org, domain="Example.TEST")
    changes = {"after": {"domain": "example.test"}}
    return [E("sso.domain_claimed", w.org_admin, claimed, organization=w.org, changes=changes)]


@scenario(sso.claim_domain, silent=True)
def a_refused_domain_claim_records_nothing(w, act):
    sso.claim_domain(actor=w.org_admin, organization=w.org, domain="example.test")
    with act:
        with pytest.raises(ValidationError):  # not the admin's own email domain
            sso.claim_domain(actor=w.org_admin, organization=w.org, domain="acme.test")
        with pytest.raises(ValidationError):  # Globex's admin is at it, but Acme has it
            sso.claim_domain(actor=w.outsider, organization=w.other_org, domain="example.test")
        with pytest.raises(ValidationError):  # an editor manages nothing
            sso.claim_domain(actor=w.editor, organization=w.org, domain="example.test")
    return []


@scenario(sso.release_domain)
def release_an_email_domain(w, act):
    claimed = sso.claim_domain(actor=w.org_admin, organization=w.org, domain="example.test")
    with act:
        sso.release_domain(actor=w.org_admin, email_domain=claimed)
    changes = {"before": {"domain": "example.test"}}
    return [E("sso.domain_released", w.org_admin, claimed, organization=w.org, changes=changes)]


@scenario(sso.admit_sso_sign_in)
def a_newcomer_provisioned_by_single_sign_on(w, act):
    sso.claim_domain(actor=w.org_admin, organization=w.org, domain="example.test")
    configured = acme_oidc(
        w, jit_provisioning=True, default_workspace_roles=[(w.workspace, system_role("Editor"))]
    )
    with act:
        user = sso.admit_sso_sign_in(sso=configured, email="New@Example.test")
    system = Actor.system("single sign-on of acme")
    membership = org_membership(user, w.org)
    return [
        E(
            "org_member.added",
            system,
            membership,
            user.email,
            w.org,
            changes={"after": {"org_role": "member", "via": "sso"}},
        ),
        E(
            "workspace_member.added",
            system,
            ws_membership(user, w.workspace),
            user.email,
            workspace=w.workspace,
            changes={"after": {"role": "Editor", "via": "sso"}},
        ),
    ]


# scim: the organization's SCIM token acts; org admins manage the token and the mappings


def scim_token(w):
    return scim.issue_token(actor=w.org_admin, organization=w.org)[0]


def grace_state(active=True):
    body = {"userName": "grace@example.com", "active": active}
    return scim_protocol.user_state(body)


def grace_provisioned(w, token, active=True):
    return scim.provision_user(actor=Actor.for_scim_token(token), state=grace_state(active))


def engineers(w, token, *members, role="Editor"):
    """The group Engineers (with `members`), mapped to `role` in production (None: unmapped)."""
    group = scim.create_group(
        actor=Actor.for_scim_token(token),
        state={
            "display_name": "Engineers",
            "external_id": "",
            "member_ids": {str(m.pk) for m in members},
        },
    )
    if role:
        scim.add_group_mapping(
            actor=w.org_admin, group=group, workspace=w.workspace, role=system_role(role)
        )
    return group


def graces_workspace_membership(w):
    return ws_membership(
        OrganizationMembership.objects.get(
            user__email="grace@example.com", organization=w.org
        ).user,
        w.workspace,
    )


def grace_event(w, action, actor, target, **changes):
    """A row in Acme about Grace, the person SCIM provisions: her SCIM user or her membership."""
    return E(action, actor, target, "grace@example.com", w.org, changes=changes)


def graces_workspace_event(w, action, actor, membership, **changes):
    """A row in production about Grace's membership of it, as a SCIM group or mapping sets it."""
    return E(action, actor, membership, "grace@example.com", workspace=w.workspace, changes=changes)


def group_event(w, action, token, group, **changes):
    """A row in Acme about the SCIM group Engineers, written by the SCIM token."""
    return E(action, token, group, organization=w.org, changes=changes)


def mapping_event(w, action, mapping, **changes):
    """A row in production about the mapping of Engineers to a role, written by the org admin."""
    return E(action, w.org_admin, mapping, "Engineers", workspace=w.workspace, changes=changes)


@scenario(scim.issue_token)
def scim_token_issued(w, act):
    with act:
        token, _ = scim.issue_token(actor=w.org_admin, organization=w.org)
    after = {"after": {"hint": token.hint}}
    return [E("scim_token.created", w.org_admin, token, token.audit_label, w.org, changes=after)]


@scenario(scim.rotate_token)
def scim_token_rotated(w, act):
    old = scim_token(w)
    with act:
        new, _, _ = scim.rotate_token(actor=w.org_admin, organization=w.org)
    changes = {"before": {"hint": old.hint}, "after": {"hint": new.hint}}
    return [E("scim_token.rotated", w.org_admin, new, new.audit_label, w.org, changes=changes)]


@scenario(scim.revoke_token)
def scim_token_revoked(w, act):
    token = scim_token(w)
    with act:
        scim.revoke_token(actor=w.org_admin, organization=w.org)
    changes = {"before": {"hint": token.hint}}
    return [E("scim_token.revoked", w.org_admin, token, token.audit_label, w.org, changes=changes)]


@scenario(scim.set_default_org_role)
def scim_default_org_role_changed(w, act):
    with act:
        scim.set_default_org_role(actor=w.org_admin, organization=w.org, org_role="viewer")
    changes = {"before": {"org_role": "member"}, "after": {"org_role": "viewer"}}
    return [E("scim_settings.changed", w.org_admin, w.org, "Acme", w.org, changes=changes)]


@scenario(scim.provision_user)
def scim_user_provisioned_joins_the_organization(w, act):
    token = scim_token(w)
    with act:
        scim_user = grace_provisioned(w, token)
    membership = OrganizationMembership.objects.get(user=scim_user.user, organization=w.org)
    return [
        grace_event(
            w,
            "scim_user.created",
            token,
            scim_user,
            after={"userName": "grace@example.com", "active": True},
        ),
        grace_event(
            w, "org_member.added", token, membership, after={"org_role": "member", "via": "scim"}
        ),
    ]


@scenario(scim.update_user)
def scim_user_deactivated_leaves_the_organization(w, act):
    token = scim_token(w)
    grace = grace_provisioned(w, token)
    engineers(w, token, grace)
    membership = OrganizationMembership.objects.get(user=grace.user, organization=w.org)
    pat = PersonalAccessToken.objects.get(digest=keys.digest(pat_for(grace.user, w.org)))
    pat_deleted = token_deleted(w, token, pat)  # its label names its user: read it now
    with act:
        scim.update_user(
            actor=Actor.for_scim_token(token), scim_user=grace, state=grace_state(False)
        )
    return [
        pat_deleted,
        grace_event(
            w,
            "org_member.removed",
            token,
            membership,
            before={"org_role": "member", "workspaces": ["production"]},
        ),
        grace_event(w, "scim_user.deactivated", token, grace, after={"sessions_ended": 0}),
    ]


@scenario(scim.update_user)
def scim_user_reactivated_joins_again_with_what_their_groups_map_to(w, act):
    token = scim_token(w)
    grace = grace_provisioned(w, token)
    engineers(w, token, grace)
    scim.update_user(actor=Actor.for_scim_token(token), scim_user=grace, state=grace_state(False))
    with act:
        scim.update_user(
            actor=Actor.for_scim_token(token), scim_user=grace, state=grace_state(True)
        )
    membership = OrganizationMembership.objects.get(user=grace.user, organization=w.org)
    return [
        grace_event(
            w, "org_member.added", token, membership, after={"org_role": "member", "via": "scim"}
        ),
        graces_workspace_event(
            w,
            "workspace_member.added",
            token,
            graces_workspace_membership(w),
            after={"role": "Editor", "via": "scim"},
        ),
        grace_event(w, "scim_user.reactivated", token, grace),
    ]


@scenario(scim.delete_user)
def scim_user_deleted(w, act):
    token = scim_token(w)
    grace = grace_provisioned(w, token, active=False)
    with act:
        scim.delete_user(actor=Actor.for_scim_token(token), scim_user=grace)
    before = {"before": {"userName": "grace@example.com"}}
    return [grace_event(w, "scim_user.deleted", token, grace, **before)]


@scenario(scim.create_group)
def scim_group_created_with_a_member(w, act):
    token = scim_token(w)
    grace = grace_provisioned(w, token)
    with act:
        group = engineers(w, token, grace, role=None)
    return [
        group_event(w, "scim_group.created", token, group, after={"displayName": "Engineers"}),
        group_event(
            w, "scim_group.member_added", token, group, after={"member": "grace@example.com"}
        ),
    ]


@scenario(scim.update_group)
def scim_group_member_joins_and_gets_the_mapped_role(w, act):
    token = scim_token(w)
    grace = grace_provisioned(w, token)
    group = engineers(w, token)
    state = {"display_name": "Engineers", "external_id": "", "member_ids": {str(grace.pk)}}
    with act:
        scim.update_group(actor=Actor.for_scim_token(token), group=group, state=state)
    return [
        group_event(
            w, "scim_group.member_added", token, group, after={"member": "grace@example.com"}
        ),
        graces_workspace_event(
            w,
            "workspace_member.added",
            token,
            graces_workspace_membership(w),
            after={"role": "Editor", "via": "scim"},
        ),
    ]


@scenario(sso.admit_sso_sign_in, silent=True)
def a_member_or_a_refused_sso_sign_in_records_nothing(w, act):
    sso.claim_domain(actor=w.org_admin, organization=w.org, domain="example.test")
    configured = acme_oidc(w)
    with act:
        assert sso.admit_sso_sign_in(sso=configured, email=w.editor.email) == w.editor
        with pytest.raises(sso.SsoRefused):  # JIT is off
            sso.admit_sso_sign_in(sso=configured, email="new@example.test")
        with pytest.raises(sso.SsoRefused):  # not a verified domain
            sso.admit_sso_sign_in(sso=configured, email="x@elsewhere.test")
    return []


@scenario(sso.record_sso_refusal)
def a_refused_sso_sign_in(w, act):
    configured = acme_oidc(w)
    with act:
        sso.record_sso_refusal(configured, "X@elsewhere.test", sso.SsoRefused("unverified", "no"))
    after = {"reason": "unverified", "provider": "OpenID Connect (Acme)"}
    return [
        E("sso.sign_in_refused", None, None, "x@elsewhere.test", w.org, changes={"after": after})
    ]


@scenario(sso.record_account_linked)
def an_account_linked_to_the_identity_provider(w, act):
    configured = acme_oidc(w)
    with act:
        sso.record_account_linked(configured, w.editor)
    return [
        E(
            "sso.account_linked",
            Actor.system("single sign-on of acme"),
            w.editor,
            w.editor.email,
            organization=w.org,
            changes={"after": {"provider": "OpenID Connect (Acme)"}},
        )
    ]


@scenario(sso.record_sso_sign_in)
def a_sign_in_through_single_sign_on(w, act):
    configured = acme_oidc(w)
    with act:
        sso.record_sso_sign_in(w.viewer, configured)
    after = {"via": "sso", "provider": "OpenID Connect (Acme)"}
    return [
        E(
            "login.succeeded",
            w.viewer,
            w.viewer,
            w.viewer.email,
            organization=w.org,
            changes={"after": after},
        )
    ]


@scenario(scim.delete_group)
def scim_group_deleted_takes_back_its_role(w, act):
    token = scim_token(w)
    grace = grace_provisioned(w, token)
    group = engineers(w, token, grace)
    mapping = GroupMapping.objects.get(group=group)
    membership = graces_workspace_membership(w)
    with act:
        scim.delete_group(actor=Actor.for_scim_token(token), group=group)
    return [
        group_event(w, "scim_group.deleted", token, group, before={"displayName": "Engineers"}),
        # The mapping an org admin made goes with the group: recorded as removing it would be.
        E(
            "scim_mapping.removed",
            token,
            mapping,
            "Engineers",
            workspace=w.workspace,
            changes={"before": {"role": "Editor"}},
        ),
        graces_workspace_event(
            w, "workspace_member.removed", token, membership, before={"role": "Editor"}
        ),
    ]


@scenario(scim.add_group_mapping)
def scim_group_mapped_gives_its_members_the_role(w, act):
    token = scim_token(w)
    grace = grace_provisioned(w, token)
    group = engineers(w, token, grace, role=None)
    with act:
        mapping = scim.add_group_mapping(
            actor=w.org_admin, group=group, workspace=w.workspace, role=system_role("Editor")
        )
    return [
        mapping_event(w, "scim_mapping.created", mapping, after={"role": "Editor"}),
        graces_workspace_event(
            w,
            "workspace_member.added",
            w.org_admin,
            graces_workspace_membership(w),
            after={"role": "Editor", "via": "scim"},
        ),
    ]


@scenario(scim.change_group_mapping)
def scim_mapping_changed_changes_its_members_role(w, act):
    token = scim_token(w)
    grace = grace_provisioned(w, token)
    mapping = GroupMapping.objects.get(group=engineers(w, token, grace))
    membership = graces_workspace_membership(w)
    with act:
        scim.change_group_mapping(actor=w.org_admin, mapping=mapping, role=system_role("Viewer"))
    role_change = {"before": {"role": "Editor"}, "after": {"role": "Viewer"}}
    return [
        mapping_event(w, "scim_mapping.changed", mapping, **role_change),
        graces_workspace_event(
            w, "workspace_member.role_changed", w.org_admin, membership, **role_change
        ),
    ]


@scenario(scim.remove_group_mapping)
def scim_mapping_removed_takes_back_its_role(w, act):
    token = scim_token(w)
    grace = grace_provisioned(w, token)
    mapping = GroupMapping.objects.get(group=engineers(w, token, grace))
    membership = graces_workspace_membership(w)
    with act:
        scim.remove_group_mapping(actor=w.org_admin, mapping=mapping)
    return [
        mapping_event(w, "scim_mapping.removed", mapping, before={"role": "Editor"}),
        graces_workspace_event(
            w, "workspace_member.removed", w.org_admin, membership, before={"role": "Editor"}
        ),
    ]


# The tests of the table ---------------------------------------------------------------------


def test_every_service_has_a_scenario():
    found = set().union(*(public_functions(m) for m in SERVICE_MODULES))
    assert found, "no services found: the enumeration is broken"
    unlisted = found - COVERED - set(NOT_CHANGING_ACCESS)
    assert not unlisted, f"services with no audit scenario: {sorted(unlisted)}"
    # The table names only what exists, and nothing is both excluded and covered.
    assert set(NOT_CHANGING_ACCESS) <= found, sorted(set(NOT_CHANGING_ACCESS) - found)
    assert found >= COVERED, sorted(COVERED - found)
    assert not COVERED & set(NOT_CHANGING_ACCESS)


def test_every_covered_service_has_a_scenario_that_records_something():
    """A table of only "records nothing" cases would let a silent service pass."""
    recording = {name for param in SCENARIOS if not param.values[2] for name in param.values[1]}
    assert recording == COVERED, sorted(COVERED - recording)


@pytest.mark.parametrize(("run", "services", "silent"), SCENARIOS)
def test_service_records_exactly_the_expected_events(world, run, services, silent):
    act = Act()
    expected = run(world, act)
    assert act.entered == 1, "the scenario must call the service inside `with act:` once"
    assert bool(expected) is not silent
    got = [row_columns(r) for r in act.rows]
    assert [r["action"] for r in got] == [e.action for e in expected]
    for row, e in zip(got, expected, strict=True):
        assert row == e.columns(), e.action


# Sign-ins through the real view ------------------------------------------------------------


def login(client, email, password):
    return client.post(
        "/login/",
        {"login": email, "password": password},
        HTTP_USER_AGENT="browser/1",
        HTTP_X_REQUEST_ID="login-req-1",
    )


def events(action):
    return list(AuditEvent.objects.filter(action=action).order_by("id"))


def test_a_successful_sign_in_is_recorded_in_each_organization_of_the_user(client, world):
    OrganizationMembershipFactory(user=world.editor, organization=world.other_org)
    response = login(client, world.editor.email.upper(), PASSWORD)
    assert response.status_code == 302
    rows = events("login.succeeded")
    assert [r.organization_id for r in rows] == [world.org.pk, world.other_org.pk]
    for row in rows:
        assert (row.actor_kind, row.actor_label, row.actor_user_id) == (
            "user",
            world.editor.email,
            world.editor.pk,
        )
        assert (row.target_type, row.target_id) == ("user", str(world.editor.pk))
        assert (row.ip_address, row.user_agent, row.request_id) == (
            "127.0.0.1",
            "browser/1",
            "login-req-1",
        )
    assert not events("login.failed")


def test_a_failed_sign_in_is_recorded_without_the_password(client, world):
    response = login(client, world.viewer.email, "Wrong-Password-123")
    assert response.status_code == 400
    (row,) = events("login.failed")
    assert (row.organization_id, row.actor_kind, row.actor_user_id) == (
        world.org.pk,
        "system",
        None,
    )
    assert row.target_label == world.viewer.email
    assert row.changes == {"after": {"email": world.viewer.email}}
    assert "Wrong-Password-123" not in str(row.__dict__)
    assert not events("login.succeeded")


def test_a_failed_sign_in_of_an_unknown_email_is_recorded_once_outside_any_organization(
    client, world
):
    assert login(client, "nobody@example.test", PASSWORD).status_code == 400
    (row,) = events("login.failed")
    assert row.organization_id is None
    assert row.target_label == "nobody@example.test"


def test_a_password_in_the_email_field_never_reaches_the_log(client, world):
    assert login(client, "Correct-Horse-Battery-9", "x").status_code == 400
    (row,) = events("login.failed")
    assert row.target_label == "(not an email address)"
    everything = " ".join(str(f.value_from_object(row)) for f in AuditEvent._meta.concrete_fields)
    assert "Correct-Horse" not in everything


# Keys refused after the fact ---------------------------------------------------------------


@pytest.fixture
def fresh_cache():
    cache.clear()
    yield
    cache.clear()


def whoami_status(client, raw):
    response = api_call(client, "get", "/auth/whoami", raw)
    return response.status_code, response.json().get("error")


@pytest.mark.parametrize("kind", ["personal_access_token", "service_key"])
def test_an_expired_key_used_twice_records_one_event(client, world, fresh_cache, kind):
    soon = timezone.now() + datetime.timedelta(hours=1)
    if kind == "personal_access_token":
        raw = pat_for(world.editor, world.org, expires_at=soon)
    else:
        raw = service_key_for(world.workspace, "Editor", expires_at=soon)
    key = key_of(raw)
    assert whoami_status(client, raw)[0] == 200
    type(key).objects.filter(pk=key.pk).update(expires_at=timezone.now() - DAY)
    key.refresh_from_db()

    assert whoami_status(client, raw) == (401, "expired_api_key")
    assert whoami_status(client, raw) == (401, "expired_api_key")
    (row,) = events(f"{kind}.expired_use")
    assert (row.actor_kind, row.actor_id, row.actor_label) == (kind, str(key.pk), key.audit_label)
    assert (row.target_type, row.target_id) == (key._meta.model_name, str(key.pk))
    assert row.organization_id == world.org.pk
    assert row.workspace_id == (world.workspace.pk if kind == "service_key" else None)
    assert row.changes == {"after": {"expires_at": key.expires_at.isoformat()}}

    # Once a day: when the day's mark is gone, the next use is recorded again.
    cache.clear()
    assert whoami_status(client, raw) == (401, "expired_api_key")
    assert len(events(f"{kind}.expired_use")) == 2


def test_two_expired_keys_are_recorded_once_each(client, world, fresh_cache):
    soon = timezone.now() + datetime.timedelta(hours=1)
    raws = [service_key_for(world.workspace, expires_at=soon) for _ in range(2)]
    ServiceKey.objects.update(expires_at=timezone.now() - DAY)
    for raw in raws * 2:
        assert whoami_status(client, raw) == (401, "expired_api_key")
    rows = events("service_key.expired_use")
    assert sorted(r.target_id for r in rows) == sorted(str(key_of(r).pk) for r in raws)


def test_a_legacy_key_after_the_sunset_records_legacy_refused(client, world, settings, fresh_cache):
    raw = "ls__" + uuid.uuid4().hex
    key = apikeys.import_legacy_key(raw=raw, workspace=world.workspace, name="old ingest")
    settings.LEGACY_API_KEY_SUNSET = timezone.now().date() + datetime.timedelta(days=30)
    assert whoami_status(client, raw)[0] == 200
    assert not events("service_key.legacy_refused")

    settings.LEGACY_API_KEY_SUNSET = timezone.now().date()
    assert whoami_status(client, raw) == (401, "legacy_api_key_sunset")
    assert whoami_status(client, raw) == (401, "legacy_api_key_sunset")
    (row,) = events("service_key.legacy_refused")
    assert (row.actor_kind, row.actor_id, row.actor_label) == (
        "service_key",
        str(key.pk),
        "legacy service key 'old ingest'",
    )
    assert (row.organization_id, row.workspace_id) == (world.org.pk, world.workspace.pk)
    assert (row.target_type, row.target_id) == ("servicekey", str(key.pk))
    assert raw not in str(row.__dict__)


def test_an_unknown_legacy_key_after_the_sunset_records_nothing(client, world, fresh_cache):
    before = AuditEvent.objects.count()
    assert whoami_status(client, "ls__" + uuid.uuid4().hex) == (401, "legacy_api_key_sunset")
    assert AuditEvent.objects.count() == before


# No key ever reaches the audit log -----------------------------------------------------------


def test_no_audit_row_ever_contains_a_raw_key(client, world, settings, fresh_cache):
    raws = []
    # Through the services, as the seed and the tests do.
    raws.append(pat_for(world.editor, world.org))
    raws.append(service_key_for(world.workspace, org_scoped=True))
    admin_key = service_key_for(world.workspace)
    raws.append(admin_key)

    # Through the API: a service key and a personal access token, then revoked.
    made = api_call(client, "post", "/api-key", admin_key, json={"name": "minted"})
    assert made.status_code == 201
    raws.append(made.json()["key"])
    token = api_call(
        client, "post", "/orgs/current/personal-access-tokens", raws[0], json={"name": "cli"}
    )
    assert token.status_code == 201
    raws.append(token.json()["key"])
    assert api_call(client, "delete", f"/api-key/{made.json()['id']}", admin_key).status_code == 200
    path = f"/orgs/current/personal-access-tokens/{token.json()['id']}"
    assert api_call(client, "delete", path, raws[0]).status_code == 200

    # Through the console: a service key and a personal access token.
    client.force_login(world.workspace_admin)
    response = client.post(
        "/o/acme/w/production/keys/",
        {"name": "console key", "role": str(system_role("Viewer").pk), "expires_in": "30"},
    )
    assert response.status_code == 302  # to the list, which shows the key once
    raws += KEY.findall(client.get(response["Location"]).content.decode())
    response = client.post("/o/acme/tokens/", {"name": "console token", "expires_in": "7"})
    assert response.status_code == 302
    raws += KEY.findall(client.get(response["Location"]).content.decode())
    assert len(set(raws)) == 7, raws

    # Used, expired and used again, and a legacy key imported and refused.
    for raw in raws:
        api_call(client, "get", "/auth/whoami", raw)
    ServiceKey.objects.filter(name="console key").update(expires_at=timezone.now() - DAY)
    legacy = "ls__" + uuid.uuid4().hex
    apikeys.import_legacy_key(raw=legacy, workspace=world.workspace, name="legacy")
    for raw in [*raws, legacy]:
        api_call(client, "get", "/auth/whoami", raw)
    raws.append(legacy)

    # The owner leaves: their tokens are deleted, each with an event.
    organizations.remove_org_member(
        actor=world.org_admin, membership=org_membership(world.workspace_admin, world.org)
    )
    organizations.remove_org_member(
        actor=world.org_admin, membership=org_membership(world.editor, world.org)
    )

    rows = list(AuditEvent.objects.all())
    actions = {r.action for r in rows}
    assert {
        "service_key.created",
        "service_key.revoked",
        "service_key.expired_use",
        "service_key.legacy_imported",
        "service_key.legacy_refused",
        "personal_access_token.created",
        "personal_access_token.revoked",
        "personal_access_token.deleted",
    } <= actions
    assert_no_key_in_audit(raws)
