"""Below Enterprise only Admin is assignable (check_role_assignable), on every path that hands
out a workspace role, including those that hand it out later than it was chosen: an invitation
accepted, and SSO's just-in-time provisioning with its default workspace roles. Chosen on
Enterprise and applied after a downgrade, such a role is refused cleanly, as SCIM's group
mappings refuse it (tests/scim/test_group_mappings.py), never stored and never a server error."""

import pytest
from django.core.exceptions import ValidationError

from accesscontrol.access_requests.services import suggested_role
from accesscontrol.accounts.models import User
from accesscontrol.audit.models import AuditEvent
from accesscontrol.organizations.models import Invitation, OrganizationMembership
from accesscontrol.organizations.services import (
    accept_invitation,
    invite_member,
    update_organization_settings,
)
from accesscontrol.rbac.actor import as_actor
from accesscontrol.workspaces.models import WorkspaceMembership
from accesscontrol.workspaces.services import assignable_roles, grantable_roles
from tests.factories import UserFactory, pat_for, system_role
from tests.sso.conftest import acme_oidc, domain, oidc_provider, oidc_sign_in  # noqa: F401
from tests.support.api import api_call
from tests.support.db import row_counts

NEWCOMER = "newcomer@example.test"


def downgrade(world):
    update_organization_settings(actor=world.org_admin, organization=world.org, plan="plus")


def invited(world, role_name, capture_on_commit):
    """The newcomer, invited (on Enterprise) to production with the role `role_name`."""
    with capture_on_commit(execute=True):
        invitation, _ = invite_member(
            actor=world.org_admin,
            organization=world.org,
            email=NEWCOMER,
            workspaces=[world.workspace],
            workspace_role=system_role(role_name),
        )
    return invitation


def test_an_invitation_to_a_viewer_role_is_refused_once_the_plan_is_below_enterprise(
    world, django_capture_on_commit_callbacks
):
    invitation = invited(world, "Viewer", django_capture_on_commit_callbacks)
    downgrade(world)
    user = UserFactory(email=NEWCOMER)
    before = row_counts(OrganizationMembership, WorkspaceMembership, Invitation, AuditEvent)

    with pytest.raises(ValidationError) as exc:
        accept_invitation(invitation=invitation, user=user)

    assert "Enterprise" in " ".join(exc.value.messages)
    assert row_counts(OrganizationMembership, WorkspaceMembership, Invitation, AuditEvent) == (
        before
    )
    assert Invitation.objects.get().status == "pending"


def test_an_admin_invitation_is_accepted_on_any_plan(world, django_capture_on_commit_callbacks):
    invitation = invited(world, "Admin", django_capture_on_commit_callbacks)
    downgrade(world)

    membership = accept_invitation(invitation=invitation, user=UserFactory(email=NEWCOMER))

    held = WorkspaceMembership.objects.get(org_membership=membership)
    assert (held.workspace, held.role.name) == (world.workspace, "Admin")


def test_sso_provisioning_with_a_viewer_default_is_refused_cleanly_below_enterprise(
    client,
    world,
    acme_oidc,  # noqa: F811
):
    downgrade(world)

    response = oidc_sign_in(client, NEWCOMER)

    assert response.status_code == 403, response.content[:300]
    assert "Enterprise" in response.content.decode()
    assert not User.objects.filter(email=NEWCOMER).exists()
    assert "_auth_user_id" not in client.session
    refusal = AuditEvent.objects.filter(action="sso.sign_in_refused").get()
    assert (refusal.organization, refusal.target_label) == (world.org, NEWCOMER)
    assert refusal.changes["after"]["reason"] == "not_provisionable"


# What the pickers offer and what a request suggests: the roles check_role_assignable lets the
# organization assign, so that no choice offered (or taken by default) is then refused.


def test_below_enterprise_the_pickers_offer_only_what_can_be_assigned(world):
    downgrade(world)
    world.org.refresh_from_db()
    actor = as_actor(world.org_admin, world.org, world.workspace)

    assert [r.name for r in assignable_roles(world.org)] == ["Admin"]
    assert [r.name for r in grantable_roles(actor, world.workspace)] == ["Admin"]
    assert suggested_role(world.org, "datasets:read").name == "Admin"


def test_below_enterprise_approving_a_request_with_the_suggested_role_grants_admin(client, world):
    asker = pat_for(world.member_without_workspace, world.org)
    body = {"workspace_id": str(world.workspace.pk), "reason": "release", "permission": "runs:read"}
    made = api_call(client, "POST", "/access-requests", asker, json=body)
    assert made.status_code == 201, made.content
    downgrade(world)

    approved = api_call(
        client,
        "POST",
        f"/access-requests/{made.json()['id']}/approve",
        pat_for(world.org_admin, world.org),
        json={},
    )

    assert approved.status_code == 200, approved.content
    assert approved.json()["granted"] == "Admin"
    held = WorkspaceMembership.objects.get(
        org_membership__user=world.member_without_workspace, workspace=world.workspace
    )
    assert held.role.name == "Admin"


def test_on_enterprise_every_role_is_offered_and_the_weakest_suggested(world):
    assert [r.name for r in assignable_roles(world.org)][:3] == ["Viewer", "Editor", "Admin"]
    assert suggested_role(world.org, "datasets:read").name == "Viewer"
