from django.urls import path

from accesscontrol.api.api import api, sdk_root_api
from accesscontrol.rbac.gate import API, PUBLIC, AccessRule

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
    return patterns, app_name, namespace


# Included by accesscontrol/urls.py: the versioned API first, the SDK's root paths last.
versioned = [path("", gated_urls(api))]
sdk_root = [path("", gated_urls(sdk_root_api))]
