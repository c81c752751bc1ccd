"""The signed-in user's access on a console page is kept in the process (rbac/resolver.py,
console_access) under the organization's authorization version, the same mechanism as API
principals (rbac/versions.Results): a warm page reads no access, and every change is refused on
the very next console request, in every process; a lost push channel means nothing is trusted.
"""

import urllib.error
import urllib.request

import pytest
from django.conf import settings as django_settings
from django.db import connection
from django.shortcuts import resolve_url
from django.test.utils import CaptureQueriesContext

from accesscontrol.organizations import services as organizations
from accesscontrol.organizations.models import OrganizationMembership
from accesscontrol.rbac import services as rbac
from accesscontrol.workspaces import services as workspaces
from accesscontrol.workspaces.models import WorkspaceMembership
from tests.factories import system_role
from tests.rbac.test_warm_path import redis_commands
from tests.support.servers import REDIS_URL, kill_channels, two_servers

DATASETS = "/o/acme/w/production/datasets/"
NEW_DATASET = "/o/acme/w/production/datasets/new/"  # datasets:create: Editor yes, Viewer no
MEMBERS = "/o/acme/members/"  # an organization page (no workspace)

# The resolver's one statement (rbac/resolver.resolve_access).
RESOLVER_SQL = 'SELECT "organizations_organizationmembership"."org_role" AS "org_role", '


def access_reads(queries) -> int:
    return sum(q["sql"].startswith(RESOLVER_SQL) for q in queries.captured_queries)


def editor_membership(world):
    return WorkspaceMembership.objects.get(
        workspace=world.workspace, org_membership__user=world.editor
    )


def demote(world):
    workspaces.change_workspace_role(
        actor=world.org_admin, membership=editor_membership(world), role=system_role("Viewer")
    )


def remove_from_workspace(world):
    workspaces.remove_workspace_member(actor=world.org_admin, membership=editor_membership(world))


def remove_from_organization(world):
    membership = OrganizationMembership.objects.get(user=world.editor, organization=world.org)
    organizations.remove_org_member(actor=world.org_admin, membership=membership)


def make_org_viewer(world):
    membership = OrganizationMembership.objects.get(user=world.editor, organization=world.org)
    organizations.change_org_role(actor=world.org_admin, membership=membership, org_role="viewer")


def edit_their_role(world):
    """The editor holds a custom role, which then loses datasets:create."""
    writers = rbac.create_role(
        actor=world.org_admin,
        organization=world.org,
        name="Writers",
        permissions=["datasets:read", "datasets:create", "workspaces:read"],
    )
    workspaces.change_workspace_role(
        actor=world.org_admin, membership=editor_membership(world), role=writers
    )
    return lambda: rbac.update_role(
        actor=world.org_admin, role=writers, permissions=["datasets:read", "workspaces:read"]
    )


def archive(world):
    workspaces.update_workspace(actor=world.org_admin, workspace=world.workspace, archived=True)


# change -> what the editor's next request for NEW_DATASET answers
CHANGES = {
    "demoted": (demote, 403),
    "removed from the workspace": (remove_from_workspace, 403),
    "removed from the organization": (remove_from_organization, 404),
    "made an organization viewer": (make_org_viewer, 403),
    "workspace archived": (archive, 403),
}


def warm_up(client, url=NEW_DATASET):
    for _ in range(2):
        assert client.get(url).status_code == 200


@pytest.mark.parametrize("url", [DATASETS, NEW_DATASET, MEMBERS])
def test_a_warm_page_reads_no_access_and_one_query_less(client, world, url):
    client.force_login(world.org_admin)
    with CaptureQueriesContext(connection) as cold:
        assert client.get(url).status_code == 200
    assert access_reads(cold) == 1
    with CaptureQueriesContext(connection) as warm:
        assert client.get(url).status_code == 200
    assert access_reads(warm) == 0
    assert len(warm) == len(cold) - 1


def test_a_warm_page_costs_the_session_the_user_and_its_own_queries(
    client, world, django_assert_max_num_queries
):
    client.force_login(world.editor)
    warm_up(client)
    # session, user, workspace (+ organization), the sidebar's organizations and workspaces
    with django_assert_max_num_queries(5):
        assert client.get(NEW_DATASET).status_code == 200


def test_access_is_kept_per_user_organization_and_workspace(client, world):
    client.force_login(world.editor)
    warm_up(client)
    assert client.get("/o/acme/w/staging/datasets/new/").status_code in (403, 404)
    client.force_login(world.viewer)
    assert client.get(NEW_DATASET).status_code == 403  # not the editor's cached answer
    client.force_login(world.outsider)
    assert client.get(NEW_DATASET).status_code == 404


