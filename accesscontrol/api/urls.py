from django.urls import path

from accesscontrol.api.api import api
from accesscontrol.rbac.gate import API, PUBLIC, AccessRule


def gated_urls():
    """The API's URL patterns, each marked for the gate.

    Operations are authenticated by key and checked one by one (rbac.gate.enforce); the
    OpenAPI document and the docs page are public.
    """
    patterns, app_name, namespace = api.urls
    for pattern in patterns:
        kind = PUBLIC if pattern.name in {"openapi-json", "openapi-view"} else API
        pattern.callback.access_rule = AccessRule(kind)
    return patterns, app_name, namespace


urlpatterns = [path("api/v1/", gated_urls())]
