"""When PostgreSQL or Redis is down: 503 with Retry-After, JSON for API clients, a page for people.

Raised anywhere (a view, the gate, the session loaded by a middleware), the error reaches
either the API's exception handlers (api/api.py) or Django's handler500 (accounts.views
.server_error); both answer with `response`. Nothing is half-written meanwhile: every change
and its audit row are one transaction, and a change whose authorization version cannot be moved
in Redis is rolled back (rbac/versions.py).
"""

import redis
from django.db import InterfaceError, OperationalError
from django.http import HttpResponse, JsonResponse
from django.template.loader import render_to_string

# Cannot be reached (restarting, failing over, refusing connections) or did not answer in time.
UNAVAILABLE = (OperationalError, InterfaceError, redis.ConnectionError, redis.TimeoutError)
RETRY_AFTER_SECONDS = 5
DETAIL = "The service is briefly unavailable (its database or cache is not answering)."


def api_client(request) -> bool:
    """The SDK calls the resource paths at the server root too, so a key in the headers marks an
    API client as surely as the /api/ prefix does."""
    return (
        request.path.startswith("/api/")
        or "X-API-Key" in request.headers
        or request.headers.get("Authorization", "").startswith("Bearer ")
    )


def response(request) -> HttpResponse:
    """Rendered without the request's context: no session, no user, since the database may be
    what is down."""
    if api_client(request):
        answer = JsonResponse({"error": "service_unavailable", "detail": DETAIL}, status=503)
    else:
        answer = HttpResponse(render_to_string("503.html"), status=503)
    answer["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return answer
