"""Invitations: by service, through the public link page, and through the API.

The raw token exists only in the email; the database keeps its SHA-256 digest. A link works
once, until it expires, is replaced by a resend, or is cancelled.
"""

import datetime
import hashlib
import re
from functools import partial

import pytest
from django.contrib.auth import SESSION_KEY
from django.core import mail
from django.core.exceptions import ValidationError
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from accesscontrol.accounts.models import User
from accesscontrol.audit.models import AuditEvent
from accesscontrol.organizations.models import Invitation, OrganizationMembership
from accesscontrol.organizations.services import (
    accept_invitation,
    cancel_invitation,
    find_invitation,
    invitation_link,
    invite_member,
    invited_workspaces,
    resend_invitation,
    sign_up_and_accept,
)
from accesscontrol.rbac.permissions import SYSTEM_ROLE_PERMISSIONS
from accesscontrol.workspaces.models import WorkspaceMembership
from tests.factories import PASSWORD, RoleFactory, UserFactory, actor_with, pat_for, system_role
from tests.support.api import api_call
from tests.support.db import audit_actions, row_counts

NEW_EMAIL = "new.person@example.test"
INVALID_PAGE = "This invitation is not valid"
GOOD_PASSWORD = "violet-otter-harbour-91"


# Everything inviting and accepting may write, counted.
snapshot = partial(
    row_counts, User, Invitation, OrganizationMembership, WorkspaceMembership, AuditEvent
)


def path_of(raw):
    return reverse("invitation-accept", args=[raw])


def digest(raw):
    return hashlib.sha256(raw.encode()).hexdigest()


def invite(world, capture, email=NEW_EMAIL, **kwargs):
    """An invitation from the org admin, with the email it sends (mail goes out on commit)."""
    kwargs.setdefault("actor", world.org_admin)
    kwargs.setdefault("organization", world.org)
    with capture(execute=True):
        invitation, raw = invite_member(email=email, **kwargs)
    return invitation, raw


def invite_to_workspaces(world, capture, email=NEW_EMAIL, role="Editor", **kwargs):
    return invite(
        world,
        capture,
        email=email,
        workspaces=[world.workspace, world.other_workspace],
        workspace_role=system_role(role),
        **kwargs,
    )


def codes_of(exc):
    """The codes of a ValidationError, whether it names fields or not."""
    if hasattr(exc, "error_dict"):
        return {e.code for errors in exc.error_dict.values() for e in errors}
    return {e.code for e in exc.error_list}


def link_in(message):
    links = re.findall(r"https?://\S+", message.body)
    assert len(links) == 1, message.body
    return links[0]


def token_of(message):
    return re.search(r"/invitations/([^/]+)/", link_in(message)).group(1)


# invite_member


def test_invite_member_stores_only_the_digest_and_emails_the_link_on_commit(
    world, django_capture_on_commit_callbacks
):
    editor_role = system_role("Editor")
    with django_capture_on_commit_callbacks(execute=True):
        invitation, raw = invite_member(
            actor=world.org_admin,
            organization=world.org,
            email="  New.Person@Example.TEST ",
            org_role="viewer",
            workspaces=[world.workspace, world.other_workspace],
            workspace_role=editor_role,
        )
        assert mail.outbox == []  # nothing leaves before the transaction commits

    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.to == [NEW_EMAIL]
    assert "Acme" in message.subject
    assert link_in(message) == invitation_link(raw)
    assert invitation_link(raw).endswith(f"/invitations/{raw}/")

    stored = Invitation.objects.get()
    assert stored.pk == invitation.pk
    assert stored.email == NEW_EMAIL
    assert stored.org_role == "viewer"
    assert stored.workspace_role == editor_role
    assert set(stored.workspaces.all()) == {world.workspace, world.other_workspace}
    assert stored.created_by == world.org_admin
    assert stored.status == "pending"
    assert stored.digest == digest(raw)
    row = Invitation.objects.filter(pk=stored.pk).values().get()
    assert not any(raw in str(value) for value in row.values())
    expected_expiry = timezone.now() + datetime.timedelta(days=7)
    assert abs(stored.expires_at - expected_expiry) < datetime.timedelta(minutes=1)

    (event,) = AuditEvent.objects.all()
    assert event.action == "invitation.sent"
    assert (event.organization_id, event.target_id, event.target_label) == (
        world.org.pk,
        str(stored.pk),
        NEW_EMAIL,
    )
    assert (event.actor_kind, event.actor_user_id) == ("user", world.org_admin.pk)
    assert event.changes["after"] == {
        "org_role": "viewer",
        "workspaces": ["production", "staging"],
        "workspace_role": "Editor",
    }
    assert raw not in str(event.changes)

    assert find_invitation(raw) == stored


