"""The request lists are pages of console.listed: the pending requests to decide (their
grantable roles computed once per workspace, per page) and the requester's own, filtered by
status; neither loads or silently cuts every request of the organization."""

import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from accesscontrol.access_requests.models import AccessRequest
from accesscontrol.access_requests.services import create_access_request
from accesscontrol.access_requests.views import MINE, TO_DECIDE
from accesscontrol.organizations.models import OrganizationMembership
from accesscontrol.rbac.actor import Actor
from tests.factories import add_member

pytestmark = pytest.mark.django_db

PENDING = reverse("access-requests", args=["acme"])
MINE_URL = reverse("my-access-requests", args=["acme"])


def ask(world, count, workspace="production", permission="datasets:read", start=0):
    """`count` pending requests, each by a new member (one open request per person and place)."""
    place = {"production": world.workspace, "staging": world.other_workspace, None: None}
    for i in range(start, start + count):
        create_access_request(
            actor=Actor.for_user(add_member(world.org), world.org),
            workspace=place[workspace],
            permission=permission,
            reason=f"reason {i:03}",
        )


def reasons(body):
    return re.findall(r'<blockquote class="reason">([^<]+)</blockquote>', body)


def test_pending_requests_are_paged(client, world):
    ask(world, TO_DECIDE.per_page + 5)
    client.force_login(world.org_admin)
    first = client.get(PENDING).content.decode()
    assert f"Page 1 of 2 · {TO_DECIDE.per_page + 5} in all" in first
    assert 'href="?page=2"' in first
    second = client.get(PENDING, {"page": "2"}).content.decode()
    shown = reasons(first) + reasons(second)
    assert len(reasons(first)) == TO_DECIDE.per_page and len(reasons(second)) == 5
    assert sorted(shown) == [f"reason {i:03}" for i in range(TO_DECIDE.per_page + 5)]
    # Newest first; each card keeps its approve form with the roles grantable there.
    assert reasons(first)[0] == f"reason {TO_DECIDE.per_page + 4:03}"
    assert second.count('name="role"') == 5


def test_pending_requests_are_searched_and_sorted(client, world):
    ask(world, 3)
    ask(world, 1, workspace="staging", start=3)
    client.force_login(world.org_admin)
    assert reasons(client.get(PENDING, {"q": "reason 001"}).content.decode()) == ["reason 001"]
    assert reasons(client.get(PENDING, {"q": "staging"}).content.decode()) == ["reason 003"]
    found = client.get(PENDING, {"q": "nobody asked this"}).content.decode()
    assert "No pending request matches “nobody asked this”." in found
    oldest = reasons(client.get(PENDING, {"sort": "asked"}).content.decode())
    assert oldest == ["reason 000", "reason 001", "reason 002", "reason 003"]
    by_workspace = reasons(client.get(PENDING, {"sort": "workspace"}).content.decode())
    assert by_workspace == ["reason 000", "reason 001", "reason 002", "reason 003"]
    assert reasons(client.get(PENDING, {"sort": "-workspace"}).content.decode())[0] == (
        "reason 003"
    )


def test_an_unknown_sort_of_pending_requests_says_so(client, world):
    ask(world, 2)
    client.force_login(world.org_admin)
    body = client.get(PENDING, {"sort": "reason"}).content.decode()
    assert "Cannot sort by “reason”: sorted by Asked instead." in body
    assert reasons(body) == ["reason 001", "reason 000"]


def test_nothing_pending_says_so(client, world):
    client.force_login(world.org_admin)
    body = client.get(PENDING).content.decode()
    assert "No pending requests." in body and "Page 1" not in body


@pytest.fixture
def baseline(client, world):
    """The queries of the pending page with one request of each kind waiting."""
    ask(world, 1)
    ask(world, 1, workspace="staging", start=1)
    ask(world, 1, workspace=None, permission="organization:manage", start=2)
    client.force_login(world.org_admin)
    client.get(PENDING)  # the session and caches settle
    with CaptureQueriesContext(connection) as queries:
        assert client.get(PENDING).status_code == 200
    return len(queries)


