"""Which workspaces a person can act in: one rule (workspaces.services.workspaces_acted_in) for
the console's switcher, the API's GET /workspaces and the workspaces a token may be limited to."""

import datetime

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse
from django.utils import timezone

from accesscontrol.apikeys.services import create_personal_access_token
from accesscontrol.rbac.actor import Actor
from accesscontrol.workspaces import services
from accesscontrol.workspaces.models import WorkspaceMembership
from tests.factories import PERSONAS, pat_for, system_role
from tests.support.api import api_call


def listed(client, key) -> set[str]:
    response = api_call(client, "GET", "/workspaces", key)
    assert response.status_code == 200, response.content
    return {w["id"] for w in response.json()}


def enterable(world, user) -> set[str]:
    return {str(w.pk) for w in services.enterable_workspaces(Actor.for_user(user, world.org))}


def expire(world, user):
    """The person's grant in production ended a minute ago (no role to fall back to)."""
    WorkspaceMembership.objects.filter(org_membership__user=user, workspace=world.workspace).update(
        expires_at=timezone.now() - datetime.timedelta(minutes=1)
    )


# Org viewers make no tokens; the outsider is of another organization.
@pytest.mark.parametrize("persona", [p for p in PERSONAS if p not in ("outsider", "org_viewer")])
def test_the_api_lists_what_the_console_switcher_offers(client, world, persona):
    user = world.persona(persona)
    assert listed(client, pat_for(user, world.org)) == enterable(world, user)


def test_an_ended_grant_no_longer_lists_its_workspace_anywhere(client, world):
    key = pat_for(world.editor, world.org)
    assert str(world.workspace.pk) in listed(client, key)
    expire(world, world.editor)
    assert listed(client, key) == set() == enterable(world, world.editor)
    with pytest.raises(ValidationError) as refused:
        create_personal_access_token(
            user=world.editor, organization=world.org, name="ci", workspaces=[world.workspace.pk]
        )
    assert "workspace_ids" in refused.value.message_dict


def test_an_upgrade_that_ended_keeps_the_workspace_listed(client, world):
    # A temporary upgrade falls back to the role held before: still a member there.
    WorkspaceMembership.objects.filter(
        org_membership__user=world.viewer, workspace=world.workspace
    ).update(
        role=system_role("Admin"),
        role_after_expiry=system_role("Viewer"),
        expires_at=timezone.now() - datetime.timedelta(minutes=1),
    )
    assert str(world.workspace.pk) in listed(client, pat_for(world.viewer, world.org))


def test_a_token_limited_to_one_workspace_lists_only_that_one(client, world):
    staging = world.other_workspace
    WorkspaceMembership.objects.create(
        org_membership=world.editor.org_memberships.get(organization=world.org),
        workspace=staging,
        role=system_role("Viewer"),
    )
    assert listed(client, pat_for(world.editor, world.org)) == {
        str(world.workspace.pk),
        str(staging.pk),
    }
    limited = pat_for(world.editor, world.org, workspaces=[staging.pk])
    assert listed(client, limited) == {str(staging.pk)}


def test_an_org_admins_read_only_token_lists_every_workspace(client, world):
    read_only = pat_for(world.org_admin, world.org, preset="read-only")
    assert listed(client, read_only) == {str(world.workspace.pk), str(world.other_workspace.pk)}


def default_workspace(client, key):
    response = api_call(client, "GET", "/auth/whoami", key)
    assert response.status_code == 200, response.content
    workspace = response.json()["workspace"]
    return workspace and workspace["id"]


def test_a_tokens_default_workspace_is_one_it_lists(client, world):
    """The key lookup picks the default workspace in its own SQL (one statement on the hot
    path): it must land inside the rule, and on none exactly when the rule offers none."""
    world.other_workspace.archived = True
    world.other_workspace.save()
    staging_member = world.viewer.org_memberships.get(organization=world.org)
    WorkspaceMembership.objects.create(
        org_membership=staging_member, workspace=world.other_workspace, role=system_role("Editor")
    )
    keys = {p: pat_for(world.persona(p), world.org) for p in ("org_admin", "editor", "viewer")}
    keys["member_without_workspace"] = pat_for(world.member_without_workspace, world.org)
    expire(world, world.editor)
    for persona, key in keys.items():
        active = listed(client, key) - {str(world.other_workspace.pk)}
        chosen = default_workspace(client, key)
        assert (chosen in active) if active else chosen is None, persona


def test_the_workspaces_page_links_every_workspace_one_acts_in_archived_too(client, world):
    """An archived workspace stays readable to its members (compute_access caps it read-only),
    so the organization's workspaces page links it for them as it does for org admins, and
    says "not a member" only where the person is none."""
    world.workspace.archived = True
    world.workspace.save()
    production = reverse("workspace-home", args=["acme", "production"])
    for persona in ("editor", "viewer", "org_admin"):
        client.force_login(world.persona(persona))
        assert client.get(production).status_code == 200, persona
        page = client.get(reverse("org-workspaces", args=["acme"]) + "?status=archived")
        assert f'href="{production}"' in page.content.decode(), persona
    client.force_login(world.member_without_workspace)
    page = client.get(reverse("org-workspaces", args=["acme"]) + "?status=archived")
    assert f'href="{production}"' not in page.content.decode()
    assert "(not a member)" in page.content.decode()