def refused_invitation(world, capture_on_commit, **kwargs) -> ValidationError:
    """The org admin invites (NEW_EMAIL unless told): refused, nothing written, no mail sent."""
    before = snapshot()
    with pytest.raises(ValidationError) as exc, capture_on_commit(execute=True):
        invite_member(
            actor=world.org_admin, organization=world.org, **{"email": NEW_EMAIL, **kwargs}
        )
    assert snapshot() == before
    assert mail.outbox == []
    return exc.value


@pytest.mark.parametrize("email", ["", "   ", "not-an-email", "someone@", "a b@example.test"])
def test_invite_member_refuses_a_bad_email_and_writes_nothing(
    world, django_capture_on_commit_callbacks, email
):
    error = refused_invitation(world, django_capture_on_commit_callbacks, email=email)
    assert "email" in error.error_dict


def test_invite_member_refuses_an_unknown_org_role(world, django_capture_on_commit_callbacks):
    error = refused_invitation(world, django_capture_on_commit_callbacks, org_role="owner")
    assert "org_role" in error.error_dict


def test_invite_member_refuses_a_workspace_of_another_organization(
    world, django_capture_on_commit_callbacks
):
    workspaces = [world.workspace, world.other_workspace_of_other_org]
    error = refused_invitation(
        world,
        django_capture_on_commit_callbacks,
        workspaces=workspaces,
        workspace_role=system_role("Viewer"),
    )
    assert "workspaces" in error.error_dict


def test_invite_member_needs_a_workspace_role_when_workspaces_are_given(
    world, django_capture_on_commit_callbacks
):
    error = refused_invitation(
        world, django_capture_on_commit_callbacks, workspaces=[world.workspace]
    )
    assert "workspace_role" in error.error_dict


def test_invite_member_refuses_a_custom_role_of_another_organization(
    world, django_capture_on_commit_callbacks
):
    foreign_role = RoleFactory(organization=world.other_org, name="Foreign")
    refused_invitation(
        world,
        django_capture_on_commit_callbacks,
        workspaces=[world.workspace],
        workspace_role=foreign_role,
    )


@pytest.mark.parametrize("case", [str.lower, str.upper])
def test_invite_member_refuses_an_existing_member(world, django_capture_on_commit_callbacks, case):
    email = case(world.editor.email)
    error = refused_invitation(world, django_capture_on_commit_callbacks, email=email)
    assert error.code == "duplicate"


def test_a_member_of_another_organization_can_be_invited(world, django_capture_on_commit_callbacks):
    invitation, _raw = invite(world, django_capture_on_commit_callbacks, email=world.outsider.email)

    assert invitation.status == "pending"
    assert len(mail.outbox) == 1


def test_invite_member_refuses_a_second_pending_invitation_until_the_first_is_cancelled(
    world, django_capture_on_commit_callbacks
):
    first, _raw = invite(world, django_capture_on_commit_callbacks)
    before = snapshot()

    with pytest.raises(ValidationError) as exc, django_capture_on_commit_callbacks(execute=True):
        invite_member(actor=world.org_admin, organization=world.org, email=NEW_EMAIL.upper())

    assert exc.value.code == "duplicate"
    assert snapshot() == before
    assert len(mail.outbox) == 1

    # The same address in another organization is a different invitation.
    invite(
        world,
        django_capture_on_commit_callbacks,
        organization=world.other_org,
        actor=world.outsider,  # Globex's admin
    )
    # Once the first is cancelled, a new one may go out.
    cancel_invitation(actor=world.org_admin, invitation=first)
    second, _raw = invite(world, django_capture_on_commit_callbacks)
    assert second.pk != first.pk
    assert Invitation.objects.filter(organization=world.org).pending().get() == second


