"""`prereg-bot serve` (Waitress, a production WSGI server) and `prereg-bot socket`."""

from __future__ import annotations

import logging
import signal
import threading

from bot.app import build_bolt_app, create_services
from bot.settings import SERVE_REQUIRED, SOCKET_REQUIRED, Settings
from bot.worker import BackgroundWorker
from store.migrate import upgrade

log = logging.getLogger(__name__)


def _interrupt(*_: object) -> None:
    raise KeyboardInterrupt


def serve(settings: Settings) -> int:
    from waitress import create_server

    from bot.web import build_web_app

    settings.require(*SERVE_REQUIRED)
    upgrade(settings.database_url)
    worker = BackgroundWorker(settings)
    services = create_services(settings, wake=worker.wake)
    web = build_web_app(services, build_bolt_app(services))
    worker.start()
    if services.member_watch is not None:
        services.member_watch.start()
    server = create_server(web, host="0.0.0.0", port=settings.port, threads=16)
    log.info("prereg-bot serving on port %s", settings.port)

    signal.signal(signal.SIGTERM, _interrupt)
    try:
        server.run()
    except KeyboardInterrupt:
        pass
    finally:
        if services.member_watch is not None:
            services.member_watch.stop()
        worker.stop()
        services.db.dispose()
    return 0


def socket_mode(settings: Settings) -> int:
    from slack_bolt.adapter.socket_mode import SocketModeHandler

    settings.require(*SOCKET_REQUIRED)
    upgrade(settings.database_url)
    worker = BackgroundWorker(settings)
    services = create_services(settings, wake=worker.wake)
    app = build_bolt_app(services)
    worker.start()
    if services.member_watch is not None:
        services.member_watch.start()
    handler = SocketModeHandler(app, settings.slack_app_token)
    handler.connect()
    log.info("prereg-bot connected in Socket Mode")
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        stop.wait()
    except KeyboardInterrupt:
        pass
    finally:
        handler.close()
        if services.member_watch is not None:
            services.member_watch.stop()
        worker.stop()
        services.db.dispose()
    return 0
