"""Request access from a 403, approved for one hour, used, then gone: end to end in Chromium.

The viewer of production is refused staging, asks for access from the 403 page; the org admin
sees the pending count in the sidebar, approves Viewer for 1 hour; the viewer reaches staging;
the test then moves the server's clock past the hour (django.utils.timezone.now, in this same
process as live_server: no sleeping) and the viewer's very next page is refused, although
their access had been cached by the process.
"""

import datetime
import re

from django.utils import timezone
from playwright.sync_api import expect

from accesscontrol.access_requests.models import AccessRequest
from accesscontrol.audit.models import AuditEvent
from accesscontrol.workspaces.models import WorkspaceMembership
from tests.browser.test_campaign_flow import watch_console


def sign_in(page, live_server, email):
    page.goto(f"{live_server.url}/login/")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill("accesscontrol-demo")
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_load_state()
    return page


def test_request_approve_for_an_hour_use_then_refused_after_expiry(
    demo, page, browser, live_server, monkeypatch
):
    errors = []
    watch_console(page.context, errors)
    staging = f"{live_server.url}/o/acme/w/staging/"

    # 1. Refused, with a next step: who can grant it, and "Request access".
    sign_in(page, live_server, "viewer@acme.test")
    response = page.goto(staging)
    assert response.status == 403
    expect(page.get_by_role("heading", name="You don't have access to this")).to_be_visible()
    expect(page.get_by_role("link", name="Ada Admin")).to_have_attribute(
        "href", "mailto:admin@acme.test"
    )
    page.get_by_label("Why do you need it?").fill("Checking the staging release")
    page.get_by_role("button", name="Request access").click()
    expect(page.get_by_role("heading", level=1, name="Your access requests")).to_be_visible()
    expect(page.get_by_text("Waiting for an admin.")).to_be_visible()
    request = AccessRequest.objects.get()
    assert (request.workspace.slug, request.permission) == ("staging", "workspaces:read")

    # 2. The org admin sees the count, approves Viewer for 1 hour.
    admin = browser.new_context().new_page()
    watch_console(admin.context, errors)
    sign_in(admin, live_server, "admin@acme.test")
    nav = admin.get_by_role("navigation", name="Main")
    link = nav.get_by_role("link", name=re.compile("Access requests"))
    expect(link.locator(".nav-count")).to_have_text("1")
    link.click()
    expect(admin.get_by_text("Checking the staging release")).to_be_visible()
    admin.get_by_label("Role").select_option(label="Viewer")
    admin.get_by_label("For").select_option(label="1 hour")
    admin.get_by_role("button", name="Approve").click()
    expect(admin.locator("#toasts")).to_contain_text("Approved: viewer@acme.test is now Viewer")
    expect(admin.get_by_text("No pending requests.")).to_be_visible()
    membership = WorkspaceMembership.objects.get(
        workspace__slug="staging", org_membership__user__email="viewer@acme.test"
    )
    assert membership.expires_at is not None
    assert AuditEvent.objects.filter(action="access_request.approved").count() == 1

    # The members page shows the time left.
    admin.goto(f"{staging}members/")
    expect(admin.get_by_text(re.compile(r"temporary · ends in (59|60)\W+minutes"))).to_be_visible()

    # 3. The viewer now reaches staging (twice: the second from this process's cache) ...
    page.goto(f"{live_server.url}/o/acme/access-requests/mine/")
    expect(page.get_by_text(re.compile("You are Viewer until"))).to_be_visible()
    for _ in range(2):
        assert page.goto(staging).status == 200
        expect(page.get_by_role("navigation", name="Main")).to_contain_text("staging")

    # 4. ... until the hour has passed: refused on the very next request, no cron involved.
    real_now = timezone.now
    later = datetime.timedelta(hours=1, minutes=1)
    monkeypatch.setattr(timezone, "now", lambda: real_now() + later)
    response = page.goto(staging)
    assert response.status == 403
    expect(page.get_by_role("button", name="Request access")).to_be_visible()
    # The two refusals are the browser's only complaints (a 403 page load is logged as one).
    unexpected = [e for e in errors if "status of 403" not in e]
    assert unexpected == [], unexpected
    assert len(errors) == 2, errors
