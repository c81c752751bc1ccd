"""NUL in a query string is refused before any view puts it in SQL (#12, finding 12).

PostgreSQL text cannot hold NUL: `/o/acme/members/?q=%00` and the audit log's filters answered
500. One middleware (accesscontrol.storable.RefuseNulInQuery) refuses it for every page (400)
and every API operation (422, the API's status for bad input); the class test walks every
console URL pattern.
"""

import re
import uuid

import pytest
from django.urls import URLResolver, get_resolver

from accesscontrol.rbac import gate
from tests.factories import service_key_for
from tests.support.api import api_call

# Every query parameter a console page reads today, each holding NUL.
CONSOLE_PARAMS = (
    "q",
    "page",
    "actor",
    "action",
    "target",
    "workspace",
    "since",
    "until",
    "cursor",
    "permission",
    "item",
    "decision",
    "next",
)
NUL_QUERY = "&".join(f"{name}=%00" for name in CONSOLE_PARAMS)
VALUES = {"org_slug": "acme", "workspace_slug": "production"}


def walk(patterns, prefix=""):
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            yield from walk(pattern.url_patterns, prefix + str(pattern.pattern))
        else:
            yield prefix + str(pattern.pattern), pattern


def console_urls():
    """A URL for every console pattern (API operations are walked in their own test)."""
    urls = []
    for route, pattern in walk(get_resolver().url_patterns):
        rule = gate.rule_of(pattern.callback)
        if rule is not None and rule.kind == gate.API:
            continue
        # Regex routes (allauth's): every named group holds a harmless value.
        route = re.sub(r"\(\?P<(\w+)>[^)]*\)", lambda m: VALUES.get(m[1], "x1"), route)
        route = route.replace("^", "").replace("$", "")
        parts = []
        for piece in route.replace(">", "<").split("<"):
            if ":" in piece or piece in VALUES:
                name = piece.rsplit(":", 1)[-1]
                default = "1" if piece.startswith("int:") else str(uuid.UUID(int=1))
                parts.append(VALUES.get(name, default))  # xdist: same on every worker
            else:
                parts.append(piece)
        urls.append("/" + "".join(parts))
    return urls


CONSOLE_URLS = console_urls()


def test_the_walk_reaches_every_console_page():
    assert len(CONSOLE_URLS) >= 60, CONSOLE_URLS
    assert "/o/acme/members/" in CONSOLE_URLS
    assert "/o/acme/w/production/members/" in CONSOLE_URLS
    assert "/o/acme/audit/" in CONSOLE_URLS


@pytest.mark.parametrize(
    "path, param",
    [
        ("/o/acme/members/", "q"),
        ("/o/acme/w/production/members/", "q"),
        ("/o/acme/audit/", "actor"),
        ("/o/acme/audit/", "target"),
        ("/o/acme/audit/", "action"),
        ("/o/acme/audit/export.csv", "actor"),
        ("/o/acme/audit/export.ocsf.jsonl", "actor"),
        ("/o/acme/w/production/access/", "permission"),
    ],
)
def test_a_search_or_filter_holding_nul_is_refused(client, world, path, param):
    client.force_login(world.org_admin)
    response = client.get(f"{path}?{param}=a%00b")
    assert response.status_code == 400
    assert "NUL" in response.text
    assert client.get(f"{path}?{param}=ab").status_code == 200


@pytest.mark.parametrize("url", CONSOLE_URLS)
def test_every_console_page_refuses_nul_in_its_query_string(client, world, url):
    client.force_login(world.org_admin)
    for method in (client.get, client.post):
        response = method(f"{url}?{NUL_QUERY}")
        assert response.status_code == 400, (url, response.status_code)


def test_an_anonymous_visitor_gets_the_same_400(client, world):
    assert client.get("/o/acme/members/?q=%00").status_code == 400


@pytest.mark.parametrize(
    "path",
    [
        "/sessions?name=%00",
        "/sessions?name_contains=%00",
        "/datasets?name=a%00",
        "/audit-logs?actor=%00",
        "/api-key?x%00=1",
    ],
)
def test_the_api_refuses_nul_in_the_query_string_with_its_json_error(client, world, path):
    # 422, the API's status for bad input (a page answers 400).
    key = service_key_for(world.workspace)
    response = api_call(client, "GET", path, key)
    assert response.status_code == 422
    assert response.json() == {
        "error": "invalid",
        "detail": "The query string holds a NUL character (%00), which no field can contain.",
    }
    # At the SDK's root paths too.
    root = client.get(path, headers={"X-API-Key": key})
    assert root.status_code in (422, 404)
    if root.status_code == 422:
        assert root.json()["error"] == "invalid"
