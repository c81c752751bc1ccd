"""The console page at the run URL the SDK's get_run_url builds (issue 18 §5):
/o/<workspace id>/projects/p/<project id>/r/<run id>. The real SDK building it is in
tests/api/test_langsmith_sdk_hub.py."""

import uuid

import pytest
from django.test import Client

from tests.factories import (
    OrganizationMembershipFactory,
    RoleFactory,
    UserFactory,
    WorkspaceMembershipFactory,
    ingested_run,
)


@pytest.fixture
def run(world):
    return ingested_run(world.workspace)


def url(workspace, project_id, run_id):
    return f"/o/{workspace.pk}/projects/p/{project_id}/r/{run_id}?poll=true"


def signed_in(user):
    client = Client()
    client.force_login(user)
    return client


def test_a_viewer_sees_the_run_page(world, run):
    resp = signed_in(world.viewer).get(url(world.workspace, run.project_id, run.pk))
    assert resp.status_code == 200
    assert resp.context["run"].pk == run.pk and resp.context["current_workspace"] == world.workspace


def test_signed_out_is_sent_to_sign_in(world, run):
    resp = Client().get(url(world.workspace, run.project_id, run.pk))
    assert resp.status_code == 302 and resp["Location"].startswith("/login/")


def test_a_role_without_runs_read_is_refused_naming_it(world, run):
    role = RoleFactory(organization=world.org, name="Datasets only", permissions=["datasets:read"])
    user = UserFactory()
    membership = OrganizationMembershipFactory(user=user, organization=world.org)
    WorkspaceMembershipFactory(org_membership=membership, workspace=world.workspace, role=role)
    resp = signed_in(user).get(url(world.workspace, run.project_id, run.pk))
    assert resp.status_code == 403
    assert (
        "runs:read" in resp["X-Required-Permission"]
        or "projects:read" in (resp["X-Required-Permission"])
    )


@pytest.mark.parametrize("who", ["outsider", "member_without_workspace"])
def test_a_workspace_out_of_reach_is_not_found(world, run, who):
    resp = signed_in(getattr(world, who)).get(url(world.workspace, run.project_id, run.pk))
    assert resp.status_code == 404


def test_a_run_of_another_project_or_workspace_is_not_found(world, run):
    viewer = signed_in(world.viewer)
    assert viewer.get(url(world.workspace, uuid.uuid4(), run.pk)).status_code == 404
    assert viewer.get(url(world.workspace, run.project_id, uuid.uuid4())).status_code == 404
    assert viewer.get(url(world.other_workspace, run.project_id, run.pk)).status_code == 404
