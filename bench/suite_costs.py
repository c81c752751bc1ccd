"""What each test of the suite costs, in CPU and not only in wall time.

On a shared machine wall time says little; CPU time does. Load this as a pytest plugin and
every process (each xdist worker too) writes one JSON line per test to SUITE_COSTS_DIR: wall
seconds, the worker's own CPU seconds, the CPU of the PostgreSQL backend serving its connection
(read from /proc, so only when PostgreSQL runs on this machine) and the CPU of the child
processes it reaped (the gunicorn servers some tests start):

    SUITE_COSTS_DIR=/tmp/costs python -m pytest -n 2 --ignore=tests/browser -p bench.suite_costs
    python -m bench.suite_costs /tmp/costs        # per file, most expensive first
    python -m bench.suite_costs /tmp/costs tests  # per test
"""

import collections
import json
import os
import resource
import sys
import time
from pathlib import Path

_TICK = os.sysconf("SC_CLK_TCK")
_started = {}
_out = None


def _backend_cpu():
    """(CPU seconds, pid) of the PostgreSQL backend of Django's default connection."""
    try:
        from django.db import connection

        if connection.connection is None:
            return 0.0, None
        pid = connection.connection.info.backend_pid
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / _TICK, pid
    except Exception:  # not PostgreSQL, not on this machine, not connected yet
        return 0.0, None


def _children_cpu():
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def pytest_configure(config):
    global _out
    directory = os.environ.get("SUITE_COSTS_DIR")
    if directory:
        worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
        Path(directory).mkdir(parents=True, exist_ok=True)
        _out = open(Path(directory) / f"{worker}.jsonl", "w")  # noqa: SIM115 (closed at exit)


def pytest_runtest_logstart(nodeid, location):
    if _out:
        _started[nodeid] = (time.time(), time.process_time(), _backend_cpu(), _children_cpu())


def pytest_runtest_logfinish(nodeid, location):
    if not _out or nodeid not in _started:
        return
    wall, cpu, (pg, pid), children = _started.pop(nodeid)
    pg_now, pid_now = _backend_cpu()
    row = {
        "id": nodeid,
        "wall": time.time() - wall,
        "cpu": time.process_time() - cpu,
        # A new connection (a transactional test may close it): count what the new one used.
        "pg": pg_now - pg if pid_now and pid_now == pid else pg_now,
        "children": _children_cpu() - children,
    }
    _out.write(json.dumps(row) + "\n")


def pytest_unconfigure(config):
    if _out:
        _out.close()


def summary(directory, per_test=False):
    totals = collections.defaultdict(lambda: collections.Counter())
    for path in Path(directory).glob("*.jsonl"):
        if path.stem == "main" and len(list(Path(directory).glob("gw*.jsonl"))):
            continue  # the xdist controller sees every test too; the workers ran them
        for line in path.read_text().splitlines():
            row = json.loads(line)
            key = row["id"] if per_test else row["id"].split("::")[0]
            totals[key].update({k: row[k] for k in ("wall", "cpu", "pg", "children")})
            totals[key]["tests"] += 1
    columns = ("tests", "wall", "cpu", "pg", "children")
    print(f"{'':70s} " + " ".join(f"{c:>8s}" for c in columns))
    ranked = sorted(totals.items(), key=lambda kv: -(kv[1]["cpu"] + kv[1]["pg"]))
    for key, t in [*ranked, ("TOTAL", sum(totals.values(), collections.Counter()))]:
        print(f"{key[-70:]:70s} {t['tests']:8d} " + " ".join(f"{t[c]:8.1f}" for c in columns[1:]))


if __name__ == "__main__":
    summary(sys.argv[1], per_test=sys.argv[2:] == ["tests"])
