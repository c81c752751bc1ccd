"""Timing in-process: WSGI calls into Django, variants interleaved round-robin, medians.

A variant is something to time once: `prepare()` runs outside the clock (a fresh request body, a
cleared cache), `run(prepared)` inside it. Variants are interleaved, one call of each per round,
the starting variant rotating every round, so whatever else the machine is doing at a moment
hits every variant alike; the figures are medians.
"""

import gc
import io
import json
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from django.core.handlers.wsgi import WSGIHandler
from django.db import connection
from django.test.utils import CaptureQueriesContext


@dataclass
class Variant:
    name: str
    run: Callable
    prepare: Callable = lambda: None


class Wsgi:
    """Calls Django the way a WSGI server does, including closing the response (which sends
    request_finished: the database connection is then kept or closed as in production)."""

    def __init__(self):
        self.handler = WSGIHandler()

    @staticmethod
    def environ(method, path, headers=None, body=b"", query=""):
        environ = {
            "REQUEST_METHOD": method,
            "PATH_INFO": path,
            "QUERY_STRING": query,
            "SERVER_NAME": "127.0.0.1",
            "SERVER_PORT": "80",
            "SERVER_PROTOCOL": "HTTP/1.1",
            "REMOTE_ADDR": "127.0.0.1",
            "HTTP_HOST": "127.0.0.1",
            "wsgi.version": (1, 0),
            "wsgi.url_scheme": "http",
            "wsgi.input": io.BytesIO(body),
            "wsgi.errors": sys.stderr,
            "wsgi.multithread": False,
            "wsgi.multiprocess": True,
            "wsgi.run_once": False,
        }
        if body:
            environ["CONTENT_TYPE"] = "application/json"
            environ["CONTENT_LENGTH"] = str(len(body))
        for name, value in (headers or {}).items():
            environ["HTTP_" + name.upper().replace("-", "_")] = value
        return environ

    def call(self, environ) -> tuple[int, bytes]:
        status = []
        chunks = self.handler(environ, lambda s, h, exc_info=None: status.append(s))
        try:
            body = b"".join(chunks)
        finally:
            chunks.close()
        return int(status[0].split(" ", 1)[0]), body


@dataclass
class Request:
    """One kind of HTTP request, and the status it must answer with."""

    method: str
    path: str
    headers: dict = field(default_factory=dict)
    body: Callable[[], bytes] | None = None  # called for every request (fresh ids)
    expect: int = 200

    def environ(self):
        return Wsgi.environ(self.method, self.path, self.headers, self.body() if self.body else b"")


def http_variant(wsgi: Wsgi, name: str, request: Request, before: Callable | None = None):
    """A variant that makes `request`; `before` (e.g. emptying a cache) runs off the clock."""

    def prepare():
        if before is not None:
            before()
        return request.environ()

    def run(environ):
        status, body = wsgi.call(environ)
        if status != request.expect:
            raise SystemExit(
                f"bench: {name}: {request.method} {request.path} answered {status}, "
                f"expected {request.expect}: {body[:300]!r}"
            )

    return Variant(name, run, prepare)


def interleaved(variants, rounds, warmup, label="") -> dict[str, list[tuple[float, float]]]:
    """(wall, CPU) seconds per call of each variant: `rounds` calls each, after `warmup` untimed
    rounds. CPU is this process's own (this thread's), so it leaves out time spent waiting for
    PostgreSQL, Redis or a turn on a busy machine's cores."""
    times = {v.name: [] for v in variants}
    gc.collect()
    started = time.monotonic()
    for i in range(warmup + rounds):
        shift = i % len(variants)
        for variant in variants[shift:] + variants[:shift]:
            prepared = variant.prepare()
            t0, c0 = time.perf_counter(), time.thread_time()
            variant.run(prepared)
            wall, cpu = time.perf_counter() - t0, time.thread_time() - c0
            if i >= warmup:
                times[variant.name].append((wall, cpu))
        if label and (i + 1) % max(1, (warmup + rounds) // 4) == 0:
            seconds = time.monotonic() - started
            progress(f"  {label}: round {i + 1}/{warmup + rounds} ({seconds:.0f} s)")
    return times


def summary(samples: list[tuple[float, float]]) -> dict:
    """Milliseconds: the median, the 10th and 90th percentiles (the spread), the CPU median."""
    ordered = sorted(wall for wall, _ in samples)
    deciles = statistics.quantiles(ordered, n=10, method="inclusive") if len(ordered) > 1 else []
    return {
        "median_ms": statistics.median(ordered) * 1000,
        "p10_ms": (deciles[0] if deciles else ordered[0]) * 1000,
        "p90_ms": (deciles[-1] if deciles else ordered[0]) * 1000,
        "cpu_median_ms": statistics.median(cpu for _, cpu in samples) * 1000,
        "n": len(ordered),
    }


def queries_of(variant: Variant) -> list[str]:
    """The SQL statements one call of the variant runs (its prepare step not included)."""
    return capture(variant)["sql"]


def capture(variant: Variant) -> dict:
    """What one call of the variant sends to PostgreSQL and to Redis (if the cache is Redis).

    Redis commands are counted in redis-py itself, not in the project's code, so the count
    holds whatever the project does with its cache."""
    import redis

    prepared = variant.prepare()
    commands = []
    send = redis.Redis.execute_command

    def counted(self, *args, **options):
        commands.append(str(args[0]))
        return send(self, *args, **options)

    redis.Redis.execute_command = counted
    try:
        with CaptureQueriesContext(connection) as captured:
            variant.run(prepared)
    finally:
        redis.Redis.execute_command = send
    return {"sql": [q["sql"] for q in captured.captured_queries], "redis": commands}


def progress(message: str) -> None:
    print(message, flush=True)


def dump(path, data) -> None:
    with open(path, "w") as f:
        json.dump(data, f, indent=2, default=str)
