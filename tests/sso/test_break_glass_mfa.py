"""The break-glass admin of an organization that requires single sign-on signs in with a
password and a second factor (#15): without one, they are walked through enrolment first."""

from django.urls import reverse

from accesscontrol.accounts import mfa
from accesscontrol.sso import services
from tests.factories import PASSWORD, require_sso


def test_the_break_glass_admin_must_enrol_before_anything_else(client, world, acme_oidc):
    require_sso(world, acme_oidc)
    assert mfa.must_enrol(world.org_admin)
    assert not mfa.must_enrol(world.editor)  # members sign in through SSO; not required here
    signed_in = client.post("/login/", {"login": world.org_admin.email, "password": PASSWORD})
    assert signed_in.status_code == 302
    page = client.get(reverse("org-members", args=[world.org.slug]))
    assert page.status_code == 302
    assert page["Location"] == reverse(mfa.ENROL_URL)


def test_without_require_sso_the_break_glass_admin_needs_no_second_factor(client, world, acme_oidc):
    require_sso(world, acme_oidc, required=False)
    assert not mfa.must_enrol(world.org_admin)


def _sign_in_without_a_password(user):
    """allauth's sign-in as a passkey or an invitation's first sign-in reaches it (perform_login,
    no identity provider): the request as the middleware would have made it."""
    from allauth.account.utils import perform_login
    from allauth.core import context
    from django.contrib.auth.models import AnonymousUser
    from django.contrib.messages.storage.fallback import FallbackStorage
    from django.contrib.sessions.backends.db import SessionStore
    from django.test import RequestFactory

    request = RequestFactory().post("/accounts/2fa/webauthn/login/")
    request.session = SessionStore()
    request._messages = FallbackStorage(request)
    request.user = AnonymousUser()
    user.backend = "accesscontrol.sso.backends.PasswordBackend"
    with context.request_context(request):
        response = perform_login(request, user)
    return request, response


def test_a_sign_in_not_through_the_identity_provider_is_refused_where_sso_is_required(
    world, acme_oidc
):
    require_sso(world, acme_oidc)
    request, response = _sign_in_without_a_password(world.editor)
    assert response.status_code == 302 and response["Location"] == reverse("login")
    assert "_auth_user_id" not in request.session
    assert [str(m) for m in request._messages] == [services.REQUIRE_SSO_MESSAGE]
    # The break-glass admin may (their second factor is asked for as above).
    request, response = _sign_in_without_a_password(world.org_admin)
    assert request.session["_auth_user_id"] == str(world.org_admin.pk)


def test_without_require_sso_a_passkey_sign_in_goes_through(world, acme_oidc):
    require_sso(world, acme_oidc, required=False)
    request, _ = _sign_in_without_a_password(world.editor)
    assert request.session["_auth_user_id"] == str(world.editor.pk)
