"""A filter longer than anything it could match is refused, on every path that reads the log:
the console page, its CSV and OCSF exports (which must never export more than was asked for)
and the API (422). Cut short to its first 255 characters instead, a `target` filter would match
labels the whole of it does not, and an export would hold events nobody asked for."""

import pytest

from accesscontrol.audit.models import AuditEvent
from tests.factories import pat_for
from tests.support.api import api_call

LONGEST = "x" * 255  # the longest target label there is (AuditEvent.target_label)
TOO_LONG = {
    "target": LONGEST + "y",  # contained in no label of 255 characters
    "actor": "a" * 255 + "b",
    "action": "workspace." + "r" * 54 + "s",  # 65 characters: no action is that long
}


@pytest.fixture
def events(world):
    common = {"organization": world.org, "actor_kind": "user", "target_type": "workspace"}
    return AuditEvent.objects.bulk_create(
        [
            AuditEvent(
                actor_label="a" * 255, action="workspace.renamed", target_label=LONGEST, **common
            ),
            AuditEvent(
                actor_label="alice@acme.test",
                action="workspace." + "r" * 54,
                target_label="other",
                **common,
            ),
        ]
    )


@pytest.mark.parametrize("name", list(TOO_LONG))
@pytest.mark.parametrize("path", ["export.csv", "export.ocsf.jsonl"])
def test_an_export_refuses_a_filter_longer_than_any_match(client, world, events, name, path):
    client.force_login(world.org_admin)

    response = client.get(f"/o/acme/audit/{path}", {name: TOO_LONG[name]})

    assert response.status_code == 400, response.status_code
    assert "Keep" in response.content.decode()


@pytest.mark.parametrize("name", list(TOO_LONG))
def test_the_page_says_the_filter_is_refused_and_lists_nothing(client, world, events, name):
    client.force_login(world.org_admin)

    response = client.get("/o/acme/audit/", {name: TOO_LONG[name]})

    # Refused, not ignored: no unfiltered events under an error about the filter.
    assert response.status_code == 422
    body = response.content.decode()
    assert 'class="toast toast-error"' in body
    assert f"Keep the {name} filter to" in body
    assert "alice@acme.test" not in body


def test_the_page_refuses_a_date_it_cannot_read_and_lists_nothing(client, world, events):
    client.force_login(world.org_admin)

    response = client.get("/o/acme/audit/", {"since": "yesterday"})

    assert response.status_code == 422
    body = response.content.decode()
    assert "Use a date like" in body
    assert "alice@acme.test" not in body


@pytest.mark.parametrize("name", list(TOO_LONG))
def test_the_api_refuses_it_too(client, world, events, name):
    key = pat_for(world.org_admin, world.org)

    response = api_call(client, "get", f"/audit-logs?{name}={TOO_LONG[name]}", key)

    assert response.status_code == 422, response.content
    assert name in response.content.decode()
