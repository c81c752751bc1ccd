"""The console as people use it: issue 4's browser scenarios, driven through labels and roles.

Every flow runs against live_server with the real demo data (`seed_demo`). Each test also
watches the browser console: an error there (a failed request, a script error, a CSP
violation, which Chromium reports as a console error) fails the test.
"""

import re

import pytest
from playwright.sync_api import expect

from accesscontrol.rbac.models import Role
from accesscontrol.workspaces.models import WorkspaceMembership

PASSWORD = "accesscontrol-demo"
NEW_EMAIL = "new.person@example.test"
NEW_PASSWORD = "Plum-Teapot-Harbour-73"


class ConsoleWatch:
    """Console errors and uncaught exceptions from every page of the contexts it watches."""

    def __init__(self):
        self.errors = []

    def watch(self, context):
        context.on(
            "console",
            lambda msg: (
                self.errors.append(f"{msg.type}: {msg.text} ({msg.location.get('url')})")
                if msg.type == "error"
                else None
            ),
        )
        context.on("weberror", lambda err: self.errors.append(f"uncaught: {err.error}"))
        return context

    def assert_clean(self):
        assert self.errors == [], "console errors or CSP violations:\n" + "\n".join(self.errors)


@pytest.fixture
def console(page):
    watch = ConsoleWatch()
    watch.watch(page.context)
    return watch


@pytest.fixture
def other_context(browser, live_server, console):
    """Fresh browser contexts (another person, another browser), closed after the test."""
    contexts = []

    def new():
        context = console.watch(browser.new_context(base_url=live_server.url))
        contexts.append(context)
        return context.new_page()

    yield new
    for context in contexts:
        context.close()


def sign_in(page, live_server, email, password=PASSWORD):
    page.goto(f"{live_server.url}/login/")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("button", name="Sign in")).to_have_count(0)
    return page


def nav(page):
    return page.get_by_role("navigation", name="Main")


def open_org_members(page):
    """Through the crumbs to the organization, then its Members page."""
    page.locator(".crumbs").get_by_role("link", name="Acme").click()
    expect(page.get_by_role("heading", level=1, name="Acme")).to_be_visible()
    nav(page).get_by_role("link", name="Members").click()
    expect(page.get_by_role("heading", level=1, name="Organization members")).to_be_visible()


def open_workspace_members(page):
    """From a workspace page: the workspace's Members (the first Members link of the sidebar)."""
    nav(page).get_by_role("link", name="Members").first.click()
    expect(page.get_by_role("heading", level=1, name="Workspace members")).to_be_visible()


def expect_role_here(page, role):
    expect(page.locator(".role-line")).to_contain_text(f"You are {role} here")


def expect_no_member_controls(page, add):
    """A members page as someone who may not manage it sees it: no `add` link or button, no
    role to pick in the rows, nothing to remove."""
    for name in (add, "Remove"):
        expect(page.get_by_role("link", name=name)).to_have_count(0)
        expect(page.get_by_role("button", name=name)).to_have_count(0)
    expect(page.locator("#member-rows").get_by_role("combobox")).to_have_count(0)


def toast(page, text):
    return page.locator("#toasts").get_by_text(text)


def csrf_token(page):
    return next(c["value"] for c in page.context.cookies() if c["name"] == "csrftoken")


# a. Invitation ------------------------------------------------------------------------------