def test_invite_member_refuses_a_role_beyond_the_grantors_permissions(
    world, django_capture_on_commit_callbacks
):
    before = snapshot()

    with pytest.raises(ValidationError) as exc, django_capture_on_commit_callbacks(execute=True):
        invite_member(
            # An organization manager who is only an Editor in the workspace.
            actor=actor_with(
                SYSTEM_ROLE_PERMISSIONS["Editor"] | {"organization:manage"}, world.org_admin
            ),
            organization=world.org,
            email=NEW_EMAIL,
            workspaces=[world.workspace],
            workspace_role=system_role("Admin"),
        )

    assert codes_of(exc.value) == {"escalation"}
    assert "role" in exc.value.error_dict
    assert snapshot() == before
    assert mail.outbox == []

    # Within the grantor's own permissions it goes through.
    invitation, _raw = invite(
        world,
        django_capture_on_commit_callbacks,
        workspaces=[world.workspace],
        workspace_role=system_role("Editor"),
    )
    assert invitation.workspace_role.name == "Editor"


# resend, cancel, expiry


def test_resend_issues_a_new_link_and_the_old_one_stops_working(
    world, client, django_capture_on_commit_callbacks
):
    invitation, old_raw = invite(world, django_capture_on_commit_callbacks)
    Invitation.objects.filter(pk=invitation.pk).update(
        expires_at=timezone.now() + datetime.timedelta(hours=1)
    )

    with django_capture_on_commit_callbacks(execute=True):
        resent, new_raw = resend_invitation(actor=world.org_admin, invitation=invitation)

    assert resent.pk == invitation.pk
    assert new_raw != old_raw
    assert len(mail.outbox) == 2
    assert mail.outbox[1].to == [NEW_EMAIL]
    assert link_in(mail.outbox[1]) == invitation_link(new_raw)
    stored = Invitation.objects.get()
    assert stored.digest == digest(new_raw)
    assert stored.expires_at > timezone.now() + datetime.timedelta(days=6)
    assert find_invitation(old_raw) is None
    assert find_invitation(new_raw) == stored
    assert client.get(path_of(old_raw)).status_code == 404
    assert client.get(path_of(new_raw)).status_code == 200
    assert audit_actions() == ["invitation.sent", "invitation.resent"]
    event = AuditEvent.objects.get(action="invitation.resent")
    assert (event.organization_id, event.target_label) == (world.org.pk, NEW_EMAIL)
    assert new_raw not in str(event.changes)


def test_cancel_makes_the_link_invalid_and_cannot_be_undone_by_resend(
    world, client, django_capture_on_commit_callbacks
):
    invitation, raw = invite(world, django_capture_on_commit_callbacks)

    cancel_invitation(actor=world.org_admin, invitation=invitation)

    assert Invitation.objects.get().status == "cancelled"
    assert find_invitation(raw) is None
    response = client.get(path_of(raw))
    assert response.status_code == 404
    assert INVALID_PAGE in response.text
    assert audit_actions() == ["invitation.sent", "invitation.cancelled"]
    event = AuditEvent.objects.get(action="invitation.cancelled")
    assert (event.organization_id, event.target_label, event.actor_user_id) == (
        world.org.pk,
        NEW_EMAIL,
        world.org_admin.pk,
    )

    before = snapshot()
    with pytest.raises(ValidationError):
        cancel_invitation(actor=world.org_admin, invitation=invitation)
    with pytest.raises(ValidationError), django_capture_on_commit_callbacks(execute=True):
        resend_invitation(actor=world.org_admin, invitation=invitation)
    assert snapshot() == before
    assert len(mail.outbox) == 1
    with pytest.raises(ValidationError):
        accept_invitation(invitation=invitation, user=UserFactory(email=NEW_EMAIL))
    assert not OrganizationMembership.objects.filter(user__email=NEW_EMAIL).exists()


def test_an_expired_link_is_invalid(world, client, django_capture_on_commit_callbacks):
    invitation, raw = invite(world, django_capture_on_commit_callbacks)
    Invitation.objects.filter(pk=invitation.pk).update(
        expires_at=timezone.now() - datetime.timedelta(seconds=1)
    )

    assert Invitation.objects.get().status == "expired"
    assert find_invitation(raw) is None
    response = client.get(path_of(raw))
    assert response.status_code == 404
    assert INVALID_PAGE in response.text
    assert client.post(path_of(raw), {}).status_code == 404

    user = UserFactory(email=NEW_EMAIL)
    with pytest.raises(ValidationError):
        accept_invitation(invitation=Invitation.objects.get(), user=user)
    assert not OrganizationMembership.objects.filter(user=user).exists()


