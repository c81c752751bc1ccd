"""Sudo mode (accesscontrol/accounts/sudo.py): the actions that hand out power ask for the password
again when it was last given longer ago than SUDO_MODE_SECONDS.

Guarded: creating a service key or a personal access token, changing roles in bulk, deleting a
workspace (POST only; their pages are shown as usual). Signing in (client.force_login included)
or confirming the password on /account/confirm/ grants it. Also here: the bulk role change and the
workspace deletion themselves, and the session-fixation check of the real sign-in form.
"""

import os
import time
from dataclasses import dataclass
from types import SimpleNamespace
from urllib.parse import parse_qs, urlsplit

import pytest
from django.contrib.auth import SESSION_KEY as AUTH_SESSION_KEY
from django.contrib.messages import get_messages
from django.contrib.sessions.backends.db import SessionStore

from accesscontrol.accounts import sudo
from accesscontrol.apikeys.models import PersonalAccessToken, ServiceKey
from accesscontrol.audit.models import AuditEvent
from accesscontrol.resources import services as resources
from accesscontrol.resources.models import Dataset, Example, Project
from accesscontrol.workspaces.models import Workspace, WorkspaceMembership
from tests.factories import (
    PASSWORD,
    SYSTEM,
    OrganizationMembershipFactory,
    RoleFactory,
    UserFactory,
    WorkspaceMembershipFactory,
    add_member,
    service_key_for,
    system_role,
)

SUDO_URL = "/account/confirm/"
WS = "/o/acme/w/production"
KEYS_URL = f"{WS}/keys/"
TOKENS_URL = "/o/acme/tokens/"
MEMBERS_URL = f"{WS}/members/"
BULK_URL = f"{WS}/members/bulk-role/"
DELETE_URL = f"{WS}/settings/delete/"
ORG_WORKSPACES_URL = "/o/acme/workspaces/"
NOTHING_CHANGED = "Confirm it is you to continue; nothing was changed."


def membership(world, user, workspace=None):
    return WorkspaceMembership.objects.get(
        org_membership__user=user, workspace=workspace or world.workspace
    )


def make_stale(client):
    session = client.session
    session[sudo.SESSION_KEY] = 0
    session.save()


def sign_in_stale(client, user):
    """Signed in as `user`, with the sudo window long lapsed."""
    client.force_login(user)
    make_stale(client)


def sudo_until(client):
    return client.session.get(sudo.SESSION_KEY)


def messages_of(response):
    return [str(m) for m in get_messages(response.wsgi_request)]


def next_of(location):
    """The `next` a redirect to the confirmation page carries (and that it goes there)."""
    parts = urlsplit(location)
    assert parts.path == SUDO_URL, location
    return parse_qs(parts.query)["next"][0]


def snapshot():
    """Everything the guarded actions could change."""
    return {
        "service_keys": ServiceKey.objects.count(),
        "tokens": PersonalAccessToken.objects.count(),
        "roles": sorted(WorkspaceMembership.objects.values_list("pk", "role_id")),
        "workspaces": sorted(Workspace.objects.values_list("pk", flat=True)),
        "audit": AuditEvent.objects.count(),
    }


@dataclass
class Action:
    name: str
    persona: str
    url: str
    page: str  # where the user acts from (the Referer), and returns to after confirming
    data: object  # world -> form data
    done: object  # (world, response) -> None: asserts the action happened

    def __str__(self):
        return self.name


def key_created(world, response):
    assert response.status_code == 302  # to the list, which shows the key once
    response = response.client.get(response["Location"])
    assert response.context["created"]["raw"].startswith("lsv2_sk_")
    assert ServiceKey.objects.filter(name="ci", workspace=world.workspace).exists()


def token_created(world, response):
    assert response.status_code == 302
    response = response.client.get(response["Location"])
    assert response.context["created"]["raw"].startswith("lsv2_pt_")
    assert PersonalAccessToken.objects.filter(name="laptop").exists()


def roles_changed(world, response):
    assert response.status_code == 302
    assert response["Location"] == MEMBERS_URL
    assert membership(world, world.viewer).role.name == "Editor"
    assert membership(world, world.annotator).role.name == "Editor"


def workspace_deleted(world, response):
    assert response.status_code == 302
    assert response["Location"] == ORG_WORKSPACES_URL
    assert not Workspace.objects.filter(pk=world.workspace.pk).exists()


