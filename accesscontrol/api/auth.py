"""Ninja auth classes: they find the key in the headers and hand it to the authenticator.

Keys are read from `X-API-Key` or `Authorization: Bearer`, never from the query string, and
never from the session. Failed authentications are rate-limited per client IP and per key.
"""

from ninja.security import APIKeyHeader, HttpBearer

from accesscontrol import throttle
from accesscontrol.apikeys import keys
from accesscontrol.apikeys.authentication import KeyRejected, authenticate

TENANT_HEADER = "X-Tenant-Id"


class Throttled(KeyRejected):
    def __init__(self, retry_after: int):
        super().__init__(
            "too_many_requests",
            f"Too many failed authentications from this client or with this key; "
            f"retry in {retry_after} seconds.",
            status=429,
        )
        self.retry_after = retry_after


def authenticate_request(request, raw_key: str):
    checks = [(throttle.limit("key-ip"), throttle.client_ip(request))]
    parsed = keys.parse(raw_key)
    if parsed is not None:
        checks.append((throttle.limit("key"), parsed.digest))
    retry_after = throttle.blocked(*checks)
    if retry_after:
        raise Throttled(retry_after)
    try:
        return authenticate(raw_key, request.headers.get(TENANT_HEADER))
    except KeyRejected as exc:
        if exc.status == 401:  # a bad key, not a bad workspace selection
            throttle.record_failure(*checks)
        raise


class ApiKeyHeader(APIKeyHeader):
    param_name = "X-API-Key"

    def authenticate(self, request, key):
        if not key:
            return None
        return authenticate_request(request, key)


class BearerKey(HttpBearer):
    def authenticate(self, request, token):
        if not token:
            return None
        return authenticate_request(request, token)
