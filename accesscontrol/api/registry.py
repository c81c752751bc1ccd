"""What the gate knows about the REST API, recorded as the API is declared (ARCHITECTURE §6).

- `GatedRouter.add_api_operation` records each operation it wraps with the gate: its router,
  path, methods, the gated view and the view's rule (`record_operation`), and
  `GatedRouter.add_router` the routers nested in it (`record_child`).
- `build_api` records each NinjaAPI it builds and the routers it mounts (`record_api`).
- `gated_urls` records the URL patterns each API serves (`record_urls`), and marks each pattern
  with the rules of its operations, so authentication checks the rule before ninja reads the
  body without looking inside ninja.

The system check (rbac.checks: rbac.E002, rbac.E003) compares what each API really serves (its
OpenAPI document, its URL patterns) with these records: an operation that is not recorded here
was not wrapped by the gate.
"""

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from django.core.exceptions import ImproperlyConfigured
from ninja import NinjaAPI, Router

from accesscontrol.rbac.gate import AccessRule


@dataclass(frozen=True)
class GatedOperation:
    router: Router
    path: str  # as declared on its router: "/workspaces/{workspace_id}"
    methods: tuple[str, ...]
    view: Callable  # the gated view ninja calls (rbac.gate.enforce around the handler)
    rule: AccessRule | None


_operations: dict[Router, list[GatedOperation]] = {}
_children: dict[Router, list[tuple[str, Router]]] = {}
_apis: dict[NinjaAPI, list[tuple[str, Router]]] = {}
_served: dict[Callable, "ServedPattern"] = {}  # URL pattern callback -> what it serves


@dataclass(frozen=True)
class ServedPattern:
    api: NinjaAPI
    route: str  # route_key() of the pattern, below the API's root
    public: bool  # the OpenAPI document, the docs page, ninja's root view


def record_operation(router, path, methods, view, rule) -> None:
    _operations.setdefault(router, []).append(
        GatedOperation(router, path, tuple(m.upper() for m in methods), view, rule)
    )


def record_child(parent: Router, prefix: str, router: Router) -> None:
    _children.setdefault(parent, []).append((prefix, router))


def record_api(api: NinjaAPI, mounts) -> None:
    _apis[api] = list(mounts)


def forget_api(api: NinjaAPI) -> None:
    """For tests that build an API of their own."""
    _apis.pop(api, None)
    for callback in [c for c, served in _served.items() if served.api is api]:
        del _served[callback]


def apis() -> list[NinjaAPI]:
    return list(_apis)


def is_registered(api: NinjaAPI) -> bool:
    return api in _apis


def _join(*parts: str) -> str:
    joined = "/".join(p for p in parts if p)
    while "//" in joined:
        joined = joined.replace("//", "/")
    return joined


def operations_of(api: NinjaAPI) -> Iterator[tuple[str, GatedOperation]]:
    """(path below the API's root, operation) for every gated operation mounted on `api`."""

    def walk(prefix, router):
        for operation in _operations.get(router, ()):
            yield _join(prefix, operation.path), operation
        for child_prefix, child in _children.get(router, ()):
            yield from walk(_join(prefix, child_prefix).lstrip("/"), child)

    for prefix, router in _apis.get(api, ()):
        yield from walk(prefix, router)


def route_key(path: str) -> str:
    """One spelling for a router path, an OpenAPI path and a Django route: no converters, no
    slashes at the ends. "/runs/{uuid:run_id}", "/runs/{run_id}", "runs/<uuidstr:run_id>" all
    give "runs/{run_id}".
    """
    path = path.replace("<", "{").replace(">", "}")
    path = re.sub(r"{[^}:]+:", "{", path)
    return _join(path).strip("/")


def rules_by_route(api: NinjaAPI) -> dict[str, dict[str, AccessRule | None]]:
    """{route key: {METHOD: rule}} of every gated operation of `api`."""
    rules: dict[str, dict[str, AccessRule | None]] = {}
    for path, operation in operations_of(api):
        for method in operation.methods:
            rules.setdefault(route_key(path), {})[method] = operation.rule
    return rules


def record_urls(api: NinjaAPI, patterns, public_names) -> None:
    if api not in _apis:
        raise ImproperlyConfigured(
            f"NinjaAPI '{api.urls_namespace}' was not built by accesscontrol.api.api.build_api: "
            "the gate knows none of its operations."
        )
    for callback in [c for c, served in _served.items() if served.api is api]:
        del _served[callback]  # the API's URL patterns were built again
    for pattern in patterns:
        _served[pattern.callback] = ServedPattern(
            api, route_key(str(pattern.pattern)), pattern.name in public_names
        )


def served(callback) -> ServedPattern | None:
    return _served.get(callback)


def served_patterns(api: NinjaAPI) -> list[ServedPattern]:
    return [each for each in _served.values() if each.api is api]
