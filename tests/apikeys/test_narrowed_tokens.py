"""Narrowed personal access tokens through the real API (issue #17, item 1).

A token limited to some workspaces and some permissions acts with the intersection of its
user's current access and its limits; a refusal says whether the role or the limit refused.
"""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from accesscontrol.apikeys.models import PersonalAccessToken
from accesscontrol.audit.models import AuditEvent
from accesscontrol.organizations.models import OrganizationMembership
from accesscontrol.resources.models import Dataset
from accesscontrol.workspaces.models import WorkspaceMembership
from accesscontrol.workspaces.services import change_workspace_role
from tests.factories import READ, SYSTEM, pat_for, service_key_for, system_role
from tests.support.api import api_call

TOKENS = "/orgs/current/personal-access-tokens"
TRACING = {"runs:create", "projects:read", "projects:create"}


def create_token(client, key, **body):
    return api_call(client, "POST", TOKENS, key, json={"name": "narrow", **body})


def test_a_read_only_token_of_an_org_admin_reads_its_one_workspace_and_names_its_limit(
    client, world
):
    """Done when: a read-only PAT of an org admin can read datasets in the one workspace it
    names and gets a 403 that names the token's limit when it tries to create one."""
    staging, production = world.other_workspace, world.workspace
    Dataset.objects.create(workspace=staging, name="faq")
    Dataset.objects.create(workspace=production, name="production data")
    admin_key = pat_for(world.org_admin, world.org)
    made = create_token(client, admin_key, preset="read-only", workspace_ids=[str(staging.pk)])
    assert made.status_code == 201, made.json()
    assert made.json()["limits"] == {
        "preset": "read-only",
        "permissions": sorted(READ | {"organization:read"}),
        "workspace_ids": [str(staging.pk)],
    }
    narrow = made.json()["key"]

    # Reads the datasets of the one workspace it names: with X-Tenant-Id, and without it (its
    # default workspace is inside its limit, though the admin's own default is 'production').
    for tenant in (staging.pk, None):
        listed = api_call(client, "GET", "/datasets", narrow, tenant=tenant)
        assert listed.status_code == 200, listed.json()
        assert [d["name"] for d in listed.json()] == ["faq"]

    refused = api_call(client, "POST", "/datasets", narrow, tenant=staging.pk, json={"name": "new"})
    assert refused.status_code == 403
    body = refused.json()
    assert body["error"] == "token_limit"
    assert body["required"] == "datasets:create"
    assert body["limit"] == f"read-only in workspace {staging.pk}"
    assert body["workspace"] == str(staging.pk)
    assert body["role"] == "Admin"
    assert "limited to read-only" in body["detail"]
    assert "its user's role (Admin) would allow it" in body["detail"]
    assert not Dataset.objects.filter(name="new").exists()

    # The other workspace is outside its limit: refused, naming the limit, before any data.
    outside = api_call(client, "GET", "/datasets", narrow, tenant=production.pk)
    assert outside.status_code == 403
    assert outside.json()["error"] == "token_limit"
    assert f"limited to workspace {staging.pk}" in outside.json()["detail"]
    # ... and the admin's own token still may create there: the user was not narrowed.
    created = api_call(
        client, "POST", "/datasets", admin_key, tenant=staging.pk, json={"name": "new"}
    )
    assert created.status_code == 201


def test_whoami_shows_the_limits_and_what_they_leave(client, world):
    raw = pat_for(world.editor, world.org, preset="tracing-only")
    body = api_call(client, "GET", "/auth/whoami", raw).json()
    assert body["limits"] == {
        "preset": "tracing-only",
        "permissions": sorted(TRACING),
        "workspace_ids": None,
    }
    assert set(body["permissions"]) == TRACING
    assert "datasets:create" in body["withheld_by_limits"]
    assert "organization:read" in body["withheld_by_limits"]
    assert body["role"] == "Editor"

    plain = api_call(client, "GET", "/auth/whoami", pat_for(world.editor, world.org)).json()
    assert plain["limits"] is None
    assert plain["withheld_by_limits"] == []
    sk = api_call(client, "GET", "/auth/whoami", service_key_for(world.workspace)).json()
    assert sk["limits"] is None


