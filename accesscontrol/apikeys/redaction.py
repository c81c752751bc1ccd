"""Keys never leave the one response that shows them: scrubbed from log lines and error reports.

Our own code never logs a key; this catches what other code might (a library's error message, a
local variable in a traceback's frame), by recognising the key formats themselves.
"""

import logging

from django.views.debug import SafeExceptionReporterFilter

from accesscontrol.apikeys.keys import IN_TEXT as KEY_PATTERN

REDACTED = "[key redacted]"


def redact(text: str) -> str:
    return KEY_PATTERN.sub(REDACTED, text)


class RedactKeysFilter(logging.Filter):
    """A logging filter: any key in a record's message or traceback is replaced before it is
    written. settings.LOGGING puts it on every handler (the server's request lines included),
    and the gunicorn logger (gunicorn_logger.py) on gunicorn's access and error logs."""

    def filter(self, record):
        message = record.getMessage()
        if KEY_PATTERN.search(message):
            record.msg, record.args = redact(message), ()
        if record.exc_info and not record.exc_text:
            # Formatted here, so formatters use this redacted text instead of their own.
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        return True


class KeyScrubbingReporterFilter(SafeExceptionReporterFilter):
    """Django's filter (settings, request headers), plus keys in any frame's local variables."""

    def get_traceback_frame_variables(self, request, tb_frame):
        return [
            (name, self._scrub(value))
            for name, value in super().get_traceback_frame_variables(request, tb_frame)
        ]

    def _scrub(self, value):
        try:
            text = repr(value)
        except Exception:  # a broken __repr__ must not break the error report
            return value
        return self.cleansed_substitute if KEY_PATTERN.search(text) else value
