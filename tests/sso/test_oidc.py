"""Signing in through an organization's OpenID Connect provider, a real one on loopback
(oidc-provider-mock): our /login/sso/ → the provider's page → our callback."""

import pytest
from allauth.socialaccount.models import SocialAccount

from accesscontrol.accounts.models import User
from accesscontrol.audit.models import AuditEvent
from accesscontrol.organizations.models import OrganizationMembership
from accesscontrol.sso import services
from accesscontrol.sso.signals import SESSION_KEY
from accesscontrol.workspaces.models import WorkspaceMembership
from tests.factories import PASSWORD, oidc_sso, require_sso
from tests.sso.conftest import (
    at_provider,
    browser,
    local,
    oidc_sign_in,
    query,
    start_oidc,
    to_identity_provider,
)
from tests.support.sso import people

NEWCOMER = "newcomer@example.test"


def test_a_newcomer_is_provisioned_just_in_time_and_signed_in(client, world, acme_oidc):
    response = oidc_sign_in(client, NEWCOMER)

    assert response.status_code == 302, response.content[:500]
    user = User.objects.get(email=NEWCOMER)
    assert not user.has_usable_password()
    membership = OrganizationMembership.objects.get(user=user, organization=world.org)
    assert (membership.org_role, membership.source) == ("member", "sso")
    ws = WorkspaceMembership.objects.get(org_membership=membership)
    assert (ws.workspace, ws.role.name, ws.source) == (world.workspace, "Viewer", "sso")
    # Signed in, and the session says through which provider.
    assert int(client.session["_auth_user_id"]) == user.pk
    assert client.session[SESSION_KEY] == {
        "organization": "acme",
        "protocol": "oidc",
        "provider_id": "oidc-acme",
    }
    assert client.get("/").status_code == 302  # home sends a member into their workspace
    rows = AuditEvent.objects.filter(organization=world.org).order_by("id")
    added = rows.filter(action="org_member.added").last()
    assert added.actor_label == "system: single sign-on of acme"
    assert added.changes["after"] == {"org_role": "member", "via": "sso"}
    ws_added = rows.filter(action="workspace_member.added").last()
    assert ws_added.changes["after"] == {"role": "Viewer", "via": "sso"}
    signed_in = rows.filter(action="login.succeeded").last()
    assert signed_in.actor_label == NEWCOMER
    assert signed_in.changes["after"] == {"via": "sso", "provider": "OpenID Connect (Acme)"}


def test_an_existing_member_is_linked_and_lands_in_their_organization(client, world, acme_oidc):
    before = OrganizationMembership.objects.count()

    response = oidc_sign_in(client, world.editor.email)

    assert response.status_code == 302
    assert int(client.session["_auth_user_id"]) == world.editor.pk
    assert OrganizationMembership.objects.count() == before
    assert SocialAccount.objects.get(user=world.editor).provider == "oidc-acme"
    # A new way to sign in as this account: in the organization's log, by its SSO.
    linked = AuditEvent.objects.filter(organization=world.org, action="sso.account_linked")
    assert list(linked.values_list("actor_label", "target_label", "changes")) == [
        (
            "system: single sign-on of acme",
            world.editor.email,
            {"after": {"provider": "OpenID Connect (Acme)"}},
        )
    ]
    # The second time, the linked account signs in directly (and nothing more is linked).
    client.logout()
    assert oidc_sign_in(client, world.editor.email).status_code == 302
    assert int(client.session["_auth_user_id"]) == world.editor.pk
    assert linked.count() == 1


def test_without_jit_a_stranger_is_refused_and_nothing_is_made(client, world, acme_oidc):
    oidc_sso(
        world,
        issuer=acme_oidc.oidc_issuer,
        client_id=acme_oidc.oidc_client_id,
        jit_provisioning=False,
    )
    before = people()

    response = oidc_sign_in(client, NEWCOMER)

    assert response.status_code == 403
    assert "not a member of Acme" in response.content.decode()
    assert people() == before
    assert "_auth_user_id" not in client.session
    refusal = AuditEvent.objects.filter(action="sso.sign_in_refused").get()
    assert (refusal.organization, refusal.target_label) == (world.org, NEWCOMER)
    assert refusal.changes["after"]["reason"] == "not_a_member"


def test_an_email_outside_the_verified_domains_is_refused(client, world, acme_oidc):
    before = people()
    # The IdP vouches for an address at a domain Acme never claimed.
    callback = at_provider(start_oidc(client, NEWCOMER), "mallory@elsewhere.test")

    response = client.get(local(callback))

    assert response.status_code == 403
    assert "not at an email domain Acme has verified" in response.content.decode()
    assert people() == before
    assert "_auth_user_id" not in client.session


def test_sign_in_with_sso_for_a_domain_without_sso_says_so(client, world):
    response = client.post("/login/sso/", {"email": "someone@nowhere.test"})
    assert response.status_code == 400
    assert "No organization has set up single sign-on" in response.content.decode()
    assert client.post("/login/sso/", {"email": "not an email"}).status_code == 400