ACTIONS = [
    Action(
        "service-key",
        "workspace_admin",
        KEYS_URL,
        KEYS_URL,
        lambda w: {"name": "ci", "role": system_role("Viewer").pk, "expires_in": "30"},
        key_created,
    ),
    Action(
        "personal-token",
        "editor",
        TOKENS_URL,
        TOKENS_URL,
        lambda w: {"name": "laptop", "expires_in": "30"},
        token_created,
    ),
    Action(
        "bulk-role",
        "workspace_admin",
        BULK_URL,
        MEMBERS_URL,
        lambda w: {
            "members": [membership(w, w.viewer).pk, membership(w, w.annotator).pk],
            "role": system_role("Editor").pk,
        },
        roles_changed,
    ),
    Action(
        "workspace-delete",
        "org_admin",
        DELETE_URL,
        DELETE_URL,
        lambda w: {"confirmation": "production"},
        workspace_deleted,
    ),
]
each_action = pytest.mark.parametrize("action", ACTIONS, ids=str)


# --- granted at sign-in ---------------------------------------------------------------------------


@each_action
def test_a_fresh_sign_in_lets_the_action_through(client, world, action):
    client.force_login(world.persona(action.persona))  # signing in counts as proving it

    response = client.post(action.url, action.data(world))

    action.done(world, response)


def test_signing_in_through_the_form_grants_sudo_and_cycles_the_session_key(
    client, world, settings
):
    session = client.session  # an anonymous session, as an attacker could plant one
    session["planted"] = True
    session.save()
    before = client.cookies[settings.SESSION_COOKIE_NAME].value

    response = client.post("/login/", {"login": world.workspace_admin.email, "password": PASSWORD})

    assert response.status_code == 302
    after = client.cookies[settings.SESSION_COOKIE_NAME].value
    assert after != before  # ASVS 3.2.1: a new session id at authentication
    assert not SessionStore().exists(before)
    assert client.session[AUTH_SESSION_KEY] == str(world.workspace_admin.pk)
    assert sudo_until(client) > time.time()
    # The fresh sign-in is enough for a guarded action.
    key_created(world, client.post(KEYS_URL, ACTIONS[0].data(world)))


def test_sudo_lasts_sudo_mode_seconds(client, world, settings, monkeypatch):
    settings.SUDO_MODE_SECONDS = 60
    client.force_login(world.workspace_admin)
    granted = sudo_until(client)
    assert time.time() + 55 < granted <= time.time() + 60

    real = time.time()
    monkeypatch.setattr(sudo, "time", SimpleNamespace(time=lambda: real + 61))
    response = client.post(KEYS_URL, ACTIONS[0].data(world))

    assert response.status_code == 302
    assert next_of(response["Location"]) == KEYS_URL
    assert not ServiceKey.objects.filter(name="ci").exists()


def test_the_default_is_fifteen_minutes(settings):
    if "SUDO_MODE_SECONDS" in os.environ:
        pytest.skip("SUDO_MODE_SECONDS is set in the environment")
    assert settings.SUDO_MODE_SECONDS == 900


# --- stale: nothing happens, the user is sent to confirm ------------------------------------------


@each_action
def test_a_stale_post_asks_for_the_password_and_changes_nothing(client, world, action):
    sign_in_stale(client, world.persona(action.persona))
    before = snapshot()

    response = client.post(
        action.url, action.data(world), HTTP_REFERER=f"http://testserver{action.page}"
    )

    assert response.status_code == 302
    assert next_of(response["Location"]) == f"http://testserver{action.page}"
    assert messages_of(response) == [NOTHING_CHANGED]
    assert snapshot() == before


@each_action
def test_a_stale_htmx_post_gets_an_hx_redirect_and_changes_nothing(client, world, action):
    sign_in_stale(client, world.persona(action.persona))
    before = snapshot()
    current = f"http://testserver{action.page}?q=x"

    response = client.post(
        action.url, action.data(world), HTTP_HX_REQUEST="true", HTTP_HX_CURRENT_URL=current
    )

    assert response.status_code == 204
    assert next_of(response["HX-Redirect"]) == current
    assert snapshot() == before


def test_without_a_referer_the_user_comes_back_to_the_url_posted_to(client, world):
    sign_in_stale(client, world.workspace_admin)

    response = client.post(KEYS_URL, ACTIONS[0].data(world))

    assert next_of(response["Location"]) == KEYS_URL


