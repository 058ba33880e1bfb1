"""The member cache that decides whether `/preregister` opens the form: its rules on its own,
then a running app that must see what an operator changes elsewhere (on PostgreSQL the
cache is live and kept fresh by the database's notifications; on SQLite there is none)."""

from __future__ import annotations

import time

import pytest
from sqlalchemy import create_engine, text

from bot.member_cache import MemberCache
from store.directory_watch import DirectoryWatch
from tests.helpers import eventually
from tests.slackfixtures import MEMBER

NOTIFICATIONS_LAND = 0.5  # seconds; ample for a notification between two local processes


class Loads:
    def __init__(self, value: str = "Acme") -> None:
        self.value = value
        self.count = 0

    def __call__(self, member: str) -> str:
        self.count += 1
        return self.value


def test_until_it_hears_the_database_every_look_up_reads_it():
    cache, load = MemberCache(), Loads()
    cache.get("U1", load)
    cache.get("U1", load)
    assert load.count == 2


def test_while_live_a_member_is_read_once():
    cache, load = MemberCache(), Loads()
    cache.changed()
    assert cache.get("U1", load) == "Acme"
    assert cache.get("U1", load) == "Acme"
    assert cache.get("U2", load) == "Acme"
    assert load.count == 2


def test_a_change_empties_it():
    cache, load = MemberCache(), Loads()
    cache.changed()
    cache.get("U1", load)
    load.value = "Acme renamed"
    cache.changed()
    assert cache.get("U1", load) == "Acme renamed"


def test_a_change_during_a_read_is_not_overwritten_by_that_read():
    cache = MemberCache()
    cache.changed()

    def read_then_change(member: str) -> str:
        cache.changed()  # the directory changes after this read saw it
        return "before the change"

    assert cache.get("U1", read_then_change) == "before the change"
    load = Loads("after the change")
    assert cache.get("U1", load) == "after the change"
    assert load.count == 1


def test_when_it_cannot_hear_the_database_it_stops_caching():
    cache, load = MemberCache(), Loads()
    cache.changed()
    cache.get("U1", load)
    cache.lost()
    cache.get("U1", load)
    cache.get("U1", load)
    assert load.count == 3 and not cache.live


def opens_form(app) -> bool:
    """Sends `/preregister`; True when the form opened, False when the member was refused."""
    opened, answered = len(app.fake.calls_to("views.open")), len(app.fake.responses)
    assert app.command(MEMBER, "").status_code == 200

    def outcome():
        if len(app.fake.calls_to("views.open")) > opened:
            return True
        if len(app.fake.responses) > answered:
            return False
        return None

    return eventually(lambda: outcome() is not None, what="a form or a refusal") and outcome()


def sql(app, statement: str, **params: object) -> None:
    """A change made outside the app, as an operator's SQL session would."""
    engine = create_engine(app.db_url)
    with engine.begin() as conn:
        conn.execute(text(statement), params)
    engine.dispose()


def set_contact(app, email: str | None) -> None:
    sql(app, "UPDATE partners SET contact_email = :e", e=email)


def test_operator_changes_reach_the_next_preregister(app, direct):
    assert not opens_form(app)  # not a member yet; on PostgreSQL that answer is now cached
    direct.partner()
    assert eventually(lambda: opens_form(app), what="the new member gets the form")
    set_contact(app, None)  # R1: no reserved contact, no form
    assert eventually(lambda: not opens_form(app), what="the refusal after the change")
    set_contact(app, "desk@acme.example")
    assert eventually(lambda: opens_form(app), what="the form once the contact is back")


def test_on_postgresql_the_gate_is_read_from_memory_and_the_triggers_keep_it_fresh(app, direct):
    if not app.db_url.startswith("postgresql"):
        pytest.skip("the member cache runs on PostgreSQL only (it needs LISTEN/NOTIFY)")
    direct.partner()
    # The notifications of that insert reach the app asynchronously and empty the cache; let
    # them land before the look-up that fills it, so nothing empties it afterwards.
    time.sleep(NOTIFICATIONS_LAND)
    assert eventually(lambda: opens_form(app), what="the member gets the form")
    sql(app, "ALTER TABLE partners DISABLE TRIGGER partners_directory_changed")
    try:
        set_contact(app, None)  # unheard: the process still holds the member's partner
        assert opens_form(app)
    finally:
        sql(app, "ALTER TABLE partners ENABLE TRIGGER partners_directory_changed")
    set_contact(app, None)  # heard
    assert eventually(lambda: not opens_form(app), what="the refusal once the change is heard")


def test_the_watch_stops_caching_while_its_connection_is_gone_and_resumes(pg_only_url):
    cache, load = MemberCache(), Loads()
    heard = {"changed": 0, "lost": 0}

    def changed() -> None:
        heard["changed"] += 1
        cache.changed()

    def lost() -> None:
        heard["lost"] += 1
        cache.lost()

    watch = DirectoryWatch(pg_only_url, changed=changed, lost=lost, poll_seconds=0.2).start()
    engine = create_engine(pg_only_url)
    try:
        eventually(lambda: watch.listening.is_set() and cache.live, what="listening")
        with engine.begin() as conn:  # the database drops the watch's connection
            conn.execute(
                text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                    " WHERE datname = current_database() AND query LIKE 'LISTEN%'"
                )
            )
        eventually(lambda: heard["lost"] >= 1, what="the loss reported")
        eventually(lambda: watch.listening.is_set() and cache.live, what="listening again")
        cache.get("U1", load)
        cache.get("U1", load)
        assert load.count == 1  # cached again
        with engine.begin() as conn:  # a change after the reconnection is heard
            conn.execute(
                text(
                    "INSERT INTO partners (name, country, lock_version, created_at)"
                    " VALUES ('Heard GmbH', 'DE', 0, now())"
                )
            )
        eventually(lambda: cache.get("U1", load) and load.count == 2, what="the change heard")
    finally:
        watch.stop()
        with engine.begin() as conn:
            conn.execute(text("DELETE FROM partners WHERE name = 'Heard GmbH'"))
        engine.dispose()
