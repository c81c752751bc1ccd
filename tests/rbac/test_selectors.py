"""role_by_id: the one lookup of a role by id, for the API and the console alike."""

import uuid

import pytest

from accesscontrol.rbac.actor import Actor
from accesscontrol.rbac.services import NO_SUCH_ROLE, NoSuchRole, role_by_id
from tests.factories import RoleFactory, pat_for, system_role
from tests.support.api import api_call


def admin_of(world):
    return Actor.for_user(world.org_admin, world.org)


def test_finds_a_system_role_and_the_organizations_own(world):
    own = RoleFactory(organization=world.org, name="Own", permissions=["runs:read"])
    assert role_by_id(admin_of(world), system_role("Viewer").pk) == system_role("Viewer")
    assert role_by_id(admin_of(world), str(own.pk)) == own


def test_finds_the_organizations_own_role_on_a_plan_that_cannot_assign_it(world):
    """Whether the plan lets it be assigned is the assigning service's rule, not the lookup's."""
    own = RoleFactory(organization=world.org, name="Kept", permissions=["runs:read"])
    world.org.plan = "developer"
    world.org.save(update_fields=["plan"])
    assert role_by_id(admin_of(world), own.pk) == own


@pytest.mark.parametrize("which", ["other-org", "unknown", "not-a-uuid", "empty"])
def test_another_organizations_role_a_missing_id_and_garbage_are_one_answer(world, which):
    foreign = RoleFactory(organization=world.other_org, name="Theirs", permissions=["runs:read"])
    role_id = {"other-org": foreign.pk, "unknown": uuid.uuid4(), "not-a-uuid": "x", "empty": ""}
    with pytest.raises(NoSuchRole) as in_url:
        role_by_id(admin_of(world), role_id[which])
    assert in_url.value.code == "not_found"
    assert in_url.value.messages == [NO_SUCH_ROLE]
    with pytest.raises(NoSuchRole) as in_field:
        role_by_id(admin_of(world), role_id[which], field="role_id")
    assert in_field.value.message_dict == {"role_id": [NO_SUCH_ROLE]}


def test_the_api_answers_404_for_a_role_in_the_path_and_422_for_one_in_a_body(client, world):
    foreign = RoleFactory(organization=world.other_org, name="Theirs", permissions=["runs:read"])
    admin_key = pat_for(world.org_admin, world.org)
    path = api_call(client, "DELETE", f"/orgs/current/roles/{foreign.pk}", admin_key)
    assert path.status_code == 404, path.content
    assert path.json()["error"] == "not_found"
    body = api_call(
        client,
        "POST",
        "/orgs/current/members",
        admin_key,
        json={"email": "someone@acme.test", "workspace_role_id": str(foreign.pk)},
    )
    assert body.status_code == 422, body.content
    assert body.json()["fields"] == {"workspace_role_id": [NO_SUCH_ROLE]}