def test_the_pending_page_query_count_does_not_grow_with_the_requests(
    client, world, baseline, django_assert_max_num_queries
):
    ask(world, TO_DECIDE.per_page, start=3)
    ask(world, TO_DECIDE.per_page, workspace="staging", start=100)
    ask(world, 5, workspace=None, permission="organization:manage", start=200)
    with django_assert_max_num_queries(baseline):
        body = client.get(PENDING).content.decode()
    assert f"{3 + 2 * TO_DECIDE.per_page + 5} in all" in body
    with django_assert_max_num_queries(baseline):
        client.get(PENDING, {"page": "3"})


# The requester's own requests


@pytest.fixture
def own(world):
    """The viewer's requests, more than a page, oldest first: pending, approved, denied, ..."""
    requester = OrganizationMembership.objects.get(organization=world.org, user=world.viewer)
    statuses = [AccessRequest.PENDING, AccessRequest.APPROVED, AccessRequest.DENIED]
    count = MINE.per_page + 7
    AccessRequest.objects.bulk_create(
        AccessRequest(
            organization=world.org,
            workspace=world.other_workspace if i == 0 else world.workspace,
            requester=requester,
            permission="datasets:create",
            reason=f"reason {i:03}",
            status=statuses[i % 3],
        )
        for i in range(count)
    )
    start = timezone.now() - timezone.timedelta(days=1)
    for i in range(count):
        AccessRequest.objects.filter(reason=f"reason {i:03}").update(
            created_at=start + timezone.timedelta(minutes=i)
        )
    return count


def rows(body):
    return len(re.findall(r'<span class="badge badge-(?:pending|approved|denied)">', body))


def test_own_requests_are_paged_not_cut(client, world, own):
    client.force_login(world.viewer)
    first = client.get(MINE_URL).content.decode()
    assert f"Page 1 of 2 · {own} in all" in first and rows(first) == MINE.per_page
    second = client.get(MINE_URL, {"page": "2"}).content.decode()
    assert rows(second) == own - MINE.per_page
    assert "<td>staging</td>" in second and "<td>staging</td>" not in first  # oldest last


def test_own_requests_filter_by_status(client, world, own):
    client.force_login(world.viewer)
    body = client.get(MINE_URL, {"status": "denied"}).content.decode()
    assert rows(body) == own // 3 and "badge-pending" not in body and "badge-approved" not in body
    body = client.get(MINE_URL, {"status": "lost"}).content.decode()
    assert "There is no status “lost”: showing all." in body
    assert f"{own} in all" in body


def test_own_requests_search_and_sort(client, world, own):
    client.force_login(world.viewer)
    assert rows(client.get(MINE_URL, {"q": "staging"}).content.decode()) == 1
    body = client.get(MINE_URL, {"sort": "where"}).content.decode()
    assert "<td>production</td>" in body and "<td>staging</td>" not in body  # on page 2
    body = client.get(MINE_URL, {"sort": "-where"}).content.decode()
    assert 'aria-sort="descending"' in body
    assert body.index("<td>staging</td>") < body.index("<td>production</td>")
    body = client.get(MINE_URL, {"sort": "reason"}).content.decode()
    assert "Cannot sort by “reason”: sorted by Asked instead." in body


def test_no_own_request_of_a_status_says_so(client, world):
    client.force_login(world.viewer)
    assert "You have not requested access yet." in client.get(MINE_URL).content.decode()
    body = client.get(MINE_URL, {"status": "approved"}).content.decode()
    assert "None of your requests is approved." in body


def test_the_own_page_query_count_does_not_grow_with_the_requests(
    client, world, own, django_assert_max_num_queries
):
    client.force_login(world.viewer)
    client.get(MINE_URL, {"page": "2"})
    with CaptureQueriesContext(connection) as short_page:
        client.get(MINE_URL, {"page": "2"})
    with django_assert_max_num_queries(len(short_page)):
        client.get(MINE_URL)
