"""allauth's socialaccount, bent to organizations' SSO (SOCIALACCOUNT_ADAPTER).

Every SSO sign-in passes `SsoAdapter.pre_social_login`: the provider names the organization, the
OpenID Connect `nonce` must be the one this browser's sign-in sent, the email must be at a domain
the organization claimed, and the person must be a member or be provisioned just in time
(sso/services.py admit_sso_sign_in). Anything else is refused with a page that says why, and
nothing is created.
"""

import functools
import hmac
import logging
import secrets

from allauth.core.exceptions import ImmediateHttpResponse
from allauth.socialaccount.adapter import DefaultSocialAccountAdapter
from allauth.socialaccount.providers.openid_connect.provider import OpenIDConnectProvider
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.shortcuts import render

from accesscontrol.accounts import sudo
from accesscontrol.sso import services
from accesscontrol.sso.models import Protocol

logger = logging.getLogger(__name__)


class NonceOpenIDConnectProvider(OpenIDConnectProvider):
    """allauth's OpenID Connect provider, sending a `nonce` (allauth sends none) and keeping it
    in the sign-in's state, so an ID token minted for another sign-in is refused."""

    def redirect(self, request, process, next_url=None, data=None, **kwargs):
        nonce = secrets.token_urlsafe(24)
        auth_params = kwargs.pop("auth_params", None)
        auth_params = dict(self.get_auth_params() if auth_params is None else auth_params)
        auth_params["nonce"] = nonce
        if kwargs.get("sudo_for"):
            # Re-authentication: the identity provider must ask again, not reuse its session.
            auth_params.update(prompt="login", max_age="0")
        return super().redirect(
            request, process, next_url, data, auth_params=auth_params, nonce=nonce, **kwargs
        )


def provider_for(request, sso):
    """The allauth provider of an organization's SSO, ready to redirect to the IdP."""
    app = sso.social_app
    if sso.protocol == Protocol.OIDC:
        return NonceOpenIDConnectProvider(request, app=app)
    return app.get_provider(request)


def refused(request, message, status=403, next_url=""):
    """The refusal page: to sign in again, or, for someone signed in here (a re-authentication
    for sudo mode), back to the confirm page and then `next_url`."""
    context = {"message": message, "next": next_url}
    return ImmediateHttpResponse(render(request, "sso/refused.html", context, status=status))


REPLAYED = "This sign-in response was already used. Sign in again."


def refusing_replays(finish_acs):
    """allauth's last step of a SAML sign-in (`saml_finish_acs`), where a replayed response is
    refused on our page, logged and audited like any refused SSO sign-in, instead of a bare 403.

    Each sign-in we start is answered once: its InResponseTo must name a sign-in this browser
    still has open, and allauth takes that out of the session as it reads it (statekit). A
    response posted again, here or from another browser, finds none, and allauth raises
    PermissionDenied, the only one of this view (its other refusals are rendered pages). The
    response itself is neither logged nor audited.
    """

    @functools.wraps(finish_acs)
    def finish(request, organization_slug):
        try:
            return finish_acs(request, organization_slug=organization_slug)
        except PermissionDenied:
            logger.warning(
                "SSO sign-in refused by %s: a SAML response already used, or for a sign-in "
                "this browser did not start",
                organization_slug,
            )
            sso = services.sso_for_provider(organization_slug)
            if sso is not None:
                services.record_sso_refusal(sso, "", services.SsoRefused("replayed", REPLAYED))
            return refused(request, REPLAYED).response

    return finish


def asserted_email(sociallogin) -> str:
    """The email the identity provider vouched for in this sign-in."""
    for address in sociallogin.email_addresses:
        if address.email:
            return address.email
    user = sociallogin.user
    return "" if sociallogin.is_existing or user is None else (user.email or "")


def _full_name(sociallogin) -> str:
    user = sociallogin.user
    if user is None or sociallogin.is_existing:
        return ""
    return (getattr(user, "full_name", "") or "").strip()


class SsoAdapter(DefaultSocialAccountAdapter):
    def get_provider(self, request, provider, client_id=None):
        found = super().get_provider(request, provider, client_id)
        if type(found) is OpenIDConnectProvider:
            return NonceOpenIDConnectProvider(request, app=found.app)
        return found

    def populate_user(self, request, sociallogin, data):
        user = super().populate_user(request, sociallogin, data)
        name = " ".join(p for p in (data.get("first_name"), data.get("last_name")) if p)
        user.full_name = (data.get("name") or name or "")[:150]
        return user

    def is_open_for_signup(self, request, sociallogin):
        # Accounts are made by admit_sso_sign_in (just in time) or invitations, never by
        # allauth's own sign-up form.
        return False

    def on_authentication_error(
        self, request, provider, error=None, exception=None, extra_context=None
    ):
        reason = (extra_context or {}).get("saml_last_error_reason") or exception or error
        logger.warning("SSO sign-in refused by %s: %s", getattr(provider, "id", provider), reason)
        if error == "cancelled":
            return
        raise refused(
            request,
            "The answer from your identity provider could not be verified (it may be expired, "
            "already used, not meant for this site, or not from this sign-in), so you are not "
            "signed in. Start again from Sign in with SSO.",
        )

    def pre_social_login(self, request, sociallogin):
        sso = services.sso_for_provider(sociallogin.account.provider)
        if sso is None:
            raise refused(request, "This identity provider is not set up for any organization.")
        state = sociallogin.state or {}
        if sso.protocol == Protocol.OIDC:
            claims = (sociallogin.account.extra_data or {}).get("id_token") or {}
            expected, got = state.get("nonce") or "", claims.get("nonce") or ""
            if not expected or not hmac.compare_digest(str(expected), str(got)):
                logger.warning("OIDC ID token with a wrong nonce for %s", sso.provider_id)
                raise refused(
                    request,
                    "The ID token from your identity provider was not issued for this sign-in "
                    "(its nonce does not match), so you are not signed in. Start again from "
                    "Sign in with SSO.",
                )
        email = asserted_email(sociallogin)
        if state.get("sudo_for"):
            self._reauthenticated(request, sociallogin, sso, state["sudo_for"])
            return
        existing = sociallogin.user if sociallogin.is_existing else None
        try:
            with transaction.atomic():
                user = services.admit_sso_sign_in(
                    sso=sso, email=email, user=existing, full_name=_full_name(sociallogin)
                )
                if not sociallogin.is_existing:
                    sociallogin.connect(request, user)
                    services.record_account_linked(sso, user)
        except services.SsoRefused as refusal:
            services.record_sso_refusal(sso, email, refusal)
            raise refused(request, refusal.message) from None

    def _reauthenticated(self, request, sociallogin, sso, user_pk):
        """A fresh sign-in at the identity provider for sudo mode: only for the person who is
        signed in here, with an account already linked to this provider."""
        same = (
            request.user.is_authenticated
            and request.user.pk == user_pk
            and sociallogin.is_existing
            and sociallogin.user.pk == user_pk
        )
        if not same:
            raise refused(
                request,
                "Your identity provider signed in someone else, so nothing was confirmed. "
                "Sign in there as yourself and try again.",
                next_url=(sociallogin.state or {}).get("next") or "",
            )
        sudo.grant(request)

    def send_notification_mail(self, *args, **kwargs):
        # An account linked by single sign-on is the organization's own doing (audited), not
        # news to mail its owner about.
        return None
