"""Whether this node is draining: its gunicorn got SIGTERM and stops taking requests soon.

A load balancer health-checks `GET /healthz`. On SIGTERM the gunicorn master (hooks in
deploy/gunicorn.conf.py) sets a flag shared with its workers, keeps serving for
`DRAIN_SECONDS` while /healthz answers 503 so the balancer takes the node out, and only then
shuts down gracefully (in-flight requests finish, within `graceful_timeout`). No request is sent
to a node that has closed its socket, so a rolling restart loses none (tests/faults).

The flag is a byte of shared memory made by the master before it forks its workers; without
gunicorn (runserver, tests) there is none and the node never drains.
"""

import multiprocessing

_flag = None


def install():
    """In the gunicorn master, before any worker is forked."""
    global _flag
    _flag = multiprocessing.RawValue("b", 0)


def begin() -> None:
    if _flag is not None:
        _flag.value = 1


def draining() -> bool:
    return _flag is not None and bool(_flag.value)
