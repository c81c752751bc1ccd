"""Every console action that widens access asks for sudo (finding 5 of issue #12, and its class).

The list below is the declaration the tests hold the code to: every console route that accepts a
POST is either in WIDENING (and carries @sudo_required) or in NOT_WIDENING with the reason it
hands out nothing. A new POST route that is in neither fails here until someone decides.
Then each widening action is tried for real with a lapsed sudo window: it is refused and changes
nothing; with sudo fresh, the very same request changes something (so the refusal is real).
"""

import pytest
from django.urls import get_resolver, reverse

from accesscontrol.access_requests.services import create_access_request
from accesscontrol.accounts import allauth_urls, sudo
from accesscontrol.apikeys import keys
from accesscontrol.apikeys.models import PersonalAccessToken, ServiceKey
from accesscontrol.audit.models import AuditEvent
from accesscontrol.organizations.models import Invitation, OrganizationMembership
from accesscontrol.organizations.services import invite_member
from accesscontrol.rbac import gate
from accesscontrol.rbac.actor import Actor
from accesscontrol.rbac.models import Role
from accesscontrol.resources import urls as resource_urls
from accesscontrol.workspaces.models import WorkspaceMembership
from accesscontrol.workspaces.services import update_workspace
from tests.factories import oidc_sso, pat_for, service_key_for, system_role
from tests.support.urls import accepted_methods, walk

WIDENING = {
    "org-settings": "the plan (lower plans make every member Admin) and the PAT policy",
    "org-invite": "brings a person in with an org role and workspace roles",
    "invitation-resend": "a fresh link to join",
    "org-member-role": "can make an org admin",
    "role-create": "a role is a set of permissions to hand out",
    "role-edit": "adds permissions to everyone holding the role",
    "personal-tokens": "a token: a credential acting as its user",
    "workspace-member-add": "a role in a workspace",
    "workspace-member-role": "can promote",
    "workspace-members-bulk-role": "can promote many",
    "workspace-archive": "restoring gives every member and key their full role back",
    "workspace-delete": "destroys everything in a workspace",
    "service-keys": "a key: a credential with a role",
    "service-key-rotate": "a new key, with the old one's role",
    "personal-token-rotate": "a new token acting as its user",
    "org-ip-allow-list": "emptying or widening it lets every key in from more addresses",
    "service-key-ip-allow-list": "emptying or widening it lets the key in from more addresses",
    "access-request-approve": "grants the requester a role",
    "org-sso": "the identity provider vouches for people; just-in-time roles for newcomers",
    "org-sso-domains": "everyone the identity provider vouches for at the domain may come in",
    "org-sso-remove": "ends 'require SSO': passwords work again",
    # Provisioning: a SCIM token creates people and gives them roles; every change to it or to
    # the mappings asks, including the ones that only narrow (revoke, remove a mapping).
    "org-provisioning-token": "a SCIM token: provisions people into the organization",
    "org-provisioning-default-role": "the org role everyone provisioned from now on gets",
    "org-provisioning-token-rotate": "a new SCIM token",
    "org-provisioning-token-revoke": "ends provisioning (asked like every provisioning change)",
    "org-provisioning-mapping-add": "gives a group's members a workspace role",
    "org-provisioning-mapping": "can map a group to a stronger role",
    "org-provisioning-mapping-remove": "takes a group's role back (asked like every mapping "
    "change)",
    "org-authentication": "turning the MFA requirement off lets its members in on a password alone",
}

