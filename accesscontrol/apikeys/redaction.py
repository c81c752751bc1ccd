"""Keys never leave the one response that shows them: scrubbed from log lines and error reports.

Our own code never logs a key; this catches what other code might (a library's error message, a
local variable in a traceback's frame), by recognising the key formats themselves.
"""

import logging
import re

from django.views.debug import SafeExceptionReporterFilter

KEY_PATTERN = re.compile(r"lsv2_(?:pt|sk)_[0-9a-f]{32}_[0-9a-f]{8}|ls__[0-9A-Za-z]{16,64}")
REDACTED = "[key redacted]"


def redact(text: str) -> str:
    return KEY_PATTERN.sub(REDACTED, text)


class RedactKeysFilter(logging.Filter):
    """A logging filter: any key in a record's message is replaced before it is written."""

    def filter(self, record):
        message = record.getMessage()
        if KEY_PATTERN.search(message):
            record.msg, record.args = redact(message), ()
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