@pytest.mark.parametrize(
    "origin", ["https://evil.example/keys/", "//evil.example/keys/", "javascript:alert(1)"]
)
def test_an_off_site_referer_or_current_url_is_not_where_the_user_is_sent_back(
    client, world, origin
):
    sign_in_stale(client, world.workspace_admin)

    by_referer = client.post(KEYS_URL, ACTIONS[0].data(world), HTTP_REFERER=origin)
    by_htmx = client.post(
        KEYS_URL, ACTIONS[0].data(world), HTTP_HX_REQUEST="true", HTTP_HX_CURRENT_URL=origin
    )

    assert next_of(by_referer["Location"]) == KEYS_URL
    assert next_of(by_htmx["HX-Redirect"]) == KEYS_URL


@pytest.mark.parametrize("url", [KEYS_URL, TOKENS_URL, DELETE_URL])
def test_pages_are_shown_without_sudo(client, world, url):
    sign_in_stale(client, world.org_admin)
    before = snapshot()

    response = client.get(url)

    assert response.status_code == 200
    assert snapshot() == before


def test_the_gate_comes_first_a_stale_session_without_the_permission_gets_403(client, world):
    client.force_login(world.workspace_admin)  # workspaces:manage, not organization:manage
    make_stale(client)

    response = client.post(DELETE_URL, {"confirmation": "production"})

    assert response.status_code == 403
    assert Workspace.objects.filter(pk=world.workspace.pk).exists()


# --- confirming the password ----------------------------------------------------------------------


@each_action
def test_confirming_the_password_grants_sudo_and_returns_to_the_page(client, world, action):
    sign_in_stale(client, world.persona(action.persona))
    page = f"http://testserver{action.page}"
    asked = client.post(action.url, action.data(world), HTTP_REFERER=page)

    confirmation = client.get(asked["Location"])
    assert confirmation.status_code == 200
    assert confirmation.context["next"] == page
    confirmed = client.post(SUDO_URL, {"password": PASSWORD, "next": page})

    assert confirmed.status_code == 302
    assert confirmed["Location"] == page
    assert sudo_until(client) > time.time()
    action.done(world, client.post(action.url, action.data(world)))


def test_confirming_lasts_sudo_mode_seconds(client, world, settings):
    settings.SUDO_MODE_SECONDS = 120
    sign_in_stale(client, world.workspace_admin)

    client.post(SUDO_URL, {"password": PASSWORD})

    assert time.time() + 115 < sudo_until(client) <= time.time() + 120


def test_a_wrong_password_is_a_form_error_and_grants_nothing(client, world):
    sign_in_stale(client, world.workspace_admin)

    response = client.post(SUDO_URL, {"password": "not it", "next": KEYS_URL})

    assert response.status_code == 400
    assert response.context["form"].errors == {"password": ["That is not your password."]}
    assert response.context["next"] == KEYS_URL  # kept for the next try
    assert sudo_until(client) == 0
    assert AuditEvent.objects.filter(action="login.failed").count() == 1
    before = snapshot()
    response = client.post(KEYS_URL, ACTIONS[0].data(world))
    assert response.status_code == 302
    assert next_of(response["Location"]) == KEYS_URL
    assert snapshot() == before


def test_an_empty_password_is_a_form_error_too(client, world):
    sign_in_stale(client, world.workspace_admin)

    response = client.post(SUDO_URL, {"password": ""})

    assert response.status_code == 400
    assert sudo_until(client) == 0


@pytest.mark.parametrize(
    "target",
    [
        "https://evil.example/",
        "//evil.example/",
        "http://evil.example/o/acme/",
        "javascript:alert(1)",
        "https://testserver.evil.example/",
    ],
)
def test_an_off_site_next_is_not_followed(client, world, target):
    sign_in_stale(client, world.workspace_admin)

    page = client.get(SUDO_URL, {"next": target})
    response = client.post(SUDO_URL, {"password": PASSWORD, "next": target})

    assert page.context["next"] == ""
    assert response.status_code == 302
    assert response["Location"] == "/"  # home, which takes the user to their workspace
    assert sudo_until(client) > time.time()  # the password was right: granted all the same


def test_the_confirmation_page_needs_a_signed_in_user(client, db):
    response = client.get(SUDO_URL)

    assert response.status_code == 302
    assert response["Location"].startswith("/login/")


def test_the_confirmation_page_shows_the_password_form(client, world):
    sign_in_stale(client, world.workspace_admin)
    asked = client.post(KEYS_URL, ACTIONS[0].data(world), HTTP_REFERER=KEYS_URL)

    page = client.get(asked["Location"]).content.decode()

    assert 'name="password"' in page
    assert f'name="next" value="{KEYS_URL}"' in page
    assert NOTHING_CHANGED in page


