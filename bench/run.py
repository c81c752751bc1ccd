"""The benchmark driver: `make bench` runs bench/run.sh, which runs `python -m bench.run`.

The parent process (it never imports Django) makes the benchmark's own database, migrates it,
runs each in-process section in a child process (settings such as the cache backend are read at
start-up, so each configuration gets a fresh interpreter), runs gunicorn and wrk for the
throughput section, then prints the figures and writes bench/RESULTS.md.

A child runs one section: `python -m bench.run --part NAME --out FILE` (see bench/parts.py).
"""

import argparse
import json
import os
import platform
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
DATABASE_URL = os.environ.get(
    "BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/accesscontrol_bench"
)
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/12")

SECTIONS = ("api", "lists", "ingest", "http", "scale", "filter")


def child_environment(**overrides) -> dict:
    """What every child (and gunicorn) runs with: the bench database, production-like flags."""
    env = dict(os.environ)
    env.update(
        DJANGO_SETTINGS_MODULE="bench.settings",
        DATABASE_URL=DATABASE_URL,
        # Connections are kept between requests, as a production deployment does; with 0 every
        # request that touches the database would pay for a new PostgreSQL connection.
        DATABASE_CONN_MAX_AGE="600",
        SECRET_KEY=os.environ.get("SECRET_KEY") or "bench-only-not-a-secret",
        DEBUG="0",
        HTTPS="0",  # plain HTTP on loopback: no redirect to https://
        ALLOWED_HOSTS="127.0.0.1,localhost,testserver",
        CACHE_URL="locmem://",
        LOG_LEVEL="WARNING",
        PYTHONPATH=str(ROOT),
    )
    env.pop("AUTHZ_CACHE", None)
    env.update(overrides)
    return env


def say(message: str) -> None:
    print(message, flush=True)


# PostgreSQL and Redis


def recreate_database() -> str:
    import psycopg

    parts = urlsplit(DATABASE_URL)
    name = parts.path.lstrip("/")
    admin_url = urlunsplit(parts._replace(path="/postgres"))
    try:
        with psycopg.connect(admin_url, autocommit=True, connect_timeout=5) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            conn.execute(f'CREATE DATABASE "{name}"')
            return conn.execute("SHOW server_version").fetchone()[0]
    except psycopg.OperationalError as exc:
        raise SystemExit(
            f"bench: PostgreSQL is not answering at {admin_url} ({exc}).\n"
            "Start it (pg_ctlcluster --skip-systemctl-redirect 15 main start) or set "
            "BENCH_DATABASE_URL."
        ) from None


def redis_version() -> str | None:
    import redis

    try:
        return redis.Redis.from_url(REDIS_URL, socket_timeout=2).info("server")["redis_version"]
    except redis.RedisError:
        return None


# Children


def manage(*args) -> None:
    subprocess.run(  # noqa: S603 - our own interpreter and manage.py
        [sys.executable, "manage.py", *args], cwd=ROOT, env=child_environment(), check=True
    )


def child(part: str, tmp: Path, **env) -> dict:
    out = tmp / f"{part}-{env.get('BENCH_LABEL', 'x')}.json"
    started = time.monotonic()
    subprocess.run(  # noqa: S603 - our own interpreter and module
        [sys.executable, "-m", "bench.run", "--part", part, "--out", str(out)],
        cwd=ROOT,
        env=child_environment(**env),
        check=True,
    )
    result = json.loads(out.read_text())
    result["seconds"] = time.monotonic() - started
    return result


def run_part(part: str, out: str) -> None:
    import django

    django.setup()
    from bench.parts import PARTS
    from bench.timing import dump

    dump(out, PARTS[part]())


# The machine


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def load_average() -> str:
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "unknown"


