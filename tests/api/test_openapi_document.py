"""The OpenAPI document is generated once per API and URL prefix (api.DocumentedOnceAPI), and is
exactly what ninja would generate afresh: paths, security schemes, servers and all."""

import json

import pytest
from ninja import NinjaAPI
from ninja.errors import ConfigError
from ninja.responses import NinjaJSONEncoder

from accesscontrol.api import registry
from accesscontrol.api.api import APIS, build_api
from accesscontrol.api.router import GatedRouter
from accesscontrol.rbac.gate import public


def afresh(each, **kwargs):
    return NinjaAPI.get_openapi_schema(each, **kwargs)


@pytest.mark.parametrize("each", APIS, ids=lambda each: each.urls_namespace)
def test_each_prefix_gets_the_document_ninja_generates(each):
    for kwargs in ({}, {"path_prefix": ""}, {"path_prefix": "elsewhere/"}):
        for _ in range(2):  # generated, then from the cache
            document = each.get_openapi_schema(**kwargs)
            assert document == afresh(each, **kwargs)
            assert document["servers"] == each.servers
    schemes = each.get_openapi_schema()["components"]["securitySchemes"]
    assert schemes == {
        "ApiKeyHeader": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
        "BearerKey": {"type": "http", "scheme": "bearer"},
    }


def test_a_caller_changing_its_copy_changes_no_one_elses(client, db):
    api = APIS[0]
    mine = api.get_openapi_schema()
    mine["paths"].clear()
    mine["components"]["securitySchemes"]["ApiKeyHeader"]["name"] = "X-Changed"
    mine["servers"].append({"url": "https://changed.test"})
    served = client.get("/api/v1/openapi.json").json()
    assert served == json.loads(json.dumps(afresh(api), cls=NinjaJSONEncoder))
    assert api.get_openapi_schema() == afresh(api)


def test_no_operation_can_be_added_once_the_document_exists():
    # Why the cache is sound: ninja freezes the routers when it first binds them.
    router = GatedRouter()

    @router.get("/first")
    @public
    def first(request):
        return None

    each = build_api("documented-once", [router], docs_url=None)
    try:
        assert set(each.get_openapi_schema(path_prefix="")["paths"]) == {"/first"}
        with pytest.raises(ConfigError):

            @router.get("/later")
            @public
            def later(request):
                return None
    finally:
        registry.forget_api(each)


def test_no_two_schemas_share_a_name():
    """ninja names an OpenAPI component after its class: two classes of one name become one
    component, and one operation's document (and every client reading it) shows the other's body."""
    from pydantic import BaseModel

    seen, todo = {}, [BaseModel]
    while todo:
        cls = todo.pop()
        todo.extend(cls.__subclasses__())
        if cls.__module__.startswith("accesscontrol.") and "[" not in cls.__name__:
            seen.setdefault(cls.__name__, set()).add(f"{cls.__module__}.{cls.__qualname__}")
    clashes = {name: where for name, where in seen.items() if len(where) > 1}
    assert not clashes, clashes
