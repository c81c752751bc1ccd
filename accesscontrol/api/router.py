from django.utils.module_loading import import_string
from ninja import Router
from ninja.constants import NOT_SET

from accesscontrol.api import registry
from accesscontrol.api.schemas import DeniedOut, ErrorOut
from accesscontrol.rbac.gate import enforce, rule_of

# What any operation may answer besides its success: bad X-Tenant-Id (400), no or bad key (401),
# not allowed (403), not there or not yours (404), conflict (409), body too large (413), bad
# input (422), throttled (429).
ERROR_RESPONSES = {
    status: DeniedOut if status == 403 else ErrorOut
    for status in (400, 401, 403, 404, 409, 413, 422, 429)
}


class GatedRouter(Router):
    """A ninja Router whose every operation passes the gate (undeclared ones are refused), and
    whose OpenAPI document names the errors each operation may answer.

    Each operation is recorded in accesscontrol.api.registry as it is added: the system check
    rbac.E003 fails for any operation an API serves that is not recorded there.
    """

    def add_api_operation(self, path, methods, view_func, *, response=NOT_SET, **kwargs):
        if response is not NOT_SET:
            declared = response if isinstance(response, dict) else {200: response}
            response = {**ERROR_RESPONSES, **declared}
        gated = enforce(view_func)
        super().add_api_operation(path, methods, gated, response=response, **kwargs)
        registry.record_operation(self, path, methods, gated, rule_of(view_func))

    def add_router(self, prefix, router, **kwargs):
        if isinstance(router, str):
            router = import_string(router)
        super().add_router(prefix, router, **kwargs)
        registry.record_child(self, prefix, router)
