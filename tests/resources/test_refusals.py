"""A refused request leaves nothing behind: the next request on the same connection is served.

Both found by the fuzz run's stateful walk: the database refused the value (an offset beyond a
bigint, NUL inside JSON), the API answered 422, but the caller's transaction was left aborted,
so the next request in it was a 500. Each is checked as a pair of requests in one transaction,
as the test client (and a worker's connection inside ATOMIC_REQUESTS) makes them.
"""

import pytest

from tests.factories import service_key_for
from tests.support.api import api_call

pytestmark = pytest.mark.django_db

LISTS = ["/sessions", "/datasets", "/examples", "/feedback", "/annotation-queues", "/prompts"]
BEYOND_BIGINT = "100000000000000000000"


@pytest.mark.parametrize("path", LISTS)
def test_an_offset_beyond_a_bigint_is_refused_at_the_edge(client, world, path):
    key = service_key_for(world.workspace, "Admin")
    refused = api_call(client, "GET", f"{path}?offset={BEYOND_BIGINT}", key)
    assert refused.status_code == 422, refused.content
    assert "offset" in refused.content.decode()
    assert api_call(client, "GET", path, key).status_code == 200


def test_nul_inside_json_is_refused_and_the_next_request_is_served(client, world):
    key = service_key_for(world.workspace, "Admin")
    created = api_call(client, "POST", "/sessions", key, json={"name": "nul-in-extra"})
    assert created.status_code in (200, 201), created.content
    session = created.json()["id"]
    refused = api_call(
        client, "PATCH", f"/sessions/{session}", key, json='{"extra": {"a": "\\u0000"}}'
    )
    assert refused.status_code == 422, refused.content
    listed = api_call(client, "GET", "/sessions", key)
    assert listed.status_code == 200
    [row] = [s for s in listed.json() if s["id"] == session]
    assert row.get("extra") in (None, {})
