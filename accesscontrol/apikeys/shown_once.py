"""A new secret (a service key, a token, a rotation's successor) is shown once, after a redirect.

The POST that makes a key holds its raw value in the session and redirects to the list page;
that page takes it out (one read) and shows it. A reload then finds nothing: it shows no
secret and, being a GET, creates nothing. The held value is kept only for the page it was
made for and only for a few minutes, in case the redirect is never followed.
"""

import time

SESSION_KEY = "secret_shown_once"
MAX_AGE_SECONDS = 300


def hold(request, *, page: str, key, raw: str, old=None) -> None:
    """Keep `raw` for one read by `page` (a path). `old`: the key a rotation replaced."""
    held = {"page": page, "key_id": str(key.pk), "raw": raw, "at": time.time()}
    if old is not None:
        held["old_id"] = str(old.pk)
    request.session[SESSION_KEY] = held


def take(request, page: str, keys):
    """The secret held for `page`, once: {"key", "raw", "old"} with the key (and the rotated
    one) read from `keys`, the caller's visible keys; None if there is none (any more)."""
    held = request.session.get(SESSION_KEY)
    if not held or held.get("page") != page:
        return None
    del request.session[SESSION_KEY]
    if time.time() - held.get("at", 0) > MAX_AGE_SECONDS:
        return None
    found = {str(k.pk): k for k in keys.filter(pk__in=[held["key_id"], held.get("old_id")])}
    key = found.get(held["key_id"])
    if key is None:
        return None
    return {"key": key, "raw": held["raw"], "old": found.get(held.get("old_id"))}
