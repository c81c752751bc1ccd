#!/usr/bin/env bash
# `make bench`: the benchmark venv (.venv-bench: the project plus the peers it is compared
# against), the services it needs, then the driver. See bench/README.md.
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=.venv-bench
# The same Python as the project's venv (make install made it).
BASE_PYTHON=${BASE_PYTHON:-.venv/bin/python}

stamp="$VENV/.installed-$(cat pyproject.toml bench/requirements.txt | sha256sum | cut -c1-16)"
if [ ! -f "$stamp" ]; then
    echo "bench: creating $VENV (the project + bench/requirements.txt)"
    rm -rf "$VENV"
    "$BASE_PYTHON" -m venv "$VENV"
    echo '*' > "$VENV/.gitignore"  # keep the venv out of git status
    "$VENV/bin/python" -m pip install --quiet --upgrade pip
    "$VENV/bin/python" -m pip install --quiet -e . -r bench/requirements.txt
    touch "$stamp"
fi

# wrk loads gunicorn in section 6; without it that section is skipped (with a message).
if ! command -v wrk >/dev/null 2>&1; then
    if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
        echo "bench: installing wrk from Debian's packages"
        { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk; } \
            >/dev/null || echo "bench: could not install wrk; section 6 will be skipped"
    else
        echo "bench: wrk is not installed and apt-get is not usable here; section 6 will be skipped"
    fi
fi

# PostgreSQL and Redis as this machine kind starts them, if they are down.
if command -v pg_isready >/dev/null 2>&1 && ! pg_isready -q -h 127.0.0.1 -p 5432; then
    echo "bench: PostgreSQL is not answering; starting the cluster"
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n 1)" main start || true
    for _ in $(seq 1 30); do pg_isready -q -h 127.0.0.1 -p 5432 && break; sleep 1; done
fi
if command -v redis-cli >/dev/null 2>&1 && ! redis-cli -h 127.0.0.1 ping >/dev/null 2>&1; then
    if command -v redis-server >/dev/null 2>&1; then
        echo "bench: Redis is not answering; starting it"
        redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no \
            >/dev/null || true
        sleep 1
    fi
fi

# gunicorn (section 6) writes its pid here; whatever happens to the driver, it is stopped.
export BENCH_GUNICORN_PIDFILE
BENCH_GUNICORN_PIDFILE="$(mktemp -u /tmp/bench-gunicorn.XXXXXX.pid)"
stop_gunicorn() {
    if [ -f "$BENCH_GUNICORN_PIDFILE" ]; then
        kill "$(cat "$BENCH_GUNICORN_PIDFILE")" 2>/dev/null || true
        rm -f "$BENCH_GUNICORN_PIDFILE"
    fi
}
trap stop_gunicorn EXIT

"$VENV/bin/python" -m bench.run "$@"