# accept_invitation (service)


def test_accept_invitation_adds_the_memberships_and_records_the_events(
    world, django_capture_on_commit_callbacks
):
    invitation, raw = invite_to_workspaces(world, django_capture_on_commit_callbacks)
    user = UserFactory(email=NEW_EMAIL)

    membership = accept_invitation(invitation=invitation, user=user)

    assert membership.organization == world.org
    assert membership.user == user
    assert membership.org_role == "member"
    assert set(
        WorkspaceMembership.objects.filter(org_membership=membership).values_list(
            "workspace__slug", "role__name"
        )
    ) == {("production", "Editor"), ("staging", "Editor")}
    assert Invitation.objects.get().status == "accepted"
    assert find_invitation(raw) is None

    assert audit_actions() == [
        "invitation.sent",
        "org_member.added",
        "workspace_member.added",
        "workspace_member.added",
        "invitation.accepted",
    ]
    added = AuditEvent.objects.get(action="org_member.added")
    assert added.changes["after"] == {"org_role": "member", "via": "invitation"}
    assert (added.actor_user_id, added.organization_id, added.target_label) == (
        user.pk,
        world.org.pk,
        NEW_EMAIL,
    )
    ws_events = AuditEvent.objects.filter(action="workspace_member.added")
    assert {e.workspace_id for e in ws_events} == {world.workspace.pk, world.other_workspace.pk}
    assert all(e.changes["after"] == {"role": "Editor", "via": "invitation"} for e in ws_events)
    assert all(e.organization_id == world.org.pk for e in ws_events)
    accepted = AuditEvent.objects.get(action="invitation.accepted")
    assert (accepted.actor_user_id, accepted.target_id) == (user.pk, str(invitation.pk))

    # It works once.
    before = snapshot()
    with pytest.raises(ValidationError):
        accept_invitation(invitation=invitation, user=user)
    assert snapshot() == before


def test_an_expired_grant_not_yet_cleaned_up_makes_way_for_the_invited_role(
    world, django_capture_on_commit_callbacks
):
    invitation, _ = invite_to_workspaces(world, django_capture_on_commit_callbacks)
    user = UserFactory(email=NEW_EMAIL)
    # They joined meanwhile and held a one-hour grant in production that has expired.
    member = OrganizationMembership.objects.create(
        user=user, organization=world.org, org_role="member"
    )
    WorkspaceMembership.objects.create(
        org_membership=member,
        workspace=world.workspace,
        role=system_role("Viewer"),
        expires_at=timezone.now() - datetime.timedelta(minutes=1),
    )

    accept_invitation(invitation=invitation, user=user)

    held = WorkspaceMembership.objects.get(org_membership=member, workspace=world.workspace)
    assert (held.role.name, held.expires_at) == ("Editor", None)
    assert "workspace_member.grant_expired" in audit_actions()


def test_a_workspace_archived_after_the_invitation_takes_nobody_in(
    world, django_capture_on_commit_callbacks
):
    # As SSO's default workspaces and SCIM's group mappings have it: an archived workspace
    # is read-only, and nobody may add members to it (add_workspace_member refuses). Nor does
    # it refuse the whole invitation because its sender can grant nothing there now.
    invitation, _ = invite_to_workspaces(world, django_capture_on_commit_callbacks)
    world.other_workspace.archived = True
    world.other_workspace.save(update_fields=["archived"])
    user = UserFactory(email=NEW_EMAIL)

    membership = accept_invitation(invitation=invitation, user=user)

    assert set(
        WorkspaceMembership.objects.filter(org_membership=membership).values_list(
            "workspace__slug", "role__name"
        )
    ) == {("production", "Editor")}


def archive(workspace):
    workspace.archived = True
    workspace.save(update_fields=["archived"])


def workspaces_cell(page_text, email):
    """The Workspaces cell of `email`'s row in the members page's pending invitations."""
    row = re.search(rf"<td>{re.escape(email)}</td>.*?</tr>", page_text, re.S).group(0)
    return re.findall(r"<td>(.*?)</td>", row, re.S)[2]


