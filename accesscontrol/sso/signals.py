"""After an SSO sign-in: the session remembers which provider authenticated it, and the
sign-in's audit row names that provider."""

from allauth.account.signals import user_logged_in

from accesscontrol.accounts.services import record_login_succeeded
from accesscontrol.sso import services

SESSION_KEY = "sso_provider"


def provider_of_session(request) -> dict | None:
    """{"organization", "protocol", "provider_id"} of the SSO that signed this session in."""
    return request.session.get(SESSION_KEY)


def _signed_in(sender, request, user, sociallogin=None, **kwargs):
    if sociallogin is None:
        request.session.pop(SESSION_KEY, None)
        return
    sso = services.sso_for_provider(sociallogin.account.provider)
    if sso is None:  # not an organization's provider: recorded as any sign-in
        record_login_succeeded(user)
        return
    request.session[SESSION_KEY] = {
        "organization": sso.organization.slug,
        "protocol": sso.protocol,
        "provider_id": sso.provider_id,
    }
    services.record_sso_sign_in(user, sso)


user_logged_in.connect(_signed_in, dispatch_uid="sso-signed-in")
