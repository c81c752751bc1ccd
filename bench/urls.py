"""The project's URLs plus two DRF views for section 2 of the benchmark, and the floor.

The DRF views are marked @public for the project's gate (rbac.E001 needs every URL pattern to
reach a view that declares an access rule): DRF does its own authorization, with HasAPIKey.

The floor is what a key check can cost at the least on this machine: a bare django-ninja
endpoint that hashes the presented key (SHA-256) and looks the digest up in a dict, no I/O.
"""

import hashlib

from django.urls import include, path
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView
from rest_framework_api_key.permissions import HasAPIKey

from accesscontrol.api.api import build_api
from accesscontrol.api.router import GatedRouter
from accesscontrol.api.urls import gated_urls
from accesscontrol.rbac.gate import ApiError, public


class HasAPIKeyView(APIView):
    """What a DRF API protected by djangorestframework-api-key does per request."""

    authentication_classes = []
    permission_classes = [HasAPIKey]

    def get(self, request):
        return Response({"status": "ok"})


class OpenView(APIView):
    """The same DRF view with no key check: DRF's own cost, without the key verification."""

    authentication_classes = []
    permission_classes = [AllowAny]

    def get(self, request):
        return Response({"status": "ok"})


# Filled by bench/parts.py with the digests of the keys it made.
FLOOR_KEYS: dict[str, str] = {}
floor_router = GatedRouter()


@floor_router.get("/floor", auth=None)
@public
def floor(request):
    digest = hashlib.sha256(request.headers.get("X-API-Key", "").encode()).hexdigest()
    owner = FLOOR_KEYS.get(digest)
    if owner is None:
        raise ApiError(401, "invalid_api_key", "This API key is not known.")
    return {"key": owner}


# Built like the project's APIs (the gate's check rbac.E003 refuses any other), so the floor is
# GET /api/v1/info's path plus the key check, nothing else.
floor_api = build_api("bench-floor", [floor_router], docs_url=None, openapi_url=None)

urlpatterns = [
    path("bench/", gated_urls(floor_api)),
    path("bench/drf/has-api-key", public(HasAPIKeyView.as_view())),
    path("bench/drf/open", public(OpenView.as_view())),
    path("", include("accesscontrol.urls")),
]
