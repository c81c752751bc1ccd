import inspect

from django.urls import path

from accesscontrol.api.api import api, sdk_root_api
from accesscontrol.rbac.gate import API, PUBLIC, AccessRule, rule_of

# The docs, and ninja's root view (it only ever answers 404, and names the prefix).
PUBLIC_VIEWS = {"openapi-json", "openapi-view", "api-root"}


def gated_urls(which):
    """An API's URL patterns, each marked for the gate.

    Operations are authenticated by key and checked one by one (rbac.gate.enforce); the
    OpenAPI document and the docs page are public.
    """
    patterns, app_name, namespace = which.urls
    for pattern in patterns:
        public_view = pattern.name in PUBLIC_VIEWS
        pattern.callback.access_rule = AccessRule(PUBLIC if public_view else API)
        pattern.callback.operation_rules = _operation_rules(pattern.callback)
    return patterns, app_name, namespace


def _operation_rules(view) -> dict:
    """{method: rule} of the operations behind one URL, so authentication can check the rule
    before ninja validates the body (a refused caller gets its 403, not a 422 about input).

    ninja keeps the PathView in its view function's closure.
    """
    if not inspect.isfunction(view):
        return {}  # ninja's own views (the OpenAPI document, the docs page)
    path_view = inspect.getclosurevars(view).nonlocals.get("self")
    return {
        method: rule_of(operation.view_func)
        for operation in getattr(path_view, "operations", ())
        for method in operation.methods
    }


# Included by accesscontrol/urls.py: the versioned API first, the SDK's root paths last.
versioned = [path("", gated_urls(api))]
sdk_root = [path("", gated_urls(sdk_root_api))]
