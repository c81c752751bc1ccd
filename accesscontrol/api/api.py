"""The REST API under /api/v1/ (and the SDK's root paths): each app's router, errors in one shape.

Every error body is JSON with `error` (a stable code) and `detail` (for people). Authentication
is by API key only (X-API-Key or Authorization: Bearer); the session is never consulted.
"""

import copy
import functools

from django.conf import settings
from django.core.exceptions import ObjectDoesNotExist, RequestDataTooBig, ValidationError
from django.db import DataError, IntegrityError
from django.http import Http404
from ninja import NinjaAPI
from ninja.errors import AuthenticationError, HttpError
from ninja.errors import ValidationError as NinjaValidationError
from ninja.parser import Parser

from accesscontrol import storable, unavailable
from accesscontrol.api import registry
from accesscontrol.api.auth import ApiKeyHeader, BearerKey
from accesscontrol.apikeys.authentication import KeyRejected
from accesscontrol.rbac.gate import ApiError

# A refused business rule: which code means which status.
VALIDATION_STATUS = {
    "permission": 403,
    "token_limit": 403,
    "escalation": 403,
    "plan": 403,
    "disabled": 403,
    "last_admin": 409,
    "role_in_use": 409,
    "system_role": 409,
    "duplicate": 409,
    "decided": 409,
    "not_found": 404,
    "conflict": 409,
    "token_used": 410,
    "token_expired": 410,
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


def key_rejected(api, request, exc):
    body = {"error": exc.error, "detail": exc.detail, **getattr(exc, "extra", {})}
    response = api.create_response(request, body, status=exc.status)
    if getattr(exc, "retry_after", None):
        response["Retry-After"] = str(exc.retry_after)
    return response


def coded_error(api, request, exc):
    return api.create_response(request, exc.body(), status=exc.status)


def missing_key(api, request, exc):
    return api.create_response(
        request,
        {
            "error": "missing_api_key",
            "detail": "Send an API key in the X-API-Key header (or Authorization: Bearer).",
        },
        status=401,
    )


def invalid_input(api, request, exc):
    unknown = [e for e in exc.errors if e.get("type") == "extra_forbidden"]
    if unknown and len(unknown) == len(exc.errors):
        # Only fields the schema does not declare: say which, in words the SDKs show as is.
        names = [".".join(str(part) for part in e["loc"][2:]) for e in unknown]
        body = {
            "error": "unknown_field",
            "detail": f"This server does not support the field(s) {', '.join(names)} in this "
            "request body; leave them out.",
            "unknown": names,
        }
        return api.create_response(request, body, status=422)
    return api.create_response(
        request, {"error": "validation_error", "detail": exc.errors}, status=422
    )


def refused(api, request, exc):
    detail, fields = _validation_body(exc)
    codes = (
        {e.code for e in exc.error_list}
        if not hasattr(exc, "error_dict")
        else {e.code for errors in exc.error_dict.values() for e in errors}
    )
    status = max((VALIDATION_STATUS.get(c, 422) for c in codes), default=422)
    error = next((c for c in codes if c in VALIDATION_STATUS), "invalid")
    error = {"permission": "permission_denied"}.get(error, error)
    body = {"error": error, "detail": detail, **getattr(exc, "explained", {})}
    if fields:
        body["fields"] = fields
    return api.create_response(request, body, status=status)


def not_found(api, request, exc):
    return api.create_response(request, {"error": "not_found", "detail": "Not found."}, status=404)


def http_error(api, request, exc):
    cause = exc.__cause__
    if isinstance(cause, storable.JsonTooDeep | storable.JsonUnstorable):
        # ninja wraps whatever the parser raises in "Cannot parse request body"; say why. Text
        # the database refuses keeps the code the database's own refusal has (unstorable).
        code = "invalid_json" if isinstance(cause, storable.JsonTooDeep) else "invalid"
        return api.create_response(request, {"error": code, "detail": str(cause)}, status=422)
    if exc.status_code == 400:
        # Ninja's "Cannot parse request body": bad input like any other, so a 422.
        return api.create_response(
            request, {"error": "invalid_json", "detail": str(exc)}, status=422
        )
    return api.create_response(
        request, {"error": "http_error", "detail": str(exc)}, status=exc.status_code
    )


def unstorable(api, request, exc):
    # A safety net: PostgreSQL refuses some values pydantic accepts (\u0000 in text or JSON).
    return api.create_response(
        request,
        {
            "error": "invalid",
            "detail": "The data cannot be stored: it holds a "
            "character or value the database refuses (such as \\u0000).",
        },
        status=422,
    )


def too_big(api, request, exc):
    # Django refuses a body over DATA_UPLOAD_MAX_MEMORY_SIZE; left alone, its HTML 400 page.
    return api.create_response(
        request,
        {
            "error": "too_large",
            "detail": f"The request body is larger than {settings.DATA_UPLOAD_MAX_MEMORY_SIZE} "
            "bytes.",
        },
        status=413,
    )


def conflict(api, request, exc):
    # A safety net for a uniqueness race the services' own checks did not catch.
    return api.create_response(
        request,
        {"error": "duplicate", "detail": "That conflicts with something that exists."},
        status=409,
    )


def dependency_down(api, request, exc):
    # PostgreSQL or Redis is down or failing over: 503 with Retry-After, not a 500 (Django's
    # request logger records it).
    return unavailable.response(request)


HANDLERS = {
    ApiError: coded_error,
    DataError: unstorable,
    RequestDataTooBig: too_big,
    IntegrityError: conflict,
    KeyRejected: key_rejected,
    AuthenticationError: missing_key,
    NinjaValidationError: invalid_input,
    ValidationError: refused,
    ObjectDoesNotExist: not_found,
    Http404: not_found,
    HttpError: http_error,
    **dict.fromkeys(unavailable.UNAVAILABLE, dependency_down),
}


class DepthLimitedParser(Parser):
    """Request bodies are JSON nested at most storable.MAX_JSON_DEPTH deep (deeper values were
    stored and then broke every page that pretty-prints them), with no text the database
    refuses: both answered 422 before any handler runs."""

    def parse_body(self, request):
        return storable.load_json(request.body)


class DocumentedOnceAPI(NinjaAPI):
    """A NinjaAPI that generates its OpenAPI document once per URL prefix.

    Generating it (pydantic's JSON schema of every operation) costs a few hundred milliseconds
    of CPU, on every GET of openapi.json and every system check. It cannot change once made:
    ninja freezes an API's routers the first time it binds them, which building the document
    does, so no operation can be added afterwards. Each caller gets its own copy, free to change.
    """

    def get_openapi_schema(self, *, path_prefix=None, path_params=None):
        if path_prefix is None:
            path_prefix = self.get_root_path(path_params or {})
        documents = self.__dict__.setdefault("_documents", {})
        if path_prefix not in documents:
            documents[path_prefix] = super().get_openapi_schema(path_prefix=path_prefix)
        # The document keeps a reference to its API: that is shared, not copied.
        return copy.deepcopy(documents[path_prefix], {id(self): self})


def build_api(namespace, routers, **options) -> NinjaAPI:
    """A NinjaAPI that authenticates by key, answers errors in one shape, and is known to the
    gate's registry (the system check rbac.E003 checks every operation it serves). `routers`:
    each a router mounted at the root, or (prefix, router)."""
    new = DocumentedOnceAPI(
        auth=[ApiKeyHeader(), BearerKey()],
        urls_namespace=namespace,
        parser=DepthLimitedParser(),
        **options,
    )
    for exc_class, handler in HANDLERS.items():
        new.add_exception_handler(exc_class, functools.partial(handler, new))
    mounts = [each if isinstance(each, tuple) else ("", each) for each in routers]
    for prefix, router in mounts:
        new.add_router(prefix, router)
    registry.record_api(new, mounts)
    return new


def _routers():
    from accesscontrol.access_requests.api import router as access_requests_router
    from accesscontrol.apikeys.api import router as keys_router
    from accesscontrol.audit.api import router as audit_router
    from accesscontrol.organizations.api import router as organizations_router
    from accesscontrol.rbac.api import router as rbac_router
    from accesscontrol.resources.api import router as resources_router
    from accesscontrol.resources.api_datasets import platform_router
    from accesscontrol.resources.api_datasets import router as datasets_router
    from accesscontrol.resources.api_hub import router as hub_router
    from accesscontrol.resources.api_sharing import router as sharing_router
    from accesscontrol.sso.api import router as sso_router
    from accesscontrol.workspaces.api import router as workspaces_router

    access = [
        keys_router,
        rbac_router,
        workspaces_router,
        organizations_router,
        audit_router,
        access_requests_router,
        sso_router,
    ]
    resources = [resources_router, datasets_router, hub_router, sharing_router]
    return access, resources, platform_router


_access_routers, _resources_routers, _platform_router = _routers()

api = build_api(
    "api",
    [*_access_routers, *_resources_routers, _platform_router],
    title="accesscontrol API",
    version="1",
    description="Access control for an LLM-observability platform. Authenticate with a "
    "personal access token or a service key in `X-API-Key`; select a workspace with "
    "`X-Tenant-Id`. `GET /auth/whoami` tells any key what it may do. The resource endpoints "
    "(sessions, runs, datasets, examples, feedback, annotation queues) follow LangSmith's, so "
    "the `langsmith` SDK works against this server.",
)

# The SDK calls /sessions, /runs/batch, ... on the bare server URL when LANGSMITH_ENDPOINT has
# no /api/v1: the same resource operations, served there too (not in the OpenAPI document).
# LangSmith's platform paths it calls there as /v1/platform/...
sdk_root_api = build_api(
    "sdk",
    [*_resources_routers, ("/v1", _platform_router)],
    docs_url=None,
    openapi_url=None,
)

APIS = (api, sdk_root_api)


def operations():
    """Every (path, method, gated view) the APIs serve, from the gate's registry."""
    for each in APIS:
        for path, operation in registry.operations_of(each):
            for method in operation.methods:
                yield path, method, operation.view
