"""Ninja auth classes: they find the key in the headers and hand it to the authenticator.

Keys are read from `X-API-Key` or `Authorization: Bearer`, never from the query string, and
never from the session. Failed authentications are rate-limited per client IP and per key
(see apikeys/authentication.py).
"""

from ninja.security import APIKeyHeader, HttpBearer

from accesscontrol import throttle
from accesscontrol.apikeys.authentication import authenticate
from accesscontrol.rbac.actor import Actor
from accesscontrol.rbac.gate import check_before_input

TENANT_HEADER = "X-Tenant-Id"


def authenticate_request(request, raw_key: str):
    principal = authenticate(
        raw_key, request.headers.get(TENANT_HEADER), client_ip=throttle.client_ip(request)
    )
    request.actor = Actor.for_principal(principal)
    check_before_input(request, principal)
    return principal


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
