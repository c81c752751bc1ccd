"""Security review #12, finding 15: a key sent in a URL never reaches a log file.

A key in the query string (`?api_key=...`) is refused with 401, but the request line carrying it
is written by the server's access log: gunicorn's (deploy/gunicorn.conf.py, as `make serve` runs
it) and runserver's `django.server` logger. Each is exercised for real here, and every handler
configured in the process is checked to redact.
"""

import io
import logging
import os
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from django.core.servers.basehttp import WSGIRequestHandler, WSGIServer
from django.core.wsgi import get_wsgi_application

from accesscontrol.apikeys import keys
from accesscontrol.apikeys.redaction import REDACTED, RedactKeysFilter
from tests.support.servers import free_port, wait_until_up

ROOT = Path(__file__).resolve().parents[2]


def get(url) -> int:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code


def a_key_in_the_url(base) -> tuple[str, str]:
    raw = keys.generate(keys.SERVICE)
    return raw, f"{base}/api/v1/auth/whoami?api_key={raw}&tenant=x"


def test_gunicorn_as_served_writes_no_key_to_its_access_or_error_log(tmp_path):
    port = free_port()
    access_log, error_log = tmp_path / "access.log", tmp_path / "error.log"
    env = {
        **os.environ,
        "SECRET_KEY": "test-only-insecure-secret-key",
        "DEBUG": "0",
        "HTTPS": "0",
        "ALLOWED_HOSTS": "127.0.0.1",
    }
    process = subprocess.Popen(
        [
            *(sys.executable, "-m", "gunicorn", "accesscontrol.wsgi:application"),
            *("--config", "deploy/gunicorn.conf.py"),  # the options `make serve` uses
            *("--bind", f"127.0.0.1:{port}", "--workers", "1"),
            *("--access-logfile", str(access_log), "--error-logfile", str(error_log)),
            *("--log-level", "debug"),  # the error log's every line, request lines included
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(base, process)
        raw, url = a_key_in_the_url(base)
        assert get(url) == 401
        legacy = "ls__" + "a1B2" * 8
        assert get(f"{base}/api/v1/auth/whoami?api_key={legacy}") == 401
        deadline = time.monotonic() + 10
        while "whoami" not in access_log.read_text() and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        process.terminate()
        process.wait(timeout=20)

    access, errors = access_log.read_text(), error_log.read_text()
    assert access.count("GET /api/v1/auth/whoami?api_key=[key redacted]&tenant=x HTTP/1.1") == 1
    assert '" 401 ' in access
    for text in (access, errors):
        assert raw not in text
        assert raw[8:40] not in text
        assert legacy not in text


@pytest.fixture
def runserver():
    """runserver's own server and request handler, serving the app in a thread."""
    server = WSGIServer(("127.0.0.1", 0), WSGIRequestHandler, ipv6=False)
    server.set_app(get_wsgi_application())
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    server.server_close()


@pytest.fixture
def written():
    """What the configured handlers of `django.server` and the root logger write."""
    handlers = logging.getLogger("django.server").handlers + logging.getLogger().handlers
    streams = {h: h.stream for h in handlers if isinstance(h, logging.StreamHandler)}
    output = io.StringIO()
    for handler in streams:
        handler.setStream(output)
    yield output
    for handler, stream in streams.items():
        handler.setStream(stream)


def test_runserver_writes_no_key_with_its_request_lines(settings, runserver, written):
    settings.ALLOWED_HOSTS = ["127.0.0.1"]
    settings.DEBUG = True  # runserver's request lines are written in development only
    raw, url = a_key_in_the_url(runserver)

    assert get(url) == 401

    deadline = time.monotonic() + 10  # the server logs the line after it has answered
    while "HTTP/1.1" not in written.getvalue() and time.monotonic() < deadline:
        time.sleep(0.05)
    text = written.getvalue()
    assert f"GET /api/v1/auth/whoami?api_key={REDACTED}&tenant=x HTTP/1.1" in text
    assert raw not in text


def test_a_key_in_a_logged_traceback_is_redacted(written):
    raw = keys.generate(keys.PERSONAL)
    try:
        raise ValueError(f"could not parse {raw}")
    except ValueError:
        logging.getLogger("django.request").exception("Internal Server Error: /api/v1/x")

    text = written.getvalue()
    assert "could not parse [key redacted]" in text
    assert raw not in text


def test_every_configured_handler_redacts_keys():
    """The class: whatever logger a library writes to, its lines pass through the filter."""
    loggers = [logging.getLogger()] + [
        logger
        for logger in logging.Logger.manager.loggerDict.values()
        if isinstance(logger, logging.Logger)
    ]
    unfiltered = [
        (logger.name, handler)
        for logger in loggers
        for handler in logger.handlers
        if type(handler).__module__.split(".")[0] != "_pytest"  # pytest's own capture
        and not isinstance(handler, logging.NullHandler)  # writes nothing
        and not any(isinstance(f, RedactKeysFilter) for f in handler.filters + logger.filters)
    ]
    assert unfiltered == []
    assert {"django", "django.server"} <= {logger.name for logger in loggers if logger.handlers}


def test_redaction_uses_the_key_format_of_keys_py():
    from accesscontrol.apikeys import redaction

    assert redaction.KEY_PATTERN is keys.IN_TEXT
    for kind in (keys.PERSONAL, keys.SERVICE):
        raw = keys.generate(kind)
        assert keys.parse(raw) is not None
        assert redaction.redact(f"?api_key={raw}&x=1") == f"?api_key={REDACTED}&x=1"
