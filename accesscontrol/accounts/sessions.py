"""Every console session of a user, ended at once: deprovisioning (SCIM) signs them out
everywhere on their next request.

Sessions are remembered at sign-in (every path — password, SSO, invitation — goes through
django.contrib.auth.login, which sends user_logged_in once the session has its new key). A
remembered session goes with its session row (SignedInSession.session cascades): at sign-out,
when a sign-in replaces the key, and when `clearsessions` deletes the expired ones.
"""

from django.contrib.auth.signals import user_logged_in
from django.contrib.sessions.models import Session

from accesscontrol.accounts.models import SignedInSession


def _remember(sender, request, user, **kwargs):
    session = getattr(request, "session", None)
    if session is None or user is None:
        return
    if session.session_key is None:
        session.save()
    SignedInSession.objects.get_or_create(
        session_id=session.session_key, defaults={"user_id": user.pk}
    )


user_logged_in.connect(_remember, dispatch_uid="remember-signed-in-session")


def end_sessions(user) -> int:
    """Sign `user` out of every session; how many there were. In the caller's transaction."""
    theirs = SignedInSession.objects.filter(user_id=user.pk).values("session_id")
    _, deleted = Session.objects.filter(session_key__in=theirs).delete()
    return deleted.get(Session._meta.label, 0)