def test_every_view_of_an_invitation_shows_only_the_workspaces_it_still_adds_to(
    world, client, django_capture_on_commit_callbacks
):
    # invited_workspaces is what accepting adds (the test above); the link's page, the members
    # page and the API show that and nothing more: no promise of an archived workspace.
    invitation, raw = invite_to_workspaces(world, django_capture_on_commit_callbacks)
    archive(world.other_workspace)
    assert list(invited_workspaces(invitation)) == [world.workspace]

    page = client.get(path_of(raw))
    assert page.status_code == 200
    assert "with the role <strong>Editor</strong> in production." in page.text
    assert "staging" not in page.text

    client.force_login(world.org_admin)
    members = client.get(reverse("org-members", args=[world.org.slug]))
    cell = workspaces_cell(members.text, NEW_EMAIL)
    assert "production" in cell and "staging" not in cell

    listing = api_call(client, "GET", "/orgs/current/members", pat_for(world.org_admin, world.org))
    assert listing.json()["pending"][0]["workspace_ids"] == [str(world.workspace.pk)]

    # Restored before the invitation is accepted, the workspace takes the person in again.
    world.other_workspace.archived = False
    world.other_workspace.save(update_fields=["archived"])
    assert "staging" in client.get(path_of(raw)).text


def test_an_invitation_whose_workspaces_are_all_archived_promises_none(
    world, client, django_capture_on_commit_callbacks
):
    _invitation, raw = invite_to_workspaces(world, django_capture_on_commit_callbacks)
    archive(world.workspace)
    archive(world.other_workspace)

    page = client.get(path_of(raw))
    assert "with the role" not in page.text
    assert "production" not in page.text and "staging" not in page.text
    client.force_login(world.org_admin)
    members = client.get(reverse("org-members", args=[world.org.slug]))
    assert workspaces_cell(members.text, NEW_EMAIL) == "—"
    listing = api_call(client, "GET", "/orgs/current/members", pat_for(world.org_admin, world.org))
    assert listing.json()["pending"][0]["workspace_ids"] == []


def test_the_pending_invitations_lists_read_their_workspaces_once_for_all(
    world, client, django_capture_on_commit_callbacks
):
    client.force_login(world.org_admin)
    key = pat_for(world.org_admin, world.org)
    calls = (
        lambda: client.get(reverse("org-members", args=[world.org.slug])),
        lambda: api_call(client, "GET", "/orgs/current/members", key),
    )

    def invitation_queries():
        """Per list (the page, the API): its queries of invitations and their workspaces."""
        counts = []
        for call in calls:
            with CaptureQueriesContext(connection) as queries:
                assert call().status_code == 200
            counts.append(sum("organizations_invitation" in q["sql"] for q in queries))
        return counts

    invite_to_workspaces(world, django_capture_on_commit_callbacks, email="one@example.test")
    archive(world.other_workspace)
    one = invitation_queries()
    for n in range(4):
        invite(
            world,
            django_capture_on_commit_callbacks,
            email=f"more{n}@example.test",
            workspaces=[world.workspace],
            workspace_role=system_role("Viewer"),
        )
    assert invitation_queries() == one


def test_accept_invitation_refuses_someone_with_another_email(
    world, django_capture_on_commit_callbacks
):
    invitation, raw = invite(world, django_capture_on_commit_callbacks)
    before = snapshot()

    with pytest.raises(ValidationError) as exc:
        accept_invitation(invitation=invitation, user=world.outsider)

    assert exc.value.code == "permission"
    assert snapshot() == before
    assert find_invitation(raw) == invitation


# The link page: a new person


