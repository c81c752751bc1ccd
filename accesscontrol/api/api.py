"""The REST API under /api/v1/: one NinjaAPI, each app's router, errors in one shape.

Every error body is JSON with `error` (a stable code) and `detail` (for people). Authentication
is by API key only (X-API-Key or Authorization: Bearer); the session is never consulted.
"""

from django.core.exceptions import ObjectDoesNotExist, ValidationError
from django.http import Http404
from ninja import NinjaAPI
from ninja.errors import AuthenticationError, HttpError
from ninja.errors import ValidationError as NinjaValidationError

from accesscontrol.api.auth import ApiKeyHeader, BearerKey
from accesscontrol.apikeys.authentication import KeyRejected

api = NinjaAPI(
    title="accesscontrol API",
    version="1",
    description="Access control for an LLM-observability platform. Authenticate with a "
    "personal access token or a service key in `X-API-Key`; select a workspace with "
    "`X-Tenant-Id`. `GET /auth/whoami` tells any key what it may do.",
    auth=[ApiKeyHeader(), BearerKey()],
    urls_namespace="api",
)

# A refused business rule: which code means which status.
VALIDATION_STATUS = {
    "permission": 403,
    "escalation": 403,
    "plan": 403,
    "disabled": 403,
    "last_admin": 409,
    "role_in_use": 409,
    "system_role": 409,
    "duplicate": 409,
}


def _validation_body(exc: ValidationError):
    if hasattr(exc, "error_dict"):
        fields = {
            field: [m for e in errors for m in e.messages]
            for field, errors in exc.error_dict.items()
        }
        detail = "; ".join(f"{f}: {' '.join(m)}" for f, m in fields.items())
        return detail, fields
    return " ".join(exc.messages), None


@api.exception_handler(KeyRejected)
def key_rejected(request, exc):
    return api.create_response(
        request, {"error": exc.error, "detail": exc.detail}, status=exc.status
    )


@api.exception_handler(AuthenticationError)
def missing_key(request, exc):
    return api.create_response(
        request,
        {
            "error": "missing_api_key",
            "detail": "Send an API key in the X-API-Key header (or Authorization: Bearer).",
        },
        status=401,
    )


@api.exception_handler(NinjaValidationError)
def invalid_input(request, exc):
    return api.create_response(
        request, {"error": "validation_error", "detail": exc.errors}, status=422
    )


@api.exception_handler(ValidationError)
def refused(request, exc):
    detail, fields = _validation_body(exc)
    codes = (
        {e.code for e in exc.error_list}
        if not hasattr(exc, "error_dict")
        else {e.code for errors in exc.error_dict.values() for e in errors}
    )
    status = max((VALIDATION_STATUS.get(c, 422) for c in codes), default=422)
    error = next((c for c in codes if c in VALIDATION_STATUS), "invalid")
    error = {"permission": "permission_denied"}.get(error, error)
    body = {"error": error, "detail": detail}
    if fields:
        body["fields"] = fields
    return api.create_response(request, body, status=status)


@api.exception_handler(ObjectDoesNotExist)
@api.exception_handler(Http404)
def not_found(request, exc):
    return api.create_response(request, {"error": "not_found", "detail": "Not found."}, status=404)


@api.exception_handler(HttpError)
def http_error(request, exc):
    if exc.status_code == 400:
        # Ninja's "Cannot parse request body": bad input like any other, so a 422.
        return api.create_response(
            request, {"error": "invalid_json", "detail": str(exc)}, status=422
        )
    return api.create_response(
        request, {"error": "http_error", "detail": str(exc)}, status=exc.status_code
    )


def _mount():
    from accesscontrol.apikeys.api import router as keys_router
    from accesscontrol.organizations.api import router as organizations_router
    from accesscontrol.rbac.api import router as rbac_router
    from accesscontrol.workspaces.api import router as workspaces_router

    for router in (keys_router, rbac_router, workspaces_router, organizations_router):
        api.add_router("", router)


_mount()


def operations():
    """Every (path, method, view function) the API serves, for the gate's system check."""
    for prefix, router in api._routers:
        for path, path_view in router.path_operations.items():
            for operation in path_view.operations:
                for method in operation.methods:
                    yield prefix + path, method, operation.view_func
