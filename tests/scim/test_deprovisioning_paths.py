"""Every way an identity provider says a person is not active ends their access alike: a PATCH or
PUT of `active: false`, a DELETE, and a POST that creates, inactive, the User of someone who is
a member already (added by hand before the identity provider knew them, as _admit adopts an
active one). Out of the organization, tokens deleted, sessions ended, audited."""

import pytest
from django.test import Client

from accesscontrol.audit.models import AuditEvent
from accesscontrol.organizations.models import OrganizationMembership
from tests.factories import PASSWORD, pat_for
from tests.scim.conftest import user_body
from tests.support.api import api_call

pytestmark = pytest.mark.django_db


def signed_in(person) -> Client:
    browser = Client()
    assert browser.post("/login/", {"login": person.email, "password": PASSWORD}).status_code == 302
    return browser


def member(world, person) -> bool:
    return OrganizationMembership.objects.filter(user=person, organization=world.org).exists()


def test_a_member_created_inactive_is_deprovisioned(scim, client, world):
    token = pat_for(world.editor, world.org)
    browser = signed_in(world.editor)
    assert api_call(client, "GET", "/auth/whoami", token).status_code == 200

    created = scim("POST", "Users", user_body(world.editor.email, active=False))

    assert created.status_code == 201, created.content
    assert created.json()["active"] is False
    assert not member(world, world.editor)
    assert api_call(client, "GET", "/auth/whoami", token).status_code == 401
    assert browser.get("/o/acme/").status_code == 302  # signed out: to the sign-in page
    actions = AuditEvent.objects.filter(actor_kind="scim_token").values_list("action", flat=True)
    assert list(actions.order_by("id")) == [
        "scim_user.created",
        "personal_access_token.deleted",
        "org_member.removed",
        "scim_user.deactivated",
    ]


def test_reactivating_brings_the_member_back_without_their_old_tokens(scim, client, world):
    token = pat_for(world.editor, world.org)
    created = scim("POST", "Users", user_body(world.editor.email, active=False)).json()

    reactivated = scim("PUT", f"Users/{created['id']}", user_body(world.editor.email))

    assert reactivated.status_code == 200 and reactivated.json()["active"] is True
    assert member(world, world.editor)
    assert api_call(client, "GET", "/auth/whoami", token).status_code == 401


def test_a_newcomer_created_inactive_still_joins_nothing_and_no_event_says_otherwise(scim, world):
    assert scim("POST", "Users", user_body("grace@example.com", active=False)).status_code == 201
    assert not OrganizationMembership.objects.filter(user__email="grace@example.com").exists()
    actions = AuditEvent.objects.filter(actor_kind="scim_token").values_list("action", flat=True)
    assert list(actions) == ["scim_user.created"]