def test_admin_invites_a_new_person_who_accepts_and_joins_as_viewer(
    demo, login, live_server, mailoutbox, other_context, console
):
    page = login("admin@acme.test")
    open_org_members(page)

    page.get_by_role("link", name="Invite people").click()
    dialog = page.get_by_role("dialog", name="Invite someone to Acme")
    expect(dialog).to_be_visible()
    dialog.get_by_label("Email address").fill(NEW_EMAIL)
    dialog.get_by_label("Organization role").select_option(label="Member")
    dialog.get_by_role("checkbox", name="production").check()
    dialog.get_by_label("Role in those workspaces").select_option(label="Viewer")
    dialog.get_by_role("button", name="Send invitation").click()

    expect(toast(page, f"Invitation sent to {NEW_EMAIL}.")).to_be_visible()
    expect(dialog).to_be_hidden()
    pending = page.get_by_role("row").filter(has_text=NEW_EMAIL)
    expect(pending).to_be_visible()
    expect(pending).to_contain_text("production")
    expect(pending).to_contain_text("as Viewer")

    assert len(mailoutbox) == 1
    message = mailoutbox[0]
    assert message.to == [NEW_EMAIL]
    path = re.search(r"/invitations/[^/\s]+/", message.body).group(0)

    guest = other_context()
    guest.goto(path)
    expect(guest.get_by_role("heading", name="Join Acme")).to_be_visible()
    guest.get_by_label("Your name").fill("Nina Newcomer")
    guest.get_by_label("Choose a password").fill(NEW_PASSWORD)
    guest.get_by_label("Password again").fill(NEW_PASSWORD)
    guest.get_by_role("button", name="Create account and join").click()

    expect(guest.get_by_role("heading", level=1, name="Acme")).to_be_visible()
    expect(toast(guest, "Welcome to Acme.")).to_be_visible()
    guest.get_by_role("link", name="production").first.click()
    expect(guest.get_by_role("heading", level=1, name="production")).to_be_visible()
    expect_role_here(guest, "Viewer")

    # The link worked once.
    guest.context.clear_cookies()
    response = guest.request.get(f"{live_server.url}{path}")
    assert response.status == 404

    # The invitation is no longer pending for the admin.
    page.reload()
    expect(page.get_by_text("No pending invitations.")).to_be_visible()
    console.assert_clean()


# b. Demotion to Viewer ------------------------------------------------------------------------


def test_admin_makes_an_editor_viewer_and_their_next_page_has_no_edit_controls(
    demo, login, live_server, other_context, console
):
    page = login("admin@acme.test")
    assert "/o/acme/w/production/" in page.url
    open_workspace_members(page)

    role_select = page.get_by_label("Role of editor@acme.test")
    expect(role_select).to_have_value(str(Role.objects.system("Editor").pk))
    row_id = page.get_by_role("row").filter(has_text="editor@acme.test").get_attribute("id")
    page.evaluate("window.stillTheSamePage = true")
    role_select.select_option(label="Viewer")

    expect(toast(page, "editor@acme.test is now Viewer in production.")).to_be_visible()
    # htmx swapped the row in place: same row, new role, and no full reload.
    expect(page.locator(f"#{row_id}").get_by_label("Role of editor@acme.test")).to_have_value(
        str(Role.objects.system("Viewer").pk)
    )
    assert page.evaluate("window.stillTheSamePage") is True

    editor = sign_in(other_context(), live_server, "editor@acme.test")
    assert "/o/acme/w/production/" in editor.url
    expect_role_here(editor, "Viewer")
    open_workspace_members(editor)
    expect(editor.get_by_role("row").filter(has_text="viewer@acme.test")).to_be_visible()
    expect_no_member_controls(editor, "Add member")

    # The server refuses a forged role change anyway, with the explanatory 403.
    victim = WorkspaceMembership.objects.get(
        workspace__slug="production", org_membership__user__email="viewer@acme.test"
    )
    url = f"{live_server.url}/o/acme/w/production/members/{victim.pk}/role/"
    response = editor.request.post(
        url,
        form={"role": str(Role.objects.system("Admin").pk)},
        headers={"X-CSRFToken": csrf_token(editor)},
    )
    assert response.status == 403
    assert response.headers.get("x-required-permission") == "workspaces:manage-members"
    assert "You don't have access to this" in response.text()
    victim.refresh_from_db()
    assert victim.role.name == "Viewer"
    console.assert_clean()


# c. Custom role -------------------------------------------------------------------------------


