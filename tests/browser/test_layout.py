"""The console as an admin sees it in Chromium: every page fits a 390 px phone without the page
scrolling sideways, the keys table fits 1280 px, no serious or critical axe violation, no CSP
violation when htmx re-shows a form, and the user menu closes on Escape."""

import pytest
from axe_playwright_python.sync_playwright import Axe
from django.utils import timezone
from playwright.sync_api import expect

from accesscontrol.apikeys.models import ServiceKey

PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 800}


def admin_pages(page, live_server):
    """Every page the admin's sidebar and user menu link to, and a few a click deeper."""
    page.goto(f"{live_server.url}/o/acme/w/production/")
    hrefs = page.eval_on_selector_all(
        "nav.sidebar .nav a[href], .user-menu .menu a[href]", "els => els.map(e => e.href)"
    )
    extra = page.eval_on_selector_all(
        "nav.sidebar .switcher a[href]", "els => els.map(e => e.href)"
    )
    deeper = []
    for href in hrefs:
        if href.endswith(("/datasets/", "/projects/", "/roles/", "/keys/")):
            page.goto(href)
            link = page.locator("main tbody a[href]").first
            if link.count():
                deeper.append(link.evaluate("a => a.href"))
    pages = dict.fromkeys([*hrefs, *extra[:1], *deeper])
    return [p for p in pages if "/logout" not in p]


# What sticks out of the viewport (outside any scrolling box), to name it in the failure.
WIDEST = """() => {
  const out = [];
  for (const el of document.querySelectorAll('body *')) {
    const r = el.getBoundingClientRect();
    if (r.right <= innerWidth + 1 || r.width === 0) continue;
    const p = el.parentElement;
    if (p && p.getBoundingClientRect().right > innerWidth + 1) continue;
    out.push(el.tagName.toLowerCase() + '.' + el.className + ' ' + Math.round(r.right));
  }
  return out.slice(0, 4);
}"""


@pytest.fixture
def used_key(demo):
    """A key that has been used: its "last used" cell made the keys table 1,341 px wide."""
    ServiceKey.objects.filter(revoked_at__isnull=True).update(last_used_at=timezone.now())


def test_no_admin_page_scrolls_sideways_on_a_phone(used_key, login, page, live_server):
    page.set_viewport_size(PHONE)
    login("admin@acme.test")
    wide = {}
    urls = admin_pages(page, live_server)
    assert len(urls) >= 12, urls
    for url in urls:
        page.goto(url)
        width = page.evaluate("document.scrollingElement.scrollWidth")
        if width > PHONE["width"]:
            wide[url] = (width, page.evaluate(WIDEST))
    assert wide == {}


def test_the_invite_dialog_fits_a_phone(demo, login, page, live_server):
    page.set_viewport_size(PHONE)
    login("admin@acme.test")
    page.goto(f"{live_server.url}/o/acme/members/")
    page.get_by_role("link", name="Invite people").click()
    dialog = page.get_by_role("dialog")
    expect(dialog).to_be_visible()
    box = dialog.bounding_box()
    assert box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"]
    assert page.evaluate("document.scrollingElement.scrollWidth") <= PHONE["width"]


def test_the_keys_table_fits_1280(used_key, login, page, live_server):
    page.set_viewport_size(DESKTOP)
    login("admin@acme.test")
    page.goto(f"{live_server.url}/o/acme/w/production/keys/")
    table = page.locator("table.keys-table")
    expect(table).to_be_visible()
    sizes = table.evaluate(
        "t => [t.scrollWidth, t.parentElement.clientWidth, document.scrollingElement.scrollWidth]"
    )
    assert sizes[0] <= sizes[1], sizes
    assert sizes[2] <= DESKTOP["width"], sizes


def test_the_user_menu_closes_on_escape_and_focus_returns(demo, login, page):
    login("admin@acme.test")
    summary = page.locator(".user-menu summary")
    summary.click()
    expect(page.locator(".user-menu")).to_have_attribute("open", "")
    page.keyboard.press("Tab")
    page.keyboard.press("Escape")
    expect(page.locator(".user-menu")).not_to_have_attribute("open", "")
    assert page.evaluate("document.activeElement.matches('.user-menu summary')")


