"""Leaked-key reports from secret scanners (issue #17 item 3), signed as GitHub signs them: a
key pair made here, its public half configured as a trusted scanner's, reports signed with the
private half (ECDSA P-256 / SHA-256, DER, base64).
"""

import base64
import json
import logging

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from django.core import mail
from django.core.exceptions import ImproperlyConfigured
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from accesscontrol import settings as project_settings
from accesscontrol.apikeys import keys
from accesscontrol.apikeys.models import PersonalAccessToken, ServiceKey
from accesscontrol.apikeys.services import revoke_personal_access_token
from accesscontrol.audit.models import AuditEvent
from tests.factories import pat_for, service_key_for, unknown_key
from tests.support.api import api_call
from tests.support.db import assert_no_key_in_audit

REPORTS = "/api/v1/secret-scanning/reports"
LEAK_URL = "https://github.com/someone/project/blob/abc123/.env"


def new_key_pair():
    private = ec.generate_private_key(ec.SECP256R1())
    pem = private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return private, pem.decode()


@pytest.fixture
def scanner_key(settings):
    """The private key of a trusted scanner, "github", whose public key id is "gh-key-1"."""
    private, pem = new_key_pair()
    settings.SECRET_SCANNERS = {"github": {"gh-key-1": pem}}
    return private


@pytest.fixture
def committed(django_capture_on_commit_callbacks):
    """Runs what the request's commit runs (the emails), as it would outside a test."""
    return lambda: django_capture_on_commit_callbacks(execute=True)


def sign(private, body: bytes) -> str:
    return base64.b64encode(private.sign(body, ec.ECDSA(hashes.SHA256()))).decode()


def finding(token, url=LEAK_URL, source="content"):
    return {"token": token, "type": "accesscontrol_api_key", "url": url, "source": source}


def report(client, private, items, *, key_id="gh-key-1", body=None, signature=None):
    body = json.dumps(items).encode() if body is None else body
    headers = {"Github-Public-Key-Identifier": key_id}
    headers["Github-Public-Key-Signature"] = signature or sign(private, body)
    return client.post(REPORTS, body, content_type="application/json", headers=headers)


def row_of(raw):
    model = PersonalAccessToken if raw.startswith("lsv2_pt_") else ServiceKey
    return model.objects.get(digest=keys.digest(raw))


def labels(response):
    assert response.status_code == 200, response.content
    return [verdict["label"] for verdict in response.json()]


def nothing_written():
    return AuditEvent.objects.count(), len(mail.outbox)


# A live key is revoked at once


def test_a_signed_report_revokes_a_live_key_on_the_very_next_request(client, world, scanner_key):
    raw = service_key_for(world.workspace)
    assert api_call(client, "get", "/auth/whoami", raw).status_code == 200  # cached here

    response = report(client, scanner_key, [finding(raw)])

    assert response.json() == [
        {"token_raw": raw, "token_type": "accesscontrol_api_key", "label": "true_positive"}
    ]
    refused = api_call(client, "get", "/auth/whoami", raw)
    assert refused.status_code == 401
    assert refused.json()["error"] == "revoked_api_key"
    assert "github reported it leaked" in refused.json()["detail"]
    key = row_of(raw)
    assert key.revoked_reason == "leaked"
    assert (key.leak_reported_by, key.leak_url, key.leak_source) == ("github", LEAK_URL, "content")


def test_the_audit_log_records_the_scanner_the_source_url_and_never_the_key(
    client, world, scanner_key
):
    raw = service_key_for(world.workspace)
    report(client, scanner_key, [finding(raw)])

    event = AuditEvent.objects.get(action="service_key.leaked")
    assert event.actor_kind == "system"
    assert event.actor_label == "system: secret scanner github"
    assert event.changes["after"]["leak_url"] == LEAK_URL
    assert event.changes["after"]["leak_reported_by"] == "github"
    assert event.workspace_id == world.workspace.pk
    assert_no_key_in_audit([raw])
    # And the organization's admins read it there.
    client.force_login(world.org_admin)
    page = client.get(reverse("audit-log", args=["acme"]))
    assert LEAK_URL in page.content.decode()
    assert "secret scanner github" in page.content.decode()


