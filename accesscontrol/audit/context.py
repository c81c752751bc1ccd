"""Who is asking and from where, for the audit log, without passing `request` into services."""

import contextvars
from dataclasses import dataclass


@dataclass(frozen=True)
class RequestContext:
    ip_address: str | None = None
    user_agent: str = ""
    request_id: str = ""


EMPTY = RequestContext()
_current = contextvars.ContextVar("audit_request_context", default=None)


def current() -> RequestContext:
    return _current.get() or EMPTY


def bind(ctx: RequestContext):
    return _current.set(ctx)


def reset(token) -> None:
    _current.reset(token)
