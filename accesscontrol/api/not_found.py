"""JSON 404 for every path under the API prefixes that no operation serves, in every mode.

Django answers a path its URLconf does not match with handler404 (accounts.views.not_found,
which answers JSON to API clients), but only without DEBUG: with DEBUG=1 it renders its HTML
technical page instead. This middleware turns any such unmatched-path 404 under /api/ or under
a first path segment the SDK root API serves (sessions, runs, repos, public, ...) into
`{"error": "not_found", "detail": ...}` naming the method and path, whatever the mode. A 404 a
view answered itself (a shared page whose link was revoked) is left as the view made it.
"""

from django.http import JsonResponse

from accesscontrol.api import registry

# Roots of LangSmith's API that the SDKs call and this server serves nothing under (likes of
# public prompts, the JS SDK's /v1/platform/..., LangSmith's org and tenant admin APIs).
UNSERVED_SDK_ROOTS = ("likes", "v1", "v2", "orgs", "tenants", "ee", "api-key", "otel")


def no_such_operation(request):
    return JsonResponse(
        {
            "error": "not_found",
            "detail": f"No API operation at {request.method} {request.path}: this server does "
            "not serve it.",
        },
        status=404,
    )


def sdk_root_prefixes() -> frozenset[str]:
    """The first path segments the SDK root API serves, and LangSmith's roots it does not."""
    from accesscontrol.api.api import sdk_root_api

    firsts = {
        registry.route_key(path).split("/")[0] for path, _ in registry.operations_of(sdk_root_api)
    }
    return frozenset(f for f in firsts | set(UNSERVED_SDK_ROOTS) if f and "{" not in f)


class JsonNotFoundForApiPaths:
    def __init__(self, get_response):
        self.get_response = get_response
        self.prefixes = None  # read once the URLconf (and so the APIs) is loaded

    def __call__(self, request):
        response = self.get_response(request)
        if response.status_code != 404 or getattr(request, "resolver_match", None) is not None:
            return response  # found, or a view's own 404
        if response.get("Content-Type", "").startswith("application/json"):
            return response
        if self.prefixes is None:
            self.prefixes = sdk_root_prefixes()
        first = request.path.lstrip("/").split("/", 1)[0]
        if first == "api" or first in self.prefixes:
            return no_such_operation(request)
        return response
