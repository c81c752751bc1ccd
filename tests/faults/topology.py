"""A real deployment on loopback for the fault tests: a private PostgreSQL cluster, a private
redis-server, gunicorn nodes and Debian's HAProxy in front, each on a free port, each of them
stoppable by the test (docs/deploy.md, "Failures").

Nothing here touches the machine's shared PostgreSQL (5432) or Redis (6379): the cluster is
made with initdb in a temporary directory (as the `postgres` user when run as root) and removed
afterwards.
"""

import contextlib
import glob
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HAPROXY = shutil.which("haproxy") or "/usr/sbin/haproxy"
REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"
PG_BINS = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(p.split("/")[-2]))
# How long a node keeps serving after SIGTERM while its /healthz says 503: above the
# balancer's check interval x fall (300 ms x 2) with room for a loaded machine.
DRAIN_SECONDS = 3.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def missing_tools() -> list[str]:
    missing = [tool for tool in (HAPROXY, REDIS_SERVER) if not os.access(tool, os.X_OK)]
    if not PG_BINS:
        missing.append("/usr/lib/postgresql/*/bin/initdb")
    return missing


def wait_for(check, what, seconds=30.0):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError):
            if check():
                return
        time.sleep(0.05)
    raise AssertionError(f"{what} not ready in {seconds} s")


def answers(port) -> bool:
    with socket.create_connection(("127.0.0.1", port), timeout=1):
        return True


class Postgres:
    """A private cluster: trust auth, no fsync (a test needs no durability across a crash)."""

    def __init__(self, root: Path):
        self.bin = Path(PG_BINS[-1])
        self.data = root / "pg"
        self.port = free_port()
        self.as_postgres = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        self.running = False

    def _run(self, *args):
        subprocess.run([*self.as_postgres, *args], check=True, capture_output=True, timeout=120)

    def init(self):
        self.data.mkdir()
        if self.as_postgres:
            shutil.chown(self.data, "postgres", "postgres")
        self._run(
            str(self.bin / "initdb"),
            "-D",
            str(self.data),
            "-A",
            "trust",
            "-U",
            "postgres",
            "--no-sync",
            "-E",
            "UTF8",
        )
        settings = {
            "port": self.port,
            "listen_addresses": "'127.0.0.1'",
            "unix_socket_directories": f"'{self.data}'",
            "fsync": "off",
            "synchronous_commit": "off",
            "full_page_writes": "off",
            "max_connections": 100,
            "shared_buffers": "'32MB'",
        }
        with open(self.data / "postgresql.conf", "a") as conf:
            conf.writelines(f"{name} = {value}\n" for name, value in settings.items())
        self.start()
        self._psql("-qc", "CREATE DATABASE faults")

    @property
    def url(self) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/faults"

    def start(self):
        self._run(
            str(self.bin / "pg_ctl"),
            "-D",
            str(self.data),
            "-l",
            str(self.data / "log"),
            "-w",
            "-t",
            "60",
            "start",
        )
        self.running = True

    def stop(self, mode="fast"):
        """`fast`: the clients' connections are terminated, as in a restart or failover."""
        self._run(
            str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "-t", "60", "stop"
        )
        self.running = False

    def sql(self, statement) -> str:
        return self._psql("-d", "faults", "-qAtc", statement)

    def _psql(self, *args) -> str:
        command = ["psql", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", *args]
        return subprocess.run(command, check=True, capture_output=True, text=True).stdout.strip()


class Redis:
    """redis-server on its own port, no persistence: killed, it comes back empty."""

    def __init__(self, root: Path):
        self.port = free_port()
        self.root = root
        self.process = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self):
        self.process = subprocess.Popen(
            [
                REDIS_SERVER,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.root),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_for(lambda: answers(self.port), "redis-server")

    def kill(self):
        self.process.kill()
        self.process.wait(timeout=10)
        self.process = None


class Node:
    """One app node: a gunicorn master with its workers (deploy/gunicorn.conf.py)."""

    def __init__(self, root: Path, env: dict, name: str, workers=2):
        self.port, self.env, self.name, self.workers = free_port(), env, name, workers
        self.log = root / f"{name}.log"
        self.process = None

    def start(self):
        # The log is a file, not a pipe: a full pipe would stall the node. Popen keeps its own
        # descriptor, so the file is closed here at once.
        with open(self.log, "ab") as log:
            self.process = self._spawn(log)

    def _spawn(self, log):
        return subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gunicorn",
                "accesscontrol.wsgi:application",
                "--config",
                "deploy/gunicorn.conf.py",
                "--bind",
                f"127.0.0.1:{self.port}",
                "--workers",
                str(self.workers),
                "--log-level",
                "warning",
            ],
            cwd=ROOT,
            env=self.env,
            stdout=subprocess.DEVNULL,
            stderr=log,
        )

    def wait_up(self):
        def healthy():
            if self.process.poll() is not None:
                raise AssertionError(f"{self.name} exited: {self.log.read_text()[-3000:]}")
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/healthz", timeout=2):
                return True

        wait_for(healthy, self.name, 60)

    def worker_pids(self) -> list[int]:
        children = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children")
        return [int(pid) for pid in children.read_text().split()]


