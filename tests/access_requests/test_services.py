"""Access requests and time-bound grants, through the services every caller uses."""

import datetime
import os

import pytest
from django.core import mail
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.utils import timezone

from accesscontrol.access_requests import services
from accesscontrol.access_requests.models import AccessRequest
from accesscontrol.audit.models import AuditEvent
from accesscontrol.organizations.models import OrganizationMembership
from accesscontrol.rbac.actor import Actor
from accesscontrol.rbac.resolver import console_access, resolve_access
from accesscontrol.rbac.who_has_access import workspace_access
from accesscontrol.workspaces import services as workspaces
from accesscontrol.workspaces.models import WorkspaceMembership
from tests.factories import make_people_manager, system_role


def actor(world, user, workspace=None):
    return Actor.for_user(user, world.org, workspace)


def ask(world, user, workspace=None, permission="datasets:create", role=None, reason="release"):
    return services.create_access_request(
        actor=actor(world, user, workspace),
        workspace=workspace if workspace is not None else world.workspace,
        permission=permission,
        role=role,
        reason=reason,
    )


@pytest.fixture
def committed(django_capture_on_commit_callbacks):
    """Mail is sent once the change commits: `with committed():` runs those callbacks."""
    return lambda: django_capture_on_commit_callbacks(execute=True)


def test_a_request_is_audited_and_mailed_to_those_who_can_grant_it(world, committed):
    with committed():
        request = ask(world, world.member_without_workspace, role=system_role("Editor"))
    assert request.status == AccessRequest.PENDING
    event = AuditEvent.objects.get(action="access_request.created")
    assert event.changes["after"]["role"] == "Editor"
    assert event.workspace_id == world.workspace.pk
    [message] = mail.outbox
    # The workspace's own admin first, then the organization's admins.
    assert message.to[:2] == [world.workspace_admin.email, world.org_admin.email]
    assert world.member_without_workspace.email in message.subject
    assert "release" in message.body


def test_asking_twice_for_the_same_place_is_refused(world):
    ask(world, world.member_without_workspace)
    with pytest.raises(ValidationError) as exc:
        ask(world, world.member_without_workspace)
    assert exc.value.code == "duplicate"
    assert AccessRequest.objects.count() == 1


@pytest.mark.parametrize(
    "kwargs,field",
    [
        ({"permission": "datasets:fly"}, "permission"),
        ({"permission": "", "role": None}, "permission"),
        ({"reason": "  "}, "reason"),
        ({"permission": "organization:manage"}, "permission"),
    ],
)
def test_bad_requests_change_nothing(world, kwargs, field):
    with pytest.raises(ValidationError) as exc:
        ask(world, world.member_without_workspace, **kwargs)
    assert field in exc.value.message_dict
    assert not AccessRequest.objects.exists()
    assert not AuditEvent.objects.filter(action__startswith="access_request").exists()


def test_approving_with_an_expiry_grants_until_then_and_tells_the_requester(
    world, clock, committed
):
    requester = world.member_without_workspace
    request = ask(world, requester, role=system_role("Editor"))
    with committed():
        approved = services.approve_access_request(
            actor=actor(world, world.workspace_admin, world.workspace),
            access_request=request,
            expiry="1h",
            note="for the release",
        )
    assert approved.status == AccessRequest.APPROVED and approved.granted == "Editor"
    membership = WorkspaceMembership.objects.get(
        org_membership__user=requester, workspace=world.workspace
    )
    assert membership.expires_at == approved.expires_at
    assert abs(membership.expires_at - timezone.now() - datetime.timedelta(hours=1)).seconds < 5
    event = AuditEvent.objects.get(action="access_request.approved")
    assert event.changes["after"]["role"] == "Editor"
    assert event.changes["after"]["expires_at"] == membership.expires_at.isoformat()
    [message] = mail.outbox
    assert message.to == [requester.email]
    assert "approved" in message.subject and "for the release" in message.body

    access = console_access(requester, world.org.pk, world.workspace)
    assert access.allows("datasets:create") and access.expires_at == membership.expires_at
    clock.advance(hours=1, seconds=1)
    # The cached access is not served past the expiry, and the database read ignores the grant.
    assert not console_access(requester, world.org.pk, world.workspace).allows("datasets:read")
    assert resolve_access(requester, world.org.pk, world.workspace).role is None
    assert workspaces.enterable_workspaces(actor(world, requester)) == []
    assert [p.label for p in workspace_access(world.workspace)].count(requester.email) == 0


def test_a_viewer_cannot_approve_and_nothing_changes(world):
    request = ask(world, world.member_without_workspace)
    with pytest.raises(ValidationError) as exc:
        services.approve_access_request(
            actor=actor(world, world.viewer, world.workspace), access_request=request
        )
    assert exc.value.code == "permission"
    request.refresh_from_db()
    assert request.status == AccessRequest.PENDING
    assert not WorkspaceMembership.objects.filter(
        org_membership__user=world.member_without_workspace
    ).exists()


