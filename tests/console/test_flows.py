"""Issue #16's console flows on the server side: role pickers' order, one create pattern (a
dialog with a page fallback), promotions asked first, an htmx request without a session, and
organization pages that keep the workspace context. The browser side is
tests/browser/test_flows_keys.py."""

import re

from django.urls import reverse

from accesscontrol.rbac.models import Role
from tests.console.test_actions import workspace_membership_of
from tests.factories import service_key_for, system_role
from tests.support.api import api_call

HX = {"HX-Request": "true"}
ACME = ["acme"]
PRODUCTION = ["acme", "production"]


def options(body, select_name):
    select = re.search(rf'<select name="{select_name}".*?</select>', body, re.S)[0]
    return re.findall(r'<option value="([^"]*)"[^>]*>([^<]*)</option>', select)


def test_role_pickers_list_system_roles_weakest_first_then_custom_roles(client, world):
    client.force_login(world.org_admin)
    customs = sorted(Role.objects.filter(organization=world.org).values_list("name", flat=True))
    assert customs  # the world has custom roles (Annotator, Unused)

    members = client.get(reverse("workspace-members", args=PRODUCTION)).content.decode()
    bulk = re.search(r'<select id="bulk-role".*?</select>', members, re.S)[0]
    labels = re.findall(r">([^<]+)</option>", bulk)
    assert labels[:3] == ["Viewer", "Editor", "Admin"]
    assert labels[3:] == [f"{name} (custom)" for name in customs]
    # The bulk change's default (the first option, nothing selected) is the weakest role.
    assert "selected" not in bulk

    add = client.get(reverse("workspace-member-add", args=PRODUCTION)).content.decode()
    assert [label for _, label in options(add, "role")][1:4] == ["Viewer", "Editor", "Admin"]
    invite = client.get(reverse("org-invite", args=ACME)).content.decode()
    assert [label for _, label in options(invite, "workspace_role")][1:4] == [
        "Viewer",
        "Editor",
        "Admin",
    ]


def test_the_api_keeps_its_documented_default_role_for_a_new_key(client, world):
    raw = service_key_for(world.workspace, "Admin")
    response = api_call(client, "POST", "/api-key", raw, json={"name": "defaulted"})
    assert response.status_code in (200, 201), response.content
    assert response.json()["role"] == "Admin"


def test_every_create_is_a_button_opening_a_dialog_with_a_page_fallback(client, world):
    client.force_login(world.org_admin)
    creates = [
        ("service-keys", PRODUCTION, "?new", "New service key"),
        ("personal-tokens", ACME, "?new", "New token"),
        ("org-invite", ACME, "", "Invite people"),
        ("workspace-member-add", PRODUCTION, "", "Add member"),
        ("org-workspace-create", ACME, "", "New workspace"),
        ("role-create", ACME, "", "New custom role"),
    ]
    lists = {
        "service-keys": "service-keys",
        "personal-tokens": "personal-tokens",
        "org-invite": "org-members",
        "workspace-member-add": "workspace-members",
        "org-workspace-create": "org-workspaces",
        "role-create": "roles",
    }
    for name, args, query, label in creates:
        target = reverse(name, args=args) + query
        listing = client.get(reverse(lists[name], args=args)).content.decode()
        button = f'href="{target}" hx-get="{target}" hx-target="#modal-body">{label}</a>'
        assert button in listing, (name, label)
        page = client.get(target)  # without JavaScript: a page of its own
        assert page.status_code == 200
        assert "<!doctype html>" in page.content.decode().lower()
        dialog = client.get(target, headers=HX)  # with it: the dialog's body only
        assert dialog.status_code == 200
        body = dialog.content.decode()
        assert "<!doctype" not in body.lower() and 'id="modal-title"' in body, name


def test_a_workspace_promotion_is_asked_without_javascript_too(client, world):
    target = workspace_membership_of(world, world.viewer)
    client.force_login(world.org_admin)
    path = reverse("workspace-member-role", args=[*PRODUCTION, target.pk])
    asked = client.post(path, {"role": system_role("Admin").pk})
    assert asked.status_code == 200
    body = asked.content.decode()
    assert f"Make {world.viewer.email} Admin?" in body
    assert "including its settings, members and service keys" in body
    assert '<input type="hidden" name="confirmed" value="1">' in body
    target.refresh_from_db()
    assert target.role.name == "Viewer"

    done = client.post(path, {"role": system_role("Admin").pk, "confirmed": "1"})
    assert done.status_code == 302
    target.refresh_from_db()
    assert target.role.name == "Admin"

    # A change that gives no management permission is not asked about.
    direct = client.post(path, {"role": system_role("Editor").pk})
    assert direct.status_code == 302


def test_an_htmx_write_without_a_session_is_a_401_not_the_login_page(client, world):
    target = workspace_membership_of(world, world.editor)
    path = reverse("workspace-member-role", args=[*PRODUCTION, target.pk])
    response = client.post(path, {"role": system_role("Viewer").pk}, headers=HX)
    assert response.status_code == 401
    assert response["X-Login-Url"] == reverse("login")
    assert "Sign in" not in response.content.decode()
    target.refresh_from_db()
    assert target.role.name == "Editor"
    plain = client.post(path, {"role": system_role("Viewer").pk})  # without htmx: the login
    assert plain.status_code == 302
    assert plain["Location"].startswith(reverse("login"))


def test_organization_pages_keep_the_workspace_context(client, world):
    client.force_login(world.org_admin)
    staging = reverse("workspace-home", args=["acme", world.other_workspace.slug])
    assert client.get(staging).status_code == 200
    body = client.get(reverse("org-members", args=ACME)).content.decode()
    switcher = re.findall(r'<span class="switcher-value">([^<]*)</span>', body)
    assert switcher == ["Acme", world.other_workspace.name]
    assert re.search(
        rf'href="{staging}" aria-current="true">{world.other_workspace.name}</a>', body
    )

    # Another organization's remembered workspace is not shown, nor one you cannot enter.
    client.cookies["ac_workspace"] = "globex/default"
    body = client.get(reverse("org-members", args=ACME)).content.decode()
    assert re.findall(r'<span class="switcher-value">([^<]*)</span>', body)[1] == "Choose…"
    client.force_login(world.member_without_workspace)
    client.cookies["ac_workspace"] = "acme/production"
    body = client.get(reverse("org-members", args=ACME)).content.decode()
    assert re.findall(r'<span class="switcher-value">([^<]*)</span>', body)[1] == "Choose…"
