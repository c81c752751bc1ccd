"""Settings → Authentication → Single sign-on, in the console and the API: who may, what bad
input gets, the secret never shown back, domains claimed by the admin-email rule, another
organization's objects not found, invitations turned off."""

import pytest
from allauth.socialaccount.models import SocialApp
from django.core.exceptions import ValidationError

from accesscontrol.audit.models import AuditEvent
from accesscontrol.organizations.services import (
    accept_invitation,
    invite_member,
    resend_invitation,
)
from accesscontrol.sso import services
from accesscontrol.sso.models import EmailDomain, OrganizationSso
from tests.factories import UserFactory, oidc_sso, pat_for, service_key_for, system_role
from tests.sso.saml_idp import SamlIdp
from tests.support.api import api_call
from tests.support.db import audit_actions

URL = "/o/acme/settings/authentication/sso/"
OIDC = {
    "protocol": "oidc",
    "oidc_issuer": "https://idp.example.test",
    "oidc_client_id": "acme-console",
    "oidc_client_secret": "the-secret-value",
    "default_org_role": "member",
    "invitations_enabled": "on",
}


def state():
    return (
        list(OrganizationSso.objects.values_list("organization__slug", "protocol", "oidc_issuer")),
        list(EmailDomain.objects.values_list("domain", flat=True)),
        SocialApp.objects.count(),
        AuditEvent.objects.count(),
    )


@pytest.mark.parametrize(
    "persona,status",
    [("org_admin", 200), ("workspace_admin", 403), ("viewer", 403), ("outsider", 404)],
)
def test_who_may_see_the_settings(client, world, persona, status):
    client.force_login(getattr(world, persona))
    assert client.get(URL).status_code == status


def test_an_admin_saves_oidc_and_the_secret_is_never_shown_back(client, world):
    client.force_login(world.org_admin)
    response = client.post(
        URL, {**OIDC, f"ws_{world.workspace.pk.hex}": str(system_role("Editor").pk)}
    )
    assert response.status_code == 302, response.content[:500]

    sso = OrganizationSso.objects.get(organization=world.org)
    assert (sso.oidc_client_secret, sso.social_app.secret) == ("the-secret-value",) * 2
    assert sso.social_app.provider_id == "oidc-acme"
    assert [(d.workspace, d.role.name) for d in sso.default_workspace_roles.all()] == [
        (world.workspace, "Editor")
    ]
    page = client.get(URL).content.decode()
    assert "the-secret-value" not in page
    assert "stored (never shown)" in page
    assert "/accounts/oidc/oidc-acme/login/callback/" in page
    assert "the-secret-value" not in str(
        AuditEvent.objects.filter(action="sso.configured").get().changes
    )
    # Saved again without a secret: the stored one stays.
    client.post(URL, {**OIDC, "oidc_client_secret": "", "oidc_client_id": "renamed"})
    sso.refresh_from_db()
    assert (sso.oidc_client_id, sso.oidc_client_secret) == ("renamed", "the-secret-value")


@pytest.mark.parametrize(
    "changes,field",
    [
        ({"oidc_issuer": ""}, "oidc_issuer"),
        ({"oidc_issuer": "ftp://idp.example.test"}, "oidc_issuer"),
        ({"oidc_issuer": "http://idp.example.test"}, "oidc_issuer"),  # secrets go there
        ({"oidc_client_secret": ""}, "oidc_client_secret"),  # none stored yet
        ({"protocol": "saml"}, "saml_metadata_xml"),
        ({"protocol": "saml", "saml_metadata_xml": "<not metadata/>"}, "saml_metadata_xml"),
        ({"protocol": "saml", "saml_metadata_xml": "<unclosed"}, "saml_metadata_xml"),
        ({"protocol": "kerberos"}, "protocol"),
        ({"default_org_role": "admin"}, "default_org_role"),
        ({"require_sso": "on"}, "break_glass_user"),
    ],
)
def test_bad_input_is_a_form_error_and_changes_nothing(client, world, changes, field):
    client.force_login(world.org_admin)
    before = state()
    response = client.post(URL, {**OIDC, **changes})
    assert response.status_code == 422, response.content[:300]
    assert field in response.context["form"].errors, response.context["form"].errors
    assert state() == before


def test_require_sso_needs_a_domain_and_a_break_glass_admin(client, world):
    client.force_login(world.org_admin)
    data = {**OIDC, "require_sso": "on", "break_glass_user": str(world.org_admin.pk)}
    response = client.post(URL, data)
    assert response.status_code == 422
    assert "Claim your email domain first" in response.content.decode()
    services.claim_domain(actor=world.org_admin, organization=world.org, domain="example.test")
    assert client.post(URL, data).status_code == 302
    assert OrganizationSso.objects.get(organization=world.org).require_sso
    # Only an org admin can be the break-glass one.
    data["break_glass_user"] = str(world.editor.pk)
    assert client.post(URL, data).status_code == 422


def test_saml_from_pasted_metadata_shows_our_sp_urls(client, world):
    client.force_login(world.org_admin)
    idp = SamlIdp()
    response = client.post(URL, {**OIDC, "protocol": "saml", "saml_metadata_xml": idp.metadata})
    assert response.status_code == 302, response.content[:500]
    app = OrganizationSso.objects.get(organization=world.org).social_app
    assert (app.provider, app.provider_id, app.client_id) == ("saml", "acme", "acme")
    assert app.settings["idp"]["entity_id"] == idp.entity_id
    assert app.settings["idp"]["sso_url"] == idp.sso_url
    page = client.get(URL).content.decode()
    assert "/accounts/saml/acme/metadata/" in page and "/accounts/saml/acme/acs/" in page
    # Switching to OIDC replaces the provider: one SocialApp per organization.
    client.post(URL, OIDC)
    assert SocialApp.objects.get().provider == "openid_connect"


