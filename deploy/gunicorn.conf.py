# gunicorn's settings for `make serve` (deploy/serve.sh passes the address and worker count);
# tests/project/test_log_redaction.py and the topology tests (tests/faults) start gunicorn with
# this file too.

import os
import time

accesslog = "-"
access_log_format = '%(h)s "%(r)s" %(s)s %(b)s %(M)sms'
# Keys are redacted from the access and error lines (a key sent in a URL is in the request line).
logger_class = "accesscontrol.apikeys.gunicorn_logger.RedactingLogger"
max_requests = 10000
max_requests_jitter = 1000
graceful_timeout = 20

# Behind a load balancer: on SIGTERM keep serving this long while /healthz answers 503, so the
# balancer's health checks take the node out before it closes its socket (accesscontrol/
# draining.py). Set it above the balancer's check interval x fall count; 0 stops at once.
# SIGINT (Ctrl+C) and SIGQUIT are not delayed.
DRAIN_SECONDS = float(os.environ.get("DRAIN_SECONDS", "0"))


def on_starting(server):
    from accesscontrol import draining  # here: the project is on sys.path by now

    draining.install()  # shared memory, made before the workers are forked


def when_ready(server):
    if DRAIN_SECONDS <= 0:
        return
    from accesscontrol import draining

    terminate = server.handle_term

    def drain_then_terminate():
        draining.begin()
        server.log.info("SIGTERM: draining for %.1f s before shutting down", DRAIN_SECONDS)
        time.sleep(DRAIN_SECONDS)
        terminate()  # gunicorn's graceful stop

    server.handle_term = drain_then_terminate
