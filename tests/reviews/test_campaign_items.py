"""A campaign's items are a page of console.listed: an organization-wide review of thousands of
members and keys is decided a hundred rows at a time, searched, sorted and filtered by decision."""

import re
import uuid

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from accesscontrol.reviews import services
from accesscontrol.reviews.models import Item
from accesscontrol.reviews.views import ITEMS
from tests.factories import campaign_of_people

pytestmark = pytest.mark.django_db


@pytest.fixture
def campaign(world):
    """The whole organization's review, with more people than a page of items."""
    return campaign_of_people(
        world.org_admin,
        world.org,
        ITEMS.per_page + 10,
        detail=lambda i: "Member" if i % 2 else "Viewer",
    )


def url(campaign):
    return reverse("campaign", args=[campaign.organization.slug, campaign.pk])


def labels(body):
    return re.findall(r'<tr id="item-[^"]+">\s*<td>.*?<strong>([^<]+)</strong>', body, re.S)


def test_items_are_paged(client, world, campaign):
    total = campaign.items.count()
    client.force_login(world.org_admin)
    first = client.get(url(campaign)).content.decode()
    assert f"Page 1 of 2 · {total} in all" in first and len(labels(first)) == ITEMS.per_page
    assert f"{total} undecided, 0 to revoke" in first  # progress counts every page
    second = client.get(url(campaign), {"page": "2"}).content.decode()
    assert len(labels(second)) == total - ITEMS.per_page
    assert set(labels(first)).isdisjoint(labels(second))
    assert len(set(labels(first) + labels(second))) == total


def test_items_are_searched_sorted_and_filtered_by_decision(client, world, campaign):
    services.decide(
        actor=world.org_admin,
        campaign=campaign,
        item_ids=list(
            campaign.items.filter(label__startswith="person00").values_list("pk", flat=True)
        ),
        decision=Item.REVOKE,
    )
    client.force_login(world.org_admin)
    assert labels(client.get(url(campaign), {"q": "person042"}).content.decode()) == [
        "person042@example.test"
    ]
    revoked = labels(client.get(url(campaign), {"status": "revoke"}).content.decode())
    assert revoked == [f"person{i:03}@example.test" for i in range(10)]
    undecided = client.get(url(campaign), {"status": "undecided"}).content.decode()
    assert "person005@example.test" not in undecided
    down = labels(client.get(url(campaign), {"sort": "-label", "q": "person"}).content.decode())
    last = ITEMS.per_page + 9
    assert down[:3] == [f"person{i:03}@example.test" for i in (last, last - 1, last - 2)]
    body = client.get(url(campaign), {"q": "nobody@"}).content.decode()
    assert "No item matches “nobody@”." in body
    body = client.get(url(campaign), {"q": "person001", "status": "keep"}).content.decode()
    assert "No item matches “person001”." in body


def test_an_unknown_sort_or_status_of_items_says_so(client, world, campaign):
    client.force_login(world.org_admin)
    body = client.get(url(campaign), {"sort": "subject_id"}).content.decode()
    assert "Cannot sort by “subject_id”: sorted by Kind instead." in body
    body = client.get(url(campaign), {"status": "gone"}).content.decode()
    assert "There is no status “gone”: showing all." in body
    assert len(labels(body)) == ITEMS.per_page


def test_a_decision_filter_with_nothing_in_it_says_so(client, world, campaign):
    client.force_login(world.org_admin)
    body = client.get(url(campaign), {"status": "keep"}).content.decode()
    assert "No item is “Kept”." in body and "Nothing to review" not in body


def test_keep_everything_undecided_reaches_every_page(client, world, campaign):
    client.force_login(world.org_admin)
    response = client.post(
        reverse("campaign-decide", args=["acme", campaign.pk]),
        {"scope": "undecided", "decision": "keep"},
    )
    assert response.status_code == 302
    assert not campaign.items.filter(decision="").exists()


def test_the_items_page_query_count_does_not_grow_with_the_items(
    client, world, campaign, django_assert_max_num_queries
):
    client.force_login(world.org_admin)
    client.get(url(campaign), {"page": "2"})
    with CaptureQueriesContext(connection) as short_page:
        client.get(url(campaign), {"page": "2"})
    Item.objects.bulk_create(
        Item(campaign=campaign, kind=Item.SERVICE_KEY, subject_id=uuid.uuid4(), label=f"key {i}")
        for i in range(3 * ITEMS.per_page)
    )
    with django_assert_max_num_queries(len(short_page)):
        client.get(url(campaign), {"page": "3"})
