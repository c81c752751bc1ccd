"""A SAML 2.0 identity provider for the tests, built with pysaml2: it reads our SP's real
AuthnRequests (HTTP-Redirect binding), and issues responses with assertions signed by xmlsec1
with a key and certificate made here with `cryptography`.

Nothing is mocked on our side: the responses are posted to the real ACS view and checked by
python3-saml exactly as an Okta's or an Entra ID's would be.
"""

import base64
import contextlib
import datetime
import html
import http.server
import re
import tempfile
import threading
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from saml2 import BINDING_HTTP_POST, BINDING_HTTP_REDIRECT
from saml2.config import IdPConfig
from saml2.metadata import entity_descriptor
from saml2.saml import NAME_FORMAT_URI, NAMEID_FORMAT_EMAILADDRESS, NameID
from saml2.server import Server

XMLSEC = "/usr/bin/xmlsec1"
EMAIL_ATTRIBUTE = "urn:oid:0.9.2342.19200300.100.1.3"


def key_and_certificate(common_name="test idp"):
    """An RSA key and a self-signed certificate, as PEM bytes."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=30))
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )
    return key_pem, cert.public_bytes(serialization.Encoding.PEM)


class SamlIdp:
    """One identity provider: `metadata` for our console, `answer(...)` for a sign-in."""

    def __init__(
        self,
        sp_metadata: str = "",
        entity_id="https://idp.example.test/metadata",
        sso_url="https://idp.example.test/sso",
    ):
        self.dir = Path(tempfile.mkdtemp(prefix="saml-idp-"))
        key_pem, cert_pem = key_and_certificate()
        (self.dir / "idp.key").write_bytes(key_pem)
        (self.dir / "idp.crt").write_bytes(cert_pem)
        self.entity_id = entity_id
        self.sso_url = sso_url
        self._configure([])
        if sp_metadata:
            self.trust(sp_metadata)

    def trust(self, sp_metadata: str) -> None:
        """Know our SP (its metadata, as our console serves it)."""
        (self.dir / "sp.xml").write_text(sp_metadata)
        self._configure([str(self.dir / "sp.xml")])

    def trust_another_sp(self, entity_id: str) -> None:
        """Know one more SP (our metadata under another entity id): assertions for it."""
        sp_xml = (self.dir / "sp.xml").read_text()
        ours = re.search(r'entityID="([^"]+)"', sp_xml).group(1)
        (self.dir / "other-sp.xml").write_text(sp_xml.replace(ours, entity_id))
        self._configure([str(self.dir / "sp.xml"), str(self.dir / "other-sp.xml")])

    def _configure(self, sp_files) -> None:
        config = IdPConfig()
        config.load(
            {
                "entityid": self.entity_id,
                "xmlsec_binary": XMLSEC,
                "key_file": str(self.dir / "idp.key"),
                "cert_file": str(self.dir / "idp.crt"),
                "metadata": {"local": sp_files} if sp_files else {},
                "service": {
                    "idp": {
                        "endpoints": {
                            "single_sign_on_service": [
                                (self.sso_url, BINDING_HTTP_REDIRECT),
                                (self.sso_url, BINDING_HTTP_POST),
                            ]
                        },
                        "name_id_format": [NAMEID_FORMAT_EMAILADDRESS],
                        "policy": {
                            "default": {
                                "lifetime": {"minutes": 5},
                                "attribute_restrictions": None,
                                "name_form": NAME_FORMAT_URI,
                            }
                        },
                    }
                },
                "allow_unknown_attributes": True,
            }
        )
        self.config = config
        self.server = Server(config=config)

    @property
    def metadata(self) -> str:
        return str(entity_descriptor(self.config))

    def read_request(self, saml_request: str):
        """The AuthnRequest our SP sent (the SAMLRequest query parameter): (id, ACS URL)."""
        request = self.server.parse_authn_request(saml_request, BINDING_HTTP_REDIRECT)
        return request.message.id, request.message.assertion_consumer_service_url

    def answer(self, email, *, in_response_to, acs_url, audience=None, tamper=None):
        """A signed SAMLResponse (base64, as the browser posts it) for `email`.

        `audience`: the SP the assertion is for (ours by default); `tamper(xml) -> xml` changes
        the signed document afterwards (a forged signature)."""
        sp_entity_id = audience or self.sp_entity_id
        response = self.server.create_authn_response(
            identity={EMAIL_ATTRIBUTE: [email], "givenName": ["Sam"], "sn": ["Ell"]},
            in_response_to=in_response_to,
            destination=acs_url,
            sp_entity_id=sp_entity_id,
            name_id=NameID(format=NAMEID_FORMAT_EMAILADDRESS, text=email),
            authn={"class_ref": "urn:oasis:names:tc:SAML:2.0:ac:classes:Password"},
            sign_response=True,
            sign_assertion=True,
            sign_alg="http://www.w3.org/2001/04/xmldsig-more#rsa-sha256",
            digest_alg="http://www.w3.org/2001/04/xmlenc#sha256",
        )
        xml = str(response)
        if tamper is not None:
            xml = tamper(xml)
        return base64.b64encode(xml.encode()).decode()

    @property
    def sp_entity_id(self):
        return re.search(r'entityID="([^"]+)"', (self.dir / "sp.xml").read_text()).group(1)


@contextlib.contextmanager
def served(email):
    """The IdP as a web site on 127.0.0.1 (another site than the app's `localhost`): its sign-in
    page answers our AuthnRequest as `email` with a form the person submits, which posts the
    signed response cross-site to our ACS, as HTTP-POST binding IdPs do."""
    holder = {}

    class Page(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            idp = holder["idp"]
            params = parse_qs(urlsplit(self.path).query)
            request_id, acs_url = idp.read_request(params["SAMLRequest"][0])
            answer = idp.answer(email, in_response_to=request_id, acs_url=acs_url)
            relay = params.get("RelayState", [""])[0]
            body = (
                "<!doctype html><title>Test IdP</title><h1>Test IdP</h1>"
                f'<form method="post" action="{html.escape(acs_url)}">'
                f'<input type="hidden" name="SAMLResponse" value="{answer}">'
                f'<input type="hidden" name="RelayState" value="{html.escape(relay)}">'
                f"<button>Continue as {html.escape(email)}</button></form>"
            ).encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Page)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        holder["idp"] = idp = SamlIdp(sso_url=f"http://127.0.0.1:{server.server_port}/sso")
        yield idp
    finally:
        server.shutdown()
        server.server_close()
