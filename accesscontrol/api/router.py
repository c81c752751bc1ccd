from ninja import Router

from accesscontrol.rbac.gate import enforce


class GatedRouter(Router):
    """A ninja Router whose every operation passes the gate (undeclared ones are refused)."""

    def add_api_operation(self, path, methods, view_func, **kwargs):
        super().add_api_operation(path, methods, enforce(view_func), **kwargs)