@pytest.mark.parametrize("change", list(CHANGES))
def test_a_change_is_refused_on_the_next_console_request(client, world, change):
    make_change, status = CHANGES[change]
    client.force_login(world.editor)
    warm_up(client)
    make_change(world)
    assert client.get(NEW_DATASET).status_code == status


def test_a_role_edit_is_refused_on_the_next_console_request(client, world):
    take_away = edit_their_role(world)
    client.force_login(world.editor)
    warm_up(client)
    take_away()
    assert client.get(NEW_DATASET).status_code == 403


def test_a_deactivated_user_is_signed_out_on_the_next_request(client, world):
    client.force_login(world.editor)
    warm_up(client)
    world.editor.is_active = False
    world.editor.save()
    response = client.get(NEW_DATASET)
    assert response.status_code == 302
    assert response["Location"].startswith(resolve_url(django_settings.LOGIN_URL))


def test_without_the_authz_cache_every_page_reads_access(client, world, settings):
    settings.AUTHZ_CACHE = False
    client.force_login(world.editor)
    warm_up(client)
    with CaptureQueriesContext(connection) as queries:
        assert client.get(NEW_DATASET).status_code == 200
    assert access_reads(queries) == 1


# With Redis: the push channel ------------------------------------------------------------------

transactional = pytest.mark.django_db(transaction=True)  # the servers and the channel see commits


@transactional
def test_with_redis_a_warm_page_asks_redis_nothing_and_reads_no_access(client, world, shared_redis):
    client.force_login(world.editor)
    warm_up(client)
    with redis_commands() as sent, CaptureQueriesContext(connection) as queries:
        assert client.get(NEW_DATASET).status_code == 200
    assert sent == []
    assert access_reads(queries) == 0


@transactional
@pytest.mark.parametrize("change", ["demoted", "removed from the organization"])
def test_with_redis_a_change_is_refused_on_the_next_request(client, world, shared_redis, change):
    make_change, status = CHANGES[change]
    client.force_login(world.editor)
    warm_up(client)
    make_change(world)
    assert client.get(NEW_DATASET).status_code == status


@transactional
def test_a_lost_channel_is_not_trusted(client, world, shared_redis):
    client.force_login(world.editor)
    warm_up(client)
    assert kill_channels(shared_redis) == 1
    # Changed while no invalidation can reach this process: the demotion's push is lost.
    demote(world)
    with redis_commands() as sent, CaptureQueriesContext(connection) as queries:
        assert client.get(NEW_DATASET).status_code == 403
    assert sent  # the version was read from Redis, not trusted from before the loss
    assert access_reads(queries) == 1


@transactional
def test_a_lost_channel_costs_a_read_until_it_is_back_then_warm_again(client, world, shared_redis):
    client.force_login(world.editor)
    warm_up(client)
    assert kill_channels(shared_redis) == 1
    with CaptureQueriesContext(connection) as queries:
        assert client.get(NEW_DATASET).status_code == 200
    assert access_reads(queries) == 1
    assert client.get(NEW_DATASET).status_code == 200
    with redis_commands() as sent, CaptureQueriesContext(connection) as queries:
        assert client.get(NEW_DATASET).status_code == 200
    assert (sent, access_reads(queries)) == ([], 0)


# Two processes -----------------------------------------------------------------------------


SERVERS_SECRET_KEY = "test-only-insecure-secret-key"  # what two_servers gives its processes


def console_get(base, path, cookie):
    """GET a console page with a session cookie; the status, redirects not followed."""

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args, **kwargs):
            return None

    opener = urllib.request.build_opener(NoRedirect)
    request = urllib.request.Request(f"{base}{path}", headers={"Cookie": cookie})
    try:
        with opener.open(request, timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


@transactional
def test_every_change_is_seen_by_both_processes_on_the_next_console_request(
    client, world, shared_redis, settings
):
    settings.SECRET_KEY = SERVERS_SECRET_KEY  # the session must be valid there
    client.force_login(world.editor)
    name = django_settings.SESSION_COOKIE_NAME
    cookie = f"{name}={client.cookies[name].value}"
    take_away = edit_their_role(world)
    with two_servers(REDIS_URL, shared_redis) as urls:

        def everywhere():
            return [console_get(base, NEW_DATASET, cookie) for base in urls]

        for _ in range(3):  # the last ones from each process's cache
            assert everywhere() == [200, 200]
        take_away()  # the custom role loses datasets:create
        assert everywhere() == [403, 403]

        workspaces.change_workspace_role(
            actor=world.org_admin, membership=editor_membership(world), role=system_role("Editor")
        )
        for _ in range(3):
            assert everywhere() == [200, 200]
        remove_from_organization(world)
        assert everywhere() == [404, 404]
