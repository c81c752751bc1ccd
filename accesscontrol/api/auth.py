"""Ninja auth classes: they find the key in the headers and hand it to the authenticator.

Keys are read from `X-API-Key` or `Authorization: Bearer`, never from the query string, and
never from the session.
"""

from ninja.security import APIKeyHeader, HttpBearer

from accesscontrol.apikeys.authentication import authenticate

TENANT_HEADER = "X-Tenant-Id"


class ApiKeyHeader(APIKeyHeader):
    param_name = "X-API-Key"

    def authenticate(self, request, key):
        if not key:
            return None
        return authenticate(key, request.headers.get(TENANT_HEADER))


class BearerKey(HttpBearer):
    def authenticate(self, request, token):
        if not token:
            return None
        return authenticate(token, request.headers.get(TENANT_HEADER))
