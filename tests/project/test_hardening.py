"""Production hardening: deploy checks, HTTPS-only cookies and HSTS, and secrets kept out of logs,
error reports, audit rows and cache keys."""

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.cache import cache
from django.db import connection
from django.views.debug import ExceptionReporter

from accesscontrol.apikeys.models import ServiceKey
from accesscontrol.audit.models import AuditEvent
from tests.factories import pat_for, service_key_for, system_role
from tests.support.api import api_call

ROOT = Path(__file__).resolve().parents[2]
PRODUCTION = {
    "DEBUG": "0",
    "SECRET_KEY": "x7Hq2-production-like-secret-key-of-sufficient-length-9Zp4W!",
    "ALLOWED_HOSTS": "accesscontrol.example.com",
    "EMAIL_HOST": "smtp.example.com",
}


# Not passed on to the subprocess: what the tests set in this process (the browser tests set
# DJANGO_ALLOW_ASYNC_UNSAFE for Playwright, which check --deploy rightly refuses).
NOT_INHERITED = {
    "DEBUG",
    "HTTPS",
    "AUTHZ_CACHE",
    "SECRET_KEY",
    "DATABASE_URL",
    "DJANGO_ALLOW_ASYNC_UNSAFE",
}


def run_python(code, **env):
    environment = {k: v for k, v in os.environ.items() if k not in NOT_INHERITED}
    environment.update(DJANGO_SETTINGS_MODULE="accesscontrol.settings", **env)
    return subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=environment, capture_output=True, text=True
    )


