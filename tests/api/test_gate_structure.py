"""The API half of the gate is structural (issue 13, item 6; ARCHITECTURE §6).

GatedRouter, build_api and gated_urls record what they gate in accesscontrol.api.registry as the
API is declared; the system check compares what every API really serves (its OpenAPI document,
its URL patterns) with those records. Each test plants one way to get an operation past the
gate and shows the check naming it: rbac.E003 for an operation the gate does not wrap, rbac.E002
for a gated operation without a rule.
"""

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command
from django.core.management.base import SystemCheckError
from django.urls import get_resolver, path, resolve
from ninja import NinjaAPI, Router

from accesscontrol.api import registry
from accesscontrol.api.api import api, build_api, sdk_root_api
from accesscontrol.api.router import GatedRouter
from accesscontrol.api.urls import gated_urls
from accesscontrol.rbac.checks import api_gate_errors, check_every_api_operation_is_gated
from accesscontrol.rbac.gate import API, PERMISSION, AccessRule, requires
from tests.factories import pat_for
from tests.support.api import api_call


@pytest.fixture
def planted():
    """build_api for a test: the APIs it builds are forgotten by the registry afterwards."""
    made = []

    def build(*routers, **options):
        each = build_api(f"planted{len(made)}", routers, **options)
        made.append(each)
        return each

    yield build
    for each in made:
        registry.forget_api(each)


def gated_router_with_one_operation():
    router = GatedRouter()

    @router.get("/gated")
    @requires("datasets:read")
    def gated(request):
        return []

    return router


def ids_and_messages(errors):
    return sorted((e.id, e.msg) for e in errors)


# The project itself ----------------------------------------------------------------------------


def test_the_project_apis_are_registered_and_clean():
    assert set(registry.apis()) >= {api, sdk_root_api}
    assert check_every_api_operation_is_gated() == []
    assert api_gate_errors(registry.apis(), get_resolver().url_patterns) == []


def test_every_operation_of_the_project_apis_is_in_the_registry():
    for each in (api, sdk_root_api):
        gated = {
            (registry.route_key(p), m) for p, op in registry.operations_of(each) for m in op.methods
        }
        document = each.get_openapi_schema(path_prefix="")
        served = {
            (registry.route_key(p), m.upper())
            for p, item in document["paths"].items()
            for m in item
        }
        assert served == gated


def test_authentication_finds_the_rule_in_the_registry_not_in_ninja():
    match = resolve("/api/v1/api-key")
    assert match.func.access_rule == AccessRule(API)
    rules = match.func.operation_rules
    assert rules["GET"] == rules["POST"] == AccessRule(PERMISSION, ("workspaces:manage",))
    assert resolve("/api/v1/openapi.json").func.operation_rules == {}


def test_a_refused_caller_gets_its_403_before_its_body_is_read(client, world):
    # The viewer may not create service keys: the rule is checked before the body is
    # validated, so an invalid body still gets the 403 (and a valid one the same).
    key = pat_for(world.viewer, world.org)
    for body in ({"name": ""}, {"name": "ci", "scope": "workspace"}):
        response = api_call(client, "POST", "/api-key", key, tenant=world.workspace.pk, json=body)
        assert response.status_code == 403, response.content
        assert response.json()["error"] == "permission_denied"
        assert response.json()["required"] == "workspaces:manage"


# Planted violations ----------------------------------------------------------------------------


def test_an_operation_on_a_plain_ninja_router_is_refused(planted):
    plain = Router()

    @plain.get("/plain")
    @requires("datasets:read")  # a rule is not enough: nothing checks it
    def plain_operation(request):
        return []

    each = planted(gated_router_with_one_operation(), plain)
    errors = api_gate_errors([each], [])
    assert ids_and_messages(errors) == [
        ("rbac.E003", "API 'planted0' operation GET /plain is not wrapped by the gate")
    ]
    assert "GatedRouter" in errors[0].hint