def test_admin_creates_a_custom_role_and_assigns_it(
    demo, login, live_server, other_context, console
):
    page = login("admin@acme.test")
    nav(page).get_by_role("link", name="Roles").click()
    expect(page.get_by_role("heading", level=1, name="Roles")).to_be_visible()
    page.get_by_role("link", name="New custom role").click()
    form = page.get_by_role("dialog", name="New custom role")
    expect(form).to_be_visible()

    form.get_by_label("Name").fill("Dataset curator")
    form.get_by_label("Description").fill("Reads everything; curates datasets.")
    form.get_by_role("button", name="Select all read").click()
    expect(form.get_by_role("checkbox", name="runs:read")).to_be_checked()
    expect(form.get_by_role("checkbox", name="workspaces:read")).to_be_checked()
    expect(form.get_by_role("checkbox", name="runs:create")).not_to_be_checked()
    form.get_by_role("checkbox", name="datasets:create").check()
    form.get_by_role("checkbox", name="datasets:update").check()
    form.get_by_role("button", name="Create role").click()

    expect(toast(page, "Role Dataset curator created.")).to_be_visible()
    row = page.get_by_role("row").filter(has_text="Dataset curator")
    expect(row).to_be_visible()
    # In words against the closest system role; the codes are folded away beneath.
    expect(row).to_contain_text("Viewer + create and update datasets")
    row.get_by_text("permission codes").click()
    for code in ("datasets:read", "datasets:create", "datasets:update", "runs:read"):
        expect(row.get_by_text(code, exact=True)).to_be_visible()
    expect(row.get_by_text("runs:create", exact=True)).to_have_count(0)
    expect(row).to_contain_text("0 members, 0 keys")

    page.locator(".crumbs").get_by_role("link", name="Acme").click()
    page.get_by_role("link", name="production").first.click()
    open_workspace_members(page)
    page.get_by_label("Role of viewer@acme.test").select_option(label="Dataset curator (custom)")
    expect(toast(page, "viewer@acme.test is now Dataset curator in production.")).to_be_visible()

    member = sign_in(other_context(), live_server, "viewer@acme.test")
    assert "/o/acme/w/production/" in member.url
    expect_role_here(member, "Dataset curator")
    grid = member.get_by_role("row", name="Datasets & examples")
    expect(grid.get_by_title("datasets:create")).to_contain_text("✓")
    console.assert_clean()


# d. Service key -------------------------------------------------------------------------------


def test_admin_creates_copies_uses_and_revokes_a_service_key(demo, login, live_server, console):
    page = login("admin@acme.test")
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=live_server.url)
    nav(page).get_by_role("link", name="Service keys").click()
    expect(page.get_by_role("heading", level=1, name="Service keys")).to_be_visible()

    page.get_by_role("link", name="New service key").click()
    form = page.get_by_role("dialog", name="New service key")
    form.get_by_label("Name").fill("Nightly export")
    form.get_by_label("Role").select_option(label="Viewer (recommended)")
    form.get_by_role("button", name="Create key").click()

    once = page.get_by_role("alert").filter(has_text="Copy your new key now")
    expect(once).to_be_visible()
    expect(once).to_contain_text("This is the only time it is shown.")
    once.get_by_role("button", name="Copy").click()
    expect(once.get_by_role("button", name="Copied")).to_be_visible()
    expect(toast(page, "Copied to the clipboard.")).to_be_visible()
    raw = page.evaluate("navigator.clipboard.readText()")
    assert raw == page.get_by_label("New key").input_value()
    assert raw.startswith("lsv2_sk_")

    whoami = f"{live_server.url}/api/v1/auth/whoami"
    response = page.request.get(whoami, headers={"X-API-Key": raw})
    assert response.status == 200, response.text()
    body = response.json()
    assert body["role"] == "Viewer"
    assert body["kind"] == "service_key"
    assert body["workspace"]["id"] == demo["acme_workspaces"]["production"]

    # Back on the page: the key is listed by its hint only, never shown again.
    nav(page).get_by_role("link", name="Service keys").click()
    expect(page.get_by_role("heading", level=1, name="Service keys")).to_be_visible()
    expect(page.get_by_text("Copy your new key now")).to_have_count(0)
    expect(page.get_by_label("New key")).to_have_count(0)
    assert raw not in page.content()
    row = page.get_by_role("row").filter(has_text="Nightly export")
    expect(row).to_contain_text(f"{raw[:8]}…{raw[-4:]}")
    expect(row).to_contain_text("Viewer")
    expect(row).to_contain_text("Active")

    row.get_by_role("link", name="Revoke").click()
    dialog = page.get_by_role("dialog", name="Revoke Nightly export?")
    expect(dialog).to_be_visible()
    expect(dialog).to_contain_text("This cannot be undone.")
    dialog.get_by_role("button", name="Revoke key").click()

    expect(toast(page, "Nightly export was revoked.")).to_be_visible()
    row = page.get_by_role("row").filter(has_text="Nightly export")
    expect(row).to_contain_text("Revoked")
    expect(row.get_by_role("link", name="Revoke")).to_have_count(0)

    response = page.request.get(whoami, headers={"X-API-Key": raw})
    assert response.status == 401
    assert response.json()["error"] == "revoked_api_key"
    console.assert_clean()


