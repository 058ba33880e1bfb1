"""Refuses a signed Slack request seen before: Slack's signature only proves who sent a
request, and a captured one stays valid for five minutes. There is no exception for Slack's
retry headers: they are not signed. Slack signs each retry anew, so a genuine retry passes
here and is deduplicated by its event id (bot/web/slack_endpoint.py).

The memory is per process and bounded: a replay sent to another process, or to this one after
a restart, is not seen here. `serve` answers Slack from one process. Where several answer it,
the handlers' idempotency (request keys, conditional state changes) covers a repeated form or
click, but not a replayed `/preregister delete` after the customer was claimed anew.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from datetime import timedelta

from bot.clock import Clock

WINDOW = timedelta(minutes=5)


class ReplayGuard:
    def __init__(self, clock: Clock, capacity: int = 100_000) -> None:
        self.clock = clock
        self.capacity = capacity
        self._seen: OrderedDict[str, float] = OrderedDict()
        self._lock = threading.Lock()

    def first_time(self, signature: str) -> bool:
        """True the first time a signature is seen within the window, False on a replay."""
        now = self.clock.now().timestamp()
        with self._lock:
            self._forget_older_than(now - WINDOW.total_seconds() * 2)
            if signature in self._seen:
                return False
            self._seen[signature] = now
            if len(self._seen) > self.capacity:
                self._seen.popitem(last=False)
            return True

    def _forget_older_than(self, cutoff: float) -> None:
        while self._seen:
            oldest_key = next(iter(self._seen))
            if self._seen[oldest_key] >= cutoff:
                return
            self._seen.popitem(last=False)