def rss_kib(pid) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


class Balancer:
    """HAProxy: round robin, health checks on /healthz, L7 retries for GET only."""

    def __init__(self, root: Path, nodes):
        self.port = free_port()
        self.socket = root / "haproxy.sock"
        self.config = root / "haproxy.cfg"
        self.nodes = nodes
        self.process = None

    def write_config(self):
        servers = "".join(f"    server {n.name} 127.0.0.1:{n.port}\n" for n in self.nodes)
        self.config.write_text(
            f"""global
    maxconn 2000
    stats socket {self.socket} mode 600 level admin

defaults
    mode http
    timeout connect 2s
    timeout client 60s
    timeout server 60s
    timeout queue 30s
    timeout check 3s
    option forwardfor
    option redispatch
    retries 3
    # A connection refused, or closed before any response: try another node. A request that
    # may change something (not GET/HEAD) is only retried when it never reached a node.
    retry-on conn-failure empty-response

frontend web
    bind 127.0.0.1:{self.port}
    default_backend app

backend app
    balance roundrobin
    option httpchk
    http-check send meth GET uri /healthz ver HTTP/1.1 hdr Host 127.0.0.1
    http-check expect status 200
    http-request disable-l7-retry unless METH_GET
    # Each worker of a node takes one request at a time: the rest wait in HAProxy's queue,
    # where a node taken out by its health check leaves them for the others.
    default-server check inter 300ms fall 2 rise 2 maxconn {self.nodes[0].workers}
{servers}"""
        )

    def start(self):
        self.write_config()
        check = subprocess.run(
            [HAPROXY, "-c", "-f", str(self.config)], capture_output=True, text=True
        )
        assert check.returncode == 0, check.stdout + check.stderr
        self.process = subprocess.Popen(
            [HAPROXY, "-f", str(self.config), "-db"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_for(lambda: self.up() == {n.name for n in self.nodes}, "haproxy with every node up")

    def admin(self, command) -> str:
        with socket.socket(socket.AF_UNIX) as s:
            s.connect(str(self.socket))
            s.sendall(command.encode() + b"\n")
            chunks = []
            while chunk := s.recv(65536):
                chunks.append(chunk)
        return b"".join(chunks).decode()

    def states(self) -> dict[str, str]:
        """Each node's status as HAProxy shows it: "UP", "UP 1/2" (one failed check, still in
        rotation), "DOWN", "DOWN 1/2" (one good check, still out), "MAINT"..."""
        lines = self.admin("show stat").splitlines()
        header = lines[0].lstrip("# ").split(",")
        rows = [dict(zip(header, line.split(","), strict=False)) for line in lines[1:] if line]
        return {
            r["svname"]: r["status"]
            for r in rows
            if r["pxname"] == "app" and r["svname"] not in ("BACKEND", "FRONTEND")
        }

    def up(self) -> set[str]:
        """The nodes fully in rotation."""
        return {name for name, status in self.states().items() if status == "UP"}

    def out(self) -> set[str]:
        """The nodes HAProxy sends nothing to: down (or going back up), or in maintenance."""
        return {
            name for name, status in self.states().items() if status.startswith(("DOWN", "MAINT"))
        }

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self):
        self.process.terminate()
        self.process.wait(timeout=10)


class Topology:
    def __init__(self, nodes=3, workers=2):
        self.root = Path(tempfile.mkdtemp(prefix="accesscontrol-faults-"))
        self.root.chmod(0o755)  # the postgres user reaches its data directory through it
        self.postgres = Postgres(self.root)
        self.redis = Redis(self.root)
        env = {
            **os.environ,
            "DATABASE_URL": self.postgres.url,
            "CACHE_URL": self.redis.url,
            "CACHE_KEY_PREFIX": "faults",
            "AUTHZ_CACHE": "1",
            "SECRET_KEY": "faults-test-only-insecure-secret-key",
            "DEBUG": "0",
            "HTTPS": "0",
            "ALLOWED_HOSTS": "127.0.0.1,localhost",
            "DATABASE_CONN_MAX_AGE": "60",  # as deploy/serve.sh: kept connections, health-checked
            "TRUSTED_PROXY_COUNT": "1",  # HAProxy appends the client's address
            "DRAIN_SECONDS": str(DRAIN_SECONDS),
            # Every client here is 127.0.0.1: room for the unknown keys the traffic sends.
            "THROTTLE_KEY_IP": "100000/60",
            "LOG_LEVEL": "WARNING",
        }
        env.pop("PGOPTIONS", None)
        self.env = env
        self.nodes = [Node(self.root, env, f"n{i}", workers) for i in range(nodes)]
        self.balancer = Balancer(self.root, self.nodes)
        self.data = None

    def manage(self, *args, stdin=None) -> dict:
        result = subprocess.run(
            [sys.executable, "-m", "tests.faults.seed", *args],
            cwd=ROOT,
            env={**self.env, "LOG_LEVEL": "ERROR"},
            input=stdin,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert result.returncode == 0, result.stderr[-3000:]
        return json.loads(result.stdout.strip().splitlines()[-1])

    def start(self):
        self.postgres.init()
        self.redis.start()
        for node in self.nodes:
            node.start()  # booting needs no database: they come up while it is seeded
        self.data = self.manage("seed")
        for node in self.nodes:
            node.wait_up()
        self.balancer.start()
        return self

    def check(self, batches) -> dict:
        return self.manage("check", stdin=json.dumps(batches))

    def restart_node(self, node) -> bool:
        """One step of a rolling restart: SIGTERM (the node drains itself out of the balancer,
        then stops gracefully), start it again, wait until the balancer has it back. True if
        the balancer had taken the node out while it was still running (the drain worked)."""
        node.process.send_signal(signal.SIGTERM)
        # Out means DOWN: a node at "UP 1/2" (one failed check) still gets requests.
        wait_for(lambda: node.name in self.balancer.out(), f"{node.name} out of haproxy")
        drained_first = node.process.poll() is None
        node.process.wait(timeout=60)
        node.start()
        node.wait_up()
        wait_for(lambda: node.name in self.balancer.up(), f"{node.name} back in haproxy")
        return drained_first

    def connections(self) -> int:
        """The app's connections to PostgreSQL (the check's own psql is not counted)."""
        return int(
            self.postgres.sql(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = 'faults' "
                "AND pid <> pg_backend_pid()"
            )
        )

    def stop(self):
        for part in (self.balancer, *self.nodes):
            if part.process is not None and part.process.poll() is None:
                with contextlib.suppress(Exception):
                    part.process.kill()
                    part.process.wait(timeout=10)
        if self.redis.process is not None:
            self.redis.kill()
        if self.postgres.running:
            with contextlib.suppress(Exception):
                self.postgres.stop("immediate")
        shutil.rmtree(self.root, ignore_errors=True)
