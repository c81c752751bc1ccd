"""A review says what each principal may do as the gate and who-has-access read it: below
Enterprise every workspace member (and every key with a workspace role) acts as Admin whatever
role it holds (compute_access). A snapshot that said only "Viewer in production" would ask a
reviewer to keep, as a Viewer, someone who can manage the workspace."""

import datetime

from django.utils import timezone

from accesscontrol.apikeys import keys
from accesscontrol.apikeys.models import ServiceKey
from accesscontrol.organizations.services import update_organization_settings
from accesscontrol.rbac import who_has_access
from accesscontrol.reviews import services
from accesscontrol.reviews.models import Item
from tests.factories import service_key_for

PLUS = " (on the plus plan every workspace member is Admin)"


def start(world, workspace=None):
    return services.start_campaign(
        actor=world.org_admin,
        organization=world.org,
        workspace=workspace,
        name="Q3 review",
        deadline=timezone.now() + datetime.timedelta(days=7),
    )


def details(campaign):
    return {(i.kind, i.label): i.detail for i in campaign.items.all()}


def test_below_enterprise_a_workspace_review_says_each_member_acts_as_admin(world):
    raw = service_key_for(world.workspace, "Viewer")
    key = ServiceKey.objects.get(digest=keys.digest(raw))
    update_organization_settings(actor=world.org_admin, organization=world.org, plan="plus")
    world.org.refresh_from_db()

    got = details(start(world, world.workspace))

    assert got[(Item.WORKSPACE_MEMBER, world.viewer.email)] == f"Viewer in production{PLUS}"
    assert got[(Item.WORKSPACE_MEMBER, world.editor.email)] == f"Editor in production{PLUS}"
    # Admin is Admin: nothing to add.
    assert got[(Item.WORKSPACE_MEMBER, world.workspace_admin.email)] == "Admin in production"
    assert got[(Item.SERVICE_KEY, key.audit_label)] == f"Viewer, production{PLUS}"
    # As who-has-access reads the same people.
    listed = {p.label: p.role for p in who_has_access.workspace_access(world.workspace)}
    assert listed[world.viewer.email] == listed[key.audit_label] == "Admin"


def test_below_enterprise_an_organization_review_says_it_of_keys(world):
    raw = service_key_for(world.workspace, "Viewer", org_scoped=True)
    key = ServiceKey.objects.get(digest=keys.digest(raw))
    update_organization_settings(actor=world.org_admin, organization=world.org, plan="plus")
    world.org.refresh_from_db()

    got = details(start(world))

    assert got[(Item.SERVICE_KEY, key.audit_label)] == f"Viewer, organization-wide{PLUS}"


def test_on_enterprise_the_role_is_what_it_says(world):
    got = details(start(world, world.workspace))

    assert got[(Item.WORKSPACE_MEMBER, world.viewer.email)] == "Viewer in production"
