"""What an actor may see of its organization's people: members, pending invitations, and the
workspaces an invitation may name. The console and the API read the same selectors."""

import pytest
from django.urls import reverse

from accesscontrol.organizations.models import Invitation, OrganizationMembership
from accesscontrol.organizations.services import (
    invitable_workspaces,
    invite_member,
    org_members,
    pending_invitations,
)
from accesscontrol.rbac.actor import Actor
from tests.factories import SYSTEM, WorkspaceFactory, actor_with, pat_for
from tests.support.api import api_call


def actor_of(world, persona):
    return Actor.for_user(world.persona(persona), world.org)


def invite(world, email="pending@acme.test"):
    return invite_member(actor=world.org_admin, organization=world.org, email=email)[0]


def test_org_members_are_the_organizations_ordered_by_email(world):
    members = list(org_members(actor_of(world, "viewer")))
    emails = [m.user.email for m in members]
    assert emails == sorted(emails)
    assert {m.organization_id for m in members} == {world.org.pk}
    assert world.viewer.email in emails and world.outsider.email not in emails


def test_a_member_of_another_organization_is_not_found(world):
    theirs = OrganizationMembership.objects.get(user=world.outsider)
    with pytest.raises(OrganizationMembership.DoesNotExist):
        org_members(actor_of(world, "org_admin")).get(pk=theirs.pk)


def test_org_members_need_organization_read(world):
    assert not org_members(actor_with(set(), world.viewer)).exists()


def test_pending_invitations_are_for_organization_managers_only(world):
    invitation = invite(world)
    assert list(pending_invitations(actor_of(world, "org_admin"))) == [invitation]
    assert list(pending_invitations(actor_of(world, "org_viewer"))) == []
    assert list(pending_invitations(actor_of(world, "editor"))) == []


def test_pending_invitations_leave_out_cancelled_and_accepted_ones(world):
    from accesscontrol.organizations.services import cancel_invitation

    cancel_invitation(actor=SYSTEM, invitation=invite(world, "gone@acme.test"))
    kept = invite(world, "kept@acme.test")
    assert list(pending_invitations(actor_of(world, "org_admin"))) == [kept]
    assert Invitation.objects.count() == 2


def test_the_api_and_the_console_show_pending_invitations_to_the_same_people(client, world):
    invite(world)
    for persona, sees in [("org_admin", True), ("editor", False), ("viewer", False)]:
        user = world.persona(persona)
        listed = api_call(client, "GET", "/orgs/current/members", pat_for(user, world.org))
        assert listed.status_code == 200, listed.content
        assert bool(listed.json()["pending"]) is sees, persona
        client.force_login(user)
        page = client.get(reverse("org-members", args=[world.org.slug]))
        assert ("pending@acme.test" in page.content.decode()) is sees, persona


def test_invitable_workspaces_are_the_organizations_active_ones(world):
    archived = WorkspaceFactory(organization=world.org, name="old", slug="old", archived=True)
    names = set(invitable_workspaces(actor_of(world, "org_admin")).values_list("name", flat=True))
    assert names == {"production", "staging"}
    assert archived.name not in names


def test_an_archived_workspace_is_refused_by_the_api_and_the_service(client, world):
    archived = WorkspaceFactory(organization=world.org, name="old", slug="old", archived=True)
    response = api_call(
        client,
        "POST",
        "/orgs/current/members",
        pat_for(world.org_admin, world.org),
        json={"email": "someone@acme.test", "workspace_ids": [str(archived.pk)]},
    )
    assert response.status_code == 422, response.content
    assert "workspace_ids" in response.json()["fields"]
    with pytest.raises(Exception, match="No such workspace"):
        invite_member(
            actor=SYSTEM,
            organization=world.org,
            email="someone@acme.test",
            workspaces=[archived],
        )
    assert not Invitation.objects.exists()