def test_check_deploy_is_clean_with_production_settings():
    result = run_python(
        "import sys; from django.core.management import execute_from_command_line; "
        "execute_from_command_line(['manage.py', 'check', '--deploy', '--fail-level', 'WARNING'])",
        **PRODUCTION,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout


SETTINGS_PROBE = (
    "import json, django; django.setup(); from django.conf import settings as s; "
    "print(json.dumps({k: getattr(s, k) for k in ['SESSION_COOKIE_SECURE', 'CSRF_COOKIE_SECURE', "
    "'SECURE_SSL_REDIRECT', 'SECURE_HSTS_SECONDS', 'SECURE_HSTS_INCLUDE_SUBDOMAINS', "
    "'SESSION_COOKIE_HTTPONLY', 'X_FRAME_OPTIONS', 'AUTHZ_CACHE']}))"
)


def test_production_defaults_are_https_only():
    result = run_python(SETTINGS_PROBE, **PRODUCTION)
    assert result.returncode == 0, result.stderr
    values = json.loads(result.stdout)
    assert values["SESSION_COOKIE_SECURE"] and values["CSRF_COOKIE_SECURE"]
    assert values["SECURE_SSL_REDIRECT"]
    assert values["SECURE_HSTS_SECONDS"] >= 365 * 24 * 3600
    assert values["SECURE_HSTS_INCLUDE_SUBDOMAINS"]
    assert values["SESSION_COOKIE_HTTPONLY"]
    assert values["X_FRAME_OPTIONS"] == "DENY"
    # Without Redis the principal cache stays off: other processes could not see versions move.
    assert values["AUTHZ_CACHE"] is False


def test_development_and_loopback_can_opt_out_of_https():
    values = json.loads(run_python(SETTINGS_PROBE, **PRODUCTION, HTTPS="0").stdout)
    assert not values["SESSION_COOKIE_SECURE"]
    assert not values["SECURE_SSL_REDIRECT"]
    assert values["SECURE_HSTS_SECONDS"] == 0


RESPONSES_PROBE = """
import json, django
django.setup()
from django.test import Client
from django.test.utils import setup_test_environment
setup_test_environment()
client = Client(HTTP_HOST="accesscontrol.example.com")
plain = client.get("/login/")
health = client.get("/healthz")
secure = client.get("/login/", secure=True)
print(json.dumps({
    "plain_status": plain.status_code,
    "plain_location": plain.headers.get("Location"),
    "health_status": health.status_code,
    "hsts": secure.headers.get("Strict-Transport-Security"),
    "csrf_cookie_secure": bool(secure.cookies["csrftoken"]["secure"]),
    "csp": secure.headers.get("Content-Security-Policy"),
}))
"""


def test_production_redirects_to_https_and_sends_hsts():
    result = run_python(RESPONSES_PROBE, **PRODUCTION, DATABASE_URL="sqlite://:memory:")
    assert result.returncode == 0, result.stderr
    got = json.loads(result.stdout.strip().splitlines()[-1])
    assert got["plain_status"] == 301
    assert got["plain_location"] == "https://accesscontrol.example.com/login/"
    assert got["health_status"] == 200  # load balancers probe over plain HTTP
    assert "max-age=31536000" in got["hsts"]
    assert "includeSubDomains" in got["hsts"]
    assert got["csrf_cookie_secure"]
    assert "script-src 'self'" in got["csp"]
    assert "unsafe-inline" not in got["csp"]


# Keys and tokens never leave the response that shows them once.


def secrets_of(raw):
    """The key and its secret part: neither may appear anywhere but in that one response."""
    return {raw, raw.split("_")[2]} if raw.startswith("lsv2_") else {raw}


def assert_nowhere(found_in: dict[str, str], raws):
    for raw in raws:
        for secret in secrets_of(raw):
            for where, text in found_in.items():
                assert secret not in text, f"a key was found in {where}"


def audit_text():
    return json.dumps(list(AuditEvent.objects.values()), default=str)


def cache_keys_text():
    return " ".join(str(k) for k in getattr(cache, "_cache", {}))


def test_keys_never_reach_logs_audit_rows_or_cache_keys(client, world, caplog, settings):
    settings.THROTTLES = {**settings.THROTTLES, "key": (2, 60)}
    caplog.set_level(logging.DEBUG)
    connection.force_debug_cursor = True  # SQL with its parameters goes to the log as well
    try:
        client.force_login(world.workspace_admin)
        response = client.post(
            f"/o/acme/w/{world.workspace.slug}/keys/",
            {"name": "ci", "role": system_role("Viewer").pk, "expires_in": "30"},
        )
        assert response.status_code == 302
        console_key = client.get(response["Location"]).context["created"]["raw"]
        pat = pat_for(world.editor, world.org)
        sk = service_key_for(world.workspace, "Editor")
        for raw in (console_key, pat, sk):
            assert api_call(client, "GET", "/auth/whoami", raw).status_code == 200
            assert api_call(client, "GET", "/auth/whoami", raw, bearer=True).status_code == 200
            tenant = world.other_workspace_of_other_org.pk
            assert api_call(client, "GET", "/datasets", raw, tenant=tenant).status_code in (
                403,
                404,
            )
        # Refusals are logged (and audited) too: revoked, then throttled.
        key = ServiceKey.objects.get(name="Editor key")
        key.revoked_at = key.created_at
        key.save()
        statuses = [api_call(client, "GET", "/auth/whoami", sk).status_code for _ in range(3)]
        assert statuses == [401, 401, 429]
        # A mistyped key (one character off) is refused without being echoed back.
        typo = sk[:-1] + ("0" if sk[-1] != "0" else "1")
        body = api_call(client, "GET", "/auth/whoami", typo).content.decode()
        assert typo not in body
    finally:
        connection.force_debug_cursor = False

    assert caplog.records, "the scenario should have logged something (requests, SQL)"
    assert_nowhere(
        {"logs": caplog.text, "audit rows": audit_text(), "cache keys": cache_keys_text()},
        [console_key, pat, sk],
    )


def report_of(record):
    """The error report Django mails to admins for a logged 500 (AdminEmailHandler's way)."""
    reporter = ExceptionReporter(record.request, is_email=True, *record.exc_info)
    return reporter.get_traceback_text(), reporter.get_traceback_html()


@pytest.mark.parametrize("header", ["HTTP_X_API_KEY", "HTTP_AUTHORIZATION"])
@pytest.mark.parametrize("where", ["authentication", "view"])
def test_500_logs_and_error_reports_do_not_carry_the_key(
    client, world, caplog, monkeypatch, header, where
):
    """An unexpected error while serving a keyed request, raised where the key is a local
    variable (authentication) or after it (the view): the log line and the report hide it."""
    from accesscontrol.apikeys import api as keys_api
    from accesscontrol.apikeys import authentication

    raw = service_key_for(world.workspace, "Admin")
    if where == "authentication":
        # fails while raw_key is in scope (called on every keyed request, cached or not)
        monkeypatch.setattr(authentication, "_parse_tenant", None)
    else:
        monkeypatch.setattr(keys_api, "REASONS", None)  # whoami fails inside the view
    client.raise_request_exception = False
    caplog.set_level(logging.DEBUG)
    value = raw if header == "HTTP_X_API_KEY" else f"Bearer {raw}"

    response = client.get("/api/v1/auth/whoami", **{header: value})

    assert response.status_code == 500
    errors = [r for r in caplog.records if r.name == "django.request" and r.exc_info]
    assert errors, "the 500 should be logged with its traceback"
    text, html = report_of(errors[0])
    assert ("TypeError" if where == "authentication" else "AttributeError") in text
    assert_nowhere(
        {
            "logs": caplog.text,
            "response": response.content.decode(),
            "text report": text,
            "html report": html,
        },
        [raw],
    )


def test_the_log_handler_redacts_keys_whoever_logs_them(world):
    raw = service_key_for(world.workspace, "Admin")
    handler = next(
        h
        for h in logging.getLogger().handlers
        if any(type(f).__name__ == "RedactKeysFilter" for f in h.filters)
    )
    record = logging.LogRecord("lib", logging.WARNING, __file__, 1, "got %s", (raw,), None)
    assert handler.filter(record)
    assert raw not in record.getMessage()
    assert "[key redacted]" in record.getMessage()
