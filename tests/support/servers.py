"""Real server processes for the tests that need them: a free port, waiting until it answers,
two gunicorn nodes sharing the test database and a Redis, and plain HTTP calls to them."""

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from contextlib import contextmanager
from pathlib import Path

import redis
from django.db import connection

from accesscontrol.rbac import versions
from tests.support.db import NO_WAIT_FOR_DISK

ROOT = Path(__file__).resolve().parents[2]
REDIS_URL = "redis://127.0.0.1:6379/13"


def redis_answers() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 6379), timeout=1):
            return True
    except OSError:
        return False


def kill_channels(prefix):
    """Close, from the server's side, the push connection of every process using `prefix`."""
    client = redis.Redis.from_url(REDIS_URL)
    killed = 0
    for entry in client.client_list():
        if entry.get("name", "").startswith(versions.channel_name(prefix)):
            client.client_kill_filter(_id=entry["id"])
            killed += 1
    return killed


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until_up(url, process):
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"server exited: {process.stderr.read().decode()[-2000:]}")
        try:
            with urllib.request.urlopen(f"{url}/healthz", timeout=2):
                return
        except OSError:
            time.sleep(0.1)
    raise AssertionError(f"server at {url} did not come up in 30 s")


def database_url() -> str:
    db = connection.settings_dict
    return f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


@contextmanager
def two_servers(cache_url, prefix):
    """Two app processes on the test database; yields their base URLs."""
    env = {
        **os.environ,
        "DATABASE_URL": database_url(),
        "CACHE_URL": cache_url,
        "CACHE_KEY_PREFIX": prefix,
        "AUTHZ_CACHE": "1",
        "SECRET_KEY": "test-only-insecure-secret-key",
        "DEBUG": "0",
        "HTTPS": "0",
        "ALLOWED_HOSTS": "127.0.0.1",
        "PGOPTIONS": NO_WAIT_FOR_DISK,  # as the test's own connections
    }
    processes, urls = [], []
    try:
        for _ in range(2):
            port = free_port()
            processes.append(
                subprocess.Popen(
                    [
                        *(sys.executable, "-m", "gunicorn", "accesscontrol.wsgi:application"),
                        *("--bind", f"127.0.0.1:{port}", "--workers", "1"),
                        *("--log-level", "warning"),
                    ],
                    cwd=ROOT,
                    env=env,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.PIPE,
                )
            )
            urls.append(f"http://127.0.0.1:{port}")
        for url, process in zip(urls, processes, strict=True):
            wait_until_up(url, process)
        yield urls
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()


def call(base, method, path, key, tenant=None, body=None):
    headers = {"X-API-Key": key, "Content-Type": "application/json"}
    if tenant is not None:
        headers["X-Tenant-Id"] = str(tenant)
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(
        f"{base}/api/v1{path}", data=data, headers=headers, method=method
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"null")
