"""django-allauth's URLs, each declared to the gate (ARCHITECTURE §6, §12).

allauth's views are third-party code: they carry no @public/@authenticated of their own, so the
rule of each is written here by URL name. A URL allauth adds in an upgrade has no entry and
fails start-up (ImproperlyConfigured) rather than reaching the gate undeclared.
"""

from django.core.exceptions import ImproperlyConfigured
from django.db import transaction
from django.urls import URLPattern, URLResolver

from accesscontrol.rbac.gate import authenticated, public
from accesscontrol.sso.adapter import refusing_replays

# Reached before anyone is signed in: the sign-in flow and its stages (MFA, passkey, SSO
# redirects and callbacks), password reset, and allauth's own closed-sign-up page.
PUBLIC = {
    "account_login",
    "account_logout",
    "account_inactive",
    "account_signup",
    "account_email_verification_sent",
    "account_confirm_email",
    "account_confirm_login_code",
    "account_reset_password",
    "account_reset_password_done",
    "account_reset_password_from_key",
    "account_reset_password_from_key_done",
    "mfa_authenticate",
    "mfa_login_webauthn",
    "socialaccount_login_cancelled",
    "socialaccount_login_error",
    "socialaccount_signup",
    "saml_acs",
    "saml_finish_acs",
    "saml_sls",
    "saml_metadata",
    "saml_login",
    "openid_connect_login",
    "openid_connect_callback",
}
# About the signed-in person themself: their password, email, MFA and SSO connections.
AUTHENTICATED = {
    "account_reauthenticate",
    "account_request_reauthentication_code",
    "account_confirm_reauthentication_code",
    "account_email",
    "account_change_password",
    "account_set_password",
    "mfa_index",
    "mfa_reauthenticate",
    "mfa_activate_totp",
    "mfa_deactivate_totp",
    "mfa_view_recovery_codes",
    "mfa_generate_recovery_codes",
    "mfa_download_recovery_codes",
    "mfa_list_webauthn",
    "mfa_add_webauthn",
    "mfa_reauthenticate_webauthn",
    "mfa_remove_webauthn",
    "mfa_edit_webauthn",
    "socialaccount_connections",
}


# Pages that add or remove a second factor: one transaction each, so the factor and its audit row
# (accounts/mfa.py, on the Authenticator rows) are written together or not at all.
ATOMIC = {
    "mfa_activate_totp",
    "mfa_deactivate_totp",
    "mfa_generate_recovery_codes",
    "mfa_add_webauthn",
    "mfa_remove_webauthn",
}


def _patterns(patterns):
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            yield from _patterns(pattern.url_patterns)
        else:
            yield pattern


def declared(patterns):
    """The patterns, every view declared; allauth's unnamed redirects (old URLs kept for
    compatibility) are public like the pages they redirect to."""
    for pattern in _patterns(patterns):
        assert isinstance(pattern, URLPattern)
        if pattern.name in ATOMIC:
            pattern.callback = transaction.atomic(pattern.callback)
        if pattern.name == "saml_finish_acs":
            pattern.callback = refusing_replays(pattern.callback)
        if pattern.name in PUBLIC or pattern.name is None:
            public(pattern.callback)
        elif pattern.name in AUTHENTICATED:
            authenticated(pattern.callback)
        else:
            raise ImproperlyConfigured(
                f"allauth URL {pattern.name!r} has no access rule in accounts/allauth_urls.py"
            )
    return patterns


def urlpatterns():
    import allauth.urls

    return declared(allauth.urls.urlpatterns)