def test_a_403_says_whether_the_role_or_the_limit_refused(client, world):
    raw = pat_for(world.editor, world.org, permissions=["datasets:read", "workspaces:manage"])
    # The limit leaves out datasets:create, which the Editor role allows: the limit refused.
    by_limit = api_call(client, "POST", "/datasets", raw, json={"name": "x"})
    assert by_limit.status_code == 403
    assert by_limit.json()["error"] == "token_limit"
    assert "datasets:read, workspaces:manage" in by_limit.json()["limit"]
    # The limit names workspaces:manage, which the Editor role does not allow: the role refused.
    by_role = api_call(client, "GET", "/api-key", raw)
    assert by_role.status_code == 403
    assert by_role.json()["error"] == "permission_denied"
    assert by_role.json()["role"] == "Editor"


def test_a_narrowed_token_never_manages_the_organization_nor_makes_tokens(client, world):
    raw = pat_for(world.org_admin, world.org, workspaces=[world.workspace.pk])
    whoami = api_call(client, "GET", "/auth/whoami", raw).json()
    assert "organization:manage" not in whoami["permissions"]
    assert "organization:pats:create" not in whoami["permissions"]
    assert {"organization:manage", "organization:pats:create"} <= set(whoami["withheld_by_limits"])
    refused = create_token(client, raw)
    assert refused.status_code == 403
    assert refused.json()["error"] == "token_limit"
    assert PersonalAccessToken.objects.filter(name="narrow").count() == 0
    # A service key it makes is no stronger than the token itself (here: Admin, all of it, in
    # its one workspace); in another workspace it cannot act at all.
    made = api_call(client, "POST", "/api-key", raw, json={"name": "ci"})
    assert made.status_code == 201, made.json()
    org_key = api_call(client, "POST", "/api-key", raw, json={"name": "o", "scope": "organization"})
    assert org_key.status_code == 403


def test_creation_refuses_bad_limits(client, world):
    key = pat_for(world.editor, world.org)
    cases = [
        ({"preset": "everything"}, "preset"),
        ({"permissions": []}, "permissions"),
        ({"permissions": ["datasets:read", "organization:manage"]}, "permissions"),
        ({"permissions": ["datasets:read"], "preset": "read-only"}, "permissions"),
        ({"workspace_ids": []}, "workspace_ids"),
        # The editor is not in 'staging'; Globex's workspace is another organization's.
        ({"workspace_ids": [str(world.other_workspace.pk)]}, "workspace_ids"),
        ({"workspace_ids": [str(world.other_workspace_of_other_org.pk)]}, "workspace_ids"),
    ]
    for body, field in cases:
        response = create_token(client, key, **body)
        assert response.status_code == 422, (body, response.json())
        assert field in str(response.json()["detail"]), (body, response.json())
    assert not PersonalAccessToken.objects.filter(name="narrow").exists()
    # Same words for a workspace of another organization and one the user is not in.
    staging, globex = (
        create_token(client, key, workspace_ids=[str(w.pk)]).json()["detail"]
        for w in (world.other_workspace, world.other_workspace_of_other_org)
    )
    assert staging.replace(str(world.other_workspace.pk), "ID") == globex.replace(
        str(world.other_workspace_of_other_org.pk), "ID"
    )


def test_the_limits_are_audited_with_the_token(world):
    pat_for(world.editor, world.org, preset="read-only", workspaces=[world.workspace])
    event = AuditEvent.objects.get(action="personal_access_token.created")
    assert event.changes["after"]["limits"] == {
        "preset": "read-only",
        "permissions": sorted(READ | {"organization:read"}),
        "workspace_ids": [str(world.workspace.pk)],
    }


def test_a_promotion_never_widens_and_a_demotion_narrows_at_once(client, world):
    viewer = OrganizationMembership.objects.get(user=world.viewer, organization=world.org)
    raw = pat_for(world.viewer, world.org, preset="tracing-only")

    def held():
        return set(api_call(client, "GET", "/auth/whoami", raw).json()["permissions"])

    assert held() == {"projects:read"}  # a Viewer may read projects, not send runs
    membership = WorkspaceMembership.objects.get(org_membership=viewer, workspace=world.workspace)
    change_workspace_role(actor=SYSTEM, membership=membership, role=system_role("Admin"))
    assert held() == TRACING  # promoted to Admin: the token holds its limit, no more
    viewer.org_role = "admin"
    viewer.save(update_fields=["org_role"])
    assert held() == TRACING
    viewer.org_role = "viewer"  # demoted to organization viewer: read-only everywhere
    viewer.save(update_fields=["org_role"])
    assert held() == {"projects:read"}


