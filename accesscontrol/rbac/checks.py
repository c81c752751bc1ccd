import functools
from collections import Counter

from django.core import checks
from django.urls import URLPattern, URLResolver, get_resolver

from accesscontrol.rbac.gate import rule_of, view_name


def iter_url_patterns(patterns, prefix=""):
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            yield from iter_url_patterns(pattern.url_patterns, prefix + str(pattern.pattern))
        elif isinstance(pattern, URLPattern):
            yield prefix + str(pattern.pattern), pattern.callback


@checks.register(checks.Tags.urls)
def check_every_view_declares_access(app_configs=None, **kwargs):
    """Fail `manage.py check` for any route whose view the gate would refuse as undeclared."""
    errors = []
    for route, view in iter_url_patterns(get_resolver().url_patterns):
        if rule_of(view) is None:
            errors.append(
                checks.Error(
                    f"URL pattern '{route}' reaches view {view_name(view)}, "
                    "which declares no access rule",
                    hint="Decorate the view with @requires(...), @authenticated or @public "
                    "from accesscontrol.rbac.gate.",
                    id="rbac.E001",
                )
            )
    return errors


HTTP_METHODS = {"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "TRACE"}
NOT_GATED_HINT = (
    "Declare API operations on a GatedRouter (accesscontrol.api.router), never on a plain "
    "ninja Router or the NinjaAPI itself, and build APIs with accesscontrol.api.api.build_api, "
    "served through accesscontrol.api.urls.gated_urls."
)


@checks.register(checks.Tags.urls)
def check_every_api_operation_is_gated(app_configs=None, **kwargs):
    """Every operation of every NinjaAPI passes the gate and declares a rule.

    What each API serves (its OpenAPI document, its URL patterns) is compared with the API
    registry that GatedRouter, build_api and gated_urls fill as the API is declared: an
    operation the registry does not know was not wrapped by the gate (rbac.E003); a gated one
    without a rule is refused at runtime (rbac.E002). Any URL pattern reaching a django-ninja
    view of an API the registry does not know is rbac.E003 too.
    """
    from accesscontrol.api import registry

    return api_gate_errors(registry.apis(), get_resolver().url_patterns)


def api_gate_errors(apis, url_patterns) -> list[checks.Error]:
    from accesscontrol.api import registry

    errors = []
    for each in apis:
        name = each.urls_namespace
        gated, per_route = set(), Counter()
        for path, operation in registry.operations_of(each):
            per_route[registry.route_key(path)] += 1
            for method in operation.methods:
                gated.add((registry.route_key(path), method))
                if operation.rule is None:
                    errors.append(
                        checks.Error(
                            f"API operation {method} {path or '/'} ({view_name(operation.view)}) "
                            "declares no access rule",
                            hint="Decorate the operation with @requires(...), @authenticated "
                            "or @public.",
                            id="rbac.E002",
                        )
                    )
        document = each.get_openapi_schema(path_prefix="")
        for path, item in document["paths"].items():
            for method in item:
                if method.upper() in HTTP_METHODS and (
                    (registry.route_key(path), method.upper()) not in gated
                ):
                    errors.append(
                        _not_gated(
                            f"API '{name}' operation {method.upper()} {path} is not wrapped "
                            "by the gate"
                        )
                    )
        # Operations left out of the document: ninja serves one URL pattern per operation.
        served = Counter(p.route for p in registry.served_patterns(each) if not p.public)
        for route, count in sorted(served.items()):
            if count > per_route[route]:
                errors.append(
                    _not_gated(
                        f"API '{name}' serves {count - per_route[route]} operation(s) at "
                        f"'/{route}' that are not wrapped by the gate (and not in its OpenAPI "
                        "document)"
                    )
                )
    for route, view in iter_url_patterns(url_patterns):
        function = view
        while isinstance(function, functools.partial):  # ninja's OpenAPI and root views
            function = function.func
        if getattr(function, "__module__", "").partition(".")[0] == "ninja" and (
            registry.served(view) is None
        ):
            errors.append(
                _not_gated(
                    f"URL pattern '{route}' reaches {view_name(function)} of a NinjaAPI that "
                    "build_api did not build or gated_urls does not serve: its operations are "
                    "not wrapped by the gate"
                )
            )
    return errors


def _not_gated(message: str) -> checks.Error:
    return checks.Error(message, hint=NOT_GATED_HINT, id="rbac.E003")


@checks.register(checks.Tags.caches)
def check_authorization_cache_is_shared(app_configs=None, **kwargs):
    from django.conf import settings

    if settings.AUTHZ_CACHE and not settings.SHARED_CACHE and not settings.DEBUG:
        return [
            checks.Warning(
                "AUTHZ_CACHE is on with a per-process cache: with more than one app process, a "
                "permission change may reach the others only after minutes.",
                hint="Set CACHE_URL=redis://... (every process must share it), or AUTHZ_CACHE=0.",
                id="rbac.W001",
            )
        ]
    return []
