"""Access requests over the REST API, and a time-bound grant ending on the very next request
with a warm per-process cache."""

import pytest

from accesscontrol.access_requests.models import AccessRequest
from accesscontrol.apikeys import authentication
from accesscontrol.audit.models import AuditEvent
from accesscontrol.workspaces.models import WorkspaceMembership
from tests.factories import make_people_manager, pat_for, service_key_for, system_role
from tests.support.api import api_call


def ask(client, key, world, **body):
    body = {"workspace_id": str(world.workspace.pk), "reason": "release day", **body}
    return api_call(client, "POST", "/access-requests", key, json=body)


def newcomers_request(client, world, **body):
    """The id of a request made by the member of no workspace (pending)."""
    key = pat_for(world.member_without_workspace, world.org)
    return ask(client, key, world, **body).json()["id"]


def decide(client, request_id, verb, key, **kwargs):
    return api_call(client, "POST", f"/access-requests/{request_id}/{verb}", key, **kwargs)


def test_request_approve_with_expiry_then_refused_on_the_next_request(client, world, clock):
    requester = world.member_without_workspace
    requester_key = pat_for(requester, world.org)
    tenant = world.workspace.pk
    # Not a member: refused, with the next step in the body.
    resp = api_call(client, "GET", "/workspaces/current/members", requester_key, tenant=tenant)
    assert resp.status_code == 403

    made = ask(client, requester_key, world, permission="workspaces:read")
    assert made.status_code == 201, made.content
    request_id = made.json()["id"]
    assert made.json()["role_name"] is None and made.json()["permission"] == "workspaces:read"

    admin_key = pat_for(world.workspace_admin, world.org)
    listed = api_call(client, "GET", "/access-requests", admin_key).json()
    assert [r["id"] for r in listed] == [request_id]
    approved = decide(
        client, request_id, "approve", admin_key, json={"expiry": "1h", "note": "one hour"}
    )
    assert approved.status_code == 200, approved.content
    body = approved.json()
    assert (body["status"], body["granted"]) == ("approved", "Viewer")  # weakest that fits

    for _ in range(3):  # warm: the last ones come from this process's principal cache
        resp = api_call(client, "GET", "/workspaces/current/members", requester_key, tenant=tenant)
        assert resp.status_code == 200, resp.content
    [entry] = [e for k, e in authentication._principals.entries.items() if k[1] == tenant]
    assert entry[4] is not None, "the cached principal carries its grant's expiry"

    clock.advance(hours=1, seconds=1)
    resp = api_call(client, "GET", "/workspaces/current/members", requester_key, tenant=tenant)
    assert resp.status_code == 403, resp.content
    assert resp.json()["required"] == "workspaces:read"
    # The requester sees the answer on their own list.
    mine = api_call(client, "GET", "/access-requests?mine=true&status=all", requester_key).json()
    assert mine[0]["status"] == "approved" and mine[0]["note"] == "one hour"


def test_a_viewer_cannot_approve(client, world):
    request_id = newcomers_request(client, world, permission="datasets:read")
    viewer_key = pat_for(world.viewer, world.org)
    resp = decide(client, request_id, "approve", viewer_key, json={})
    assert resp.status_code == 403
    assert resp.json()["required"] == "workspaces:manage-members"
    assert AccessRequest.objects.get(pk=request_id).status == "pending"


def test_approving_a_role_one_cannot_grant_is_refused(client, world):
    make_people_manager(world, world.editor)
    request_id = newcomers_request(client, world, role_id=str(system_role("Admin").pk))
    resp = decide(
        client,
        request_id,
        "approve",
        pat_for(world.editor, world.org),
        tenant=world.workspace.pk,
        json={"expiry": "1d"},
    )
    assert resp.status_code == 403, resp.content
    assert resp.json()["error"] == "escalation"
    assert not WorkspaceMembership.objects.filter(
        org_membership__user=world.member_without_workspace
    ).exists()
    assert not AuditEvent.objects.filter(action="access_request.approved").exists()


def test_a_service_key_cannot_ask_but_an_admin_key_can_decide(client, world):
    admin_key = service_key_for(world.workspace, "Admin")
    resp = ask(client, admin_key, world, permission="datasets:read")
    assert resp.status_code == 403 and "service key" in resp.json()["detail"]
    # What to do instead: no path changes a key's role, so the answer does not say to.
    assert "makes a new key with the role it needs" in resp.json()["detail"]
    request_id = newcomers_request(client, world, permission="datasets:read")
    resp = decide(client, request_id, "deny", admin_key, json={"note": "use the shared dataset"})
    assert resp.status_code == 200 and resp.json()["decided_by"].startswith("service key")
    event = AuditEvent.objects.get(action="access_request.denied")
    assert event.changes["after"]["note"] == "use the shared dataset"


def test_another_organizations_request_id_is_404(client, world):
    request_id = newcomers_request(client, world, permission="datasets:read")
    outsider_key = pat_for(world.outsider, world.other_org)
    for method, path in [
        ("GET", f"/access-requests/{request_id}"),
        ("POST", f"/access-requests/{request_id}/approve"),
        ("POST", f"/access-requests/{request_id}/deny"),
    ]:
        resp = api_call(client, method, path, outsider_key, json={} if method == "POST" else None)
        assert resp.status_code == 404, (path, resp.content)
        assert resp.json()["error"] == "not_found"
    assert AccessRequest.objects.get(pk=request_id).status == "pending"


