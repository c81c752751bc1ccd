"""The project's URL patterns as the tests walk them, and the methods each console view accepts."""

import inspect
import re

from django.urls import URLResolver
from django.urls.resolvers import RegexPattern, RoutePattern

METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")


NAMED_GROUP = re.compile(r"\(\?P<(\w+)>[^)]*\)")


def _route(pattern) -> tuple[str, bool]:
    """A pattern as a route the tests fill, and whether it is one. A regex of literal text and
    named groups (allauth's `^saml/(?P<organization_slug>[^/]+)/acs/`) reads as the route
    `saml/<organization_slug>/acs/`; any other regex is left as it is, not buildable."""
    if isinstance(pattern.pattern, RoutePattern):
        return str(pattern.pattern), True
    if isinstance(pattern.pattern, RegexPattern):
        route = NAMED_GROUP.sub(r"<\1>", str(pattern.pattern)).removeprefix("^").removesuffix("$")
        if not re.search(r"[\\^$()\[\]*+?|{}]", route.replace("<", "").replace(">", "")):
            return route, True
    return str(pattern.pattern), False


def walk(patterns, prefix="", plain=True):
    """(route, URL pattern, whether every level is a route the tests can fill in)."""
    for pattern in patterns:
        route, plain_here = _route(pattern)
        plain_here = plain and plain_here
        if isinstance(pattern, URLResolver):
            yield from walk(pattern.url_patterns, prefix + route, plain_here)
        else:
            yield prefix + route, pattern, plain_here


def accepted_methods(view) -> tuple[str, ...]:
    """The methods a view's require_http_methods (require_GET, require_POST...) lets through."""
    while view is not None:
        try:
            declared = inspect.getclosurevars(view).nonlocals.get("request_method_list")
        except TypeError:  # not a plain function (functools.partial...)
            declared = None
        if declared is not None:
            return tuple(m for m in METHODS if m in declared)
        view = getattr(view, "__wrapped__", None)
    return ("GET", "POST")  # no restriction declared: a page and a form post
