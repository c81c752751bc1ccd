"""Issue #16's daily flows in Chromium: a secret shown once after a redirect, inline writes that
fail honestly and keep the keyboard where it was, confirmations that focus the safe button,
toasts that go away, promotions that are asked first.

Each test watches the browser console (a script error or a CSP violation fails it).
"""

from django.contrib.sessions.models import Session
from playwright.sync_api import expect

from accesscontrol.apikeys.models import ServiceKey
from accesscontrol.organizations.models import OrganizationMembership
from accesscontrol.rbac.models import Role
from accesscontrol.workspaces.models import WorkspaceMembership
from tests.browser.test_console_flows import console, nav, open_workspace_members, toast  # noqa: F401


def open_service_keys(page):
    nav(page).get_by_role("link", name="Service keys").click()
    expect(page.get_by_role("heading", level=1, name="Service keys")).to_be_visible()


def create_key(page, name, role="Viewer (recommended)"):
    page.get_by_role("link", name="New service key").click()
    form = page.get_by_role("dialog", name="New service key")
    expect(form).to_be_visible()
    form.get_by_label("Name").fill(name)
    form.get_by_label("Role").select_option(label=role)
    form.get_by_role("button", name="Create key").click()
    expect(page.get_by_role("alert").filter(has_text="Copy your new key now")).to_be_visible()
    return page.get_by_label("New key").input_value()


def assert_clean_but(console, status):  # noqa: F811
    """No console error except the browser's note of an expected `status` answer."""
    others = [e for e in console.errors if str(status) not in e]
    assert others == [], others


def focused(page) -> dict:
    return page.evaluate(
        "({id: document.activeElement.id, tag: document.activeElement.tagName,"
        " text: document.activeElement.textContent.trim()})"
    )


def test_reloading_after_creating_a_key_creates_nothing_and_shows_no_secret(
    demo,
    login,
    console,  # noqa: F811
):
    page = login("admin@acme.test")
    open_service_keys(page)

    # The role is a choice: nothing is preselected, the weakest is offered first.
    page.get_by_role("link", name="New service key").click()
    form = page.get_by_role("dialog", name="New service key")
    expect(form.get_by_label("Role")).to_have_value("")
    form.get_by_label("Name").fill("Nightly export")
    form.get_by_role("button", name="Create key").click()
    expect(form.get_by_text("This field is required.")).to_be_visible()
    assert not ServiceKey.objects.filter(name="Nightly export").exists()
    page.keyboard.press("Escape")

    raw = create_key(page, "Nightly export")
    assert raw.startswith("lsv2_sk_")
    assert ServiceKey.objects.filter(name="Nightly export").count() == 1

    page.reload()  # the page is a GET after a redirect: no "resend the form?", no second key
    expect(page.get_by_role("heading", level=1, name="Service keys")).to_be_visible()
    expect(page.get_by_text("Copy your new key now")).to_have_count(0)
    assert raw not in page.content()
    assert ServiceKey.objects.filter(name="Nightly export").count() == 1
    expect(page.get_by_role("row").filter(has_text="Nightly export")).to_have_count(1)

    page.go_back()  # nor does going back to it show the secret again
    page.go_forward()
    assert raw not in page.content()
    assert ServiceKey.objects.filter(name="Nightly export").count() == 1
    assert_clean_but(console, 422)  # the form refused without a role


def test_an_inline_role_change_after_the_session_expired_reverts_and_says_so(
    demo,
    login,
    console,  # noqa: F811
):
    page = login("admin@acme.test")
    open_workspace_members(page)
    select = page.get_by_label("Role of editor@acme.test")
    editor_pk = str(Role.objects.system("Editor").pk)
    expect(select).to_have_value(editor_pk)

    Session.objects.all().delete()  # the session expires while the page is open
    select.select_option(label="Viewer")

    message = toast(page, "Your session has expired, so nothing was changed.")
    expect(message).to_be_visible()
    expect(page.locator("#toasts")).to_contain_text("Role of editor@acme.test stays Editor.")
    expect(page.locator("#toasts").get_by_role("link", name="Sign in again")).to_have_attribute(
        "href", "/login/?next=%2Fo%2Facme%2Fw%2Fproduction%2Fmembers%2F"
    )
    expect(select).to_have_value(editor_pk)  # the control shows the database's value again
    expect(select).to_be_enabled()
    assert focused(page)["id"] == select.get_attribute("id")
    membership = WorkspaceMembership.objects.get(
        workspace__slug="production", org_membership__user__email="editor@acme.test"
    )
    assert membership.role.name == "Editor"
    assert_clean_but(console, 401)  # the expected answer, reported by the toast


def test_focus_stays_on_the_changed_rows_control(demo, login, console):  # noqa: F811
    page = login("admin@acme.test")
    open_workspace_members(page)
    select = page.get_by_label("Role of editor@acme.test")
    select_id = select.get_attribute("id")
    select.focus()
    select.select_option(label="Viewer")
    expect(toast(page, "editor@acme.test is now Viewer in production.")).to_be_visible()
    expect(page.locator(f"#{select_id}")).to_be_focused()

    # And again from the keyboard, on the swapped-in row.
    page.keyboard.press("ArrowDown")  # Viewer -> the next option down, Editor
    expect(toast(page, "editor@acme.test is now Editor in production.")).to_be_visible()
    expect(page.locator(f"#{select_id}")).to_be_focused()
    console.assert_clean()


