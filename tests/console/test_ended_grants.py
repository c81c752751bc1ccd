"""Console pages that list a person's workspace access read a time-bound grant as the resolver
does (workspaces.models.in_effect, role_in_effect): an ended grant is no access, an ended
temporary upgrade is its fallback role. Each test failed while its page read the raw rows."""

import datetime

import pytest
from django.urls import reverse
from django.utils import timezone

from accesscontrol.workspaces.models import WorkspaceMembership
from tests.factories import system_role

pytestmark = pytest.mark.django_db

ORG_MEMBERS = reverse("org-members", args=["acme"])
ADD_MEMBER = reverse("workspace-member-add", args=["acme", "production"])
SUGGESTIONS = reverse("workspace-member-suggestions", args=["acme", "production"]) + "?email=%40"
AN_HOUR = datetime.timedelta(hours=1)


def grant_of(world, user):
    return WorkspaceMembership.objects.filter(org_membership__user=user, workspace=world.workspace)


def row_of(body, email) -> str:
    """The members table's row of `email` (up to the row's end)."""
    start = body.index(email)
    return body[start : body.index("</tr>", start)]


def page(client, user, path) -> str:
    client.force_login(user)
    response = client.get(path)
    assert response.status_code == 200
    return response.content.decode()


def test_the_org_members_page_leaves_out_an_ended_grant(client, world):
    assert "production" in row_of(page(client, world.org_admin, ORG_MEMBERS), world.editor.email)
    grant_of(world, world.editor).update(expires_at=timezone.now() - AN_HOUR)
    row = row_of(page(client, world.org_admin, ORG_MEMBERS), world.editor.email)
    assert "production" not in row
    assert "none" in row


def test_the_org_members_page_names_the_role_an_ended_upgrade_falls_back_to(client, world):
    grant_of(world, world.viewer).update(
        role=system_role("Admin"),
        role_after_expiry=system_role("Viewer"),
        expires_at=timezone.now() - AN_HOUR,
    )
    row = row_of(page(client, world.org_admin, ORG_MEMBERS), world.viewer.email)
    assert "(Viewer)" in row
    assert "(Admin)" not in row


def test_removing_a_member_counts_only_the_workspaces_they_are_in(client, world):
    grant_of(world, world.editor).update(expires_at=timezone.now() - AN_HOUR)
    member = world.editor.org_memberships.get(organization=world.org)
    body = page(client, world.org_admin, reverse("org-member-remove", args=["acme", member.pk]))
    assert "Their membership in 0 workspace(s) ends." in body


def test_the_add_member_dialog_suggests_someone_whose_grant_ended(client, world):
    assert world.editor.email not in page(client, world.workspace_admin, SUGGESTIONS)
    grant_of(world, world.editor).update(expires_at=timezone.now() - AN_HOUR)
    assert world.editor.email in page(client, world.workspace_admin, SUGGESTIONS)
    response = client.post(
        ADD_MEMBER, {"email": world.editor.email, "role": system_role("Viewer").pk}
    )
    assert response.status_code == 302
    assert grant_of(world, world.editor).get().role_in_effect() == system_role("Viewer")


def test_the_workspaces_page_counts_only_members_in_effect(client, world):
    def count():
        body = page(client, world.org_admin, reverse("org-workspaces", args=["acme"]))
        row = body[body.index("<strong>production</strong></a><br>") :]
        return int(row.split("<td>", 1)[1].split("</td>", 1)[0])

    before = count()
    grant_of(world, world.editor).update(expires_at=timezone.now() - AN_HOUR)
    assert count() == before - 1


def test_an_access_review_names_no_source_for_an_ended_grant(client, world):
    # An org admin is Admin of production anyway; a SCIM grant of theirs there that ended is
    # not where that access comes from.
    member = world.org_admin.org_memberships.get(organization=world.org)
    WorkspaceMembership.objects.update_or_create(
        org_membership=member,
        workspace=world.workspace,
        defaults={"role": system_role("Viewer"), "source": "scim"},
    )
    review = reverse("member-access", args=["acme", member.pk])
    assert "SCIM provisioning" in page(client, world.org_admin, review)
    grant_of(world, world.org_admin).update(expires_at=timezone.now() - AN_HOUR)
    assert "SCIM provisioning" not in page(client, world.org_admin, review)