def test_the_confirmation_page_shows_a_wrong_password_error(client, world):
    client.force_login(world.workspace_admin)

    response = client.post(SUDO_URL, {"password": "not it"})

    assert "That is not your password." in response.content.decode()


# --- the bulk role change -------------------------------------------------------------------------


def role_changes():
    return AuditEvent.objects.filter(action="workspace_member.role_changed")


def test_bulk_role_changes_several_members_in_one_post(client, world):
    client.force_login(world.workspace_admin)
    chosen = [
        membership(world, world.viewer),
        membership(world, world.annotator),
        membership(world, world.editor),  # already Editor
    ]

    response = client.post(
        BULK_URL, {"members": [m.pk for m in chosen], "role": system_role("Editor").pk}
    )

    assert response.status_code == 302
    assert response["Location"] == MEMBERS_URL
    for m in chosen:
        m.refresh_from_db()
        assert m.role.name == "Editor"
    assert role_changes().count() == 2
    assert {e.target_label for e in role_changes()} == {world.viewer.email, world.annotator.email}
    assert {e.actor_user for e in role_changes()} == {world.workspace_admin}
    [message] = messages_of(response)
    assert message.startswith("2 members now Editor")


def test_bulk_role_with_htmx_redirects_to_the_member_list(client, world):
    client.force_login(world.workspace_admin)

    response = client.post(
        BULK_URL,
        {"members": [membership(world, world.viewer).pk], "role": system_role("Editor").pk},
        HTTP_HX_REQUEST="true",
    )

    assert response.status_code == 204
    assert response["HX-Redirect"] == MEMBERS_URL
    assert messages_of(response)[0].startswith("1 member now Editor")


def test_bulk_role_is_all_or_nothing_when_one_change_is_refused(client, world):
    # The actor's own membership is refused ("You cannot change your own role"). Their email
    # sorts last, so the other members are changed first and must be rolled back.
    actor = UserFactory(email="zz-admin@example.test")
    org_membership = OrganizationMembershipFactory(user=actor, organization=world.org)
    WorkspaceMembershipFactory(
        org_membership=org_membership, workspace=world.workspace, role=system_role("Admin")
    )
    client.force_login(actor)
    before = snapshot()

    response = client.post(
        BULK_URL,
        {
            "members": [
                membership(world, world.viewer).pk,
                membership(world, world.annotator).pk,
                membership(world, actor).pk,
            ],
            "role": system_role("Viewer").pk,
        },
    )

    assert response.status_code == 302
    assert response["Location"] == MEMBERS_URL
    assert messages_of(response) == ["Nothing was changed: You cannot change your own role."]
    assert snapshot() == before
    assert membership(world, world.annotator).role.name == "Annotator"


@pytest.mark.parametrize(
    ("form", "error"),
    [
        (
            lambda w: {"members": [], "role": system_role("Editor").pk},
            "Select at least one member.",
        ),
        (
            # A membership of another workspace is not found here.
            lambda w: {
                "members": [
                    WorkspaceMembershipFactory(
                        workspace=w.other_workspace,
                        org_membership=OrganizationMembershipFactory(organization=w.org),
                    ).pk
                ],
                "role": system_role("Editor").pk,
            },
            "Select at least one member.",
        ),
        (
            lambda w: {"members": ["not-a-uuid"], "role": system_role("Editor").pk},
            "Select at least one member.",
        ),
        (
            lambda w: {"members": [membership(w, w.viewer).pk], "role": "not-a-uuid"},
            "Choose one of the roles offered.",
        ),
        (
            # Another organization's custom role is not offered here.
            lambda w: {
                "members": [membership(w, w.viewer).pk],
                "role": RoleFactory(organization=w.other_org, permissions=["runs:read"]).pk,
            },
            "Choose one of the roles offered.",
        ),
    ],
    ids=["none", "other-workspace", "bad-id", "bad-role", "other-org-role"],
)
def test_bulk_role_refuses_bad_input_and_changes_nothing(client, world, form, error):
    client.force_login(world.workspace_admin)
    data = form(world)
    before = snapshot()

    response = client.post(BULK_URL, data)

    assert response.status_code == 302
    assert messages_of(response) == [f"Nothing was changed: {error}"]
    assert snapshot() == before


