"""Screenshots of the console's main pages for the README: `make screenshots` (SCREENSHOTS=1).

They are taken from the real demo data at 1280x800 (and 390x844 for the phone shots), full
page, into docs/screenshots/.
"""

import contextlib
import os
from pathlib import Path

import pytest
from django.db import transaction
from django.urls import reverse
from django.utils import timezone
from playwright.sync_api import expect

PASSWORD = "accesscontrol-demo"
OUT = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
VIEWPORT = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}

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


@contextlib.contextmanager
def signed_in(browser, live_server, email, *, viewport=VIEWPORT, screenshot=None):
    """A page of a new browser context, signed in as `email`; the context closes after."""
    context = browser.new_context(viewport=viewport, base_url=live_server.url)
    try:
        page = context.new_page()
        sign_in(page, live_server, email, screenshot=screenshot)
        yield page
    finally:
        context.close()


def viewer_refused_the_keys_page(page):
    response = page.goto("/o/acme/w/production/keys/")
    assert response.status == 403


@pytest.fixture
def lived_in(demo):
    """The demo with some history: keys that were used, one revoked, and role changes in the
    audit log, made through the services as the console would."""
    from accesscontrol.apikeys.models import ServiceKey
    from accesscontrol.organizations.models import Organization
    from accesscontrol.rbac.actor import Actor
    from accesscontrol.workspaces import services as workspaces
    from tests.factories import service_key_for, system_role

    acme = Organization.objects.get(slug="acme")
    production = acme.workspaces.get(slug="production")
    admin = acme.memberships.get(user__email="admin@acme.test").user
    actor = Actor.for_user(admin, acme, production)
    for role in ("Editor", "Viewer"):
        service_key_for(production, role)
    ServiceKey.objects.filter(workspace=production).update(last_used_at=timezone.now())
    oldest = ServiceKey.objects.filter(workspace=production).order_by("created_at").first()
    ServiceKey.objects.filter(pk=oldest.pk).update(revoked_at=timezone.now())
    editor = production.memberships.get(org_membership__user__email="editor@acme.test")
    with transaction.atomic():
        workspaces.change_workspace_role(actor=actor, membership=editor, role=system_role("Viewer"))
    with transaction.atomic():
        workspaces.change_workspace_role(actor=actor, membership=editor, role=system_role("Editor"))
    return demo


def test_screenshots_of_the_main_pages(lived_in, browser, live_server):
    OUT.mkdir(parents=True, exist_ok=True)
    with signed_in(browser, live_server, "admin@acme.test", screenshot="login.png") as page:
        nav = page.get_by_role("navigation", name="Main")
        expect(page.locator(".role-line")).to_contain_text("You are Admin here")
        shoot(page, "workspace-home.png")

        nav.get_by_role("link", name="Members").first.click()
        expect(page.get_by_role("heading", level=1, name="Workspace members")).to_be_visible()
        shoot(page, "workspace-members.png")

        nav.get_by_role("link", name="Service keys").click()
        expect(page.get_by_role("heading", level=1, name="Service keys")).to_be_visible()
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

        nav.get_by_role("link", name="Audit log").click()
        expect(page.get_by_role("heading", level=1, name="Audit log")).to_be_visible()
        expect(page.get_by_text("changed Eddie Editor's role in production").first).to_be_visible()
        shoot(page, "audit-log.png")

        nav.get_by_role("link", name="Settings").click()
        expect(page.get_by_role("heading", level=1, name="Organization settings")).to_be_visible()
        shoot(page, "org-settings.png")

        page.locator(".user-menu summary").click()
        page.get_by_role("link", name="Personal access tokens").click()
        expect(
            page.get_by_role("heading", level=1, name="Your personal access tokens")
        ).to_be_visible()
        shoot(page, "personal-tokens.png")

    with signed_in(browser, live_server, "viewer@acme.test") as page:
        viewer_refused_the_keys_page(page)
        expect(page.get_by_role("heading", name="You don't have access to this")).to_be_visible()
        shoot(page, "denied.png")


def test_screenshots_on_a_phone(lived_in, browser, live_server):
    OUT.mkdir(parents=True, exist_ok=True)
    with signed_in(browser, live_server, "admin@acme.test", viewport=PHONE) as page:
        page.goto("/o/acme/members/")
        expect(page.get_by_role("heading", level=1, name="Organization members")).to_be_visible()
        shoot(page, "org-members-phone.png")
        page.goto("/o/acme/w/production/keys/")
        expect(page.get_by_role("heading", level=1, name="Service keys")).to_be_visible()
        shoot(page, "service-keys-phone.png")


def test_screenshots_of_requesting_access(lived_in, browser, live_server):
    """A 403 that offers "Request access", and the request waiting on an admin's list."""
    with signed_in(browser, live_server, "viewer@acme.test") as page:
        viewer_refused_the_keys_page(page)
        expect(page.get_by_role("button", name="Request access")).to_be_visible()
        shoot(page, "request-access-403.png")
        page.get_by_label("Why do you need it?").fill("Rotating the CI key while Ada is away")
        page.get_by_role("button", name="Request access").click()
        expect(page.get_by_role("heading", level=1, name="Your access requests")).to_be_visible()
    with signed_in(browser, live_server, "admin@acme.test") as page:
        assert page.goto(reverse("access-requests", args=["acme"])).status == 200
        expect(page.get_by_text("Rotating the CI key while Ada is away")).to_be_visible()
        shoot(page, "access-requests.png")
