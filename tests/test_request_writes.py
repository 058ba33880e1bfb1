"""The request path's short writes: the Events API replay record (store/slack_events.py) and
the way writers of one process take SQLite's write lock (store/db.py `Database.writing`)."""

from __future__ import annotations

import threading
import time
from datetime import timedelta

from sqlalchemy import event, func, select

from store.models import SlackEvent
from store.slack_events import first_delivery
from tests.conftest import T0


def test_a_repeated_event_is_refused_and_old_keys_are_forgotten_once_a_minute(db):
    deletes: list[str] = []

    @event.listens_for(db.engine, "before_cursor_execute")
    def _seen(_conn, _cursor, statement, *_args):  # type: ignore[no-untyped-def]
        if statement.lstrip().upper().startswith("DELETE"):
            deletes.append(statement)

    assert first_delivery(db, "event:T1:Ev1", T0)
    assert not first_delivery(db, "event:T1:Ev1", T0 + timedelta(seconds=1))
    for n in range(2, 7):
        assert first_delivery(db, f"event:T1:Ev{n}", T0 + timedelta(seconds=n))
    assert len(deletes) == 1  # not one more write in front of every event's ack
    later = T0 + timedelta(hours=2)
    assert first_delivery(db, "event:T1:Ev7", later)
    assert len(deletes) == 2
    with db.session() as s:
        assert s.scalar(select(func.count()).select_from(SlackEvent)) == 1
    assert first_delivery(db, "event:T1:Ev1", later)  # forgotten after KEEP: taken anew


def test_writers_of_one_process_queue_for_sqlite_and_not_for_postgres(db):
    sqlite = db.engine.dialect.name == "sqlite"
    entered = threading.Event()
    waited: list[float] = []

    def second() -> None:
        entered.wait(5)
        start = time.monotonic()
        with db.writing():
            waited.append(time.monotonic() - start)

    thread = threading.Thread(target=second)
    thread.start()
    with db.writing():
        entered.set()
        time.sleep(0.3)
    thread.join(5)
    assert (waited[0] >= 0.2) if sqlite else (waited[0] < 0.2)
