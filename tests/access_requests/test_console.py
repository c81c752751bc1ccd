"""The console side: a 403 that names who can grant and offers "Request access"; the pending
list with its sidebar count; approve (with an expiry) and deny; the member page's remaining time."""

import re

from django.core import mail
from django.urls import reverse

from accesscontrol.access_requests.models import AccessRequest
from accesscontrol.access_requests.services import create_access_request
from accesscontrol.rbac.actor import Actor
from accesscontrol.workspaces.models import WorkspaceMembership
from tests.factories import make_people_manager, system_role


def newcomers_request(world):
    """A pending request to read production's datasets, by the member of no workspace."""
    return create_access_request(
        actor=Actor.for_user(world.member_without_workspace, world.org),
        workspace=world.workspace,
        permission="datasets:read",
        reason="reading",
    )


def dataset_create_url(world):
    return reverse("dataset-create", args=[world.org.slug, world.workspace.slug])


def test_a_workspace_403_names_who_can_grant_and_offers_request_access(client, world):
    client.force_login(world.viewer)
    resp = client.get(dataset_create_url(world))
    assert resp.status_code == 403
    html = resp.content.decode()
    assert "Request access" in html
    assert 'name="permission" value="datasets:create"' in html
    # The workspace's admin first, then the organization's admin: real people, by address.
    names = re.findall(r'href="mailto:([^"]+)"', html)
    assert names[:2] == [world.workspace_admin.email, world.org_admin.email]
    assert "Editor is the weakest role" in html
    assert resp["X-Request-Access-Url"].startswith(reverse("access-request-new", args=["acme"]))
    assert "permission=datasets%3Acreate" in resp["X-Request-Access-Url"]


def test_a_workspace_admin_who_cannot_grant_it_is_not_suggested(client, world):
    make_people_manager(world, world.workspace_admin)
    client.force_login(world.viewer)
    html = client.get(dataset_create_url(world)).content.decode()
    names = re.findall(r'href="mailto:([^"]+)"', html)
    assert world.workspace_admin.email not in names
    assert names == [world.org_admin.email]


def test_the_org_level_403_says_the_members_real_org_role(client, world):
    client.force_login(world.editor)
    resp = client.get(reverse("audit-log", args=[world.org.slug]))
    assert resp.status_code == 403
    html = resp.content.decode()
    assert "Your role here" not in html
    assert "Your organization role</dt><dd>Member" in html
    assert re.findall(r'href="mailto:([^"]+)"', html) == [world.org_admin.email]
    assert 'name="permission" value="organization:manage"' in html


def test_request_from_the_403_then_approve_in_the_console(
    client, world, django_capture_on_commit_callbacks
):
    requester = world.member_without_workspace
    client.force_login(requester)
    with django_capture_on_commit_callbacks(execute=True):
        resp = client.post(
            reverse("access-request-new", args=["acme"]),
            {
                "workspace": "production",
                "permission": "datasets:create",
                "role": system_role("Editor").pk,
                "reason": "the release",
            },
        )
    assert resp.status_code == 302 and resp["Location"].endswith("/access-requests/mine/")
    request = AccessRequest.objects.get()
    assert (request.role.name, request.reason) == ("Editor", "the release")
    assert mail.outbox and world.org_admin.email in mail.outbox[0].to

    client.force_login(world.workspace_admin)
    page = client.get(reverse("workspace-home", args=["acme", "production"])).content.decode()
    assert re.search(r"Access requests <span class=\"nav-count\"[^>]*>1</span>", page)
    listing = client.get(reverse("access-requests", args=["acme"])).content.decode()
    assert requester.email in listing and "the release" in listing
    resp = client.post(
        reverse("access-request-approve", args=["acme", request.pk]),
        {"role": system_role("Editor").pk, "expiry": "1w", "note": "go"},
    )
    assert resp.status_code == 302
    membership = WorkspaceMembership.objects.get(
        org_membership__user=requester, workspace=world.workspace
    )
    assert membership.role.name == "Editor" and membership.expires_at is not None

    # The member page shows the time left; the requester's page shows the answer.
    members = client.get(reverse("workspace-members", args=["acme", "production"]))
    assert "temporary · ends in 6" in members.content.decode()  # 6 days, 23 hours
    review = client.get(reverse("workspace-access", args=["acme", "production"]))
    assert "temporary · ends in 6" in review.content.decode()  # the access review marks it
    client.force_login(requester)
    mine = client.get(reverse("my-access-requests", args=["acme"])).content.decode()
    assert "You are Editor until" in mine and "go" in mine


def test_asking_in_an_archived_workspace_shows_the_refusal_on_the_workspace_field(client, world):
    world.workspace.archived = True
    world.workspace.save(update_fields=["archived"])
    client.force_login(world.member_without_workspace)
    resp = client.post(
        reverse("access-request-new", args=["acme"]),
        {"workspace": "production", "permission": "datasets:read", "reason": "reading"},
    )
    assert resp.status_code == 422
    field = re.search(
        r'<div class="field has-error">\s*<label for="id_workspace">.*?</div>', resp.text, re.S
    )
    assert field and "production is archived (read-only)" in field.group(0)
    assert not AccessRequest.objects.exists()


def test_a_viewer_cannot_approve_from_the_console(client, world):
    request = newcomers_request(world)
    client.force_login(world.viewer)
    assert (
        "No pending requests"
        in client.get(reverse("access-requests", args=["acme"])).content.decode()
    )
    resp = client.post(
        reverse("access-request-approve", args=["acme", request.pk]), {"expiry": "1h"}
    )
    assert resp.status_code == 404
    request.refresh_from_db()
    assert request.status == AccessRequest.PENDING


def test_deny_with_a_note(client, world):
    request = newcomers_request(world)
    client.force_login(world.org_admin)
    resp = client.post(reverse("access-request-deny", args=["acme", request.pk]), {"note": "no"})
    assert resp.status_code == 302
    request.refresh_from_db()
    assert (request.status, request.note) == (AccessRequest.DENIED, "no")