def csp_violations(page):
    found = []

    def seen(message):
        if "Content Security Policy" in message.text:
            found.append(message.text)

    page.on("console", seen)
    page.add_init_script(
        "document.addEventListener('securitypolicyviolation', e =>"
        " console.error('Content Security Policy violation: ' + e.violatedDirective))"
    )
    return found


def test_htmx_re_shown_forms_break_no_csp_rule(demo, login, page, live_server):
    found = csp_violations(page)
    login("admin@acme.test")
    # The invite dialog sent with errors comes back (422) and is swapped in again.
    page.goto(f"{live_server.url}/o/acme/members/")
    page.get_by_role("link", name="Invite people").click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_label("Email address").fill("not-an-email")
    dialog.get_by_role("button", name="Send invitation").click()
    expect(dialog.locator(".field-error, .errorlist").first).to_be_visible()
    # An element of the re-shown form whose style was changed (CSSOM, as scripts and browser
    # extensions do): settling copies attributes onto the new element with setAttribute, and
    # a `style` attribute set that way is what `style-src 'self'` refuses.
    dialog.get_by_label("Email address").evaluate("el => { el.style.outlineOffset = '2px'; }")
    dialog.get_by_label("Email address").fill("")
    dialog.get_by_role("button", name="Send invitation").click()
    expect(dialog.locator(".field-error, .errorlist").first).to_be_visible()
    # Search as you type swaps the member rows; the audit filters swap the results.
    page.keyboard.press("Escape")
    page.get_by_label("Search members").fill("ed")
    page.wait_for_timeout(600)
    page.get_by_label("Search members").fill("")
    page.wait_for_timeout(600)
    page.goto(f"{live_server.url}/o/acme/audit/")
    page.get_by_label("Actor").fill("admin")
    page.wait_for_timeout(700)
    page.wait_for_load_state("networkidle")
    assert found == []


def serious_violations(axe, page) -> list[str]:
    """axe's serious and critical findings on the page as it is, one line each."""
    results = axe.run(page)
    assert results.response["passes"], page.url  # axe did look at the page
    return [
        f"{v['id']} ({v['impact']}): {v['nodes'][0]['target']}"
        for v in results.response["violations"]
        if v["impact"] in ("serious", "critical")
    ]


def test_no_serious_accessibility_violation_on_any_admin_page(used_key, login, page, live_server):
    login("admin@acme.test")
    axe = Axe()
    problems = {}
    for url in admin_pages(page, live_server):
        page.goto(url)
        if bad := serious_violations(axe, page):
            problems[url] = bad
    assert problems == {}


def test_dark_mode_follows_the_system(demo, login, page, live_server):
    page.emulate_media(color_scheme="dark")
    login("admin@acme.test")
    page.goto(f"{live_server.url}/o/acme/w/production/keys/")
    background = page.evaluate("getComputedStyle(document.body).backgroundColor")
    text = page.evaluate("getComputedStyle(document.body).color")
    assert background == "rgb(24, 24, 27)", background
    assert text == "rgb(244, 244, 245)", text
    page.emulate_media(color_scheme="light")
    assert page.evaluate("getComputedStyle(document.body).backgroundColor") == "rgb(255, 255, 255)"


def test_request_ids_stay_inside_their_card_on_a_phone(demo, login, page, live_server):
    page.set_viewport_size(PHONE)
    login("admin@acme.test")
    page.goto(f"{live_server.url}/o/acme/audit/")
    details = page.locator(".audit-table details").first
    details.locator("summary").click()
    request_id = details.locator(".request-id")
    expect(request_id).to_be_visible()
    inside = request_id.evaluate(
        "el => { const card = el.closest('dd').getBoundingClientRect();"
        " const r = el.getBoundingClientRect(); return r.right <= card.right + 1; }"
    )
    assert inside
    assert page.evaluate("document.scrollingElement.scrollWidth") <= PHONE["width"]
