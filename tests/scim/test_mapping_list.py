"""Settings → Provisioning: the group mappings are a page of console.listed (an identity
provider with hundreds of groups maps hundreds), searched and sorted."""

import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from accesscontrol.scim.console import MAPPINGS
from accesscontrol.scim.models import GroupMapping, ScimGroup
from tests.factories import system_role

pytestmark = pytest.mark.django_db

URL = reverse("org-provisioning", args=["acme"])


def map_groups(world, count, start=0):
    for i in range(start, start + count):
        group = ScimGroup.objects.create(organization=world.org, display_name=f"group {i:03}")
        GroupMapping.objects.create(
            organization=world.org,
            group=group,
            workspace=world.workspace if i % 2 else world.other_workspace,
            role=system_role("Viewer" if i % 3 else "Editor"),
        )


def groups(body):
    return re.findall(r"<tr>\s*<td>(group \d+)</td>", body)


@pytest.fixture
def admin(client, world):
    client.force_login(world.org_admin)
    return client


def test_mappings_are_paged(admin, world):
    map_groups(world, MAPPINGS.per_page + 3)
    first = admin.get(URL).content.decode()
    assert f"Page 1 of 2 · {MAPPINGS.per_page + 3} in all" in first
    second = admin.get(URL, {"page": "2"}).content.decode()
    assert groups(first) + groups(second) == [f"group {i:03}" for i in range(MAPPINGS.per_page + 3)]


def test_mappings_are_searched_and_sorted(admin, world):
    map_groups(world, 6)
    assert groups(admin.get(URL, {"q": "group 004"}).content.decode()) == ["group 004"]
    assert groups(admin.get(URL, {"q": "staging"}).content.decode()) == [
        "group 000",
        "group 002",
        "group 004",
    ]
    assert groups(admin.get(URL, {"sort": "-group"}).content.decode())[0] == "group 005"
    by_role = groups(admin.get(URL, {"sort": "role"}).content.decode())
    assert by_role[:2] == ["group 000", "group 003"]  # Editor before Viewer
    body = admin.get(URL, {"q": "no such group"}).content.decode()
    assert "No mapping matches “no such group”." in body


def test_an_unknown_sort_of_mappings_says_so(admin, world):
    map_groups(world, 2)
    body = admin.get(URL, {"sort": "created_at"}).content.decode()
    assert "Cannot sort by “created_at”: sorted by Group instead." in body
    assert groups(body) == ["group 000", "group 001"]


def test_no_mapping_says_so(admin, world):
    body = admin.get(URL).content.decode()
    assert "No mappings yet." in body and "has not pushed any group yet" in body
    assert 'role="search"' not in body


def test_the_page_query_count_does_not_grow_with_the_mappings(
    admin, world, django_assert_max_num_queries
):
    map_groups(world, 3)
    admin.get(URL)
    with CaptureQueriesContext(connection) as few:
        admin.get(URL)
    map_groups(world, 2 * MAPPINGS.per_page, start=3)
    with django_assert_max_num_queries(len(few)):
        admin.get(URL)