def test_a_workspace_keys_admins_are_told_by_email_and_in_the_console(
    client, world, scanner_key, committed
):
    raw = service_key_for(world.workspace)
    with committed():
        report(client, scanner_key, [finding(raw)])

    [message] = mail.outbox
    assert set(message.to) == {world.org_admin.email, world.workspace_admin.email}
    assert LEAK_URL in message.body and row_of(raw).hint in message.body
    assert raw not in message.body and raw not in message.subject
    client.force_login(world.workspace_admin)
    page = client.get(reverse("service-keys", args=["acme", "production"])).content.decode()
    assert f"revoked: reported leaked at {LEAK_URL} by github" in page


def test_a_tokens_user_is_told_by_email_and_in_the_console(client, world, scanner_key, committed):
    raw = pat_for(world.editor, world.org)
    with committed():
        assert labels(report(client, scanner_key, [finding(raw)])) == ["true_positive"]

    [message] = mail.outbox
    assert message.to == [world.editor.email]
    assert reverse("personal-tokens", args=["acme"]) in message.body
    client.force_login(world.editor)
    page = client.get(reverse("personal-tokens", args=["acme"])).content.decode()
    assert f"revoked: reported leaked at {LEAK_URL} by github" in page
    assert AuditEvent.objects.filter(action="personal_access_token.leaked").count() == 1


def test_an_organization_wide_keys_organization_admins_are_told(
    client, world, scanner_key, committed
):
    raw = service_key_for(world.workspace, org_scoped=True)
    with committed():
        report(client, scanner_key, [finding(raw)])
    [message] = mail.outbox
    assert message.to == [world.org_admin.email]


# Dead, unknown and malformed keys: false positives, nothing written


def test_a_dead_an_unknown_and_a_foreign_token_are_false_positives(
    client, world, scanner_key, committed
):
    revoked = pat_for(world.editor, world.org)
    revoke_personal_access_token(actor=world.editor, token=row_of(revoked))
    live = service_key_for(world.workspace)
    before = nothing_written()

    with committed():
        response = report(
            client,
            scanner_key,
            [finding(revoked), finding(unknown_key()), finding("ghp_notoursatall"), finding(live)],
        )

    assert labels(response) == ["false_positive"] * 3 + ["true_positive"]
    assert row_of(revoked).revoked_reason == ""  # revoked by hand, and left so
    assert AuditEvent.objects.count() == before[0] + 1  # the live key's revocation only
    assert len(mail.outbox) == 1


def test_a_key_named_twice_gets_the_same_answer_twice(client, world, scanner_key):
    raw = service_key_for(world.workspace)
    response = report(client, scanner_key, [finding(raw), finding(raw, url="https://x.test/")])
    assert labels(response) == ["true_positive", "true_positive"]
    assert AuditEvent.objects.filter(action="service_key.leaked").count() == 1


def test_a_token_that_fails_the_checksum_never_reaches_the_database(client, world, scanner_key):
    raw = service_key_for(world.workspace)
    wrong = raw[:-1] + ("0" if raw[-1] != "0" else "1")  # same shape, wrong checksum
    with CaptureQueriesContext(connection) as queries:
        response = report(client, scanner_key, [finding(wrong)])
    assert labels(response) == ["false_positive"]
    assert not [q for q in queries.captured_queries if "apikeys_" in q["sql"]]
    assert row_of(raw).revoked_at is None


# Refused reports change nothing


def test_a_badly_signed_report_is_refused_and_changes_nothing(client, world, scanner_key):
    raw = service_key_for(world.workspace)
    body = json.dumps([finding(raw)]).encode()
    other = json.dumps([finding(raw, url="https://elsewhere.test/")]).encode()
    impostor, _ = new_key_pair()
    before = nothing_written()

    for signature in (
        sign(scanner_key, other),  # signed, but another body
        sign(impostor, body),  # the right key id, another key
        "not base64 at all!",
        base64.b64encode(b"garbage").decode(),
    ):
        response = report(client, scanner_key, None, body=body, signature=signature)
        assert response.status_code == 403, response.content
        assert response.json()["error"] == "invalid_signature"

    assert row_of(raw).revoked_at is None
    assert nothing_written() == before


