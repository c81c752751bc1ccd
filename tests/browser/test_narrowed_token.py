"""Making a narrowed personal access token in the console, as a person does (issue #17)."""

from playwright.sync_api import expect

from tests.browser.test_console_flows import ConsoleWatch


def test_admin_makes_a_read_only_token_for_one_workspace(demo, login, live_server, page):
    watch = ConsoleWatch()
    watch.watch(page.context)
    page = login("admin@acme.test")
    page.goto(f"{live_server.url}/o/acme/tokens/")
    expect(page.get_by_role("heading", level=1, name="Your personal access tokens")).to_be_visible()

    page.get_by_role("link", name="New token").click()
    form = page.get_by_role("dialog", name="New personal access token")
    form.get_by_label("Name", exact=True).fill("nightly eval")
    form.get_by_label("staging").check()
    form.get_by_label("Read-only: read everything, change nothing").check()
    form.get_by_role("button", name="Create token").click()

    once = page.get_by_role("alert").filter(has_text="Copy your new key now")
    expect(once).to_be_visible()
    raw = page.get_by_label("New key").input_value()
    assert raw.startswith("lsv2_pt_")
    page.reload()  # shown once: a reload shows no token and makes none
    expect(once).to_have_count(0)
    assert raw not in page.content()

    api = f"{live_server.url}/api/v1"
    whoami = page.request.get(f"{api}/auth/whoami", headers={"X-API-Key": raw}).json()
    assert whoami["limits"]["preset"] == "read-only"
    assert whoami["workspace"]["id"] == demo["acme_workspaces"]["staging"]
    refused = page.request.post(
        f"{api}/datasets", headers={"X-API-Key": raw}, data={"name": "not allowed"}
    )
    assert refused.status == 403
    assert refused.json()["error"] == "token_limit"

    row = page.get_by_role("row").filter(has_text="nightly eval")
    expect(row).to_contain_text("read-only · 1 workspace")
    row.get_by_role("link", name="nightly eval").click()
    expect(page.get_by_role("heading", level=1, name="What can “nightly eval” do?")).to_be_visible()
    expect(page.get_by_text("only staging")).to_be_visible()
    expect(page.get_by_role("heading", name="In staging")).to_be_visible()
    watch.assert_clean()
