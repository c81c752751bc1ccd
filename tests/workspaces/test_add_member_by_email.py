"""The members page's "Add member" dialog takes the person by email, looked up as the API does
(services.org_member_by_email), and suggests matching organization members as one types."""

import datetime

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse
from django.utils import timezone

from accesscontrol.audit.models import AuditEvent
from accesscontrol.workspaces.models import WorkspaceMembership
from accesscontrol.workspaces.services import NOT_AN_ORG_MEMBER, members_to_add
from tests.factories import (
    OrganizationMembershipFactory,
    UserFactory,
    add_member,
    service_key_for,
    system_role,
)
from tests.support.api import api_call

pytestmark = pytest.mark.django_db

ADD = reverse("workspace-member-add", args=["acme", "production"])
SUGGEST = reverse("workspace-member-suggestions", args=["acme", "production"])
# The session and user, the gate's look-ups (organization, workspace, memberships, roles) and
# one query for the suggestions.
QUERIES = 11


def add(client, world, email, role="Viewer", **data):
    client.force_login(world.workspace_admin)
    return client.post(ADD, {"email": email, "role": system_role(role).pk, **data})


def suggested(client, world, text, user=None) -> str:
    client.force_login(user or world.workspace_admin)
    response = client.get(SUGGEST, {"email": text}, headers={"HX-Request": "true"})
    assert response.status_code == 200
    return response.content.decode()


def offers(body, user) -> bool:
    return f"({user.email})</a></li>" in body


def rows():
    return sorted(WorkspaceMembership.objects.values_list("pk", "role", "expires_at"))


def test_a_member_is_added_by_email_and_audited(client, world):
    person = world.member_without_workspace
    response = add(client, world, f"  {person.email.upper()} ", "Editor", expiry="1d")
    assert response.status_code == 302
    added = WorkspaceMembership.objects.get(org_membership__user=person, workspace=world.workspace)
    assert added.role == system_role("Editor")
    assert added.expires_at is not None
    event = AuditEvent.objects.get(action="workspace_member.added")
    assert (event.actor_label, event.target_label, event.workspace_id) == (
        world.workspace_admin.email,
        person.email,
        world.workspace.pk,
    )
    assert event.changes["after"]["role"] == "Editor"


@pytest.mark.parametrize("who", ["unknown", "other_org", "outsider"])
def test_an_address_that_is_no_member_of_the_org_gets_the_apis_one_answer(client, world, who):
    emails = {
        "unknown": "nobody@example.test",
        "other_org": add_member(world.other_org).email,
        "outsider": world.outsider.email,
    }
    before = rows()
    response = add(client, world, emails[who])
    assert response.status_code == 422
    body = response.content.decode()
    assert NOT_AN_ORG_MEMBER.format(organization=world.org) in body
    assert 'class="field-error"' in body  # on the email field, the form redrawn
    assert rows() == before


def test_the_api_gives_the_same_answer(client, world):
    key = service_key_for(world.workspace, "Admin")
    body = {"email": world.outsider.email, "role_id": str(system_role("Viewer").pk)}
    response = api_call(client, "POST", "/workspaces/current/members", key, json=body)
    assert response.status_code == 422, response.content
    assert NOT_AN_ORG_MEMBER.format(organization=world.org) in response.content.decode()


def test_someone_already_in_the_workspace_is_refused(client, world):
    before = rows()
    response = add(client, world, world.viewer.email, "Editor")
    assert response.status_code == 422
    assert f"{world.viewer.email} is already a member of production." in (response.content.decode())
    assert rows() == before


def test_a_viewer_cannot_add(client, world):
    client.force_login(world.viewer)
    before = rows()
    response = client.post(
        ADD, {"email": world.member_without_workspace.email, "role": system_role("Viewer").pk}
    )
    assert response.status_code == 403
    assert rows() == before


