"""Section 6: requests per second under gunicorn, loaded with wrk over loopback.

gunicorn serves the project's own WSGI app (accesscontrol.settings, DEBUG=0, the bench database,
the Redis cache) with 2 sync workers; wrk loads GET /healthz and GET /api/v1/auth/whoami (key in
X-API-Key, set by bench/wrk_key.lua from the environment) in turn: healthz, whoami, whoami,
healthz, so a drift in the machine's load hits both alike. The server is always stopped.
"""

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DURATION = int(os.environ.get("BENCH_WRK_SECONDS", "8"))
THREADS, CONNECTIONS, WORKERS = 2, 16, 2


def say(message):
    print(message, flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get(url, headers=None) -> tuple[int, bytes]:
    request = urllib.request.Request(url, headers=headers or {})  # noqa: S310 - loopback http
    try:
        with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def wait_ready(url, server, log, seconds=60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"bench: gunicorn exited ({server.returncode}):\n{log.read_text()}")
        try:
            if get(url)[0] == 200:
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise SystemExit(f"bench: gunicorn did not answer {url} in {seconds} s:\n{log.read_text()}")


def stop(server) -> None:
    if server.poll() is not None:
        return
    os.killpg(server.pid, signal.SIGTERM)
    try:
        server.wait(timeout=15)
    except subprocess.TimeoutExpired:
        os.killpg(server.pid, signal.SIGKILL)
        server.wait()


UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def parse_wrk(output: str) -> dict:
    rps = re.search(r"Requests/sec:\s+([\d.]+)", output)
    total = re.search(r"(\d+) requests in", output)
    latency = {
        pct: float(value) * UNITS[unit]
        for pct, value, unit in re.findall(r"^\s+(\d+)%\s+([\d.]+)(us|ms|s)\s*$", output, re.M)
    }
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    errors = re.search(r"Socket errors: (.*)", output)
    if rps is None:
        raise SystemExit(f"bench: could not read wrk's output:\n{output}")
    return {
        "requests_per_second": float(rps.group(1)),
        "requests": int(total.group(1)) if total else None,
        "p50_ms": latency.get("50"),
        "p99_ms": latency.get("99"),
        "non_2xx": int(non_2xx.group(1)) if non_2xx else 0,
        "socket_errors": errors.group(1).strip() if errors else "none",
    }


def wrk(binary, url, seconds, script=None, env=None) -> dict:
    command = [binary, f"-t{THREADS}", f"-c{CONNECTIONS}", f"-d{seconds}s", "--latency"]
    command += ["--timeout", "5s"]
    if script:
        command += ["-s", str(script)]
    done = subprocess.run(  # noqa: S603 - wrk from PATH, loopback only
        [*command, url], capture_output=True, text=True, env=env, check=True, timeout=seconds + 30
    )
    return parse_wrk(done.stdout)


def wrk_version(binary) -> str:
    done = subprocess.run([binary, "-v"], capture_output=True, text=True)  # noqa: S603
    first = (done.stdout or done.stderr).strip().splitlines()
    return first[0].split(" Copyright")[0] if first else "unknown"


def throughput(env: dict, key: dict, tmp: Path) -> dict:
    binary = shutil.which("wrk")
    if binary is None:
        message = "wrk is not installed (apt-get install -y wrk): section 6 skipped"
        say(f"bench: {message}")
        return {"skipped": message}
    gunicorn = Path(sys.executable).parent / "gunicorn"
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log = tmp / "gunicorn.log"
    pidfile = Path(os.environ.get("BENCH_GUNICORN_PIDFILE", tmp / "gunicorn.pid"))
    server_env = {**env, "DJANGO_SETTINGS_MODULE": "accesscontrol.settings"}
    command = [
        str(gunicorn),
        "accesscontrol.wsgi:application",
        "--workers",
        str(WORKERS),
        "--bind",
        f"127.0.0.1:{port}",
        "--pid",
        str(pidfile),
        "--log-level",
        "warning",
    ]
    say(
        f"bench: starting gunicorn on 127.0.0.1:{port} (2 workers, DEBUG=0, "
        f"cache {server_env['CACHE_URL']})"
    )
    with open(log, "w") as log_file:
        server = subprocess.Popen(  # noqa: S603 - gunicorn of this venv
            command,
            cwd=ROOT,
            env=server_env,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        wait_ready(f"{base}/healthz", server, log)
        whoami = f"{base}/api/v1/auth/whoami"
        status, body = get(whoami, {"X-API-Key": key["key"]})
        if status != 200:
            raise SystemExit(f"bench: whoami under gunicorn answered {status}: {body[:300]!r}")
        wrk_env = {**os.environ, "BENCH_API_KEY": key["key"]}
        script = ROOT / "bench" / "wrk_key.lua"
        variants = {
            "healthz": (f"{base}/healthz", None),
            "whoami_service_key": (whoami, script),
        }
        say("bench: warming up (2 s each)")
        for url, lua in variants.values():
            wrk(binary, url, 2, lua, wrk_env)
        runs = {name: [] for name in variants}
        for name in ("healthz", "whoami_service_key", "whoami_service_key", "healthz"):
            url, lua = variants[name]
            say(f"bench: wrk -t{THREADS} -c{CONNECTIONS} -d{DURATION}s {name}")
            runs[name].append(wrk(binary, url, DURATION, lua, wrk_env))
    finally:
        stop(server)
    result = {"wrk_version": wrk_version(binary), "duration_s": DURATION, "variants": {}}
    for name, measured in runs.items():
        result["variants"][name] = {
            "runs": measured,
            "requests_per_second": sum(r["requests_per_second"] for r in measured) / len(measured),
            "p50_ms": sum(r["p50_ms"] for r in measured) / len(measured),
            "p99_ms": sum(r["p99_ms"] for r in measured) / len(measured),
            "non_2xx": sum(r["non_2xx"] for r in measured),
        }
    return result
