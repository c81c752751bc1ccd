"""Signing in through an organization's SAML IdP (pysaml2, tests/sso/saml_idp.py) with signed
assertions posted to our real ACS, and the refusals: each leaves everything as it was."""

import pytest
from onelogin.saml2.utils import OneLogin_Saml2_Utils

from accesscontrol.accounts.models import User
from accesscontrol.audit.models import AuditEvent
from accesscontrol.organizations.models import OrganizationMembership
from accesscontrol.sso.signals import SESSION_KEY
from tests.sso.conftest import browser, local, query, to_identity_provider
from tests.support.sso import people

NEWCOMER = "saml-newcomer@example.test"


def start(client, idp, email=NEWCOMER):
    """Sign in with SSO: our AuthnRequest, as the IdP reads it (its id, our ACS URL)."""
    location = to_identity_provider(client.post("/login/sso/", {"email": email}))
    assert location.startswith(idp.sso_url)
    return idp.read_request(query(location, "SAMLRequest"))


def post_to_acs(client, acs_url, saml_response):
    """The browser posts the response cross-site to the ACS; allauth stores it and sends the
    browser on to finish it with the session cookie (SameSite=Lax)."""
    response = client.post(local(acs_url), {"SAMLResponse": saml_response})
    assert response.status_code == 302, response.content[:300]
    return client.get(response["Location"])


def test_a_signed_assertion_signs_a_newcomer_in_just_in_time(client, world, saml_idp):
    request_id, acs_url = start(client, saml_idp)
    assert acs_url.endswith("/accounts/saml/acme/acs/")

    response = post_to_acs(
        client,
        acs_url,
        saml_idp.answer(NEWCOMER, in_response_to=request_id, acs_url=acs_url),
    )

    assert response.status_code == 302, response.content[:500]
    user = User.objects.get(email=NEWCOMER)
    assert user.full_name == "Sam Ell"
    membership = OrganizationMembership.objects.get(user=user, organization=world.org)
    assert membership.source == "sso"
    assert int(client.session["_auth_user_id"]) == user.pk
    assert client.session[SESSION_KEY]["protocol"] == "saml"


def test_a_replayed_assertion_is_refused(client, world, saml_idp, caplog):
    request_id, acs_url = start(client, saml_idp)
    answer = saml_idp.answer(NEWCOMER, in_response_to=request_id, acs_url=acs_url)
    assert post_to_acs(client, acs_url, answer).status_code == 302
    client.logout()
    before = people()

    for replayer in (client, browser()):  # the same browser, or another one
        with caplog.at_level("WARNING", logger="accesscontrol.sso.adapter"):
            response = post_to_acs(replayer, acs_url, answer)
        assert response.status_code == 403
        assert "_auth_user_id" not in replayer.session
        # Our page, saying why, with the way back to signing in through SSO.
        page = response.content.decode()
        assert "This sign-in response was already used. Sign in again." in page
        assert 'href="/login/sso/"' in page
    assert people() == before
    assert caplog.text.count("SAML response already used") == 2
    refusals = AuditEvent.objects.filter(action="sso.sign_in_refused", organization=world.org)
    assert [e.changes["after"] for e in refusals] == [
        {"reason": "replayed", "provider": "SAML 2.0 (Acme)"},
        {"reason": "replayed", "provider": "SAML 2.0 (Acme)"},
    ]
    # The response itself is kept nowhere: not in the log, not in the audit rows.
    assert answer[:40] not in caplog.text
    assert not any(answer[:40] in str(e.changes) + e.target_label for e in refusals)


def _refused(client, saml_response, acs_url, caplog, reason):
    before = people()
    with caplog.at_level("WARNING", logger="accesscontrol.sso.adapter"):
        response = post_to_acs(client, acs_url, saml_response)
    assert reason in caplog.text  # refused for this reason, not another one
    assert response.status_code == 403, response.content[:300]
    assert "could not be verified" in response.content.decode()
    assert "_auth_user_id" not in client.session
    assert people() == before


def test_a_bad_signature_is_refused(client, world, saml_idp, caplog):
    request_id, acs_url = start(client, saml_idp)

    def forge(xml):
        # The signed document, changed afterwards: someone else's address.
        assert NEWCOMER in xml
        return xml.replace(NEWCOMER, "attacker@example.test")

    _refused(
        client,
        saml_idp.answer(NEWCOMER, in_response_to=request_id, acs_url=acs_url, tamper=forge),
        acs_url,
        caplog,
        "Signature validation failed",
    )


def test_a_response_signed_by_another_key_is_refused(client, world, saml_idp, caplog):
    from tests.sso.saml_idp import SamlIdp

    request_id, acs_url = start(client, saml_idp)
    sp_metadata = client.get("/accounts/saml/acme/metadata/").content.decode()
    impostor = SamlIdp(sp_metadata, entity_id=saml_idp.entity_id)

    answer = impostor.answer(NEWCOMER, in_response_to=request_id, acs_url=acs_url)
    _refused(client, answer, acs_url, caplog, "Signature validation failed")


def test_the_wrong_audience_is_refused(client, world, saml_idp, caplog):
    saml_idp.trust_another_sp("https://another-service.example.test/saml/metadata")
    request_id, acs_url = start(client, saml_idp)
    answer = saml_idp.answer(
        NEWCOMER,
        in_response_to=request_id,
        acs_url=acs_url,
        audience="https://another-service.example.test/saml/metadata",
    )
    _refused(client, answer, acs_url, caplog, "is not a valid audience")


def test_an_expired_assertion_is_refused(client, world, saml_idp, monkeypatch, caplog):
    request_id, acs_url = start(client, saml_idp)
    answer = saml_idp.answer(NEWCOMER, in_response_to=request_id, acs_url=acs_url)
    # It reaches us an hour later: its five minutes are long over.
    later = OneLogin_Saml2_Utils.now() + 3600
    monkeypatch.setattr(OneLogin_Saml2_Utils, "now", staticmethod(lambda: later))

    _refused(client, answer, acs_url, caplog, "expired")


def test_an_unsolicited_assertion_is_refused(client, world, saml_idp, caplog):
    """IdP-initiated: answering no request of this browser's (so nothing ties it to it)."""
    _request_id, acs_url = start(client, saml_idp)
    answer = saml_idp.answer(NEWCOMER, in_response_to=None, acs_url=acs_url)
    _refused(client, answer, acs_url, caplog, "SSO sign-in refused by saml")


@pytest.mark.parametrize("email", ["someone@elsewhere.test"])
def test_an_unverified_domain_is_refused(client, world, saml_idp, email):
    request_id, acs_url = start(client, saml_idp)
    before = people()
    response = post_to_acs(
        client, acs_url, saml_idp.answer(email, in_response_to=request_id, acs_url=acs_url)
    )
    assert response.status_code == 403
    assert "not at an email domain Acme has verified" in response.content.decode()
    assert people() == before
