"""The project's URLs plus two DRF views for section 2 of the benchmark.

The DRF views are marked @public for the project's gate (rbac.E001 needs every URL pattern to
reach a view that declares an access rule): DRF does its own authorization, with HasAPIKey.
"""

from django.urls import include, path
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView
from rest_framework_api_key.permissions import HasAPIKey

from accesscontrol.rbac.gate import public


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


urlpatterns = [
    path("bench/drf/has-api-key", public(HasAPIKeyView.as_view())),
    path("bench/drf/open", public(OpenView.as_view())),
    path("", include("accesscontrol.urls")),
]
