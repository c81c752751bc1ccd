"""The project's URL patterns as the tests walk them, and the methods each console view accepts."""

import inspect

from django.urls import URLResolver
from django.urls.resolvers import RoutePattern

METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")


def walk(patterns, prefix="", plain=True):
    """(route, URL pattern, whether every level is a path() route rather than a regex)."""
    for pattern in patterns:
        plain_here = plain and isinstance(pattern.pattern, RoutePattern)
        if isinstance(pattern, URLResolver):
            yield from walk(pattern.url_patterns, prefix + str(pattern.pattern), plain_here)
        else:
            yield prefix + str(pattern.pattern), pattern, plain_here


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
