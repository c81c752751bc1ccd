import ipaddress
import re
import uuid

from accesscontrol import throttle
from accesscontrol.audit import context

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


def _ip_or_none(value):
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:  # a forged X-Forwarded-For entry must not break the audit row
        return None


class RequestContextMiddleware:
    """Binds IP, user agent and a request id for audit.record; echoes the id in X-Request-Id."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        incoming = request.headers.get("X-Request-Id", "")
        request_id = incoming if _REQUEST_ID.match(incoming) else uuid.uuid4().hex
        request.request_id = request_id
        token = context.bind(
            context.RequestContext(
                ip_address=_ip_or_none(throttle.client_ip(request)),
                user_agent=request.headers.get("User-Agent", "")[:512],
                request_id=request_id,
            )
        )
        try:
            response = self.get_response(request)
        finally:
            context.reset(token)
        response["X-Request-Id"] = request_id
        return response
