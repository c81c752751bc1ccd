import datetime

import pytest
from django.utils import timezone


class Clock:
    """Moves `django.utils.timezone.now` (what the resolver, the caches' expiry and the
    services read) forward, without sleeping."""

    def __init__(self, monkeypatch):
        self.monkeypatch = monkeypatch
        self.offset = datetime.timedelta()
        real = timezone.now
        monkeypatch.setattr(timezone, "now", lambda: real() + self.offset)

    def advance(self, **delta):
        self.offset += datetime.timedelta(**delta)


@pytest.fixture
def clock(monkeypatch):
    return Clock(monkeypatch)