@pytest.mark.parametrize(("persona", "status"), [("editor", 403), ("outsider", 404)])
def test_bulk_role_needs_manage_members(client, world, persona, status):
    client.force_login(world.persona(persona))
    data = ACTIONS[2].data(world)
    before = snapshot()

    response = client.post(BULK_URL, data)

    assert response.status_code == status
    assert snapshot() == before


def test_bulk_role_cannot_hand_out_more_than_the_actor_holds(client, world):
    # A custom role may manage members without holding everything the Admin role holds.
    manager_role = RoleFactory(
        organization=world.org,
        name="Member manager",
        permissions=["workspaces:read", "workspaces:manage-members", "datasets:read"],
    )
    manager = add_member(world.org, world.workspace, manager_role)
    client.force_login(manager)
    before = snapshot()

    response = client.post(
        BULK_URL,
        {
            "members": [membership(world, world.viewer).pk, membership(world, world.annotator).pk],
            "role": system_role("Admin").pk,
        },
    )

    assert response.status_code == 302
    [message] = messages_of(response)
    assert message.startswith("Nothing was changed: The role 'Admin' holds permissions you do not")
    assert snapshot() == before


# --- deleting a workspace -------------------------------------------------------------------------


def test_deleting_with_the_wrong_name_is_a_form_error_and_deletes_nothing(client, world):
    client.force_login(world.org_admin)
    dataset = resources.create_dataset(actor=SYSTEM, workspace=world.workspace, name="evals")
    before = snapshot()

    response = client.post(DELETE_URL, {"confirmation": "Production"})

    assert response.status_code == 422
    assert response.context["form"].errors == {
        "confirmation": ["Type the workspace's name, production, to confirm."]
    }
    assert snapshot() == before
    assert Dataset.objects.filter(pk=dataset.pk).exists()


def test_deleting_with_the_wrong_name_over_htmx_returns_the_form_fragment(client, world):
    client.force_login(world.org_admin)

    response = client.post(DELETE_URL, {"confirmation": "staging"}, HTTP_HX_REQUEST="true")

    assert response.status_code == 422
    assert "<html" not in response.content.decode()
    assert Workspace.objects.filter(pk=world.workspace.pk).exists()


def test_deleting_with_the_right_name_deletes_the_workspace_and_everything_in_it(client, world):
    client.force_login(world.org_admin)
    ws = world.workspace
    dataset = resources.create_dataset(actor=SYSTEM, workspace=ws, name="evals")
    resources.create_examples(
        actor=SYSTEM, workspace=ws, examples=[{"dataset_id": dataset.pk, "inputs": {}}]
    )
    project = resources.create_project(actor=SYSTEM, workspace=ws, name="chatbot")
    service_key_for(ws, "Editor")
    kept = resources.create_dataset(actor=SYSTEM, workspace=world.other_workspace, name="evals")
    member_ids = list(ws.memberships.values_list("pk", flat=True))
    assert member_ids and Example.objects.filter(workspace=ws).exists()

    response = client.post(DELETE_URL, {"confirmation": " production "})

    assert response.status_code == 302
    assert response["Location"] == ORG_WORKSPACES_URL
    assert not Workspace.objects.filter(pk=ws.pk).exists()
    assert not Dataset.objects.filter(pk=dataset.pk).exists()
    assert not Example.objects.filter(workspace_id=ws.pk).exists()
    assert not Project.objects.filter(pk=project.pk).exists()
    assert not ServiceKey.objects.filter(workspace_id=ws.pk).exists()
    assert not WorkspaceMembership.objects.filter(pk__in=member_ids).exists()
    # Nothing else: the other workspace and its data stay.
    assert Dataset.objects.filter(pk=kept.pk).exists()
    assert Workspace.objects.filter(pk=world.other_workspace.pk).exists()
    event = AuditEvent.objects.get(action="workspace.deleted")
    assert event.actor_user == world.org_admin
    assert event.organization_id == world.org.pk
    assert event.workspace_id == ws.pk
    assert event.target_label == "production"
    assert event.changes["before"] == {"name": "production", "slug": "production"}
    assert messages_of(response) == ["production and everything in it was deleted."]


@pytest.mark.parametrize(
    ("persona", "status"),
    [("workspace_admin", 403), ("editor", 403), ("viewer", 403), ("outsider", 404)],
)
def test_only_org_admins_can_delete_a_workspace(client, world, persona, status):
    client.force_login(world.persona(persona))
    before = snapshot()

    page = client.get(DELETE_URL)
    response = client.post(DELETE_URL, {"confirmation": "production"})

    assert page.status_code == status
    assert response.status_code == status
    assert snapshot() == before