def test_a_change_of_limits_is_seen_by_the_next_request_through_the_cache(client, world):
    raw = pat_for(world.editor, world.org)
    assert api_call(client, "GET", "/datasets", raw).status_code == 200
    token = PersonalAccessToken.objects.get(org_membership__user=world.editor)
    token.permission_limit = ["runs:create"]
    token.save(update_fields=["permission_limit"])
    assert api_call(client, "GET", "/datasets", raw).json()["error"] == "token_limit"


def test_a_narrowed_token_is_authenticated_in_one_statement(client, world, on_postgres):
    raw = pat_for(world.editor, world.org, preset="read-only", workspaces=[world.workspace])
    from accesscontrol.apikeys.authentication import authenticate, forget_cached_principals

    for tenant in (None, str(world.workspace.pk)):
        forget_cached_principals()
        with CaptureQueriesContext(connection) as queries:
            principal = authenticate(raw, tenant)
        selects = [q for q in queries if q["sql"].lstrip().upper().startswith("SELECT")]
        assert len(selects) == 1
        assert principal.workspace == world.workspace
        assert principal.access.permissions == READ | {"organization:read"}


@pytest.mark.parametrize("caller", ["outsider", "service_key"])
def test_who_cannot_make_a_narrowed_token(client, world, caller):
    if caller == "outsider":
        key = pat_for(world.outsider, world.other_org)
        response = create_token(client, key, workspace_ids=[str(world.workspace.pk)])
        assert response.status_code == 422  # Acme's workspace is none of the outsider's
    else:
        key = service_key_for(world.workspace, "Admin")
        response = create_token(client, key, preset="read-only")
        assert response.status_code == 403  # a service key has no user to act for


@pytest.mark.django_db(transaction=True)
def test_the_langsmith_sdk_surfaces_the_limit(live_server, world):
    """The SDK puts our 403 body in its error: a user reads why the token was refused."""
    import langsmith
    from langsmith.utils import LangSmithError
    from urllib3.util.retry import Retry

    raw = pat_for(world.org_admin, world.org, preset="read-only", workspaces=[world.workspace])
    client = langsmith.Client(
        api_url=live_server.url + "/api/v1",
        api_key=raw,
        workspace_id=str(world.workspace.pk),
        auto_batch_tracing=False,
        timeout_ms=(5_000, 15_000),
        retry_config=Retry(total=2, backoff_factor=0, status_forcelist=()),
    )
    try:
        assert list(client.list_datasets()) == []
        # The SDK's message carries the status and our body: the code, and which side refused.
        refusal = r"(?s)403.*token_limit.*limited to read-only.*role \(Admin\) would allow"
        with pytest.raises(LangSmithError, match=refusal):
            client.create_dataset("not allowed")
    finally:
        import gc

        gc.collect()
        client.close(timeout=5)
    assert not Dataset.objects.filter(name="not allowed").exists()


def test_a_workspace_outside_the_limit_addressed_by_path_is_not_found(client, world):
    raw = pat_for(world.org_admin, world.org, workspaces=[world.workspace])
    inside = api_call(client, "GET", f"/workspaces/{world.workspace.pk}", raw)
    assert inside.status_code == 200
    outside = api_call(client, "GET", f"/workspaces/{world.other_workspace.pk}", raw)
    assert outside.status_code == 404  # like any workspace the caller cannot act in


def test_a_service_refuses_a_narrowed_token_naming_its_limit(world):
    """Services check with the actor (ARCHITECTURE §11): the same words as the gate's."""
    from accesscontrol.apikeys.authentication import authenticate
    from accesscontrol.rbac.actor import Actor, Denied

    raw = pat_for(world.editor, world.org, preset="read-only")
    actor = Actor.for_principal(authenticate(raw, str(world.workspace.pk)))
    actor.require("datasets:read", workspace=world.workspace)
    with pytest.raises(Denied) as refused:
        actor.require("datasets:create", workspace=world.workspace)
    assert refused.value.code == "token_limit"
    assert refused.value.explained["limit"] == "read-only"
    with pytest.raises(Denied) as by_role:
        actor.require("workspaces:manage", workspace=world.workspace)
    assert by_role.value.code == "permission"
