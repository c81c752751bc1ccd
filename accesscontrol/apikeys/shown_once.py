"""A new secret (a service key, a token, a rotation's successor) is shown once, after a redirect.

The POST that makes a key redirects to the list page, which shows it and forgets it (one read):
a reload then shows no secret and, being a GET, makes nothing.

Between the two requests the key is split in two halves that are useless alone: the session
(server side) holds the key XOR a random pad, and a short-lived cookie (HttpOnly, SameSite
Strict, scoped to the list's path) holds the pad. Neither the session table nor the browser's
cookie jar ever holds the key itself, and both halves are dropped at the read, or are ignored
after a few minutes if the redirect is never followed.
"""

import base64
import secrets
import time

SESSION_KEY = "secret_shown_once"
COOKIE = "shown_once_pad"
MAX_AGE_SECONDS = 300


def _xor(data: bytes, pad: bytes) -> bytes:
    return bytes(a ^ b for a, b in zip(data, pad, strict=True))


def hold(request, response, *, page: str, key, raw: str, old=None) -> None:
    """Keep `raw` for one read by `page` (a path). `old`: the key a rotation replaced."""
    data = raw.encode()
    pad = secrets.token_bytes(len(data))
    held = {
        "page": page,
        "key_id": str(key.pk),
        "masked": base64.b64encode(_xor(data, pad)).decode(),
        "at": time.time(),
    }
    if old is not None:
        held["old_id"] = str(old.pk)
    request.session[SESSION_KEY] = held
    response.set_cookie(
        COOKIE,
        base64.urlsafe_b64encode(pad).decode(),
        max_age=MAX_AGE_SECONDS,
        path=page,
        secure=request.is_secure(),
        httponly=True,
        samesite="Strict",
    )


def take(request, page: str, keys):
    """The secret held for `page`, once: {"key", "raw", "old"} with the key (and the rotated
    one) read from `keys`, the caller's visible keys; None if there is none (any more).
    The caller's response must `drop` the cookie half."""
    held = request.session.get(SESSION_KEY)
    if not held or held.get("page") != page:
        return None
    del request.session[SESSION_KEY]
    if time.time() - held.get("at", 0) > MAX_AGE_SECONDS:
        return None
    try:
        pad = base64.urlsafe_b64decode(request.COOKIES.get(COOKIE, ""))
        raw = _xor(base64.b64decode(held["masked"]), pad).decode()
    except (ValueError, UnicodeDecodeError):  # no cookie, or not this session's
        return None
    found = {str(k.pk): k for k in keys.filter(pk__in=[held["key_id"], held.get("old_id")])}
    key = found.get(held["key_id"])
    if key is None:
        return None
    return {"key": key, "raw": raw, "old": found.get(held.get("old_id"))}


def drop(request, response, page: str):
    """Forget the cookie half once read, unless it belongs to a secret held for another page."""
    held = request.session.get(SESSION_KEY)
    if COOKIE in request.COOKIES and (not held or held.get("page") == page):
        response.delete_cookie(COOKIE, path=page, samesite="Strict")
    return response