def test_approving_a_role_the_approver_cannot_grant_is_refused(world):
    # A custom role with member management but not dataset deletion cannot hand out Admin.
    manager = world.editor
    make_people_manager(world, manager)
    request = ask(world, world.member_without_workspace, role=system_role("Admin"))
    with pytest.raises(ValidationError) as exc:
        services.approve_access_request(
            actor=actor(world, manager, world.workspace), access_request=request
        )
    assert exc.value.error_dict["role"][0].code == "escalation"
    request.refresh_from_db()
    assert request.status == AccessRequest.PENDING
    # ... and such a manager is not suggested on the 403 for it: org admins are.
    asked = services.admins_to_ask(world.org, world.workspace, "datasets:delete")
    assert manager not in [m.user for m in asked]
    assert world.org_admin in [m.user for m in asked]


def test_deny_with_a_note_is_audited_and_mailed(world, committed):
    request = ask(world, world.member_without_workspace)
    with committed():
        denied = services.deny_access_request(
            actor=actor(world, world.org_admin), access_request=request, note="not this quarter"
        )
    assert denied.status == AccessRequest.DENIED
    event = AuditEvent.objects.get(action="access_request.denied")
    assert event.changes["after"]["note"] == "not this quarter"
    assert "not this quarter" in mail.outbox[0].body
    with pytest.raises(ValidationError) as exc:  # decided once
        services.approve_access_request(actor=actor(world, world.org_admin), access_request=request)
    assert exc.value.code == "decided"


def test_another_organizations_request_is_not_found(world):
    request = ask(world, world.member_without_workspace)
    outsider = Actor.for_user(world.outsider, world.other_org)
    with pytest.raises(ValidationError) as exc:
        services.request_by_id(outsider, request.pk)
    assert exc.value.code == "not_found"
    # A member who neither asked nor may decide does not see it either.
    with pytest.raises(ValidationError):
        services.request_by_id(actor(world, world.viewer, world.workspace), request.pk)
    assert services.request_by_id(actor(world, world.member_without_workspace), request.pk)


def test_pending_lists_and_counts_by_who_may_decide(world):
    ask(world, world.member_without_workspace)
    ask(world, world.viewer, workspace=world.other_workspace, permission="datasets:read")
    assert services.pending_count(actor(world, world.org_admin)) == 2
    assert services.pending_count(actor(world, world.workspace_admin, world.workspace)) == 1
    assert services.pending_count(actor(world, world.viewer, world.workspace)) == 0


def test_a_request_in_an_archived_workspace_waits_for_nobody(world):
    # Archived, the workspace is read-only: nobody may decide there (compute_access, which the
    # approve and deny services ask), so it is listed and counted for nobody, org admins too.
    request = ask(world, world.member_without_workspace)
    world.workspace.archived = True
    world.workspace.save(update_fields=["archived"])
    org_admin = actor(world, world.org_admin)
    with pytest.raises(ValidationError) as exc:
        services.deny_access_request(actor=org_admin, access_request=request)
    assert exc.value.code == "permission"

    assert list(services.requests_to_decide(org_admin)) == []
    assert services.pending_count(org_admin) == 0
    # The sidebar's count, read with its list of organizations.
    sidebar = OrganizationMembership.objects.filter(user=world.org_admin, organization=world.org)
    assert sidebar.annotate(n=services.pending_in_organizations()).get().n == 0

    # And nobody asks there, so no request waits for nobody.
    with pytest.raises(ValidationError) as exc:
        ask(world, world.viewer, permission="datasets:create")
    assert "archived" in exc.value.message_dict["workspace"][0]
    assert AccessRequest.objects.count() == 1


def test_a_temporary_upgrade_of_a_permanent_member_falls_back_at_expiry(world, clock):
    request = ask(world, world.viewer, role=system_role("Editor"))
    services.approve_access_request(
        actor=actor(world, world.org_admin), access_request=request, expiry="1h"
    )
    membership = WorkspaceMembership.objects.select_related("role_after_expiry").get(
        org_membership__user=world.viewer, workspace=world.workspace
    )
    assert membership.role.name == "Editor" and membership.expires_at is not None
    assert membership.role_after_expiry.name == "Viewer"
    assert ", then Viewer" in membership.role_summary()
    # The console cache is warm with Editor; past the expiry the next read is Viewer.
    for _ in range(2):
        assert console_access(world.viewer, world.org.pk, world.workspace).role == "Editor"
    [member] = [p for p in workspace_access(world.workspace) if p.label == world.viewer.email]
    assert member.details["then_role"] == "Viewer"
    clock.advance(hours=1, seconds=1)
    assert console_access(world.viewer, world.org.pk, world.workspace).role == "Viewer"
    assert resolve_access(world.viewer, world.org.pk, world.workspace).role == "Viewer"
    assert membership.role_summary() == "Viewer"
    [member] = [p for p in workspace_access(world.workspace) if p.label == world.viewer.email]
    assert (member.role, member.details) == ("Viewer", {})
    # The cleanup makes it the permanent Viewer membership it already is, audited.
    call_command("cleanup_expired_grants", stdout=open(os.devnull, "w"))  # noqa: SIM115
    membership.refresh_from_db()
    assert (membership.role.name, membership.expires_at, membership.role_after_expiry) == (
        "Viewer",
        None,
        None,
    )
    event = AuditEvent.objects.filter(action="workspace_member.grant_expired").latest("pk")
    assert (event.changes["before"]["role"], event.changes["after"]["role"]) == ("Editor", "Viewer")


