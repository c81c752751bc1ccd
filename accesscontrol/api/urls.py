from django.urls import path

from accesscontrol.api import registry
from accesscontrol.api.api import api, sdk_root_api
from accesscontrol.rbac.gate import API, PUBLIC, AccessRule

# The docs, and ninja's root view (it only ever answers 404, and names the prefix).
PUBLIC_VIEWS = {"openapi-json", "openapi-view", "api-root"}


def gated_urls(which):
    """An API's URL patterns, each marked for the gate, and recorded in the API registry.

    Operations are authenticated by key and checked one by one (rbac.gate.enforce); the
    OpenAPI document and the docs page are public. Each operation's pattern carries
    {method: rule} of the operations at its route, from the registry, so authentication can
    check the rule before ninja validates the body (a refused caller gets its 403, not a 422
    about input). Only an API built by build_api can be served this way.
    """
    patterns, app_name, namespace = which.urls
    registry.record_urls(which, patterns, PUBLIC_VIEWS)
    rules = registry.rules_by_route(which)
    for pattern in patterns:
        served = registry.served(pattern.callback)
        pattern.callback.access_rule = AccessRule(PUBLIC if served.public else API)
        pattern.callback.operation_rules = {} if served.public else rules.get(served.route, {})
    return patterns, app_name, namespace


# Included by accesscontrol/urls.py: the versioned API first, the SDK's root paths last.
versioned = [path("", gated_urls(api))]
sdk_root = [path("", gated_urls(sdk_root_api))]