def test_a_new_person_signs_up_through_the_link_and_joins(
    world, client, django_capture_on_commit_callbacks
):
    _invitation, raw = invite_to_workspaces(
        world, django_capture_on_commit_callbacks, org_role="viewer", role="Viewer"
    )
    path = path_of(raw)

    response = client.get(path)
    assert response.status_code == 200
    assert "Join Acme" in response.text
    assert NEW_EMAIL in response.text
    assert 'name="password"' in response.text
    assert 'name="password_again"' in response.text
    assert "Create account and join" in response.text
    before = snapshot()

    response = client.post(
        path,
        {"full_name": "New Person", "password": GOOD_PASSWORD, "password_again": "different-1"},
    )
    assert response.status_code == 400
    assert "The two passwords differ." in response.text
    assert snapshot() == before
    assert SESSION_KEY not in client.session

    for weak, message in [
        ("v1olet", "This password is too short. It must contain at least 8 characters."),
        ("password123", "This password is too common."),
    ]:
        response = client.post(
            path, {"full_name": "New Person", "password": weak, "password_again": weak}
        )
        assert response.status_code == 400
        assert message in response.text
        assert snapshot() == before
        assert SESSION_KEY not in client.session

    response = client.post(
        path,
        {"full_name": "New Person", "password": GOOD_PASSWORD, "password_again": GOOD_PASSWORD},
    )

    assert response.status_code == 302
    assert response["Location"] == reverse("org-overview", args=["acme"])
    user = User.objects.get(email=NEW_EMAIL)
    assert user.full_name == "New Person"
    assert user.check_password(GOOD_PASSWORD)
    assert client.session[SESSION_KEY] == str(user.pk)
    membership = OrganizationMembership.objects.get(user=user)
    assert (membership.organization, membership.org_role) == (world.org, "viewer")
    assert set(
        WorkspaceMembership.objects.filter(org_membership=membership).values_list(
            "workspace__slug", "role__name"
        )
    ) == {("production", "Viewer"), ("staging", "Viewer")}
    assert Invitation.objects.get().status == "accepted"
    # Signed in through allauth's sign-in like every other path: audited the same way.
    assert audit_actions()[-5:] == [
        "org_member.added",
        "workspace_member.added",
        "workspace_member.added",
        "invitation.accepted",
        "login.succeeded",
    ]

    overview = client.get(response["Location"])
    assert overview.status_code == 200
    assert "Welcome to Acme." in overview.text
    assert client.get(reverse("org-members", args=["acme"])).status_code == 200
    assert client.get(reverse("workspace-home", args=["acme", "production"])).status_code == 200
    # Another organization's pages stay closed.
    assert client.get(reverse("org-overview", args=["globex"])).status_code in (403, 404)

    # The link works once.
    again = client.get(path)
    assert again.status_code == 404
    assert INVALID_PAGE in again.text
    client.logout()
    assert client.get(path).status_code == 404
    after = snapshot()
    reuse = client.post(
        path,
        {"full_name": "Someone", "password": GOOD_PASSWORD, "password_again": GOOD_PASSWORD},
    )
    assert reuse.status_code == 404
    assert snapshot() == after


def test_sign_up_through_the_link_fails_as_a_whole_if_the_account_appears_meanwhile(
    world, client, django_capture_on_commit_callbacks
):
    """The page was opened before an account with the invited email existed."""
    _invitation, raw = invite(world, django_capture_on_commit_callbacks)
    UserFactory(email=NEW_EMAIL)
    before = snapshot()

    response = client.post(
        path_of(raw),
        {"full_name": "Twin", "password": GOOD_PASSWORD, "password_again": GOOD_PASSWORD},
    )

    assert response.status_code == 400
    assert snapshot() == before
    assert SESSION_KEY not in client.session
    assert find_invitation(raw) is not None


# The link page: someone who already has an account


def test_an_existing_user_signs_in_from_the_link_and_joins(
    world, client, django_capture_on_commit_callbacks
):
    person = world.outsider  # an admin of Globex, not yet in Acme
    _invitation, raw = invite(
        world,
        django_capture_on_commit_callbacks,
        email=person.email,
        org_role="admin",
    )
    path = path_of(raw)

    response = client.get(path)
    assert response.status_code == 200
    assert "Join Acme" in response.text
    assert "Sign in to accept" in response.text
    assert f'href="{reverse("login")}?next={path}"' in response.text
    assert 'name="password_again"' not in response.text

    # Posting without signing in creates nothing and accepts nothing.
    before = snapshot()
    response = client.post(path, {"password": GOOD_PASSWORD, "password_again": GOOD_PASSWORD})
    assert response.status_code == 400
    assert snapshot() == before
    assert find_invitation(raw) is not None

    response = client.post(
        f"{reverse('login')}?next={path}", {"login": person.email, "password": PASSWORD}
    )
    assert response.status_code == 302
    assert response["Location"] == path
    assert client.session[SESSION_KEY] == str(person.pk)

    response = client.get(path)
    assert response.status_code == 200
    assert "Accept and join" in response.text
    assert not OrganizationMembership.objects.filter(user=person, organization=world.org).exists()

    response = client.post(path)

    assert response.status_code == 302
    assert response["Location"] == reverse("org-overview", args=["acme"])
    membership = OrganizationMembership.objects.get(user=person, organization=world.org)
    assert membership.org_role == "admin"
    assert OrganizationMembership.objects.filter(user=person, organization=world.other_org).exists()
    assert Invitation.objects.get().status == "accepted"
    assert User.objects.filter(email=person.email).count() == 1
    assert client.get(response["Location"]).status_code == 200
    assert client.get(path).status_code == 404


