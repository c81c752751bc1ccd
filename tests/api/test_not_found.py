"""Unmatched paths under the API prefixes answer JSON 404 naming them, DEBUG or not (issue 18)."""

import pytest
from django.test import override_settings

from tests.factories import service_key_for
from tests.support.api import api_call

PATHS = [
    ("GET", "/api/v1/no/such/thing"),
    ("POST", "/api/v1/runs/stats/extra"),
    ("GET", "/api/"),
    ("DELETE", "/runs/not-a-run/share/extra"),
    ("GET", "/repos/-/x/forks"),
    ("POST", "/likes/-/x"),  # the SDK's like_prompt: not served here
    ("GET", "/v1/platform/nothing"),
    ("GET", "/public/not-a-token/run"),
]


@pytest.mark.parametrize("debug", [False, True], ids=["production", "DEBUG=1"])
@pytest.mark.parametrize("method, path", PATHS)
def test_unmatched_api_paths_answer_json(client, db, debug, method, path):
    with override_settings(DEBUG=debug):
        resp = client.generic(method, path)  # no key: the answer does not depend on one
    assert resp.status_code == 404
    assert resp["Content-Type"] == "application/json"
    assert resp.json() == {
        "error": "not_found",
        "detail": f"No API operation at {method} {path}: this server does not serve it.",
    }


@pytest.mark.parametrize("debug", [False, True], ids=["production", "DEBUG=1"])
def test_people_still_get_pages(client, world, debug):
    client.force_login(world.editor)
    with override_settings(DEBUG=debug):
        resp = client.get("/no-such-page/")
        revoked = client.get("/public/00000000-0000-4000-8000-000000000000/r")
    assert resp.status_code == 404 and not resp["Content-Type"].startswith("application/json")
    # A share page whose link is unknown (or revoked) is the view's own 404: a page.
    assert revoked.status_code == 404 and revoked["Content-Type"].startswith("text/html")


def test_a_key_does_not_change_the_answer(client, world):
    key = service_key_for(world.workspace, "Viewer")
    with override_settings(DEBUG=True):
        resp = api_call(client, "GET", "/no/such/thing", key)
    assert resp.status_code == 404 and resp.json()["error"] == "not_found"