def test_a_report_signed_with_an_unknown_key_id_is_refused(client, world, scanner_key):
    raw = service_key_for(world.workspace)
    response = report(client, scanner_key, [finding(raw)], key_id="someone-elses-key")
    assert response.status_code == 403
    assert response.json()["error"] == "unknown_signing_key"
    assert row_of(raw).revoked_at is None


def test_an_unsigned_report_is_refused(client, world, scanner_key):
    raw = service_key_for(world.workspace)
    response = client.post(REPORTS, [finding(raw)], content_type="application/json")
    assert response.status_code == 403
    assert response.json()["error"] == "signature_required"
    assert row_of(raw).revoked_at is None


def test_without_configured_scanners_every_report_is_refused(client, world, settings):
    settings.SECRET_SCANNERS = {}
    private, _ = new_key_pair()
    raw = service_key_for(world.workspace)
    response = report(client, private, [finding(raw)])
    assert response.status_code == 403
    assert row_of(raw).revoked_at is None


@pytest.mark.parametrize(
    ("body", "status"),
    [
        (b"{not json", 422),
        (b'{"token": "x"}', 422),
        (b'[{"url": "https://x.test"}]', 422),
        (b'[{"token": 5}]', 422),
        (b'[{"token": "x", "url": ["a"]}]', 422),
        (b'[{"token": "x\\u0000"}]', 422),
    ],
)
def test_a_signed_report_of_the_wrong_shape_is_refused(client, world, scanner_key, body, status):
    response = report(client, scanner_key, None, body=body)
    assert response.status_code == status, response.content
    assert response.json()["error"] in ("invalid", "invalid_json")


def test_a_report_over_the_size_or_count_limit_is_refused(client, world, settings, scanner_key):
    raw = service_key_for(world.workspace)
    settings.SECRET_SCANNING_MAX_TOKENS = 2
    too_many = report(client, scanner_key, [finding(raw)] * 3)
    assert too_many.status_code == 413
    settings.SECRET_SCANNING_MAX_BODY = 100
    too_big = report(client, scanner_key, [finding(raw)])
    assert too_big.status_code == 413
    assert too_big.json()["error"] == "too_large"
    assert row_of(raw).revoked_at is None


def test_reports_are_throttled_per_client(client, world, settings, scanner_key):
    settings.THROTTLES = {**settings.THROTTLES, "secret-scanning": (2, 60)}
    statuses = [report(client, scanner_key, []).status_code for _ in range(3)]
    assert statuses == [200, 200, 429]


def test_the_endpoint_needs_no_csrf_token_nor_api_key(world, scanner_key):
    raw = service_key_for(world.workspace)
    response = report(Client(enforce_csrf_checks=True), scanner_key, [finding(raw)])
    assert labels(response) == ["true_positive"]


def test_no_token_is_ever_logged(client, world, scanner_key, caplog):
    raw = service_key_for(world.workspace)
    caplog.set_level(logging.DEBUG)
    report(client, scanner_key, [finding(raw)])
    report(client, scanner_key, [finding(raw)], key_id="unknown")  # a refusal, logged as such
    assert caplog.records
    assert raw not in caplog.text
    assert raw.split("_")[2] not in caplog.text


# The configuration fails loudly


@pytest.mark.parametrize(
    "value",
    [
        "not json",
        '["github"]',
        '{"github": {}}',
        '{"github": {"k": "not a pem"}}',
    ],
)
def test_a_bad_scanner_configuration_fails_at_start_up(monkeypatch, value):
    monkeypatch.setenv("SECRET_SCANNERS", value)
    with pytest.raises(ImproperlyConfigured):
        project_settings.env_scanners("SECRET_SCANNERS")


def test_a_scanner_key_that_is_not_p256_is_refused(monkeypatch):
    other_curve = ec.generate_private_key(ec.SECP384R1()).public_key()
    pem = other_curve.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()
    monkeypatch.setenv("SECRET_SCANNERS", json.dumps({"github": {"k": pem}}))
    with pytest.raises(ImproperlyConfigured):
        project_settings.env_scanners("SECRET_SCANNERS")
    _, good = new_key_pair()
    monkeypatch.setenv("SECRET_SCANNERS", json.dumps({"github": {"k": good}}))
    assert project_settings.env_scanners("SECRET_SCANNERS") == {"github": {"k": good}}