def test_a_wrong_state_is_refused(client, world, acme_oidc):
    callback = at_provider(start_oidc(client, NEWCOMER), NEWCOMER)
    before = people()

    forged = local(callback).replace(f"state={query(callback, 'state')}", "state=forged")
    response = client.get(forged)

    assert response.status_code == 403
    assert "could not be verified" in response.content.decode()
    assert people() == before
    assert "_auth_user_id" not in client.session


def test_an_id_token_with_another_sign_ins_nonce_is_refused(client, world, acme_oidc, db):
    """Code injection: the attacker's own code (and ID token, nonce and all) fed into the
    victim's callback with the victim's state: the state matches, the nonce does not."""
    victims = start_oidc(client, NEWCOMER)
    attacker = browser()
    attackers_callback = at_provider(start_oidc(attacker, NEWCOMER), NEWCOMER)
    assert query(victims, "nonce") != query(start_oidc(browser(), NEWCOMER), "nonce")
    before = people()

    response = client.get(
        f"/accounts/oidc/oidc-acme/login/callback/?code={query(attackers_callback, 'code')}"
        f"&state={query(victims, 'state')}"
    )

    assert response.status_code == 403
    assert "nonce does not match" in response.content.decode()
    assert people() == before
    assert "_auth_user_id" not in client.session


@pytest.mark.parametrize("required", [True, False])
def test_require_sso_refuses_a_members_password_except_the_break_glass_admin(
    client, world, acme_oidc, required
):
    require_sso(world, acme_oidc, required)

    response = client.post("/login/", {"login": world.editor.email, "password": PASSWORD})

    if required:
        assert response.status_code == 400
        assert services.REQUIRE_SSO_MESSAGE in response.content.decode()
        assert "_auth_user_id" not in client.session
        # A wrong password still reads as a wrong password (says nothing about SSO).
        wrong = client.post("/login/", {"login": world.editor.email, "password": "nope"})
        assert services.REQUIRE_SSO_MESSAGE not in wrong.content.decode()
    else:
        assert response.status_code == 302
    client.logout()
    # The break-glass admin still may; an outsider's password is no business of Acme's.
    for person in (world.org_admin, world.outsider):
        response = client.post("/login/", {"login": person.email, "password": PASSWORD})
        assert response.status_code == 302, person
        client.logout()
    # And through SSO the member signs in as ever.
    assert oidc_sign_in(client, world.editor.email).status_code == 302
    assert int(client.session["_auth_user_id"]) == world.editor.pk


def test_password_sign_in_refusal_is_one_function(world, acme_oidc):
    assert services.password_sign_in_refusal(world.editor) is None
    acme_oidc.require_sso, acme_oidc.break_glass_user = True, world.org_admin
    acme_oidc.save()
    assert services.password_sign_in_refusal(world.editor) == services.REQUIRE_SSO_MESSAGE
    assert services.password_sign_in_refusal(world.org_admin) is None
    assert services.password_sign_in_refusal(world.outsider) is None


def test_sudo_by_a_fresh_sign_in_at_the_provider(client, world, acme_oidc):
    from accesscontrol.accounts import sudo

    assert oidc_sign_in(client, NEWCOMER).status_code == 302
    session = client.session
    session[sudo.SESSION_KEY] = 0
    session.save()
    page = client.get("/account/confirm/?next=/o/acme/")
    assert "Re-authenticate with OpenID Connect (Acme)" in page.content.decode()

    authorize = to_identity_provider(client.post("/account/confirm/sso/", {"next": "/o/acme/"}))
    assert query(authorize, "prompt") == "login"
    back = client.get(local(at_provider(authorize, NEWCOMER)))

    assert back.status_code == 302 and back["Location"] == "/o/acme/"
    assert client.session[sudo.SESSION_KEY] > 0


def test_sudo_at_the_provider_as_someone_else_grants_nothing(client, world, acme_oidc):
    from accesscontrol.accounts import sudo

    assert oidc_sign_in(client, world.editor.email).status_code == 302
    client.logout()
    assert oidc_sign_in(client, NEWCOMER).status_code == 302
    session = client.session
    session[sudo.SESSION_KEY] = 0
    session.save()

    authorize = to_identity_provider(client.post("/account/confirm/sso/", {"next": "/"}))
    response = client.get(local(at_provider(authorize, world.editor.email)))

    assert response.status_code == 403
    assert client.session[sudo.SESSION_KEY] == 0
    assert int(client.session["_auth_user_id"]) != world.editor.pk
    # Still signed in as themself: the page says nothing was confirmed and leads back to the
    # confirm page, not "you are not signed in" and a sign-in link.
    page = response.content.decode()
    assert "Nothing was confirmed" in page
    assert "You are not signed in" not in page
    assert 'href="/account/confirm/?next=/"' in page


def test_an_account_of_another_organization_is_not_taken_over(client, world, acme_oidc):
    """Globex's admin has an address at Acme's domain: Acme's IdP vouching for it does not
    hand Acme (or whoever runs its IdP) their account."""
    before = people()

    response = oidc_sign_in(client, world.outsider.email)

    assert response.status_code == 403
    assert "belongs to another organization" in response.content.decode()
    assert people() == before
    assert "_auth_user_id" not in client.session
