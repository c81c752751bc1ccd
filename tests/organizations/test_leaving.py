"""What goes when someone leaves an organization (removed by an admin, by themself, by SCIM,
by a review): each thing that ends is in the audit log."""

import pytest

from accesscontrol.access_requests.models import AccessRequest
from accesscontrol.audit.models import AuditEvent
from accesscontrol.organizations.models import OrganizationMembership
from accesscontrol.organizations.services import remove_org_member
from tests.access_requests.test_services import ask

pytestmark = pytest.mark.django_db


def test_a_pending_access_request_of_someone_removed_is_closed_in_the_log(world):
    pending = ask(world, world.viewer)
    membership = OrganizationMembership.objects.get(user=world.viewer, organization=world.org)

    remove_org_member(actor=world.org_admin, membership=membership)

    assert not AccessRequest.objects.pending().filter(pk=pending.pk).exists()
    closed = AuditEvent.objects.filter(target_type="accessrequest", target_id=str(pending.pk))
    assert closed.exclude(action="access_request.created").exists()