@pytest.mark.parametrize(
    "body,field",
    [
        ({"permission": "datasets:fly"}, "permission"),
        ({"reason": ""}, "reason"),
        ({"workspace_id": "not-a-uuid", "permission": "datasets:read"}, "workspace_id"),
    ],
)
def test_bad_input_is_422_and_writes_nothing(client, world, body, field):
    resp = ask(client, pat_for(world.member_without_workspace, world.org), world, **body)
    assert resp.status_code == 422, resp.content
    assert field in resp.content.decode()
    assert not AccessRequest.objects.exists()


@pytest.mark.parametrize(
    "archived, body, says",
    [
        (True, {"permission": "datasets:read"}, "archived"),
        (False, {"workspace_id": None, "permission": "datasets:read"}, "needs its workspace"),
    ],
)
def test_a_refused_workspace_is_named_as_the_body_names_it(client, world, archived, body, says):
    # The service refuses it (an archived workspace, or none for a workspace permission); the
    # error names the field the client sent, workspace_id, as workspace_named's "No such
    # workspace." does. The console names its own field (test_console).
    world.workspace.archived = archived
    world.workspace.save(update_fields=["archived"])
    resp = ask(client, pat_for(world.member_without_workspace, world.org), world, **body)
    assert resp.status_code == 422, resp.content
    answer = resp.json()
    assert answer["error"] == "invalid" and answer["detail"].startswith("workspace_id: ")
    assert (
        list(answer["fields"]) == ["workspace_id"] and says in answer["fields"]["workspace_id"][0]
    )
    assert not AccessRequest.objects.exists()


def test_bad_expiry_on_approve_is_422(client, world):
    request_id = newcomers_request(client, world, permission="datasets:read")
    resp = decide(
        client, request_id, "approve", pat_for(world.org_admin, world.org), json={"expiry": "1y"}
    )
    assert resp.status_code == 422


def test_members_api_sets_and_shows_an_expiry(client, world, clock):
    admin_key = pat_for(world.org_admin, world.org)

    def add_editor(expires_at):
        body = {
            "email": world.member_without_workspace.email,
            "role_id": str(system_role("Editor").pk),
            "expires_at": expires_at,
        }
        path = "/workspaces/current/members"
        return api_call(client, "POST", path, admin_key, tenant=world.workspace.pk, json=body)

    resp = add_editor("2000-01-01T00:00:00Z")
    assert resp.status_code == 422 and "expires_at" in resp.content.decode()
    resp = add_editor("2100-01-01T00:00:00Z")
    assert resp.status_code == 201, resp.content
    assert resp.json()["expires_at"].startswith("2100-01-01")
    member_id = resp.json()["id"]
    resp = api_call(
        client,
        "PATCH",
        f"/workspaces/current/members/{member_id}",
        admin_key,
        tenant=world.workspace.pk,
        json={"role_id": str(system_role("Editor").pk), "expires_at": None},
    )
    assert resp.status_code == 200 and resp.json()["expires_at"] is None
    event = AuditEvent.objects.filter(action="workspace_member.role_changed").latest("created_at")
    assert event.changes["after"]["expires_at"] is None


def test_a_tokens_default_workspace_skips_an_expired_grant(client, world, clock):
    import datetime

    from django.utils import timezone

    from accesscontrol.workspaces.services import add_workspace_member

    requester = world.member_without_workspace
    add_workspace_member(
        actor=world.org_admin,
        workspace=world.workspace,
        user=requester,
        role=system_role("Viewer"),
        expires_at=timezone.now() + datetime.timedelta(hours=1),
    )
    key = pat_for(requester, world.org)
    body = api_call(client, "GET", "/auth/whoami", key).json()
    assert body["workspace"]["id"] == str(world.workspace.pk)
    clock.advance(hours=2)
    body = api_call(client, "GET", "/auth/whoami", key).json()
    assert body["workspace"] is None and "workspaces:read" not in body["permissions"]


def test_a_viewer_upgraded_to_editor_for_an_hour_is_viewer_again_on_the_next_request(
    client, world, clock
):
    viewer_key = pat_for(world.viewer, world.org)
    tenant = world.workspace.pk

    def create_dataset(name):
        return api_call(client, "POST", "/datasets", viewer_key, tenant=tenant, json={"name": name})

    assert create_dataset("before").status_code == 403
    made = ask(client, viewer_key, world, role_id=str(system_role("Editor").pk))
    assert made.status_code == 201, made.content
    admin_key = pat_for(world.workspace_admin, world.org)
    approved = decide(client, made.json()["id"], "approve", admin_key, json={"expiry": "1h"})
    assert approved.status_code == 200, approved.content
    for n in range(3):  # warm: the last ones come from this process's principal cache
        resp = create_dataset(f"during-{n}")
        assert resp.status_code in (200, 201), resp.content
    [entry] = [e for k, e in authentication._principals.entries.items() if k[1] == tenant]
    assert entry[4] is not None, "the cached principal carries the upgrade's expiry"
    members = api_call(client, "GET", "/workspaces/current/members", admin_key, tenant=tenant)
    [me] = [m for m in members.json() if m["email"] == world.viewer.email]
    assert (me["role_name"], me["role_after_expiry_id"]) == (
        "Editor",
        str(system_role("Viewer").pk),
    )

    clock.advance(hours=1, seconds=1)
    resp = create_dataset("after")
    assert resp.status_code == 403, resp.content
    assert (
        api_call(
            client, "GET", "/workspaces/current/members", viewer_key, tenant=tenant
        ).status_code
        == 200
    )  # still a member: Viewer again
    assert WorkspaceMembership.objects.filter(
        org_membership__user=world.viewer, workspace=world.workspace
    ).exists()
