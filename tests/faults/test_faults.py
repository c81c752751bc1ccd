"""Failures of a real deployment, under traffic (issue #19; docs/deploy.md "Failures").

One topology for the module (tests/faults/topology.py): a private PostgreSQL cluster, a private
redis-server, three gunicorn nodes (one worker each; FAULTS_WORKERS) and HAProxy in front, all
on loopback. Each test runs the mixed traffic of tests/faults/traffic.py through HAProxy while
one part fails, then checks from the database that nothing was half-written. The rule: a
failure may make the service refuse (503 with Retry-After) or slower; it never allows what it
should not, never answers 500 and never writes a change without its audit row.

The figures of each run are printed (pytest -s). SOAK_SECONDS sets the soak's length (20 s in
the suite; 600 for the ten-minute run of docs/deploy.md).
"""

import http.client
import os
import re
import statistics
import threading
import time
import urllib.parse

import pytest

from accesscontrol.apikeys import keys
from tests.factories import PASSWORD
from tests.faults.topology import Topology, missing_tools, rss_kib, wait_for
from tests.faults.traffic import API, Traffic

pytestmark = pytest.mark.xdist_group("faults")

# A phase of traffic (before a failure, during it, after recovery) lasts until this many
# answers came back since it began, every kind of operation in KINDS among them: the traffic
# then really crossed the failure, however fast or loaded the machine is. A tuple is one kind
# answered under either name (the key churn retries its revocation while that is refused).
PHASE_ANSWERS = 100
KINDS = (
    "read",
    "ingest",
    "console",
    "unknown key",
    "revoked key",
    "role change",
    ("key create", "key revoke"),
)
PHASE_TIMEOUT = 60.0
SOAK_SECONDS = float(os.environ.get("SOAK_SECONDS", "20"))
SOAK_WINDOW = float(os.environ.get("SOAK_WINDOW", "5"))
# Workers per node: one keeps a node's restart short on a two-core machine; each worker is a
# process of its own with its own caches and channel, so more only multiplies the same.
WORKERS = int(os.environ.get("FAULTS_WORKERS", "1"))


@pytest.fixture(scope="module")
def topology():
    missing = missing_tools()
    if missing:
        if os.environ.get("REQUIRE_TOPOLOGY"):
            pytest.fail(f"the topology tests need {missing} (REQUIRE_TOPOLOGY is set)")
        pytest.skip(f"needs {missing}")
    topology = Topology(nodes=3, workers=WORKERS)
    try:
        yield topology.start()
    finally:
        topology.stop()


def report(name, tally, extra=None):
    figures = {**tally.figures(), **(extra or {})}
    print(f"\n[faults] {name}: {figures}")
    return figures


def phase(traffic, what, *, refused=0, answers=PHASE_ANSWERS, kinds=KINDS):
    """Wait until the traffic has crossed this phase: `answers` answers since the call, each of
    `kinds` among them, and at least `refused` proper 503s (the failure was felt)."""
    kinds_before, refused_before = traffic.answers()
    deadline = time.monotonic() + PHASE_TIMEOUT
    while True:
        seen, unavailable = traffic.answers()
        seen -= kinds_before
        unavailable -= refused_before
        every_kind = all(any(seen[n] for n in (k if isinstance(k, tuple) else (k,))) for k in kinds)
        if sum(seen.values()) >= answers and every_kind and unavailable >= refused:
            return
        if time.monotonic() > deadline:
            raise AssertionError(
                f"traffic {what}: in {PHASE_TIMEOUT} s only {dict(seen)} and {unavailable} 503s "
                f"(wanted {answers} answers, each of {kinds}, {refused} 503s)"
            )
        time.sleep(0.05)


def node_call(node, method, path, key=None, headers=None, body=None):
    """Straight to one node, past the balancer."""
    client = Traffic(node.port, {})
    return client.call(method, path, key, body, headers)