def test_admin_rotates_a_service_key_in_the_dialog_and_both_work_during_the_grace(
    demo, login, live_server, console
):
    page = login("admin@acme.test")
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=live_server.url)
    nav(page).get_by_role("link", name="Service keys").click()
    page.get_by_role("link", name="New service key").click()
    form = page.get_by_role("dialog", name="New service key")
    form.get_by_label("Name").fill("Deploy bot")
    form.get_by_label("Role").select_option(label="Editor")
    form.get_by_role("button", name="Create key").click()
    old = page.get_by_label("New key").input_value()
    nav(page).get_by_role("link", name="Service keys").click()

    row = page.get_by_role("row").filter(has_text="Deploy bot")
    row.get_by_role("link", name="Rotate").click()
    dialog = page.get_by_role("dialog", name="Rotate Deploy bot?")
    expect(dialog).to_be_visible()
    dialog.get_by_label("The old key keeps working for").select_option(label="1 hour")
    dialog.get_by_role("button", name="Rotate").click()

    # Back on the list (a redirect), the successor is shown this once.
    rotated = page.get_by_role("alert").filter(has_text="Deploy bot was rotated")
    expect(rotated).to_contain_text("This is the only time it is shown.")
    rotated.get_by_role("button", name="Copy").click()
    expect(toast(page, "Copied to the clipboard.")).to_be_visible()
    new = page.evaluate("navigator.clipboard.readText()")
    assert new.startswith("lsv2_sk_") and new != old
    whoami = f"{live_server.url}/api/v1/auth/whoami"
    for raw in (old, new):
        assert page.request.get(whoami, headers={"X-API-Key": raw}).status == 200

    page.reload()
    expect(page.get_by_role("alert").filter(has_text="Deploy bot was rotated")).to_have_count(0)
    rows = page.get_by_role("row").filter(has_text="Deploy bot")
    expect(rows).to_have_count(2)
    expect(rows.filter(has_text="rotated: works until")).to_have_count(1)
    assert new not in page.content() and old not in page.content()
    console.assert_clean()


# e. Viewer: read-only pages -------------------------------------------------------------------


def test_a_viewer_sees_read_only_pages(demo, login, live_server, console):
    page = login("viewer@acme.test")
    assert "/o/acme/w/production/" in page.url
    expect_role_here(page, "Viewer")
    sidebar = nav(page)
    expect(sidebar.get_by_role("link", name="Overview").first).to_be_visible()
    expect(sidebar.get_by_role("link", name="Service keys")).to_have_count(0)
    expect(sidebar.get_by_role("link", name="Settings")).to_have_count(0)

    open_workspace_members(page)
    expect_no_member_controls(page, "Add member")

    open_org_members(page)
    expect(page.get_by_role("row").filter(has_text="admin@acme.test")).to_be_visible()
    expect_no_member_controls(page, "Invite people")
    expect(page.get_by_role("heading", name="Pending invitations")).to_have_count(0)

    nav(page).get_by_role("link", name="Roles").click()
    expect(page.get_by_role("heading", level=1, name="Roles")).to_be_visible()
    expect(page.get_by_role("row").filter(has_text="Annotator")).to_be_visible()
    expect(page.get_by_role("link", name="New custom role")).to_have_count(0)
    expect(page.get_by_role("link", name="Edit")).to_have_count(0)
    expect(page.get_by_role("link", name="Delete")).to_have_count(0)

    # A forged invitation is refused with the explanatory 403.
    response = page.request.post(
        f"{live_server.url}/o/acme/members/invite/",
        form={"email": "sneaky@example.test", "org_role": "admin"},
        headers={"X-CSRFToken": csrf_token(page)},
    )
    assert response.status == 403
    assert response.headers.get("x-required-permission") == "organization:manage"
    console.assert_clean()


# f. Keyboard ----------------------------------------------------------------------------------


def test_the_invite_dialog_and_skip_link_work_from_the_keyboard(demo, login, live_server, console):
    page = login("admin@acme.test")
    open_org_members(page)

    # The skip link is the first Tab stop, and it leads to the content.
    page.goto(page.url)
    page.keyboard.press("Tab")
    skip = page.get_by_role("link", name="Skip to content")
    expect(skip).to_be_focused()
    expect(skip).to_be_visible()
    page.keyboard.press("Enter")
    expect(page.locator("#main")).to_be_focused()

    invite = page.get_by_role("link", name="Invite people")
    invite.focus()
    page.keyboard.press("Enter")
    dialog = page.get_by_role("dialog", name="Invite someone to Acme")
    expect(dialog).to_be_visible()
    expect(dialog.get_by_label("Email address")).to_be_focused()
    assert page.evaluate("document.getElementById('modal').contains(document.activeElement)")

    page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()
    expect(invite).to_be_focused()
    console.assert_clean()
