"""An access review end to end in the browser: start, decide, complete; the revoked member
loses access on their next request.

Runs against live_server with the demo data (`seed_demo`). The browser console is watched
throughout: an error there (a failed request, a script error, a CSP violation) fails the test.
"""

import re

from playwright.sync_api import expect

from accesscontrol.audit.models import AuditEvent
from accesscontrol.reviews.models import Campaign
from accesscontrol.workspaces.models import WorkspaceMembership

REVIEW_NAME = "Production, Q3"


def watch_console(context, errors):
    context.on(
        "console",
        lambda msg: (
            errors.append(f"{msg.type}: {msg.text} ({msg.location.get('url')})")
            if msg.type == "error"
            else None
        ),
    )
    context.on("weberror", lambda err: errors.append(f"uncaught: {err.error}"))


def toast(page, text):
    return page.locator("#toasts").get_by_text(text)


def item_row(page, label):
    return page.locator("tbody tr").filter(has_text=label)


def test_admin_reviews_production_and_the_revoked_viewer_loses_access(
    demo, login, page, live_server, browser
):
    errors = []
    watch_console(page.context, errors)
    page = login("admin@acme.test")
    assert "/o/acme/w/production/" in page.url

    # Start a review of production.
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Recertification").click()
    expect(page.get_by_role("heading", level=1, name="Recertification")).to_be_visible()
    page.get_by_label("Name").fill(REVIEW_NAME)
    page.get_by_label("Scope").select_option(label="production")
    expect(page.get_by_label("Decide by")).not_to_have_value("")
    page.get_by_role("button", name="Start review").click()

    expect(page.get_by_role("heading", level=1, name=REVIEW_NAME)).to_be_visible()
    # Editor, viewer and annotator, and production's four demo keys.
    expect(toast(page, f"Review “{REVIEW_NAME}” started with 7 item(s).")).to_be_visible()
    expect(page.locator("tbody tr")).to_have_count(7)
    expect(page.get_by_text("7 undecided, 0 to revoke")).to_be_visible()
    campaign = Campaign.objects.get(name=REVIEW_NAME)
    assert campaign.workspace.slug == "production"

    # Revoke the viewer with the row's own button: htmx swaps that row only.
    page.evaluate("window.stillTheSamePage = true")
    viewer_row = item_row(page, "viewer@acme.test")
    row_id = viewer_row.get_attribute("id")
    viewer_row.get_by_role("button", name="Revoke").click()
    expect(toast(page, "viewer@acme.test: revoke.")).to_be_visible()
    swapped = page.locator(f"#{row_id}")
    expect(swapped.locator(".decision-revoke")).to_have_text("Revoke")
    expect(swapped).to_contain_text("admin@acme.test")
    assert page.evaluate("window.stillTheSamePage") is True
    expect(page.locator(".decision")).to_have_count(1)
    # The progress above the table follows (an out-of-band swap), still without a reload.
    expect(page.locator("#campaign-progress")).to_have_text("6 undecided, 1 to revoke")

    # Keep everything else in one go.
    page.get_by_role("button", name="Keep everything undecided").click()
    expect(toast(page, "6 item(s) marked keep.")).to_be_visible()
    expect(page.get_by_text("0 undecided, 1 to revoke")).to_be_visible()
    expect(page.locator(".decision-keep")).to_have_count(6)
    expect(item_row(page, "viewer@acme.test").locator(".decision-revoke")).to_be_visible()

    # Complete through the confirmation dialog.
    page.get_by_role("link", name="Complete review…").click()
    dialog = page.get_by_role("dialog", name=f"Complete “{REVIEW_NAME}”?")
    expect(dialog).to_be_visible()
    expect(dialog).to_contain_text("1 revocation(s) are applied at once, all or none")
    expect(dialog).to_contain_text("viewer@acme.test — Viewer in production")
    dialog.get_by_role("button", name="Complete and apply").click()

    expect(toast(page, "Review completed: 1 revoked, 6 kept.")).to_be_visible()
    expect(page.get_by_role("link", name="Complete review…")).to_have_count(0)
    expect(page.get_by_role("button", name="Revoke")).to_have_count(0)
    expect(item_row(page, "viewer@acme.test")).to_contain_text("removed from the workspace")
    expect(item_row(page, "editor@acme.test")).to_contain_text("kept")
    assert not WorkspaceMembership.objects.filter(
        workspace__slug="production", org_membership__user__email="viewer@acme.test"
    ).exists()
    assert set(
        AuditEvent.objects.filter(action__startswith="access_review.").values_list(
            "action", flat=True
        )
    ) == {"access_review.started", "access_review.decided", "access_review.completed"}

    # The viewer, in another browser, no longer gets into production.
    context = browser.new_context(base_url=live_server.url)
    watch_console(context, errors)
    try:
        viewer = context.new_page()
        viewer.goto("/login/")
        viewer.get_by_label("Email").fill("viewer@acme.test")
        viewer.get_by_label("Password").fill("accesscontrol-demo")
        viewer.get_by_role("button", name="Sign in").click()
        # Home no longer leads into a workspace: to the organization, with none to enter.
        expect(viewer.get_by_role("heading", level=1, name="Acme")).to_be_visible()
        assert re.search(r"/o/acme/$", viewer.url)
        expect(viewer.get_by_text("No workspaces for you yet.")).to_be_visible()
        for path in ("", "members/", "projects/", "datasets/"):
            response = viewer.request.get(f"{live_server.url}/o/acme/w/production/{path}")
            assert response.status == 403, path
    finally:
        context.close()

    assert errors == [], "console errors or CSP violations:\n" + "\n".join(errors)
