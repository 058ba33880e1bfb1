"""`prereg-bot serve` (Waitress, a production WSGI server) and `prereg-bot socket`."""

from __future__ import annotations

import contextlib
import logging
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from bot.entry.worker import BackgroundWorker
from bot.settings import Settings, serve_required, socket_required
from bot.wiring.app import (
    Services,
    build_bolt_app,
    build_web,
    create_services,
    import_surfaces,
    load_shared_data,
)

log = logging.getLogger(__name__)

SHARED_WITH_WORKER = ("slack_bolt", "encodings.idna")
"""Imported before the worker is forked, so the two processes share their pages instead of
each having its own copy (bot/entry/worker.py): only what both use (`encodings.idna`: the
host names of their connections). What one process alone
uses is imported after the fork, by that process: Flask, Werkzeug, Waitress and bot/web in
the web process, APScheduler in the worker. A page either process writes after the fork
(Python writes the reference count of every object it touches) is copied, and the original
stays in the other process too, unused there: imported before the fork, the web modules
cost the worker the pages the web process touched, and APScheduler the reverse."""


def _interrupt(*_: object) -> None:
    raise KeyboardInterrupt


@contextmanager
def running(settings: Settings, *required: str) -> Iterator[Services]:
    """The process's services with its background work running (the worker process and, on
    PostgreSQL, the member-cache watch); all of it stopped on the way out."""
    settings.require(*required)  # the database was migrated before (bot/entry/cli.py)
    import_surfaces()
    load_shared_data()
    worker = BackgroundWorker(settings)
    worker.start(SHARED_WITH_WORKER)  # forked before any thread starts (bot/entry/worker.py)
    services = create_services(settings, wake=worker.wake)
    if services.member_watch is not None:
        services.member_watch.start()
    try:
        yield services
    finally:
        if services.member_watch is not None:
            services.member_watch.stop()
        worker.stop()
        services.db.dispose()


def serve(settings: Settings) -> int:
    with running(settings, *serve_required(settings)) as services:
        from waitress import create_server  # the web process's own: after the fork

        web = build_web(services)
        server = create_server(web, host="0.0.0.0", port=settings.port, threads=16)
        log.info("prereg-bot serving on port %s", settings.port)
        signal.signal(signal.SIGTERM, _interrupt)
        with contextlib.suppress(KeyboardInterrupt):
            server.run()
    return 0


def socket_mode(settings: Settings) -> int:
    from slack_bolt.adapter.socket_mode import SocketModeHandler

    with running(settings, *socket_required(settings)) as services:
        handler = SocketModeHandler(build_bolt_app(services), settings.slack_app_token)
        handler.connect()
        log.info("prereg-bot connected in Socket Mode")
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        try:
            with contextlib.suppress(KeyboardInterrupt):
                stop.wait()
        finally:
            handler.close()
    return 0