def test_an_unreachable_metadata_url_is_refused_when_saved(client, world):
    client.force_login(world.org_admin)
    before = state()
    response = client.post(
        URL, {**OIDC, "protocol": "saml", "saml_metadata_url": "http://127.0.0.1:9/metadata"}
    )
    assert response.status_code == 422
    assert "could not be read" in response.content.decode()
    assert state() == before


def test_a_domain_is_claimed_only_by_an_admin_whose_email_is_at_it(client, world):
    client.force_login(world.org_admin)
    client.post(f"{URL}domains/", {"domain": "acme.test"})
    assert not EmailDomain.objects.exists()
    client.post(f"{URL}domains/", {"domain": "example.test"})
    assert EmailDomain.objects.get().organization == world.org
    # One organization per domain: Globex's admin (also at example.test) cannot take it.
    with pytest.raises(ValidationError, match="already claimed"):
        services.claim_domain(
            actor=world.outsider, organization=world.other_org, domain="example.test"
        )
    for bad in ("not a domain", "-x.test", "a" * 300):
        with pytest.raises(ValidationError):
            services.clean_domain(bad)


def test_another_organizations_domain_is_not_found(client, world):
    globex = EmailDomain.objects.create(organization=world.other_org, domain="globex.test")
    client.force_login(world.org_admin)
    before = state()
    url = f"{URL}domains/{globex.pk}/release/"
    assert client.get(url).status_code == 404
    assert client.post(url).status_code == 404
    assert state() == before
    # And through the API, with Acme's admin token.
    key = pat_for(world.org_admin, world.org)
    response = api_call(client, "DELETE", f"/orgs/current/sso/domains/{globex.pk}", key)
    assert response.status_code == 404
    assert EmailDomain.objects.filter(pk=globex.pk).exists()


def test_api_put_saml_and_bad_bodies(client, world):
    key = pat_for(world.org_admin, world.org)
    idp = SamlIdp()
    body = {"protocol": "saml", "saml_metadata_xml": idp.metadata, "jit_provisioning": True}
    response = api_call(client, "PUT", "/orgs/current/sso", key, json=body)
    assert response.status_code == 200, response.content
    assert response.json()["protocol"] == "saml"
    before = state()
    for bad in (
        {"protocol": "saml", "saml_metadata_xml": "nope"},
        {"protocol": "oidc"},
        {"protocol": "oidc", "unknown": 1},
        {"protocol": "saml", "saml_metadata_xml": idp.metadata, "break_glass_user_email": "x@y"},
        {"protocol": "saml", "saml_metadata_xml": idp.metadata, "default_org_role": "admin"},
        {
            "protocol": "saml",
            "saml_metadata_xml": idp.metadata,
            "default_workspace_roles": [
                {
                    "workspace_id": str(world.other_workspace_of_other_org.pk),
                    "role_id": str(system_role("Viewer").pk),
                }
            ],
        },
    ):
        response = api_call(client, "PUT", "/orgs/current/sso", key, json=bad)
        assert response.status_code == 422, (bad, response.content)
        assert response.json()["detail"]
    assert state() == before
    assert (
        api_call(
            client, "DELETE", "/orgs/current/sso/domains/00000000-0000-0000-0000-000000000000", key
        ).status_code
        == 404
    )


def test_a_service_key_cannot_claim_a_domain(client, world):
    key = service_key_for(world.workspace, "Admin", org_scoped=True)
    response = api_call(
        client,
        "POST",
        "/orgs/current/sso/domains",
        key,
        tenant=world.workspace.pk,
        json={"domain": "example.test"},
    )
    assert response.status_code == 403
    assert "service key" in response.json()["detail"]
    assert not EmailDomain.objects.exists()


def test_with_invitations_off_nobody_is_invited(world):
    oidc_sso(world, oidc_client_secret="x", invitations_enabled=False)
    with pytest.raises(ValidationError, match="invitations are turned off"):
        invite_member(actor=world.org_admin, organization=world.org, email="new@example.test")
    assert not world.org.invitations.exists()


def test_with_invitations_off_a_pending_invitation_is_neither_resent_nor_accepted(world):
    invitation, _ = invite_member(
        actor=world.org_admin, organization=world.org, email="new@example.test"
    )
    oidc_sso(world, oidc_client_secret="x", invitations_enabled=False)
    # Resending mails a fresh link, i.e. invites again; accepting takes them in by invitation.
    with pytest.raises(ValidationError, match="invitations are turned off"):
        resend_invitation(actor=world.org_admin, invitation=invitation)
    with pytest.raises(ValidationError, match="invitations are turned off"):
        accept_invitation(invitation=invitation, user=UserFactory(email="new@example.test"))
    assert not world.org.memberships.filter(user__email="new@example.test").exists()
    assert audit_actions().count("invitation.resent") == 0


def test_the_sign_in_page_offers_sso(client):
    page = client.get("/login/").content.decode()
    assert 'href="/login/sso/"' in page