def test_an_upgrade_the_admin_changes_on_the_members_page_ends_for_good(world):
    request = ask(world, world.viewer, role=system_role("Editor"))
    services.approve_access_request(
        actor=actor(world, world.org_admin), access_request=request, expiry="1h"
    )
    membership = WorkspaceMembership.objects.get(
        org_membership__user=world.viewer, workspace=world.workspace
    )
    workspaces.change_workspace_role(
        actor=actor(world, world.org_admin, world.workspace),
        membership=membership,
        role=system_role("Admin"),
    )
    membership.refresh_from_db()
    assert (membership.role.name, membership.expires_at, membership.role_after_expiry) == (
        "Admin",
        None,
        None,
    )


def test_a_role_someone_falls_back_to_is_in_use(world):
    from accesscontrol.rbac.services import create_role, delete_role

    base = create_role(
        actor=world.org_admin, organization=world.org, name="Readers", permissions=["datasets:read"]
    )
    membership = WorkspaceMembership.objects.get(
        org_membership__user=world.viewer, workspace=world.workspace
    )
    org_admin = actor(world, world.org_admin, world.workspace)
    workspaces.change_workspace_role(actor=org_admin, membership=membership, role=base)
    workspaces.change_workspace_role(
        actor=org_admin,
        membership=membership,
        role=system_role("Editor"),
        expires_at=timezone.now() + datetime.timedelta(hours=1),
        then_role=base,
    )
    with pytest.raises(ValidationError) as exc:
        delete_role(actor=world.org_admin, role=base)
    assert exc.value.code == "role_in_use"


def test_org_level_requests_grant_an_org_role_for_good_only(world):
    requester = world.member_without_workspace
    request = services.create_access_request(
        actor=actor(world, requester),
        permission="organization:manage",
        reason="run the audit",
    )
    with pytest.raises(ValidationError):
        services.approve_access_request(
            actor=actor(world, world.org_admin), access_request=request, expiry="1d"
        )
    services.approve_access_request(actor=actor(world, world.org_admin), access_request=request)
    assert resolve_access(requester, world.org.pk).org_role == "admin"


def test_cleanup_command_removes_expired_grants_and_audits_them(world, clock):
    requester = world.member_without_workspace
    workspaces.add_workspace_member(
        actor=world.org_admin,
        workspace=world.workspace,
        user=requester,
        role=system_role("Viewer"),
        expires_at=timezone.now() + datetime.timedelta(hours=1),
    )
    call_command("cleanup_expired_grants")
    assert WorkspaceMembership.objects.filter(org_membership__user=requester).exists()
    clock.advance(hours=2)
    call_command("cleanup_expired_grants")
    assert not WorkspaceMembership.objects.filter(org_membership__user=requester).exists()
    event = AuditEvent.objects.get(action="workspace_member.grant_expired")
    assert event.changes["before"]["role"] == "Viewer"
    assert event.actor_label.startswith("system")


def test_an_expired_grant_not_yet_cleaned_up_makes_way_for_a_new_one(world, clock):
    requester = world.member_without_workspace
    add = dict(actor=world.org_admin, workspace=world.workspace, user=requester)
    workspaces.add_workspace_member(
        **add, role=system_role("Viewer"), expires_at=timezone.now() + datetime.timedelta(hours=1)
    )
    clock.advance(hours=2)
    membership = workspaces.add_workspace_member(**add, role=system_role("Editor"))
    assert membership.expires_at is None
    assert WorkspaceMembership.objects.filter(org_membership__user=requester).count() == 1


def test_an_expiry_in_the_past_is_refused(world):
    with pytest.raises(ValidationError) as exc:
        workspaces.add_workspace_member(
            actor=world.org_admin,
            workspace=world.workspace,
            user=world.member_without_workspace,
            role=system_role("Viewer"),
            expires_at=timezone.now() - datetime.timedelta(minutes=1),
        )
    assert "expires_at" in exc.value.message_dict