NOT_WIDENING = {
    "login": "signing in is how sudo is granted",
    "logout": "ends a session",
    "sudo": "the confirmation itself",
    "invitation-accept": "the invited person, with the invitation's own (re-checked) power",
    "org-member-remove": "only narrows",
    "invitation-cancel": "only narrows",
    "org-workspace-create": "an empty workspace; org admins are Admin in it anyway",
    "role-delete": "only roles nobody holds",
    "campaigns": "starts a review: records, grants nothing",
    "campaign-decide": "records a decision",
    "campaign-complete": "only revokes",
    "personal-token-revoke": "only narrows",
    "workspace-member-remove": "only narrows",
    "workspace-settings": "the workspace's name",
    "service-key-revoke": "only narrows",
    "access-request-new": "asks for access; grants nothing",
    "access-request-deny": "only refuses",
    "api-root": "the API: keys, never sessions",
    "openapi-json": "the API's document",
    "openapi-view": "the API's document",
    "org-sso-domain-release": "only narrows",
    "sso-sign-in": "a sign-in stage: starts the identity provider's sign-in",
    "sudo-sso": "the confirmation itself, at the identity provider",
    # SCIM: only an organization's SCIM bearer token, never a session (scim/auth.py).
    "scim-root": "SCIM API: its token, never a session",
    "scim-config": "SCIM API: its token, never a session",
    "scim-resource-types": "SCIM API: its token, never a session",
    "scim-resource-type": "SCIM API: its token, never a session",
    "scim-schemas": "SCIM API: its token, never a session",
    "scim-schema": "SCIM API: its token, never a session",
    "scim-users": "SCIM API: its token, never a session",
    "scim-user": "SCIM API: its token, never a session",
    "scim-groups": "SCIM API: its token, never a session",
    "scim-group": "SCIM API: its token, never a session",
}
# django-allauth's pages (accounts/allauth_urls.py). The ones it declares public are the sign-in
# flow and its stages, reached before anyone is signed in: whether a page belongs there is decided
# in that file (an undeclared allauth URL fails start-up). The signed-in ones are decided here:
# reauthentication is a sign-in stage too; the rest are the person's own credentials, which
# allauth guards with its own reauthentication (a fresh sign-in or MFA).
_SIGNING_IN = "a sign-in stage (password, MFA, passkey, SSO): no one's power changes"
_OWN_CREDENTIALS = "the person's own sign-in credentials, behind allauth's reauthentication"
NOT_WIDENING |= (
    dict.fromkeys(allauth_urls.PUBLIC, _SIGNING_IN)
    | dict.fromkeys(
        [
            "account_reauthenticate",
            "account_request_reauthentication_code",
            "account_confirm_reauthentication_code",
            "mfa_reauthenticate",
            "mfa_reauthenticate_webauthn",
        ],
        _SIGNING_IN,
    )
    | dict.fromkeys(
        [
            "account_email",
            "account_change_password",
            "account_set_password",
            "mfa_index",
            "mfa_activate_totp",
            "mfa_deactivate_totp",
            "mfa_view_recovery_codes",
            "mfa_generate_recovery_codes",
            "mfa_download_recovery_codes",
            "mfa_list_webauthn",
            "mfa_add_webauthn",
            "mfa_remove_webauthn",
            "mfa_edit_webauthn",
            "socialaccount_connections",
        ],
        _OWN_CREDENTIALS,
    )
)


# Routes of resource data, never of access.
RESOURCE_DATA = {pattern.name for _, pattern, _ in walk(resource_urls.urlpatterns) if pattern.name}


def console_post_routes():
    found = {}
    for _route, pattern, _plain in walk(get_resolver().url_patterns):
        rule = gate.rule_of(pattern.callback)
        if rule is not None and rule.kind == gate.API:
            continue
        if pattern.name and "POST" in accepted_methods(pattern.callback):
            found[pattern.name] = pattern.callback
    return found


def test_every_console_post_route_is_classified_and_widening_ones_carry_sudo():
    routes = console_post_routes()
    assert len(routes) > 30, "the walk found too few routes: it is broken"
    unclassified = set(routes) - set(WIDENING) - set(NOT_WIDENING) - RESOURCE_DATA
    assert not unclassified, f"decide whether these widen access: {sorted(unclassified)}"
    assert set(WIDENING) <= set(routes), sorted(set(WIDENING) - set(routes))
    carrying = {name for name, view in routes.items() if getattr(view, "sudo_required", False)}
    assert carrying == set(WIDENING), {
        "missing sudo": sorted(set(WIDENING) - carrying),
        "sudo but not listed": sorted(carrying - set(WIDENING)),
    }


def _org_membership(world, user):
    return OrganizationMembership.objects.get(user=user, organization=world.org)


def _ws_membership(world, user):
    return WorkspaceMembership.objects.get(org_membership__user=user, workspace=world.workspace)


