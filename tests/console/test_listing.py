"""Every list table sorts (a whitelist of ?sort= keys), searches, filters by status and pages
through one helper (console.listed); an unknown sort falls back visibly."""

import re

import pytest
from django.urls import reverse
from django.utils import timezone

from accesscontrol.apikeys.models import ServiceKey
from accesscontrol.organizations.models import Invitation
from tests.factories import add_member, service_key_for, system_role

pytestmark = pytest.mark.django_db


def keys_url():
    return reverse("service-keys", args=["acme", "production"])


def names_in(body, pattern=r"<strong>([^<]+)</strong></a>"):
    return re.findall(pattern, body)


@pytest.fixture
def keys(world):
    for name in ("bravo", "alpha", "charlie", "delta"):
        service_key_for(world.workspace, "Viewer")
        ServiceKey.objects.filter(name="Viewer key").update(name=name)
    now = timezone.now()
    ServiceKey.objects.filter(name="alpha").update(revoked_at=now)
    ServiceKey.objects.filter(name="delta").update(expires_at=now - timezone.timedelta(days=1))
    ServiceKey.objects.filter(name="charlie").update(last_used_at=now)
    return world


def test_revoked_keys_are_not_listed_first(client, keys):
    client.force_login(keys.org_admin)
    body = client.get(keys_url()).content.decode()
    listed = names_in(body)
    assert listed[-1] == "alpha", listed


def test_keys_sort_by_a_whitelisted_column_both_ways(client, keys):
    client.force_login(keys.org_admin)
    up = names_in(client.get(keys_url(), {"sort": "name"}).content.decode())
    down = names_in(client.get(keys_url(), {"sort": "-name"}).content.decode())
    assert up == ["alpha", "bravo", "charlie", "delta"]
    assert down == list(reversed(up))
    body = client.get(keys_url(), {"sort": "name"}).content.decode()
    assert 'aria-sort="ascending"' in body
    assert 'href="?sort=-name"' in body  # the sorted column's link reverses it


def test_an_unknown_sort_key_falls_back_to_the_default_and_says_so(client, keys):
    client.force_login(keys.org_admin)
    response = client.get(keys_url(), {"sort": "digest"})
    body = response.content.decode()
    assert response.status_code == 200
    assert "Cannot sort by “digest”: sorted by Status instead." in body
    assert names_in(body)[-1] == "alpha"


@pytest.mark.parametrize(
    ("status", "expected"),
    [("active", {"bravo", "charlie"}), ("revoked", {"alpha"}), ("expired", {"delta"})],
)
def test_keys_filter_by_status(client, keys, status, expected):
    client.force_login(keys.org_admin)
    body = client.get(keys_url(), {"status": status}).content.decode()
    assert set(names_in(body)) == expected


def test_an_unknown_status_shows_all_and_says_so(client, keys):
    client.force_login(keys.org_admin)
    body = client.get(keys_url(), {"status": "lost"}).content.decode()
    assert "There is no status “lost”: showing all." in body
    assert len(names_in(body)) == 4


def test_keys_are_searchable(client, keys):
    client.force_login(keys.org_admin)
    body = client.get(keys_url(), {"q": "char"}).content.decode()
    assert names_in(body) == ["charlie"]


def test_member_rows_name_their_workspaces(client, world):
    client.force_login(world.org_admin)
    body = client.get(reverse("org-members", args=["acme"]), {"q": "", "sort": "name"})
    text = body.content.decode()
    assert "Workspaces: 1" not in text
    row = text[text.index(f"{world.editor.email}") :]
    row = row[: row.index("</tr>")]
    assert "production" in row and "(Editor)" in row


def test_members_sort_by_role(client, world):
    client.force_login(world.org_admin)
    body = client.get(reverse("org-members", args=["acme"]), {"sort": "-joined"}).content.decode()
    assert 'aria-sort="descending"' in body


def test_pending_invitations_are_searched_and_paged(client, world):
    for i in range(25):
        Invitation.objects.create(
            organization=world.org,
            email=f"person{i:02}@example.test",
            org_role="member",
            digest=f"{i:064}",
            expires_at=timezone.now() + timezone.timedelta(days=7),
        )
    client.force_login(world.org_admin)
    url = reverse("org-members", args=["acme"])
    first = client.get(url).content.decode()
    assert "Page 1 of 2 · 25 in all" in first
    assert 'href="?inv_page=2"' in first
    second = client.get(url, {"inv_page": "2"}).content.decode()
    assert "person24@example.test" in second and "person00@example.test" not in second
    found = client.get(url, {"inv_q": "person07"}).content.decode()
    assert "person07@example.test" in found and "person08@example.test" not in found


def test_workspace_members_sort_by_role(client, world):
    add_member(world.org, world.workspace, system_role("Viewer"))
    client.force_login(world.org_admin)
    url = reverse("workspace-members", args=["acme", "production"])
    body = client.get(url, {"sort": "role"}).content.decode()
    roles = re.findall(r'<option value="[^"]+" selected>([^<]+)</option>', body)
    assert roles == sorted(roles)


def test_workspaces_sort_search_and_filter_by_status(client, world):
    world.other_workspace.archived = True
    world.other_workspace.save(update_fields=["archived"])
    client.force_login(world.org_admin)
    url = reverse("org-workspaces", args=["acme"])
    body = client.get(url, {"status": "archived"}).content.decode()
    assert "staging" in body and "production</strong>" not in body
    body = client.get(url, {"q": "prod"}).content.decode()
    assert "production" in body and "staging</strong>" not in body
    assert 'aria-sort="descending"' in client.get(url, {"sort": "-members"}).content.decode()


def test_custom_roles_and_reviews_are_sortable_lists(client, world):
    client.force_login(world.org_admin)
    roles = client.get(reverse("roles", args=["acme"]), {"sort": "nope"}).content.decode()
    assert "Cannot sort by “nope”: sorted by Role instead." in roles
    body = client.get(reverse("campaigns", args=["acme"]), {"sort": "x"}).content.decode()
    assert "Cannot sort by “x”: sorted by Started instead." in body
    assert 'name="q"' in body
