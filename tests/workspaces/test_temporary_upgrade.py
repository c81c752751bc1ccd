"""A temporary upgrade of a permanent member (role_after_expiry): how a role change on the
members page or the API ends it, what the page shows, and a token's default workspace past it."""

import datetime

from django.urls import reverse
from django.utils import timezone

from accesscontrol.rbac.actor import Actor
from accesscontrol.workspaces.models import WorkspaceMembership
from accesscontrol.workspaces.services import change_workspace_role, remove_expired_grants
from tests.factories import pat_for, system_role
from tests.support.api import api_call


def upgraded(world, hours=1):
    """world.viewer made Editor for `hours`, Viewer again afterwards."""
    membership = WorkspaceMembership.objects.get(
        org_membership__user=world.viewer, workspace=world.workspace
    )
    return change_workspace_role(
        actor=Actor.for_user(world.org_admin, world.org, world.workspace),
        membership=membership,
        role=system_role("Editor"),
        expires_at=timezone.now() + datetime.timedelta(hours=hours),
        then_role=system_role("Viewer"),
    )


def state(membership):
    membership.refresh_from_db()
    fallback = membership.role_after_expiry
    return membership.role.name, membership.expires_at is not None, fallback and fallback.name


def admin(world):
    return Actor.for_user(world.org_admin, world.org, world.workspace)


def test_a_new_role_without_an_expiry_ends_the_upgrade_for_good(world):
    membership = upgraded(world)
    assert state(membership) == ("Editor", True, "Viewer")
    change_workspace_role(actor=admin(world), membership=membership, role=system_role("Admin"))
    assert state(membership) == ("Admin", False, None)


def test_a_new_expiry_keeps_the_fallback_and_none_makes_it_permanent(world):
    membership = upgraded(world)
    later = timezone.now() + datetime.timedelta(hours=3)
    change_workspace_role(
        actor=admin(world), membership=membership, role=system_role("Admin"), expires_at=later
    )
    assert state(membership) == ("Admin", True, "Viewer")
    change_workspace_role(
        actor=admin(world), membership=membership, role=system_role("Admin"), expires_at=None
    )
    assert state(membership) == ("Admin", False, None)


def test_picking_the_fallback_role_ends_the_upgrade(world):
    membership = upgraded(world)
    change_workspace_role(actor=admin(world), membership=membership, role=system_role("Viewer"))
    assert state(membership) == ("Viewer", False, None)


def test_the_members_page_says_until_when_and_then_what(client, world):
    membership = upgraded(world)
    until = timezone.localtime(membership.expires_at, datetime.UTC)
    client.force_login(world.org_admin)
    body = client.get(reverse("workspace-members", args=["acme", "production"])).content.decode()
    assert f"Editor until {until:%H:%M} UTC, then Viewer" in body or (
        f"Editor until {until:%Y-%m-%d %H:%M} UTC, then Viewer" in body
    )


def test_a_tokens_default_workspace_keeps_an_expired_upgrade_as_its_fallback(
    client, world, monkeypatch
):
    upgraded(world)
    key = pat_for(world.viewer, world.org)
    assert "datasets:create" in api_call(client, "GET", "/auth/whoami", key).json()["permissions"]
    real = timezone.now
    monkeypatch.setattr(timezone, "now", lambda: real() + datetime.timedelta(hours=2))
    body = api_call(client, "GET", "/auth/whoami", key).json()
    assert body["workspace"]["id"] == str(world.workspace.pk)
    assert "workspaces:read" in body["permissions"]
    assert "datasets:create" not in body["permissions"]
    # The cleanup settles it as the Viewer membership the resolver already reads.
    assert remove_expired_grants() == 1
    membership = WorkspaceMembership.objects.get(
        org_membership__user=world.viewer, workspace=world.workspace
    )
    assert state(membership) == ("Viewer", False, None)


def test_the_members_api_answers_the_role_in_effect_past_the_expiry(client, world, monkeypatch):
    membership = upgraded(world)
    key = pat_for(world.org_admin, world.org)

    def listed():
        members = api_call(
            client, "GET", "/workspaces/current/members", key, tenant=world.workspace.pk
        ).json()
        return next(
            (m["role_name"], m["role_id"]) for m in members if m["id"] == str(membership.pk)
        )

    assert listed() == ("Editor", str(system_role("Editor").pk))
    real = timezone.now
    monkeypatch.setattr(timezone, "now", lambda: real() + datetime.timedelta(hours=2))
    # Before the cleanup settles the row, the API says what the resolver grants: Viewer.
    assert listed() == ("Viewer", str(system_role("Viewer").pk))
