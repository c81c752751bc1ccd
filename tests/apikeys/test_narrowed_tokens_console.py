"""Narrowed personal access tokens in the console: made with presets or a custom pick, shown
on the token list, the token's page and the access review (issue #17, item 1)."""

import re

import pytest
from django.urls import reverse

from accesscontrol.apikeys.models import PersonalAccessToken
from accesscontrol.organizations.models import OrganizationMembership
from tests.factories import READ, pat_for
from tests.support.api import api_call

TOKENS = reverse("personal-tokens", args=["acme"])


def made(client, **form):
    """POST the token form; the new token's row and its raw key, shown this once on the page
    the POST redirects to."""
    posted = client.post(TOKENS, {"name": "narrow", "expires_in": "30", **form})
    assert posted.status_code == 302, posted.content.decode()[:2000]
    response = client.get(posted["Location"])
    raw = re.findall(r"lsv2_pt_[0-9a-f]{32}_[0-9a-f]{8}", response.content.decode())
    assert len(raw) == 1
    return PersonalAccessToken.objects.get(name="narrow"), raw[0]


def test_the_form_offers_the_presets_your_workspaces_and_the_grid(client, world):
    client.force_login(world.editor)
    body = client.get(TOKENS + "?new").content.decode()
    for value in ("read-only", "tracing-only", "custom"):
        assert f'name="limit" value="{value}"' in body
    # Only workspaces the editor can act in: production, not staging.
    assert f'value="{world.workspace.pk}"' in body
    assert f'value="{world.other_workspace.pk}"' not in body
    assert 'name="permissions" value="datasets:create"' in body
    assert 'name="permissions" value="organization:read"' in body


def test_a_read_only_token_limited_to_one_workspace(client, world):
    client.force_login(world.org_admin)
    token, raw = made(client, limit="read-only", workspaces=[str(world.other_workspace.pk)])
    assert sorted(token.permission_limit) == sorted(READ | {"organization:read"})
    assert token.workspace_limit == [str(world.other_workspace.pk)]
    # It is what the API enforces: reads in staging, nothing in production.
    assert api_call(client, "GET", "/datasets", raw).status_code == 200
    refused = api_call(client, "POST", "/datasets", raw, json={"name": "x"})
    assert refused.json()["error"] == "token_limit"
    elsewhere = api_call(client, "GET", "/datasets", raw, tenant=world.workspace.pk)
    assert elsewhere.json()["error"] == "token_limit"

    listing = client.get(TOKENS).content.decode()
    assert "narrowed" in listing
    assert "read-only · 1 workspace" in listing
    assert reverse("personal-token", args=["acme", token.pk]) in listing


def test_a_custom_pick_and_a_plain_token(client, world):
    client.force_login(world.editor)
    token, _ = made(
        client,
        limit="custom",
        permissions=["runs:create", "projects:read", "organization:read", "datasets:read"],
    )
    assert sorted(token.permission_limit) == [
        "datasets:read",
        "organization:read",
        "projects:read",
        "runs:create",
    ]
    assert token.workspace_limit is None
    token.delete()
    # Ticks in the grid without "custom" narrow nothing: the radio decides.
    token, _ = made(client, limit="", permissions=["runs:create"])
    assert token.permission_limit is None
    assert token.workspace_limit is None


def test_the_tracing_preset(client, world):
    client.force_login(world.editor)
    token, raw = made(client, limit="tracing-only")
    assert sorted(token.permission_limit) == ["projects:create", "projects:read", "runs:create"]
    whoami = api_call(client, "GET", "/auth/whoami", raw).json()
    assert whoami["limits"]["preset"] == "tracing-only"


@pytest.mark.parametrize(
    ("form", "message"),
    [
        ({"limit": "custom"}, "Pick at least one permission."),
        ({"limit": "custom", "permissions": ["organization:manage"]}, "cannot be limited to"),
        ({"limit": "everything"}, "Select a valid choice"),
        ({"workspaces": ["not-a-workspace"]}, "Select a valid choice"),
    ],
)
def test_bad_limits_are_refused_on_the_form(client, world, form, message):
    client.force_login(world.editor)
    response = client.post(TOKENS, {"name": "narrow", "expires_in": "30", **form})
    assert response.status_code == 422
    assert message in response.content.decode()
    assert "lsv2_pt_" not in response.content.decode()
    assert not PersonalAccessToken.objects.filter(name="narrow").exists()


def test_a_forged_workspace_of_another_member_is_refused(client, world):
    """The form offers only your workspaces; one posted anyway is refused, like a bad id."""
    client.force_login(world.editor)
    response = client.post(
        TOKENS,
        {"name": "narrow", "expires_in": "30", "workspaces": [str(world.other_workspace.pk)]},
    )
    assert response.status_code == 422
    assert not PersonalAccessToken.objects.filter(name="narrow").exists()


def test_the_token_page_shows_its_limits_and_what_it_may_do_now(client, world):
    client.force_login(world.org_admin)
    token, _ = made(client, limit="read-only", workspaces=[str(world.workspace.pk)])
    page = client.get(reverse("personal-token", args=["acme", token.pk]))
    assert page.status_code == 200
    body = page.content.decode()
    assert "read-only: only" in body
    assert "only production" in body
    assert "In production" in body
    assert "In staging" in body  # outside the limit: everything the admin's role allows, left out
    assert "Its limits leave out" in body
    assert "datasets:read allowed" in body
    assert "datasets:create not allowed" in body


@pytest.mark.parametrize("persona", ["editor", "outsider"])
def test_another_persons_token_page_is_not_found(client, world, persona):
    token_of_viewer = pat_for(world.viewer, world.org, preset="read-only")
    assert token_of_viewer
    token = PersonalAccessToken.objects.get(org_membership__user=world.viewer)
    client.force_login(world.persona(persona))
    assert client.get(reverse("personal-token", args=["acme", token.pk])).status_code == 404


def test_the_access_review_shows_the_limits_and_where_the_token_acts(client, world):
    pat_for(world.editor, world.org, preset="tracing-only", workspaces=[world.workspace])
    pat_for(world.editor, world.org)
    member = OrganizationMembership.objects.get(user=world.editor, organization=world.org)
    client.force_login(world.org_admin)
    body = client.get(reverse("member-access", args=["acme", member.pk])).content.decode()
    assert "tracing-only · 1 workspace" in body
    assert "all of its user's access" in body
    assert "production: 3 permissions" in body  # runs:create, projects:read/create

    review = client.get(reverse("workspace-access", args=["acme", "production"])).content.decode()
    assert "2 active tokens (1 narrowed)" in review
