# gunicorn's settings for `make serve` (deploy/serve.sh passes the address and worker count);
# tests/project/test_log_redaction.py starts gunicorn with this file too.

accesslog = "-"
access_log_format = '%(h)s "%(r)s" %(s)s %(b)s %(M)sms'
# Keys are redacted from the access and error lines (a key sent in a URL is in the request line).
logger_class = "accesscontrol.apikeys.gunicorn_logger.RedactingLogger"
max_requests = 10000
max_requests_jitter = 1000
graceful_timeout = 20