def warm(topology, keys, rounds=None):
    """Every key through every node's workers, concurrently so each worker takes some: each
    process has then proven the keys (and trusts them while nothing changes)."""

    rounds = rounds or 2 + 4 * (WORKERS - 1)

    def burst(node):
        for _ in range(rounds):
            for key in keys:
                answer = node_call(node, "GET", f"{API}/datasets", key)
                assert answer is not None and answer.status == 200, answer

    threads = [threading.Thread(target=burst, args=(n,)) for n in topology.nodes for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def sign_in(node, email, password):
    """POST /login/ straight to a node, with the form's CSRF token; (status, body)."""
    page = node_call(node, "GET", "/login/")
    assert page.status == 200
    token = re.search(rb'name="csrfmiddlewaretoken" value="([^"]+)"', page.body).group(1).decode()
    cookie = re.search(r"csrftoken=([^;]+)", page.headers.get("set-cookie", "")).group(1)
    connection = http.client.HTTPConnection("127.0.0.1", node.port, timeout=30)
    try:
        connection.request(
            "POST",
            "/login/",
            body=urllib.parse.urlencode(
                {"login": email, "password": password, "csrfmiddlewaretoken": token}
            ),
            headers={
                "Content-Type": "application/x-www-form-urlencoded",
                "Cookie": f"csrftoken={cookie}",
            },
        )
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def push_channels(topology) -> int:
    import redis

    names = [c["name"] for c in redis.Redis(port=topology.redis.port).client_list()]
    return sum(name.startswith("accesscontrol-versions:") for name in names)


def assert_nothing_half_written(topology, traffic):
    check = topology.check(traffic.batches)
    assert check["half_written"] == []
    assert check["partial_batches"] == []
    # Every batch answered 202 is stored whole.
    assert traffic.accepted_batches <= set(check["stored_batches"])
    return check


def test_redis_lost_and_back(topology):
    data = topology.data
    warm(topology, [*data["readers"], data["flipper_key"], data["ingest_key"]])
    traffic = Traffic(topology.balancer.port, data).start()
    phase(traffic, "before redis is lost")

    topology.redis.kill()
    phase(traffic, "as redis is lost", refused=1, answers=1, kinds=())  # the nodes have felt it
    during = {"good key": [], "unknown key": [], "wrong password": [], "right password": []}
    for node in topology.nodes:
        for key in data["readers"][:2]:
            during["good key"].append(node_call(node, "GET", f"{API}/datasets", key).status)
        guess = keys.generate(keys.SERVICE)
        during["unknown key"].append(node_call(node, "GET", f"{API}/datasets", guess).status)
        during["wrong password"].append(sign_in(node, data["email"], "not the password")[0])
        during["right password"].append(sign_in(node, data["email"], PASSWORD)[0])
    phase(traffic, "while redis is away", refused=1)

    topology.redis.start()
    phase(traffic, "after redis is back")
    tally = traffic.stop()

    # Rate limits: open for keys this process has proven, closed (503, not evaluated) for any
    # other credential, passwords included; sessions in the database kept working (traffic).
    assert 200 in during["good key"] and set(during["good key"]) <= {200, 503}, during
    assert set(during["unknown key"]) == {503}, during
    assert set(during["wrong password"]) == {503}, during
    assert set(during["right password"]) == {503}, during
    assert tally.wrongly_allowed == []
    assert tally.errors == []
    assert tally.unavailable > 0 and tally.served > 0
    assert tally.by_op[("console", 200)] > 0

    # Converged without a restart: every worker has its push channel again, and a change made
    # through one node is refused, then served, by every node at once.
    def channels_back():
        warm(topology, data["readers"][:1], rounds=3)
        return push_channels(topology) == len(topology.nodes) * topology.nodes[0].workers

    wait_for(channels_back, "every worker's push channel", 30)
    admin, role = data["org_admin_key"], data["flipper_role"]
    for permissions, expected in ((data["demoted"], 403), (data["read"], 200)):
        answer = node_call(
            topology.nodes[0],
            "PATCH",
            f"{API}/orgs/current/roles/{role}",
            admin,
            body={"permissions": permissions},
        )
        assert answer.status == 200, answer
        for node in topology.nodes:
            status = node_call(node, "GET", f"{API}/datasets", data["flipper_key"]).status
            assert status == expected
    for key in traffic.revoked:
        for node in topology.nodes:
            assert node_call(node, "GET", f"{API}/datasets", key).status == 401
    assert sign_in(topology.nodes[0], data["email"], PASSWORD)[0] == 302
    check = assert_nothing_half_written(topology, traffic)
    report(
        "redis lost and back", tally, {"half_written": len(check["half_written"]), "during": during}
    )


def test_postgres_restart(topology):
    data = topology.data
    traffic = Traffic(topology.balancer.port, data).start()
    phase(traffic, "before postgres stops")
    topology.postgres.stop("fast")  # connections terminated, as in a restart or failover
    phase(traffic, "while postgres is down", refused=1)
    topology.postgres.start()
    phase(traffic, "after postgres is back")
    tally = traffic.stop()

    assert tally.wrongly_allowed == []
    assert tally.errors == []
    assert tally.unavailable > 0 and tally.served > 0
    # Connections came back by themselves: every node answers from the database again.
    for node in topology.nodes:
        for _ in range(4):
            assert node_call(node, "GET", f"{API}/datasets", data["readers"][0]).status == 200
    check = assert_nothing_half_written(topology, traffic)
    report(
        "postgres restart",
        tally,
        {
            "half_written": len(check["half_written"]),
            "role changes audited": check["role_changes"],
            "keys revoked": check["revoked"],
        },
    )


def test_rolling_restart_loses_no_request(topology):
    traffic = Traffic(topology.balancer.port, topology.data).start()
    phase(traffic, "before the restart")
    drained_first = [topology.restart_node(node) for node in topology.nodes]
    phase(traffic, "after the restart")
    tally = traffic.stop()

    # Each node was out of the balancer (its /healthz said 503) before it stopped.
    assert drained_first == [True] * len(topology.nodes)

    assert tally.errors == []
    assert tally.unavailable == 0
    assert tally.wrongly_allowed == []
    assert tally.served > 0
    assert topology.balancer.up() == {node.name for node in topology.nodes}
    check = assert_nothing_half_written(topology, traffic)
    report("rolling restart", tally, {"half_written": len(check["half_written"])})


def percentile(values, q):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def test_soak(topology):
    traffic = Traffic(topology.balancer.port, topology.data).start()
    windows = []
    started = time.monotonic()
    while time.monotonic() - started < SOAK_SECONDS:
        window_start = time.monotonic()
        time.sleep(SOAK_WINDOW)
        with traffic.lock:
            latencies = [s for at, s, _ in traffic.tally.latencies if at >= window_start]
        rss = {pid: rss_kib(pid) for node in topology.nodes for pid in node.worker_pids()}
        windows.append(
            {
                "requests": len(latencies),
                "p50_ms": round(statistics.median(latencies) * 1000, 1),
                "p99_ms": round(percentile(latencies, 0.99) * 1000, 1),
                "max_worker_rss_mib": round(max(rss.values()) / 1024, 1),
                "pg_connections": topology.connections(),
            }
        )
    tally = traffic.stop()
    for window in windows:
        print(f"[faults] soak window: {window}")

    assert tally.errors == []
    assert tally.unavailable == 0
    assert tally.wrongly_allowed == []
    # No connection leak: at most one kept connection per worker, whatever the run's length.
    workers = sum(len(node.worker_pids()) for node in topology.nodes)
    assert all(window["pg_connections"] <= workers for window in windows), windows
    # Memory flat: generous, a loaded machine's allocator is not a test subject; a leak of a
    # few kilobytes a request over thousands of requests is what this catches.
    first, last = windows[0]["max_worker_rss_mib"], windows[-1]["max_worker_rss_mib"]
    assert last <= first * 1.25 + 16, windows
    check = assert_nothing_half_written(topology, traffic)
    report("soak", tally, {"seconds": SOAK_SECONDS, "half_written": len(check["half_written"])})