def test_a_signed_in_different_user_cannot_accept(
    world, client, django_capture_on_commit_callbacks
):
    _invitation, raw = invite_to_workspaces(world, django_capture_on_commit_callbacks)
    path = path_of(raw)
    client.force_login(world.editor)
    wrong_user = (
        f"You are signed in as {world.editor.email}, but this invitation is for {NEW_EMAIL}."
    )

    response = client.get(path)
    assert response.status_code == 200
    assert wrong_user in response.text
    assert "Accept and join" not in response.text
    assert 'name="password"' not in response.text
    before = snapshot()

    response = client.post(
        path,
        {"full_name": "Hijack", "password": GOOD_PASSWORD, "password_again": GOOD_PASSWORD},
    )

    assert response.status_code != 302
    assert wrong_user in response.text
    assert snapshot() == before
    assert not User.objects.filter(email=NEW_EMAIL).exists()
    assert Invitation.objects.get().status == "pending"
    assert client.session[SESSION_KEY] == str(world.editor.pk)
    # The invited person can still use the link.
    client.logout()
    assert "Create account and join" in client.get(path).text


@pytest.mark.parametrize(
    "token",
    [
        "nope",
        "Yt3kq0Zp9xVbN2wL8sR1mC6dF4hJ7gQeUaTo5iWvXyE",  # well-formed, never issued
        "x" * 101,
        "x" * 500,
        "%00",
        "%C3%A9t%C3%A9",
        "..",
        "' OR 1=1 --",
    ],
)
def test_an_unknown_or_garbage_token_shows_the_invalid_page(world, client, token):
    before = snapshot()

    for response in (
        client.get(f"/invitations/{token}/"),
        client.post(
            f"/invitations/{token}/",
            {"password": GOOD_PASSWORD, "password_again": GOOD_PASSWORD},
        ),
    ):
        assert response.status_code == 404
        assert INVALID_PAGE in response.text

    assert snapshot() == before


def test_a_garbage_token_shows_the_invalid_page_to_a_signed_in_user(world, client):
    client.force_login(world.editor)

    response = client.get(f"/invitations/{'z' * 500}/")

    assert response.status_code == 404
    assert INVALID_PAGE in response.text


# The API


def test_api_org_admin_invites_lists_and_cancels(world, client, django_capture_on_commit_callbacks):
    key = pat_for(world.org_admin, world.org)

    invite = {"email": "API.Person@example.test", "org_role": "viewer"}
    with django_capture_on_commit_callbacks(execute=True):
        response = api_call(client, "POST", "/orgs/current/members", key, json=invite)

    assert response.status_code == 201, response.content
    body = response.json()
    invitation = Invitation.objects.get()
    assert body["id"] == str(invitation.pk)
    assert body["email"] == "api.person@example.test"
    assert body["status"] == "pending"
    assert body["org_role"] == "viewer"
    assert body["workspace_ids"] == []
    assert len(mail.outbox) == 1
    raw = token_of(mail.outbox[0])
    assert find_invitation(raw) == invitation
    assert raw not in response.text
    assert invitation.digest not in response.text
    assert not {"token", "digest", "link", "url"} & set(body)
    assert AuditEvent.objects.get(action="invitation.sent").actor_kind == "personal_access_token"

    listing = api_call(client, "GET", "/orgs/current/members", key)
    assert listing.status_code == 200
    data = listing.json()
    assert [p["id"] for p in data["pending"]] == [str(invitation.pk)]
    assert data["pending"][0]["status"] == "pending"
    assert "api.person@example.test" not in {m["email"] for m in data["members"]}
    assert raw not in listing.text
    assert invitation.digest not in listing.text

    response = api_call(client, "DELETE", f"/orgs/current/members/{invitation.pk}", key)

    assert response.status_code == 204
    assert Invitation.objects.get().status == "cancelled"
    assert find_invitation(raw) is None
    assert client.get(path_of(raw)).status_code == 404
    assert api_call(client, "GET", "/orgs/current/members", key).json()["pending"] == []
    cancelled = AuditEvent.objects.get(action="invitation.cancelled")
    assert (cancelled.actor_kind, cancelled.target_label) == (
        "personal_access_token",
        "api.person@example.test",
    )


