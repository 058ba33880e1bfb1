"""Sending like a good Slack citizen: the outbox paces its Web API calls to Slack's rate limits
instead of leaning on 429 answers.

Slack allows about one message per second per channel (short bursts pass) and limits each
workspace's calls per method by tier. `Pacer` keeps a token bucket per channel for
`chat.postMessage` and per workspace (token) and method for the tiered methods. A call that
would go over asks the caller to wait:

- before a notice has written anything to Slack, the call raises `Paced`: the outbox gives the
  notice back and tries it again once the bucket has a token, and its sender slot goes to a
  notice for another channel meanwhile (bot/outbox/delivery.py);
- once a notice has written something (a `chat.update` before its DM), trying it again would
  repeat that write, so the call waits in place instead.

The pace is a little under Slack's published rates (`MARGIN`), so that the jitter between our
clock and Slack's does not turn the last call of a burst into a 429. One Pacer per process:
two processes sending to one channel at once can still meet a 429, which the client's retry
handler waits out (and /metrics counts).
"""

from __future__ import annotations

import contextvars
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass


@dataclass(frozen=True)
class Limit:
    per_minute: float
    burst: int


PER_CHANNEL_POSTS = Limit(60, 3)
"""chat.postMessage: ~1 per second per channel, bursts of a few."""
TIER_3 = Limit(50, 5)
TIER_4 = Limit(100, 10)
TIERS: dict[str, Limit] = {
    "chat.update": TIER_3,
    "conversations.open": TIER_3,
    "chat.postEphemeral": TIER_4,
    "users.info": TIER_4,
    "views.open": TIER_4,
    "views.push": TIER_4,
    "views.update": TIER_4,
    "views.publish": TIER_4,
    "files.getUploadURLExternal": TIER_4,
    "files.completeUploadExternal": TIER_4,
}
MARGIN = 0.05
"""Each token comes this much later than Slack's rate would allow."""
READS = frozenset(
    {"users.info", "conversations.open", "conversations.info", "auth.test", "team.info"}
    | {"files.getUploadURLExternal"}  # an upload slot, invisible until completed
)
"""Calls that change nothing anyone sees: repeating them when a notice is tried again is fine."""


Key = tuple[str, ...]


@dataclass(frozen=True)
class Wait:
    """How long until the bucket `key` has a token, and its pace (seconds per token)."""

    seconds: float
    key: Key
    interval: float


class Paced(Exception):
    """This notice should be tried again once its bucket has a token; nothing of it was sent."""

    def __init__(self, method: str, wait: Wait) -> None:
        super().__init__(f"{method} paced for {wait.seconds:.2f} s")
        self.method = method
        self.wait = wait


class _Bucket:
    def __init__(self, limit: Limit, now: float) -> None:
        self.interval = 60.0 / limit.per_minute * (1 + MARGIN)
        self.capacity = float(limit.burst)
        self.tokens = self.capacity
        self.at = now

    def wait(self, now: float) -> float:
        self.tokens = min(self.capacity, self.tokens + (now - self.at) / self.interval)
        self.at = now
        return 0.0 if self.tokens >= 1 else (1 - self.tokens) * self.interval


class Pacer:
    """Token buckets for one process's Web API calls (thread-safe)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._buckets: dict[tuple[str, ...], _Bucket] = {}
        self._lock = threading.Lock()

    def _limits(self, workspace: str, method: str, channel: str | None) -> list[tuple[Key, Limit]]:
        if method == "chat.postMessage" and channel:
            return [((workspace, method, channel), PER_CHANNEL_POSTS)]
        limit = TIERS.get(method)
        return [((workspace, method), limit)] if limit else []

    def ready(self, workspace: str, method: str, channel: str | None) -> Wait | None:
        """None if `take` would give this call a token now; else how long until it would.
        Takes nothing: a sender asks before work that is wasted if the call is paced."""
        limits = self._limits(workspace, method, channel)
        if not limits:
            return None
        with self._lock:
            return self._longest_wait(limits)

    def take(self, workspace: str, method: str, channel: str | None) -> Wait | None:
        """None and a token taken from each bucket of this call; or how long until all of
        them have one (nothing taken)."""
        limits = self._limits(workspace, method, channel)
        if not limits:
            return None
        with self._lock:
            longest = self._longest_wait(limits)
            if longest is not None:
                return longest
            for key, _ in limits:
                self._buckets[key].tokens -= 1
            return None

    def _longest_wait(self, limits: list[tuple[Key, Limit]]) -> Wait | None:
        """The longest wait for a token among the buckets of `limits` (None: each has one
        now). Called under the lock."""
        now = self._clock()
        waits = []
        for key, limit in limits:
            bucket = self._buckets.setdefault(key, _Bucket(limit, now))
            waits.append(Wait(bucket.wait(now), key, bucket.interval))
        longest = max(waits, key=lambda w: w.seconds)
        return longest if longest.seconds > 0 else None


# --- may this call be deferred? ----------------------------------------------------------------

_notice: contextvars.ContextVar[list[bool] | None] = contextvars.ContextVar(
    "prereg_paced_notice", default=None
)


@contextmanager
def deferrable() -> Iterator[None]:
    """Around one notice's send: its calls may raise `Paced` until it has written something."""
    token = _notice.set([False])
    try:
        yield
    finally:
        _notice.reset(token)


def may_defer() -> bool:
    state = _notice.get()
    return state is not None and not state[0]


def wrote(method: str) -> None:
    """Called after a call succeeded: a write ends the notice's chance to be deferred."""
    state = _notice.get()
    if state is not None and method not in READS:
        state[0] = True
