"""Below Enterprise only Admin is assignable (check_role_assignable), on every path that hands
out a workspace role, including those that hand it out later than it was chosen: an invitation
accepted, and SSO's just-in-time provisioning with its default workspace roles. Chosen on
Enterprise and applied after a downgrade, such a role is refused cleanly, as SCIM's group
mappings refuse it (tests/scim/test_group_mappings.py), never stored and never a server error."""

import pytest
from django.core.exceptions import ValidationError

from accesscontrol.accounts.models import User
from accesscontrol.audit.models import AuditEvent
from accesscontrol.organizations.models import Invitation, OrganizationMembership
from accesscontrol.organizations.services import (
    accept_invitation,
    invite_member,
    update_organization_settings,
)
from accesscontrol.workspaces.models import WorkspaceMembership
from tests.factories import UserFactory, system_role
from tests.sso.conftest import acme_oidc, domain, oidc_provider, oidc_sign_in  # noqa: F401
from tests.support.db import row_counts

NEWCOMER = "newcomer@example.test"


def downgrade(world):
    update_organization_settings(actor=world.org_admin, organization=world.org, plan="plus")


def test_an_invitation_to_a_viewer_role_is_refused_once_the_plan_is_below_enterprise(
    world, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        invitation, _ = invite_member(
            actor=world.org_admin,
            organization=world.org,
            email=NEWCOMER,
            workspaces=[world.workspace],
            workspace_role=system_role("Viewer"),
        )
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
    with django_capture_on_commit_callbacks(execute=True):
        invitation, _ = invite_member(
            actor=world.org_admin,
            organization=world.org,
            email=NEWCOMER,
            workspaces=[world.workspace],
            workspace_role=system_role("Admin"),
        )
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