def test_an_operation_whose_view_declares_no_rule_is_refused(planted):
    router = gated_router_with_one_operation()

    @router.delete("/forgotten/{thing_id}")
    def forgotten_rule(request, thing_id: int):
        return None

    each = planted(router)
    errors = api_gate_errors([each], [])
    assert [e.id for e in errors] == ["rbac.E002"]
    assert errors[0].msg.startswith("API operation DELETE /forgotten/{thing_id} (tests.")
    assert errors[0].msg.endswith(".forgotten_rule) declares no access rule")


def test_a_plain_router_nested_in_a_gated_one_is_refused(planted):
    outer, inner = gated_router_with_one_operation(), Router()

    @inner.post("/inner")
    def inner_operation(request):
        return None

    outer.add_router("/nested", inner)
    each = planted(outer)
    assert ids_and_messages(api_gate_errors([each], [])) == [
        ("rbac.E003", "API 'planted0' operation POST /nested/inner is not wrapped by the gate")
    ]


def test_an_operation_on_the_api_itself_is_refused(planted):
    each = planted(gated_router_with_one_operation())

    @each.put("/on-the-api")
    def on_the_api(request):
        return None

    assert ids_and_messages(api_gate_errors([each], [])) == [
        ("rbac.E003", "API 'planted0' operation PUT /on-the-api is not wrapped by the gate")
    ]


def test_an_operation_left_out_of_the_document_is_refused(planted):
    hidden = Router()

    @hidden.get("/gated", include_in_schema=False)  # beside a gated GET /gated
    def shadow(request):
        return None

    @hidden.post("/hidden", include_in_schema=False)
    def hidden_operation(request):
        return None

    each = planted(gated_router_with_one_operation(), hidden, docs_url=None)
    gated_urls(each)  # what accesscontrol/api/urls.py does for the project's APIs
    assert ids_and_messages(api_gate_errors([each], [])) == [
        (
            "rbac.E003",
            "API 'planted0' serves 1 operation(s) at '/gated' that are not wrapped by the gate "
            "(and not in its OpenAPI document)",
        ),
        (
            "rbac.E003",
            "API 'planted0' serves 1 operation(s) at '/hidden' that are not wrapped by the gate "
            "(and not in its OpenAPI document)",
        ),
    ]


def test_a_ninja_api_built_without_build_api_is_refused():
    raw = NinjaAPI(urls_namespace="raw-check", docs_url=None)

    @raw.get("/raw-things")
    def raw_things(request):
        return []

    errors = api_gate_errors([], [path("raw/", raw.urls)])
    assert {e.id for e in errors} == {"rbac.E003"}
    messages = sorted(e.msg for e in errors)
    assert any(m.startswith("URL pattern 'raw/raw-things' reaches ninja.") for m in messages)
    assert any(m.startswith("URL pattern 'raw/openapi.json' reaches ninja.") for m in messages)
    with pytest.raises(ImproperlyConfigured, match=r"not built by .*build_api"):
        gated_urls(raw)


@pytest.mark.urls("tests.api_gate_urls")
def test_a_ninja_api_mounted_without_the_gate_fails_manage_py_check(db, settings):
    settings.AUTHZ_CACHE = False  # rbac.W001 is another test's business
    with pytest.raises(SystemCheckError, match=r"rbac\.E003.*raw/raw-things") as failed:
        call_command("check")
    assert "rbac.E001" in str(failed.value)  # the console half of the gate refuses it too


@pytest.mark.parametrize(
    ("router_class", "path", "error"),
    [
        pytest.param(Router, "/plain", "E003", id="a-plain-router-operation-is-not-gated"),
        pytest.param(GatedRouter, "/no-rule", "E002", id="a-gated-operation-without-a-rule"),
    ],
)
def test_a_planted_operation_fails_manage_py_check(
    db, settings, planted, router_class, path, error
):
    settings.AUTHZ_CACHE = False
    router = router_class()

    @router.get(path)
    def operation(request):
        return []

    planted(router)
    with pytest.raises(SystemCheckError, match=rf"rbac\.{error}.*GET {path}"):
        call_command("check")