def test_api_invitation_into_workspaces_is_accepted_through_the_link(
    world, client, django_capture_on_commit_callbacks
):
    """Org admins are Admin in every workspace, so they may invite with any workspace role."""
    key = pat_for(world.org_admin, world.org)

    invite = {
        "email": NEW_EMAIL,
        "workspace_ids": [str(world.workspace.pk)],
        "workspace_role_id": str(system_role("Editor").pk),
    }
    with django_capture_on_commit_callbacks(execute=True):
        response = api_call(client, "POST", "/orgs/current/members", key, json=invite)

    assert response.status_code == 201, response.content
    body = response.json()
    assert body["workspace_ids"] == [str(world.workspace.pk)]
    assert body["workspace_role"] == "Editor"
    raw = token_of(mail.outbox[0])
    response = client.post(
        path_of(raw), {"password": GOOD_PASSWORD, "password_again": GOOD_PASSWORD}
    )
    assert response.status_code == 302
    assert WorkspaceMembership.objects.get(
        org_membership__user__email=NEW_EMAIL
    ).role == system_role("Editor")


def test_api_refuses_a_duplicate_invitation_with_409(
    world, client, django_capture_on_commit_callbacks
):
    key = pat_for(world.org_admin, world.org)
    invite(world, django_capture_on_commit_callbacks)

    response = api_call(client, "POST", "/orgs/current/members", key, json={"email": NEW_EMAIL})
    member = api_call(
        client, "POST", "/orgs/current/members", key, json={"email": world.viewer.email}
    )

    assert (response.status_code, member.status_code) == (409, 409)
    assert Invitation.objects.count() == 1


def test_api_editor_cannot_invite_or_cancel(world, client, django_capture_on_commit_callbacks):
    invitation, raw = invite(world, django_capture_on_commit_callbacks, email="first@example.test")
    key = pat_for(world.editor, world.org)
    before = snapshot()

    with django_capture_on_commit_callbacks(execute=True):
        response = api_call(client, "POST", "/orgs/current/members", key, json={"email": NEW_EMAIL})

    assert response.status_code == 403
    body = response.json()
    assert body["required"] == "organization:manage"
    assert "organization:manage" in body["detail"]
    assert snapshot() == before
    assert len(mail.outbox) == 1

    response = api_call(client, "DELETE", f"/orgs/current/members/{invitation.pk}", key)

    assert response.status_code == 403
    assert response.json()["required"] == "organization:manage"
    assert find_invitation(raw) == invitation
    assert snapshot() == before


def test_api_cannot_cancel_an_invitation_of_another_organization(
    world, client, django_capture_on_commit_callbacks
):
    invitation, raw = invite(
        world,
        django_capture_on_commit_callbacks,
        actor=world.outsider,
        organization=world.other_org,
    )
    key = pat_for(world.org_admin, world.org)

    response = api_call(client, "DELETE", f"/orgs/current/members/{invitation.pk}", key)

    assert response.status_code == 404
    assert find_invitation(raw) == invitation
    assert Invitation.objects.get().status == "pending"


def test_a_newcomer_whose_invitation_is_refused_gets_no_account(
    world, django_capture_on_commit_callbacks
):
    invitation, _ = invite(world, django_capture_on_commit_callbacks)
    Invitation.objects.filter(pk=invitation.pk).update(
        expires_at=timezone.now() - datetime.timedelta(seconds=1)
    )
    with pytest.raises(ValidationError):
        sign_up_and_accept(
            invitation=Invitation.objects.get(), full_name="New Comer", password=PASSWORD
        )
    assert not User.objects.filter(email=NEW_EMAIL).exists()

    fresh, _ = invite(world, django_capture_on_commit_callbacks, email="second@example.test")
    user = sign_up_and_accept(invitation=fresh, full_name="Second", password=PASSWORD)
    assert OrganizationMembership.objects.filter(user=user, organization=world.org).exists()
