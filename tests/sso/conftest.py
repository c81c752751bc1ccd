"""Real identity providers on loopback: an OpenID Connect provider process (oidc-provider-mock,
served by werkzeug in a thread) and, per test, a SAML IdP built with pysaml2 (saml_idp.py)."""

import html
import re
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from oidc_provider_mock import run_server_in_thread

from accesscontrol.sso import services

# Playwright against Debian's Chromium, and the demo data (test_browser.py).
from tests.browser.conftest import browser_type_launch_args, demo, login  # noqa: F401
from tests.sso.saml_idp import SamlIdp

DOMAIN = "example.test"  # the personas' email domain (tests/factories.py)


def browser():
    """A test client at 127.0.0.1: python3-saml refuses URLs of single-label hosts
    ("testserver"), as a real deployment never has them."""
    from django.test import Client

    return Client(HTTP_HOST="127.0.0.1")


@pytest.fixture
def client():
    return browser()


@pytest.fixture(scope="session")
def oidc_provider():
    """The issuer URL of a running OpenID Connect provider."""
    with run_server_in_thread() as server:
        yield f"http://localhost:{server.server_port}"


@pytest.fixture
def domain(world):
    return services.claim_domain(actor=world.org_admin, organization=world.org, domain=DOMAIN)


@pytest.fixture
def acme_oidc(world, domain, oidc_provider):
    """Acme signs in through the OpenID Connect provider, with just-in-time provisioning: a
    newcomer becomes a member, Viewer of production."""
    from tests.factories import system_role

    return services.save_sso(
        actor=world.org_admin,
        organization=world.org,
        protocol="oidc",
        oidc_issuer=oidc_provider,
        oidc_client_id="accesscontrol-acme",
        oidc_client_secret="s3cret-of-acme",
        jit_provisioning=True,
        default_workspace_roles=[(world.workspace, system_role("Viewer"))],
    )


def local(url):
    """A URL of ours, as the test client takes it (path and query)."""
    parts = urlsplit(url)
    return f"{parts.path}?{parts.query}" if parts.query else parts.path


def to_identity_provider(response):
    """Where our page sends the browser on to the identity provider (it is a page, not a 302:
    templates/sso/redirect.html)."""
    assert response.status_code == 200, response.content[:500]
    url = re.search(r'id="idp-link" href="([^"]+)"', response.content.decode()).group(1)
    return html.unescape(url)


def start_oidc(client, email, **data):
    """Sign in with SSO with this email: the provider's authorization URL it sends us to."""
    return to_identity_provider(client.post("/login/sso/", {"email": email, **data}))


def at_provider(authorize_url, email):
    """The person signs in at the provider's own page (a POST of its form, as a browser would);
    the provider's redirect back to our callback."""
    response = requests.post(authorize_url, data={"sub": email}, allow_redirects=False, timeout=10)
    assert response.status_code == 302, response.text[:500]
    return response.headers["Location"]


def oidc_sign_in(client, email):
    """The whole round trip; the response of our callback."""
    callback = at_provider(start_oidc(client, email), email)
    return client.get(local(callback))


def query(url, name):
    return parse_qs(urlsplit(url).query)[name][0]


@pytest.fixture
def saml_idp(client, world, domain):
    """Acme signs in through a pysaml2 IdP, JIT on (members join as members, no workspaces)."""
    idp = SamlIdp()
    sso = services.save_sso(
        actor=world.org_admin,
        organization=world.org,
        protocol="saml",
        saml_metadata_xml=idp.metadata,
        jit_provisioning=True,
    )
    idp.trust(client.get(f"/accounts/saml/{world.org.slug}/metadata/").content.decode())
    idp.sso = sso
    return idp