def test_dialogs_focus_the_safe_button_and_name_what_they_destroy(
    demo,
    login,
    console,  # noqa: F811
):
    page = login("admin@acme.test")
    open_service_keys(page)
    row = page.get_by_role("row").filter(has_text="demo viewer key")
    row.get_by_role("link", name="Revoke").click()
    dialog = page.get_by_role("dialog", name="Revoke demo viewer key?")
    expect(dialog).to_be_visible()
    expect(dialog.get_by_role("link", name="Keep key")).to_be_focused()
    expect(dialog.get_by_role("button", name="Revoke key “demo viewer key”")).to_be_visible()
    page.keyboard.press("Enter")  # the focused, safe choice
    expect(dialog).to_be_hidden()
    assert ServiceKey.objects.get(name="demo viewer key").revoked_at is None

    # Row actions are quiet: outline buttons, not a solid red one per row.
    page.mouse.move(0, 0)
    revoke = row.get_by_role("link", name="Revoke")
    expect(revoke).to_have_css("background-color", "rgba(0, 0, 0, 0)")

    # The pending invitation's action says what it cancels; its dialog keeps it by default.
    nav(page).get_by_role("link", name="Members").nth(1).click()
    expect(page.get_by_role("heading", level=1, name="Organization members")).to_be_visible()
    page.get_by_role("link", name="Invite people").click()
    invite = page.get_by_role("dialog", name="Invite someone to Acme")
    invite.get_by_label("Email address").fill("later@example.test")
    invite.get_by_role("button", name="Send invitation").click()
    expect(toast(page, "Invitation sent to later@example.test.")).to_be_visible()
    invitation = page.get_by_role("row").filter(has_text="later@example.test")
    invitation.get_by_role("link", name="Cancel invitation").click()
    cancel = page.get_by_role("dialog", name="Cancel the invitation of later@example.test?")
    expect(cancel.get_by_role("link", name="Keep invitation")).to_be_focused()
    cancel.get_by_role("button", name="Cancel invitation of later@example.test").click()
    expect(toast(page, "The invitation of later@example.test was cancelled.")).to_be_visible()
    console.assert_clean()


def test_toasts_close_themselves_can_be_dismissed_and_cover_no_row_button(
    demo,
    login,
    console,  # noqa: F811
):
    page = login("admin@acme.test")
    open_service_keys(page)
    for name in ("one", "two", "three"):
        create_key(page, name)
    row = page.get_by_role("row").filter(has_text="demo editor key")
    row.get_by_role("link", name="Revoke").click()
    page.get_by_role("button", name="Revoke key “demo editor key”").click()
    message = toast(page, "demo editor key was revoked.")
    expect(message).to_be_visible()

    box = page.locator("#toasts").bounding_box()
    for button in page.locator(".row-actions .btn").all():
        b = button.bounding_box()
        overlap = not (
            b["x"] + b["width"] <= box["x"]
            or box["x"] + box["width"] <= b["x"]
            or b["y"] + b["height"] <= box["y"]
            or box["y"] + box["height"] <= b["y"]
        )
        assert not overlap, (button.text_content(), b, box)

    expect(message).to_have_count(0, timeout=9000)  # closed by itself

    page.reload()  # no flash now; make one and dismiss it by hand
    row = page.get_by_role("row").filter(has_text="demo viewer key")
    row.get_by_role("link", name="Revoke").click()
    page.get_by_role("button", name="Revoke key “demo viewer key”").click()
    message = page.locator("#toasts .toast").filter(has_text="demo viewer key was revoked.")
    expect(message).to_be_visible()
    message.get_by_role("button", name="Dismiss").click()
    expect(message).to_have_count(0)
    console.assert_clean()


def test_a_promotion_to_org_admin_is_confirmed_with_what_it_allows(
    demo,
    login,
    console,  # noqa: F811
):
    page = login("admin@acme.test")
    nav(page).get_by_role("link", name="Members").nth(1).click()
    expect(page.get_by_role("heading", level=1, name="Organization members")).to_be_visible()
    # An organization page keeps the workspace context: the switcher still shows production.
    expect(nav(page).locator(".switcher-value").nth(1)).to_have_text("production")
    select = page.get_by_label("Organization role of viewer@acme.test")
    select_id = select.get_attribute("id")
    expect(select).to_have_value("member")

    select.select_option("admin")
    dialog = page.get_by_role("dialog", name="Make viewer@acme.test organization admin?")
    expect(dialog).to_contain_text(
        "will be able to: Manages the organization; Admin in every workspace."
    )
    keep = dialog.get_by_role("link", name="Keep the current role")
    expect(keep).to_be_focused()
    keep.click()
    expect(dialog).to_be_hidden()
    expect(select).to_have_value("member")  # put back
    expect(page.locator(f"#{select_id}")).to_be_focused()
    membership = OrganizationMembership.objects.get(user__email="viewer@acme.test")
    assert membership.org_role == "member"

    select.select_option("admin")
    dialog.get_by_role("button", name="Make viewer@acme.test organization admin").click()
    expect(toast(page, "viewer@acme.test is now admin.")).to_be_visible()
    expect(dialog).to_be_hidden()
    expect(page.locator(f"#{select_id}")).to_have_value("admin")
    expect(page.locator(f"#{select_id}")).to_be_focused()
    membership.refresh_from_db()
    assert membership.org_role == "admin"

    # A workspace Admin is asked the same way, with the role's own description.
    page.locator(".crumbs").get_by_role("link", name="Acme").click()
    page.get_by_role("link", name="production").first.click()
    open_workspace_members(page)
    page.get_by_label("Role of editor@acme.test").select_option(label="Admin")
    dialog = page.get_by_role("dialog", name="Make editor@acme.test Admin?")
    expect(dialog).to_contain_text("including its settings, members and service keys")
    page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()
    expect(page.get_by_label("Role of editor@acme.test")).to_have_value(
        str(Role.objects.system("Editor").pk)
    )
    console.assert_clean()
