"""Hears PostgreSQL say that partners or their members changed (migration 0002's triggers).

A thread holds one connection of its own, LISTENing on `prereg_directory`. It reports
`changed()` for every notification and once each time it starts listening (anything may have
changed while it was not), and `lost()` as soon as it cannot tell (the connection broke), then
reconnects with a growing pause.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

import psycopg
from sqlalchemy.engine import make_url

log = logging.getLogger(__name__)

CHANNEL = "prereg_directory"
RECONNECT_DELAYS = (0.5, 1.0, 2.0, 5.0)
# A server that vanishes without closing the socket is noticed within ~25 s.
KEEPALIVE = {
    "connect_timeout": 5,
    "keepalives": 1,
    "keepalives_idle": 10,
    "keepalives_interval": 5,
    "keepalives_count": 3,
}


def psycopg_conninfo(sqlalchemy_url: str) -> str:
    """`postgresql+psycopg://u:p@h/db` -> `postgresql://u:p@h/db` for psycopg.connect."""
    url = make_url(sqlalchemy_url).set(drivername="postgresql")
    return url.render_as_string(hide_password=False)


class DirectoryWatch:
    def __init__(
        self,
        sqlalchemy_url: str,
        changed: Callable[[], None],
        lost: Callable[[], None],
        poll_seconds: float = 1.0,
    ) -> None:
        self.conninfo = psycopg_conninfo(sqlalchemy_url)
        self.changed = changed
        self.lost = lost
        self.poll_seconds = poll_seconds
        self.listening = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> DirectoryWatch:
        self._thread = threading.Thread(target=self._run, name="directory-watch", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(self.poll_seconds + 5)

    def _run(self) -> None:
        failures = 0
        while not self._stop.is_set():
            try:
                self._listen()
                failures = 0
            except psycopg.Error as error:
                self.listening.clear()
                self.lost()
                delay = RECONNECT_DELAYS[min(failures, len(RECONNECT_DELAYS) - 1)]
                failures += 1
                log.warning("not hearing directory changes (%s); retrying in %ss", error, delay)
                self._stop.wait(delay)
        self.listening.clear()
        self.lost()

    def _listen(self) -> None:
        with psycopg.connect(self.conninfo, autocommit=True, **KEEPALIVE) as conn:
            conn.execute(f"LISTEN {CHANNEL}")
            self.changed()
            self.listening.set()
            while not self._stop.is_set():
                for _ in conn.notifies(timeout=self.poll_seconds):
                    self.changed()
