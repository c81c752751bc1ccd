"""Screenshots of the console's main pages for the README: `make screenshots` (SCREENSHOTS=1).

They are taken from the real demo data at 1280x800, full page, into docs/screenshots/.
"""

import os
from pathlib import Path

import pytest
from playwright.sync_api import expect

PASSWORD = "accesscontrol-demo"
OUT = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
VIEWPORT = {"width": 1280, "height": 800}

pytestmark = pytest.mark.skipif(
    os.environ.get("SCREENSHOTS") != "1", reason="set SCREENSHOTS=1 (make screenshots)"
)


def shoot(page, name):
    page.wait_for_load_state("networkidle")
    page.screenshot(path=OUT / name, full_page=True, animations="disabled", caret="hide")


def sign_in(page, live_server, email, *, screenshot=None):
    page.goto(f"{live_server.url}/login/")
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    if screenshot:
        shoot(page, screenshot)
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("button", name="Sign in")).to_have_count(0)


def test_screenshots_of_the_main_pages(demo, browser, live_server):
    OUT.mkdir(parents=True, exist_ok=True)
    context = browser.new_context(viewport=VIEWPORT, base_url=live_server.url)
    page = context.new_page()
    nav = page.get_by_role("navigation", name="Main")
    try:
        sign_in(page, live_server, "admin@acme.test", screenshot="login.png")
        expect(page.locator(".role-line")).to_contain_text("You are Admin here")
        shoot(page, "workspace-home.png")

        nav.get_by_role("link", name="Members").first.click()
        expect(page.get_by_role("heading", level=1, name="Workspace members")).to_be_visible()
        shoot(page, "workspace-members.png")

        nav.get_by_role("link", name="Service keys").click()
        page.get_by_role("link", name="New service key").click()
        page.get_by_label("Name").fill("CI pipeline")
        page.get_by_label("Role").select_option(label="Editor")
        page.get_by_role("button", name="Create key").click()
        expect(page.get_by_text("Copy your new key now")).to_be_visible()
        shoot(page, "service-keys.png")

        page.locator(".crumbs").get_by_role("link", name="Acme").click()
        expect(page.get_by_role("heading", level=1, name="Acme")).to_be_visible()
        nav.get_by_role("link", name="Members").click()
        expect(page.get_by_role("heading", level=1, name="Organization members")).to_be_visible()
        shoot(page, "org-members.png")

        page.get_by_role("link", name="Invite people").click()
        dialog = page.get_by_role("dialog", name="Invite someone to Acme")
        expect(dialog).to_be_visible()
        dialog.get_by_label("Email address").fill("new.person@example.test")
        dialog.get_by_role("checkbox", name="production").check()
        shoot(page, "invite-dialog.png")
        page.keyboard.press("Escape")
        expect(dialog).to_be_hidden()

        nav.get_by_role("link", name="Roles").click()
        expect(page.get_by_role("heading", level=1, name="Roles")).to_be_visible()
        shoot(page, "roles.png")

        page.get_by_role("row").filter(has_text="Annotator").get_by_role(
            "link", name="Edit"
        ).click()
        expect(page.get_by_role("heading", level=1, name="Edit role Annotator")).to_be_visible()
        shoot(page, "role-editor.png")

        nav.get_by_role("link", name="Settings").click()
        expect(page.get_by_role("heading", level=1, name="Organization settings")).to_be_visible()
        shoot(page, "org-settings.png")

        page.locator(".user-menu summary").click()
        page.get_by_role("link", name="Personal access tokens").click()
        expect(
            page.get_by_role("heading", level=1, name="Your personal access tokens")
        ).to_be_visible()
        shoot(page, "personal-tokens.png")
    finally:
        context.close()

    context = browser.new_context(viewport=VIEWPORT, base_url=live_server.url)
    page = context.new_page()
    try:
        sign_in(page, live_server, "viewer@acme.test")
        response = page.goto("/o/acme/w/production/keys/")
        assert response.status == 403
        expect(page.get_by_role("heading", name="You don't have access to this")).to_be_visible()
        shoot(page, "denied.png")
    finally:
        context.close()
