def test_demo_admin_signs_in_and_sees_their_role(demo, login, live_server):
    page = login("editor@acme.test")
    assert "/o/acme/w/production/" in page.url
    assert page.locator(".role-line").inner_text().startswith("You are Editor here")
