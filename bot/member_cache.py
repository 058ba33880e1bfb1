"""The member -> partner look-up that gates opening the form (R1), kept in memory.

Opening the form is the hottest request, and the look-up's database round trip was most of
its cost (docs/performance.md). Partners and their members change rarely, and every change
makes PostgreSQL notify each app process (store/directory_watch.py), which empties this cache.
While the process cannot hear those notifications the cache is off and every look-up reads the
database. The cache only decides whether the form opens: a submission re-reads the partner
inside its own transaction, so a stale entry can never let a claim through.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TypeVar

V = TypeVar("V")

MAX_ENTRIES = 100_000


class MemberCache:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: dict[str, object] = {}
        self._generation = 0
        self._live = False

    @property
    def live(self) -> bool:
        return self._live

    def get(self, member: str, load: Callable[[str], V]) -> V:
        """The cached value for `member`, else `load(member)`, kept unless the directory changed
        while it was loading (a change must never be overwritten by what was read before it)."""
        with self._lock:
            if self._live and member in self._entries:
                return self._entries[member]  # type: ignore[return-value]
            generation = self._generation
        value = load(member)
        with self._lock:
            if self._live and generation == self._generation:
                if len(self._entries) >= MAX_ENTRIES:
                    self._entries.clear()
                self._entries[member] = value
        return value

    def changed(self) -> None:
        """Something changed (or we just started listening): forget everything, keep caching."""
        self._reset(live=True)

    def lost(self) -> None:
        """Changes can no longer be heard: forget everything and read the database each time."""
        self._reset(live=False)

    def _reset(self, live: bool) -> None:
        with self._lock:
            self._generation += 1
            self._entries.clear()
            self._live = live
