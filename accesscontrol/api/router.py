import functools

from django.utils.module_loading import import_string
from ninja import Router
from ninja.constants import NOT_SET

from accesscontrol.api import registry
from accesscontrol.api.schemas import DeniedOut, ErrorOut
from accesscontrol.rbac.gate import ApiError, enforce, rule_of

# What any operation may answer besides its success: bad X-Tenant-Id (400), no or bad key (401),
# not allowed (403), not there or not yours (404), conflict (409), body too large (413), bad
# input (422), throttled (429).
ERROR_RESPONSES = {
    status: DeniedOut if status == 403 else ErrorOut
    for status in (400, 401, 403, 404, 409, 413, 422, 429)
}


def refusing_unknown_query(view_func):
    """`view_func`, refusing (422, naming them) query parameters its operation does not declare.

    ninja validates the parameters an operation declares and drops every other one, so a filter
    this server does not know would answer 200 with unfiltered data. The declared names are
    filled in by GatedRouter once ninja has read the operation's signature.
    """

    @functools.wraps(view_func)
    def strict(request, *args, **kwargs):
        unknown = sorted(set(request.GET) - strict.query_names)
        if unknown:
            supported = ", ".join(sorted(strict.query_names)) or "none"
            raise ApiError(
                422,
                "unknown_parameter",
                f"This server does not support the query parameter(s) {', '.join(unknown)} on "
                f"this operation; supported here: {supported}.",
                unknown=unknown,
            )
        return view_func(request, *args, **kwargs)

    strict.query_names = frozenset()
    return strict


def _query_names(operation) -> frozenset[str]:
    """The query parameter names (aliases, flattened schemas) an operation declares."""
    names = set()
    for model in operation.models:
        if model.__ninja_param_source__ == "query":
            names |= set(model.__ninja_flatten_map__)
    return frozenset(names)


class GatedRouter(Router):
    """A ninja Router whose every operation passes the gate (undeclared ones are refused), and
    whose OpenAPI document names the errors each operation may answer.

    Each operation is recorded in accesscontrol.api.registry as it is added: the system check
    rbac.E003 fails for any operation an API serves that is not recorded there. Each one also
    refuses query parameters it does not declare (unknown body fields are refused by
    accesscontrol.api.schemas.Body).
    """

    def add_api_operation(self, path, methods, view_func, *, response=NOT_SET, **kwargs):
        if response is not NOT_SET:
            declared = response if isinstance(response, dict) else {200: response}
            response = {**ERROR_RESPONSES, **declared}
        strict = refusing_unknown_query(view_func)
        gated = enforce(strict)
        super().add_api_operation(path, methods, gated, response=response, **kwargs)
        (operation,) = (
            each
            for path_view in self.path_operations.values()
            for each in path_view.operations
            if each.view_func is gated
        )
        strict.query_names = _query_names(operation)
        registry.record_operation(self, path, methods, gated, rule_of(view_func))

    def add_router(self, prefix, router, **kwargs):
        if isinstance(router, str):
            router = import_string(router)
        super().add_router(prefix, router, **kwargs)
        registry.record_child(self, prefix, router)
