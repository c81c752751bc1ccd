"""Mixed traffic through the balancer, each answer judged as it comes back.

Readers list datasets, ingest run batches, open a console page with a session, try unknown
keys and keys revoked earlier. One thread flips a custom role between reading and not (each
confirmed change followed by requests with a key of that role); one creates service keys, uses
them, revokes them and checks the refusal. An answer is either *served* (the right answer for
the state the test knows), a *503* from the app (JSON with Retry-After for the API, the
"Briefly unavailable" page for the console), *wrongly allowed* (a success for a revoked key, a
demoted role or an unknown key) or an *error* (anything else: a 500, a balancer's own 503, a
connection failure, a refusal of something allowed).
"""

import http.client
import json
import random
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field

from accesscontrol.apikeys import keys

API = "/api/v1"


@dataclass
class Answer:
    status: int
    headers: dict
    body: bytes

    def json(self):
        return json.loads(self.body or b"null")


@dataclass
class Tally:
    served: int = 0
    unavailable: int = 0
    wrongly_allowed: list = field(default_factory=list)
    errors: list = field(default_factory=list)
    by_op: Counter = field(default_factory=Counter)
    latencies: list = field(default_factory=list)  # (finished at, seconds, op)

    def figures(self) -> dict:
        return {
            "requests": self.served
            + self.unavailable
            + len(self.wrongly_allowed)
            + len(self.errors),
            "served": self.served,
            "503s": self.unavailable,
            "wrongly_allowed": len(self.wrongly_allowed),
            "errors": len(self.errors),
        }


