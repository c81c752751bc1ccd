"""Every console session of a user, ended at once: deprovisioning (SCIM) signs them out
everywhere on their next request.

Sessions are remembered at sign-in (every path — password, SSO, invitation — goes through
django.contrib.auth.login, which sends user_logged_in once the session has its new key).
"""

from django.contrib.auth.signals import user_logged_in, user_logged_out
from django.contrib.sessions.models import Session

from accesscontrol.accounts.models import SignedInSession


def _remember(sender, request, user, **kwargs):
    session = getattr(request, "session", None)
    if session is None or user is None:
        return
    if session.session_key is None:
        session.save()
    SignedInSession.objects.get_or_create(
        session_key=session.session_key, defaults={"user_id": user.pk}
    )


def _forget(sender, request, user, **kwargs):
    session = getattr(request, "session", None)
    if session is not None and session.session_key:
        SignedInSession.objects.filter(session_key=session.session_key).delete()


user_logged_in.connect(_remember, dispatch_uid="remember-signed-in-session")
user_logged_out.connect(_forget, dispatch_uid="forget-signed-in-session")


def end_sessions(user) -> int:
    """Sign `user` out of every session; how many there were. In the caller's transaction."""
    keys = list(
        SignedInSession.objects.filter(user_id=user.pk).values_list("session_key", flat=True)
    )
    ended, _ = Session.objects.filter(session_key__in=keys).delete()
    SignedInSession.objects.filter(user_id=user.pk).delete()
    return ended
