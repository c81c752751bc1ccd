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


@checks.register(checks.Tags.urls)
def check_every_api_operation_declares_access(app_configs=None, **kwargs):
    """The API's routes pass the middleware as a group; each operation must still declare."""
    from accesscontrol.api.api import operations

    return [
        checks.Error(
            f"API operation {method} {path or '/'} ({view_name(view)}) declares no access rule",
            hint="Decorate the operation with @requires(...), @authenticated or @public.",
            id="rbac.E002",
        )
        for path, method, view in operations()
        if rule_of(view) is None
    ]


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