def git_revision() -> str:
    def git(*args) -> str:
        return subprocess.run(  # noqa: S603 (git and our own arguments)
            ["git", *args],  # noqa: S607
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()

    try:
        rev = git("rev-parse", "--short", "HEAD")
        dirty = git("status", "--porcelain", "--untracked-files=no")
        return rev + (" + uncommitted changes" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def versions() -> dict:
    from importlib.metadata import PackageNotFoundError, version

    found = {}
    for package in (
        "Django",
        "django-ninja",
        "psycopg",
        "gunicorn",
        "djangorestframework",
        "djangorestframework-api-key",
    ):
        try:
            found[package] = version(package)
        except PackageNotFoundError:
            found[package] = "not installed"
    return found


# Main


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", help="(child) run one in-process section")
    parser.add_argument("--out", help="(child) where to write its result as JSON")
    parser.add_argument(
        "--only", help=f"comma-separated sections to run (default all: {','.join(SECTIONS)})"
    )
    args = parser.parse_args()
    if args.part:
        run_part(args.part, args.out)
        return

    # A TERM (or Ctrl-C) unwinds through the finally blocks, so gunicorn is always stopped.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    only = set(args.only.split(",")) if args.only else set(SECTIONS)
    started = time.monotonic()
    from bench import http, report

    machine = {
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "revision": git_revision(),
        "load_before": load_average(),
        **versions(),
    }
    say(f"bench: {machine['cpu']}, {machine['cores']} cores, load {machine['load_before']}")
    say(f"bench: recreating the database {urlsplit(DATABASE_URL).path.lstrip('/')}")
    machine["postgresql"] = recreate_database()
    machine["redis"] = redis_version()
    say("bench: migrating (and running the system checks with the DRF views installed)")
    manage("migrate", "--noinput", "-v", "0")
    manage("check", "--fail-level", "ERROR")

    results = {}
    no_redis = "Redis is not answering at " + REDIS_URL
    cache_url = REDIS_URL if machine["redis"] else "locmem://"
    with tempfile.TemporaryDirectory(prefix="bench-") as tmp_name:
        tmp = Path(tmp_name)
        if "api" in only:
            say("\n== 1+2. key-authenticated request vs. a bare view, and vs. DRF HasAPIKey")
            results["api_locmem"] = child("api", tmp, BENCH_LABEL="locmem")
            if machine["redis"]:
                results["api_redis"] = child("api", tmp, BENCH_LABEL="redis", CACHE_URL=REDIS_URL)
                results["api_uncached"] = child(
                    "api", tmp, BENCH_LABEL="uncached", CACHE_URL=REDIS_URL, AUTHZ_CACHE="0"
                )
            else:
                results["api_redis"] = {"skipped": no_redis}
        if "lists" in only:
            say("\n== 4. console list pages, 10 vs. 1,000 rows")
            # With Redis, as in production: the signed-in user's access is then kept in the
            # process under the authorization versions (AUTHZ_CACHE defaults on).
            results["lists"] = child("lists", tmp, CACHE_URL=cache_url)
        if "ingest" in only:
            say("\n== 5. batch run ingest")
            results["ingest"] = child("ingest", tmp)
        if "http" in only:
            say("\n== 6. throughput under gunicorn (2 workers) with wrk")
            key = child("http-key", tmp)
            results["http"] = http.throughput(
                child_environment(CACHE_URL=cache_url, DATABASE_CONN_MAX_AGE="60"), key, tmp
            )
            machine["wrk"] = results["http"].get("wrk_version", "not installed")
        if "scale" in only:
            say("\n== 3. permission resolution, 100 vs. 100,000 members, keys and roles")
            results["scale"] = child("scale", tmp)
        if "filter" in only:
            say("\n== 7. the run filter language (POST /runs/query, /runs/stats) at 1M runs")
            results["filter"] = child("filter", tmp)

    machine["load_after"] = load_average()
    machine["minutes"] = (time.monotonic() - started) / 60
    figures = report.figures(results)
    say("")
    say(report.table(figures))
    path = ROOT / "bench" / "RESULTS.md"
    path.write_text(report.markdown(machine, figures, results))
    say(f"\nbench: wrote {path.relative_to(ROOT)} in {machine['minutes']:.1f} minutes")


if __name__ == "__main__":
    main()
