"""The workspace's "Add member" dialog in Chromium: the person is found by typing part of their
name (suggestions from the server, links that fill the address in), all from the keyboard; the
open dialog has no serious accessibility finding and fits a 390 px phone."""

import pytest
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import expect

from accesscontrol.accounts.models import User
from accesscontrol.organizations.models import Organization, OrganizationMembership
from accesscontrol.rbac.models import Role
from accesscontrol.workspaces.models import WorkspaceMembership
from tests.browser.test_console_flows import ConsoleWatch
from tests.browser.test_layout import PHONE, serious_violations

NEWCOMER = "grace.hopper@acme.test"


@pytest.fixture
def newcomer(demo):
    """A member of Acme in no workspace yet (the demo has none)."""
    user = User.objects.create_user(NEWCOMER, "x" * 16, full_name="Grace Hopper")
    OrganizationMembership.objects.create(
        user=user, organization=Organization.objects.get(slug="acme")
    )
    return user


def htmx_idle(page):
    """No htmx request in flight, and what the last one swapped in is settled (processed)."""
    page.wait_for_function(
        "() => !document.querySelector('.htmx-request, .htmx-swapping, .htmx-settling')"
    )


def open_dialog_from_the_keyboard(page, live_server):
    page.goto(f"{live_server.url}/o/acme/w/production/members/")
    add = page.get_by_role("link", name="Add member")
    add.focus()
    page.keyboard.press("Enter")
    dialog = page.get_by_role("dialog", name="Add a member to production")
    expect(dialog).to_be_visible()
    return dialog


def test_a_member_is_added_by_name_from_the_keyboard(newcomer, login, page, live_server):
    watch = ConsoleWatch()
    watch.watch(page.context)
    login("admin@acme.test")
    dialog = open_dialog_from_the_keyboard(page, live_server)
    email = dialog.get_by_label("Email")
    expect(email).to_be_focused()

    page.keyboard.type("hopp", delay=50)
    suggestion = dialog.get_by_role("link", name="Grace Hopper (grace.hopper@acme.test)")
    expect(suggestion).to_be_visible()
    # The answer for the whole text, swapped in and processed by htmx (on a loaded machine an
    # earlier answer can show first, and a link not yet processed is followed as a plain link).
    expect(dialog.locator("#member-suggestions")).to_contain_text("“hopp”")
    htmx_idle(page)
    page.keyboard.press("Tab")  # the suggestions come right after the input
    expect(suggestion).to_be_focused()
    page.keyboard.press("Enter")
    expect(email).to_have_value(NEWCOMER)
    expect(email).to_be_focused()
    htmx_idle(page)

    page.keyboard.press("Tab")
    role = dialog.get_by_label("Role")
    expect(role).to_be_focused()
    expect(role).to_have_value(str(Role.objects.system("Viewer").pk))
    page.keyboard.press("ArrowDown")  # Viewer, Editor, Admin: the next is Editor
    expect(role).to_have_value(str(Role.objects.system("Editor").pk))
    page.keyboard.press("Tab")
    expect(dialog.get_by_label("Access lasts")).to_be_focused()
    page.keyboard.press("Tab")
    page.keyboard.press("Tab")  # past "Go back"
    expect(dialog.get_by_role("button", name="Add member")).to_be_focused()
    page.keyboard.press("Enter")

    expect(dialog).to_be_hidden()
    expect(page.locator("main")).to_contain_text(NEWCOMER)
    added = WorkspaceMembership.objects.get(org_membership__user=newcomer)
    assert (added.workspace.slug, added.role.name) == ("production", "Editor")
    watch.assert_clean()


def test_the_open_dialog_has_no_serious_violation_and_fits_a_phone(
    newcomer, login, page, live_server
):
    page.set_viewport_size(PHONE)
    login("admin@acme.test")
    dialog = open_dialog_from_the_keyboard(page, live_server)
    dialog.get_by_label("Email").press_sequentially("grace", delay=50)
    expect(dialog.get_by_role("link", name="Grace Hopper (grace.hopper@acme.test)")).to_be_visible()

    assert serious_violations(Axe(), page) == []
    box = dialog.bounding_box()
    assert box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"]
    assert page.evaluate("document.scrollingElement.scrollWidth") <= PHONE["width"]
