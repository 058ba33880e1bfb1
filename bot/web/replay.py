"""Refuses a signed Slack request seen before: Slack's signature only proves who sent a
request, and a captured one stays valid for five minutes. Slack's own retries carry
`X-Slack-Retry-Num` and pass (the handlers are idempotent for them).

The memory is per process and bounded; across processes the handlers' idempotency (request
keys, conditional state changes) is what keeps a replay from changing anything twice.
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