def test_suggestions_match_name_or_email_among_those_not_yet_here(client, world):
    found = UserFactory(email="grace@acme.test", full_name="Grace Hopper")
    OrganizationMembershipFactory(user=found, organization=world.org)
    by_name = suggested(client, world, "hopp")
    assert "Grace Hopper (grace@acme.test)</a></li>" in by_name
    assert f'href="{ADD}?email=grace%40acme.test"' in by_name
    assert by_name.count("<li>") == 1
    assert "grace@acme.test" in suggested(client, world, "GRACE@")


def test_suggestions_leave_out_members_in_effect_admins_and_other_orgs(client, world):
    stranger = add_member(world.other_org)  # a plain member of Globex (the outsider is its admin)
    body = suggested(client, world, "@")
    assert offers(body, world.member_without_workspace)
    for user in (world.viewer, world.editor, world.org_admin, world.outsider, stranger):
        assert not offers(body, user)


def test_suggestions_include_someone_whose_grant_ended(client, world):
    assert not offers(suggested(client, world, world.editor.email), world.editor)
    WorkspaceMembership.objects.filter(
        org_membership__user=world.editor, workspace=world.workspace
    ).update(expires_at=timezone.now() - datetime.timedelta(hours=1))
    assert offers(suggested(client, world, world.editor.email), world.editor)
    # and the dialog adds them back
    assert add(client, world, world.editor.email).status_code == 302


def test_suggestions_are_at_most_twenty_and_nothing_for_no_text(client, world):
    for _ in range(25):
        add_member(world.org)
    assert suggested(client, world, "@").count("<li>") == 20
    assert "<li>" not in suggested(client, world, "")
    assert "<li>" not in suggested(client, world, "   ")


def test_suggestions_refuse_nul_and_cap_the_text(client, world):
    email = world.member_without_workspace.email
    client.force_login(world.workspace_admin)
    assert client.get(SUGGEST, {"email": email[:4] + "\x00"}).status_code == 400
    assert offers(suggested(client, world, email + " " * 300), world.member_without_workspace)
    assert "<li>" not in suggested(client, world, "x" * 5000)  # searched: its first 200


def test_suggestions_cost_the_same_queries_whatever_the_orgs_size(
    client, world, django_assert_max_num_queries
):
    client.force_login(world.workspace_admin)
    with django_assert_max_num_queries(QUERIES):
        assert suggested(client, world, "@").count("<li>") == 1
    for _ in range(40):
        add_member(world.org)
    with django_assert_max_num_queries(QUERIES):
        assert suggested(client, world, "@").count("<li>") == 20


def test_a_viewer_gets_no_suggestions(client, world):
    client.force_login(world.viewer)
    response = client.get(SUGGEST, {"email": "@"})
    assert response.status_code == 403
    assert not offers(response.content.decode(), world.member_without_workspace)


def test_the_dialog_points_its_email_input_at_the_suggestions(client, world):
    client.force_login(world.workspace_admin)
    body = client.get(ADD).content.decode()
    assert 'aria-controls="member-suggestions"' in body
    assert '<div id="member-suggestions" aria-live="polite">' in body
    assert f'hx-get="{SUGGEST}"' in body
    assert 'hx-trigger="input changed delay:300ms"' in body
    # the whole organization is no longer rendered into the page
    assert world.member_without_workspace.email not in body


def test_a_picked_suggestion_opens_the_dialog_with_its_address(client, world):
    client.force_login(world.workspace_admin)
    email = world.member_without_workspace.email
    body = client.get(ADD, {"email": email}, headers={"HX-Request": "true"}).content.decode()
    assert f'value="{email}"' in body


def test_the_suggestions_selector_holds_its_own_rule(world):
    """The service is the authority, whoever calls it: someone who may not add members there
    (a viewer, an editor) learns nothing of who could be added."""
    for actor in (world.viewer, world.editor):
        with pytest.raises(ValidationError) as exc:
            members_to_add(actor, world.workspace, "a")
        assert exc.value.code == "permission"
    assert members_to_add(world.org_admin, world.workspace, "a")
