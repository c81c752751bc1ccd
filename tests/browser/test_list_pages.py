"""The lists put on console.listed, full enough to page, as an admin sees them in Chromium: no
serious or critical axe violation, and none scrolls sideways on a phone."""

import pytest
from axe_playwright_python.sync_playwright import Axe

from accesscontrol.access_requests.models import AccessRequest
from accesscontrol.access_requests.services import create_access_request
from accesscontrol.organizations.models import Organization, OrganizationMembership
from accesscontrol.rbac.actor import Actor
from accesscontrol.rbac.models import Role
from accesscontrol.scim.models import GroupMapping, ScimGroup
from accesscontrol.workspaces.models import Workspace
from tests.browser.test_layout import PHONE, WIDEST, serious_violations
from tests.factories import add_member, campaign_of_people


@pytest.fixture
def full_lists(demo):
    """Pending requests, the admin's own, a campaign and SCIM mappings: each more than a page."""
    acme = Organization.objects.get(slug="acme")
    production = Workspace.objects.get(organization=acme, slug="production")
    admin = OrganizationMembership.objects.get(organization=acme, user__email="admin@acme.test")
    for i in range(25):
        create_access_request(
            actor=Actor.for_user(add_member(acme), acme),
            workspace=production if i % 2 else None,
            permission="datasets:read" if i % 2 else "organization:manage",
            reason=f"Needs it for release {i}",
        )
    AccessRequest.objects.bulk_create(
        AccessRequest(
            organization=acme,
            workspace=production,
            requester=admin,
            permission="datasets:read",
            reason="mine",
            status=AccessRequest.DENIED,
        )
        for _ in range(55)
    )
    campaign = campaign_of_people(admin.user, acme, 110)
    viewer = Role.objects.get(organization=None, name="Viewer")
    for i in range(55):
        group = ScimGroup.objects.create(organization=acme, display_name=f"Engineering {i}")
        GroupMapping.objects.create(
            organization=acme, group=group, workspace=production, role=viewer
        )
    return [
        "/o/acme/access-requests/",
        "/o/acme/access-requests/mine/",
        f"/o/acme/reviews/{campaign.pk}/",
        "/o/acme/settings/provisioning/",
    ]


def test_the_paged_lists_have_no_serious_violation_and_fit_a_phone(
    full_lists, login, page, live_server
):
    login("admin@acme.test")
    axe = Axe()
    problems, wide = {}, {}
    for path in full_lists:
        url = f"{live_server.url}{path}"
        page.set_viewport_size({"width": 1280, "height": 800})
        assert page.goto(url).status == 200, url
        assert page.get_by_text("Page 1 of 2").count() == 1, url
        if bad := serious_violations(axe, page):
            problems[url] = bad
        page.set_viewport_size(PHONE)
        page.goto(url)
        if page.evaluate("document.documentElement.scrollWidth") > PHONE["width"]:
            wide[url] = page.evaluate(WIDEST)
    assert problems == {}
    assert wide == {}
