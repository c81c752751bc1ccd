"""DELETE /api/v1/auth/self: whoever holds a key may revoke it with the key itself (possession
already proves the power to abuse it), audited, refused from the very next request on."""

import pytest

from accesscontrol.apikeys import keys
from accesscontrol.apikeys.models import PersonalAccessToken, ServiceKey
from accesscontrol.audit.models import AuditEvent
from tests.factories import pat_for, service_key_for
from tests.support.api import api_call
from tests.support.db import assert_no_key_in_audit


def row_of(raw):
    model = PersonalAccessToken if raw.startswith("lsv2_pt_") else ServiceKey
    return model.objects.get(digest=keys.digest(raw))


@pytest.mark.parametrize("kind", ["personal_access_token", "service_key"])
def test_a_key_revokes_itself_and_is_refused_on_its_next_request(client, world, kind):
    if kind == "service_key":
        raw = service_key_for(world.workspace, "Viewer")  # no power to revoke keys otherwise
    else:
        raw = pat_for(world.member_without_workspace, world.org)
    other = service_key_for(world.workspace)
    assert api_call(client, "get", "/auth/whoami", raw).status_code == 200  # cached here

    response = api_call(client, "delete", "/auth/self", raw)

    assert response.status_code == 200, response.content
    key = row_of(raw)
    assert response.json()["kind"] == kind
    assert response.json()["hint"] == key.hint
    assert key.revoked_at is not None and key.revoked_reason == "self"
    refused = api_call(client, "get", "/auth/whoami", raw)
    assert refused.status_code == 401
    assert refused.json()["error"] == "revoked_api_key"
    assert api_call(client, "get", "/auth/whoami", other).status_code == 200  # only itself
    event = AuditEvent.objects.get(action=f"{kind}.revoked")
    assert event.actor_id == str(key.pk) and event.target_id == str(key.pk)
    assert event.changes["after"]["revoked_reason"] == "self"
    assert_no_key_in_audit([raw, other])


def test_without_a_key_or_with_a_dead_one_nothing_is_revoked(client, world):
    assert api_call(client, "delete", "/auth/self").status_code == 401
    raw = service_key_for(world.workspace)
    api_call(client, "delete", "/auth/self", raw)
    before = AuditEvent.objects.count()
    again = api_call(client, "delete", "/auth/self", raw)
    assert again.status_code == 401
    assert again.json()["error"] == "revoked_api_key"
    assert AuditEvent.objects.count() == before


def test_the_console_says_the_key_was_revoked_with_itself(client, world):
    raw = pat_for(world.editor, world.org)
    api_call(client, "delete", "/auth/self", raw)
    client.force_login(world.editor)
    page = client.get(f"/o/{world.org.slug}/tokens/").content.decode()
    assert "revoked with the key itself" in page