class Traffic:
    def __init__(self, port, data, *, readers=3, console=True):
        self.port, self.data, self.readers = port, data, readers
        self.console = console
        self.tally = Tally()
        self.lock = threading.Lock()
        self.stop_event = threading.Event()
        self.threads = []
        self.revoked: list[str] = []
        self.batches: dict[str, list[str]] = {}  # batch id -> run ids
        self.accepted_batches: set[str] = set()
        self.role_state = "read"  # what the last confirmed change left: read | demoted | None

    # --- HTTP ---------------------------------------------------------------------------------

    def call(self, method, path, key=None, body=None, headers=None) -> Answer | None:
        headers = dict(headers or {})
        if key is not None:
            headers["X-API-Key"] = key
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        started = time.monotonic()
        try:
            connection.request(method, path, body=data, headers=headers)
            response = connection.getresponse()
            # Header names lowercased: HAProxy forwards them so.
            headers = {name.lower(): value for name, value in response.getheaders()}
            answer = Answer(response.status, headers, response.read())
        except (OSError, http.client.HTTPException) as error:
            self.error(f"{method} {path}: {type(error).__name__} {error}")
            return None
        finally:
            connection.close()
        with self.lock:
            self.tally.latencies.append((time.monotonic(), time.monotonic() - started, path))
        return answer

    def judge(self, op, answer, expected, *, wrong=()):
        """Served if the status is one of `expected`; a 503 if the app said so properly;
        wrongly allowed if one of `wrong`; else an error. Returns the status (None: no answer)."""
        if answer is None:
            return None
        status = answer.status
        with self.lock:
            self.tally.by_op[(op, status)] += 1
            if status in expected:
                self.tally.served += 1
            elif status == 503 and self._proper_503(answer):
                self.tally.unavailable += 1
            elif status in wrong:
                self.tally.wrongly_allowed.append((op, status, answer.body[:200]))
            else:
                self.tally.errors.append((op, status, answer.body[:300]))
        return status

    @staticmethod
    def _proper_503(answer) -> bool:
        if "retry-after" not in answer.headers:
            return False
        if answer.headers.get("content-type", "").startswith("application/json"):
            return answer.json().get("error") == "service_unavailable"
        return b"Briefly unavailable" in answer.body

    def answers(self) -> tuple[Counter, int]:
        """How often each operation was answered, and the proper 503s among all answers, so far."""
        kinds = Counter()
        with self.lock:
            for (op, _), count in self.tally.by_op.items():
                kinds[op] += count
            return kinds, self.tally.unavailable

    def error(self, what):
        with self.lock:
            self.tally.errors.append(what)

    # --- the operations -----------------------------------------------------------------------

    def read(self, key):
        return self.judge("read", self.call("GET", f"{API}/datasets", key), {200})

    def ingest(self):
        batch = str(uuid.uuid4())
        runs = [str(uuid.uuid4()) for _ in range(3)]
        with self.lock:
            self.batches[batch] = runs
        posts = [
            {"id": run, "session_id": self.data["project"], "name": f"{batch}", "run_type": "llm"}
            for run in runs
        ]
        status = self.judge(
            "ingest",
            self.call("POST", f"{API}/runs/batch", self.data["ingest_key"], {"post": posts}),
            {202},
        )
        if status == 202:
            with self.lock:
                self.accepted_batches.add(batch)

    def console_page(self):
        answer = self.call(
            "GET",
            self.data["console_path"],
            headers={"Cookie": f"sessionid={self.data['session']}"},
        )
        if answer is not None and answer.status == 200 and b"production" not in answer.body:
            self.error(f"console page without its workspace: {answer.body[:300]}")
            return
        self.judge("console", answer, {200})

    def unknown_key(self):
        guess = keys.generate(keys.SERVICE)  # well-formed, right checksum, in no database
        # 429: a limit on failed authentications reached, a refusal as right as a 401.
        self.judge(
            "unknown key", self.call("GET", f"{API}/datasets", guess), {401, 429}, wrong={200}
        )

    def revoked_key(self):
        with self.lock:
            key = random.choice(self.revoked) if self.revoked else None
        if key is not None:
            self.judge(
                "revoked key", self.call("GET", f"{API}/datasets", key), {401, 429}, wrong={200}
            )

    def reader_loop(self, index):
        readers = self.data["readers"]
        step = index
        while not self.stop_event.is_set():
            choice = step % 6
            if choice in (0, 1):
                self.read(readers[step % len(readers)])
            elif choice == 2:
                self.ingest()
            elif choice == 3 and self.console:
                self.console_page()
            elif choice == 4:
                self.revoked_key()
            else:
                self.unknown_key()
            step += 1

    def set_role(self, permissions) -> int | None:
        return self.judge(
            "role change",
            self.call(
                "PATCH",
                f"{API}/orgs/current/roles/{self.data['flipper_role']}",
                self.data["org_admin_key"],
                {"permissions": permissions},
            ),
            {200},
        )

    def changer_loop(self):
        """Demote, then the role's key must be refused (403) everywhere; promote, then served."""
        key = self.data["flipper_key"]
        while not self.stop_event.is_set():
            demote = self.role_state != "demoted"
            status = self.set_role(self.data["demoted"] if demote else self.data["read"])
            if status == 200:
                self.role_state = "demoted" if demote else "read"
            elif status == 503:
                self.role_state = None  # committed or not: unknown until the next confirmed one
                time.sleep(0.05)
                continue
            for _ in range(4):
                answer = self.call("GET", f"{API}/datasets", key)
                if self.role_state == "demoted":
                    self.judge("demoted key", answer, {403}, wrong={200})
                elif self.role_state == "read":
                    self.judge("promoted key", answer, {200})

    def revoker_loop(self):
        headers = {"X-Tenant-Id": self.data["workspace"]}
        admin = self.data["workspace_admin_key"]
        while not self.stop_event.is_set():
            answer = self.call("POST", f"{API}/api-key", admin, {"name": "churn"}, headers)
            if self.judge("key create", answer, {201}) != 201:
                time.sleep(0.05)
                continue
            created = answer.json()
            raw, key_id = created["key"], created["id"]
            self.judge("new key", self.call("GET", f"{API}/datasets", raw), {200})
            confirmed = False
            while not confirmed:
                answer = self.call("DELETE", f"{API}/api-key/{key_id}", admin, headers=headers)
                status = self.judge("key revoke", answer, {200})
                confirmed = status == 200
                if status == 503:
                    time.sleep(0.05)
                elif not confirmed:
                    break  # judged an error already
                if self.stop_event.is_set() and not confirmed:
                    break
            if confirmed:
                with self.lock:
                    self.revoked.append(raw)
                self.judge(
                    "revoked key", self.call("GET", f"{API}/datasets", raw), {401, 429}, wrong={200}
                )

    # --- running ------------------------------------------------------------------------------

    def start(self):
        loops = [(self.reader_loop, (i,)) for i in range(self.readers)]
        loops += [(self.changer_loop, ()), (self.revoker_loop, ())]
        self.threads = [threading.Thread(target=f, args=a, daemon=True) for f, a in loops]
        for thread in self.threads:
            thread.start()
        return self

    def stop(self):
        self.stop_event.set()
        for thread in self.threads:
            thread.join(timeout=60)
        return self.tally
