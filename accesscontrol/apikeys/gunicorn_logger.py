"""gunicorn's logger with key redaction, named by deploy/gunicorn.conf.py (`logger_class`).

gunicorn writes its access and error lines itself, outside Django's LOGGING: the request line of
a URL carrying a key (`?api_key=...`, refused with 401) would be written verbatim without this.
"""

from gunicorn import glogging

from accesscontrol.apikeys.redaction import RedactKeysFilter


class RedactingLogger(glogging.Logger):
    def setup(self, cfg):
        super().setup(cfg)
        # On the loggers, not their handlers: setup() runs again on reload and replaces those.
        for log in (self.error_log, self.access_log):
            if not any(isinstance(f, RedactKeysFilter) for f in log.filters):
                log.addFilter(RedactKeysFilter())