def request_for(world, name):
    """(url, form data) of a request that, with sudo, changes something."""
    org, ws = "acme", "production"
    viewer_ws = _ws_membership(world, world.viewer)
    if name == "org-settings":
        return reverse(name, args=[org]), {
            "plan": "developer",
            "allow_personal_access_tokens": "on",
        }
    if name == "org-invite":
        return reverse(name, args=[org]), {"email": "new@example.test", "org_role": "member"}
    if name == "invitation-resend":
        invitation, _ = invite_member(
            actor=world.org_admin, organization=world.org, email="pending@example.test"
        )
        return reverse(name, args=[org, invitation.pk]), {}
    if name == "org-member-role":
        member = _org_membership(world, world.member_without_workspace)
        # confirmed: the promotion's question was answered (the confirmation is a GET-like step)
        return reverse(name, args=[org, member.pk]), {"org_role": "admin", "confirmed": "1"}
    if name == "role-create":
        return reverse(name, args=[org]), {"name": "Readers", "permissions": ["runs:read"]}
    if name == "role-edit":
        role = Role.objects.get(organization=world.org, name="Annotator")
        codes = [*role.permissions, "datasets:create"]
        return reverse(name, args=[org, role.pk]), {"name": role.name, "permissions": codes}
    if name == "personal-tokens":
        return reverse(name, args=[org]), {"name": "laptop", "expires_in": "30"}
    if name == "workspace-member-add":
        email = world.member_without_workspace.email
        return reverse(name, args=[org, ws]), {"email": email, "role": system_role("Viewer").pk}
    if name == "workspace-member-role":
        return reverse(name, args=[org, ws, viewer_ws.pk]), {"role": system_role("Editor").pk}
    if name == "workspace-members-bulk-role":
        data = {"members": [viewer_ws.pk], "role": system_role("Editor").pk}
        return reverse(name, args=[org, ws]), data
    if name == "workspace-archive":
        update_workspace(actor=world.org_admin, workspace=world.workspace, archived=True)
        return reverse(name, args=[org, ws]), {}  # restores it
    if name == "workspace-delete":
        return reverse(name, args=[org, ws]), {"confirmation": "production"}
    if name == "service-keys":
        data = {"name": "ci", "role": system_role("Viewer").pk, "expires_in": "30"}
        return reverse(name, args=[org, ws]), data
    if name == "service-key-rotate":
        key = ServiceKey.objects.get(digest=keys.digest(service_key_for(world.workspace)))
        return reverse(name, args=[org, ws, key.pk]), {"grace_hours": "24"}
    if name == "personal-token-rotate":
        token = PersonalAccessToken.objects.get(
            digest=keys.digest(pat_for(world.org_admin, world.org))
        )
        return reverse(name, args=[org, token.pk]), {"grace_hours": "24"}
    if name == "org-authentication":
        return reverse(name, args=[org]), {"require_mfa": "everyone"}
    if name == "org-ip-allow-list":
        return reverse(name, args=[org]), {"ip_allow_list": "203.0.113.0/24"}
    if name == "service-key-ip-allow-list":
        service_key_for(world.workspace, "Viewer")
        key = ServiceKey.objects.get(workspace=world.workspace, name="Viewer key")
        return reverse(name, args=[org, ws, key.pk]), {"ip_allow_list": "2001:db8::/32"}
    if name == "access-request-approve":
        request = create_access_request(
            actor=Actor.for_user(world.member_without_workspace, world.org),
            workspace=world.workspace,
            permission="datasets:read",
            reason="sudo test",
        )
        return reverse(name, args=[org, request.pk]), {"expiry": "1h"}
    if name == "org-sso":
        return reverse(name, args=[org]), {
            "protocol": "oidc",
            "oidc_issuer": "https://idp.example.test",
            "oidc_client_id": "acme",
            "oidc_client_secret": "secret",
            "default_org_role": "member",
            "jit_provisioning": "on",
        }
    if name == "org-sso-domains":
        return reverse(name, args=[org]), {"domain": world.org_admin.email.split("@")[1]}
    if name == "org-sso-remove":
        oidc_sso(world, oidc_client_secret="secret")
        return reverse(name, args=[org]), {}
    if name.startswith("org-provisioning"):
        return provisioning_request(world, name)
    raise AssertionError(f"no request for {name}: add one")


def provisioning_request(world, name):
    from accesscontrol.scim import services as scim
    from accesscontrol.scim.models import ScimGroup

    org = "acme"
    if name == "org-provisioning-token":
        return reverse(name, args=[org]), {}
    if name == "org-provisioning-default-role":
        return reverse(name, args=[org]), {"default_org_role": "viewer"}
    if name in ("org-provisioning-token-rotate", "org-provisioning-token-revoke"):
        scim.issue_token(actor=world.org_admin, organization=world.org)
        return reverse(name, args=[org]), {}
    group = ScimGroup.objects.create(organization=world.org, display_name="Engineers")
    if name == "org-provisioning-mapping-add":
        data = {
            "group": group.pk,
            "workspace": world.workspace.pk,
            "role": system_role("Viewer").pk,
        }
        return reverse(name, args=[org]), data
    mapping = scim.add_group_mapping(
        actor=world.org_admin, group=group, workspace=world.workspace, role=system_role("Viewer")
    )
    return reverse(name, args=[org, mapping.pk]), {"role": system_role("Editor").pk}


def state():
    """Every change is audited in its own transaction: the log's length says if one happened."""
    return (AuditEvent.objects.count(), Invitation.objects.count())


def lapsed(client, world):
    """The org admin, signed in longer ago than the sudo window."""
    client.force_login(world.org_admin)
    session = client.session
    session[sudo.SESSION_KEY] = 0
    session.save()


@pytest.mark.parametrize("name", sorted(WIDENING))
def test_a_lapsed_sudo_window_refuses_every_widening_action(client, world, name):
    url, data = request_for(world, name)
    lapsed(client, world)
    before = state()

    response = client.post(url, data)

    assert response.status_code == 302, response.content[:300]
    assert response["Location"].startswith(reverse("sudo"))
    assert state() == before

    # The same request with sudo fresh does change something: the refusal above was sudo's.
    client.force_login(world.org_admin)
    client.post(url, data)
    assert state() != before


@pytest.mark.parametrize("name", sorted(WIDENING))
def test_a_lapsed_sudo_window_over_htmx_gets_a_redirect_to_the_confirmation(client, world, name):
    url, data = request_for(world, name)
    lapsed(client, world)
    before = state()

    response = client.post(url, data, headers={"HX-Request": "true"})

    assert response.status_code == 204
    assert response["HX-Redirect"].startswith(reverse("sudo"))
    assert state() == before
