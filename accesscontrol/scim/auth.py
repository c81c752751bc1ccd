"""Who may call /scim/v2/: only an organization's live SCIM token, never a session or an API key.

`scim_endpoint` declares the view public to the gate (rbac/gate.py: the gate has no rule for
bearer tokens of this kind) and refuses, with a SCIM 401, every request without a valid,
unrevoked SCIM token; the token decides the organization every query of the view is scoped
to. A session cookie is never read here, so CSRF does not apply (csrf_exempt).
"""

import datetime
import functools
import hmac
import re
import zlib

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.http import HttpResponse, JsonResponse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt

from accesscontrol import throttle
from accesscontrol.apikeys import keys
from accesscontrol.rbac.actor import Actor
from accesscontrol.rbac.gate import public
from accesscontrol.scim.errors import ScimError
from accesscontrol.scim.models import ScimToken

TOKEN = re.compile(r"^(lsv2_scim_[0-9a-f]{32})_([0-9a-f]{8})$")
CONTENT_TYPE = "application/scim+json"
LAST_USED_EVERY = datetime.timedelta(minutes=1)


def scim_response(body, status=200, headers=None):
    if body is None:
        response = HttpResponse(status=status)
    else:
        response = JsonResponse(body, status=status, content_type=CONTENT_TYPE, safe=False)
    for name, value in (headers or {}).items():
        response[name] = value
    return response


def error_response(error: ScimError):
    response = scim_response(error.body(), status=error.status, headers=error.headers)
    if error.status == 401:
        response["WWW-Authenticate"] = 'Bearer realm="SCIM"'
    return response


def presented_token(request) -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        return None
    return value.strip()


def authenticate(request) -> ScimToken | None:
    """The live SCIM token the request presents, or None. A mistyped or made-up token (wrong
    shape or checksum) is refused without a query; a known one is one indexed lookup."""
    raw = presented_token(request)
    match = TOKEN.match(raw or "")
    if match is None:
        return None
    if not hmac.compare_digest(f"{zlib.crc32(match[1].encode()):08x}", match[2]):
        return None
    token = (
        ScimToken.objects.select_related("organization")
        .filter(digest=keys.digest(raw), revoked_at__isnull=True)
        .first()
    )
    if token is None:
        return None
    now = timezone.now()
    if token.last_used_at is None or now - token.last_used_at > LAST_USED_EVERY:
        ScimToken.objects.filter(pk=token.pk).update(last_used_at=now)
    return token


def _body_too_big(request) -> bool:
    try:
        length = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    return length > settings.SCIM_MAX_BODY_BYTES


def scim_endpoint(*methods):
    """The view answers `methods` for an organization's SCIM token; everything else is refused
    in the SCIM error format (401 without a live token, 405, 413 for a body over the cap)."""

    def decorate(view):
        @functools.wraps(view)
        def endpoint(request, *args, **kwargs):
            try:
                # Failed authentications count against the client's address, as bad API keys
                # do (throttle.py): reserved before the lookup, given back on success.
                attempt = throttle.reserve((throttle.limit("key-ip"), throttle.client_ip(request)))
                if attempt.retry_after is not None:
                    raise ScimError(
                        429,
                        "Too many failed authentications from this address; try again later.",
                        headers={"Retry-After": str(attempt.retry_after)},
                    )
                token = authenticate(request)
                if token is None:
                    raise ScimError(401, "A valid SCIM bearer token is required.")
                attempt.release()
                if request.method not in methods:
                    raise ScimError(405, f"{request.method} is not supported here.")
                if _body_too_big(request):
                    raise ScimError(
                        413, f"The body is larger than {settings.SCIM_MAX_BODY_BYTES} bytes."
                    )
                try:
                    # Read now, so the cap applies however the body was sent (chunked too).
                    size = len(request.body)
                except RequestDataTooBig:
                    raise ScimError(413, "The body is too large.") from None
                if size > settings.SCIM_MAX_BODY_BYTES:
                    raise ScimError(413, "The body is too large.")
                request.actor = Actor.for_scim_token(token)
                return view(request, *args, **kwargs)
            except ScimError as error:
                return error_response(error)

        return public(csrf_exempt(endpoint))

    return decorate
