"""JSON 404 for every path under the API prefixes that no operation serves, in every mode.

Django's handler404 (accounts.views.not_found) already answers JSON there, but only without
DEBUG: with DEBUG=1 Django shows its HTML technical page instead. These catch-all patterns are
matched last under /api/v1/ and under each first path segment the SDK root API serves, so an
SDK gets `{"error": "not_found", "detail": ...}` naming what it asked for, whatever the mode.
"""

from django.http import JsonResponse
from django.urls import re_path
from django.views.decorators.csrf import csrf_exempt

from accesscontrol.api import registry
from accesscontrol.rbac.gate import public


@csrf_exempt  # an API client has no CSRF token; nothing is read or changed here
@public  # answers "not found" and reveals nothing: no operation is served at this path
def no_such_operation(request, rest=""):
    return JsonResponse(
        {
            "error": "not_found",
            "detail": f"No API operation at {request.method} {request.path}: this server does "
            "not serve it.",
        },
        status=404,
    )


def catch_all_under(prefix):
    return re_path(rf"^{prefix}(?P<rest>.*)$", no_such_operation, name=None)


# Roots of LangSmith's API that the SDKs call and this server serves nothing under (likes of
# public prompts, the JS SDK's /v1/platform/..., LangSmith's org and tenant admin APIs).
UNSERVED_SDK_ROOTS = ("likes", "v1", "v2", "orgs", "tenants", "ee", "api-key", "otel")


def sdk_root_prefixes(api) -> list[str]:
    """The first path segments the SDK root API serves (sessions, runs, repos, public, ...),
    and the roots of LangSmith's API it does not."""
    firsts = {registry.route_key(path).split("/")[0] for path, _ in registry.operations_of(api)}
    firsts |= set(UNSERVED_SDK_ROOTS)
    return sorted(first for first in firsts if first and "{" not in first)
