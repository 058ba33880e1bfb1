"""What `serve`'s long-lived processes keep in memory (issue 15).

Alembic, with Mako and Pygments, is needed for the start-up migration only: it runs in a
short-lived child process, and `/readyz` reads the schema's revision without it.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys

import zxingcpp
from alembic.script import ScriptDirectory
from PIL import Image

from store.migrate import alembic_config
from store.readiness import code_heads

SERVE_STARTS = """
import importlib, sys
from bot.entry import cli
from bot.entry.server import SHARED_WITH_WORKER
from bot.web.health import Readiness
from bot.wiring.app import import_surfaces
from store.db import Database

cli._apart(cli._prepare_database, sys.argv[1])  # as `serve` does before it starts
import_surfaces()
for name in ("bot.entry.scheduler", "bot.wiring.app", *SHARED_WITH_WORKER):
    importlib.import_module(name)
db = Database(sys.argv[1])
print("ready" if Readiness(db).problem() is None else "not ready")
print(sorted(m for m in sys.modules if m.split(".")[0] in ("alembic", "mako", "pygments")))
"""


def test_serve_keeps_no_alembic_after_migrating_and_answering_readyz(tmp_path):
    url = f"sqlite:///{tmp_path / 'app.db'}"
    done = subprocess.run(
        [sys.executable, "-c", SERVE_STARTS, url], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.splitlines() == ["ready", "[]"]


FORK_POINT = """
import os, re, sys
from datetime import UTC, datetime
from bot.entry import server, worker
from bot.i18n import LANGUAGES, format_when, translations, use
from bot.settings import Settings
from store.models import Base

ONE_PROCESS = ("flask", "werkzeug", "waitress", "apscheduler", "qrcode", "PIL")


def rss_kib():
    return int(re.search(r"VmRSS:\\s+(\\d+)", open("/proc/self/status").read()).group(1))


def at_the_fork(self, context):
    if context.get_start_method() == "fork":
        found = [m for m in sys.modules if m.split(".")[0] in ONE_PROCESS]
        print(sorted(found + [m for m in sys.modules if m.startswith("bot.web")]))
        print(all(mapper.configured for mapper in Base.registry.mappers))
        print(translations.cache_info().currsize == len(LANGUAGES))
        before = rss_kib()
        for lang in LANGUAGES:
            with use(lang):
                format_when(datetime.now(UTC))
        cost = "less" if rss_kib() - before < 1024 else "more"
        print("a date in each language costs", cost, "than 1 MiB")
    sys.stdout.flush()
    os._exit(0)


worker.BackgroundWorker._spawn = at_the_fork
server.serve(Settings.from_env())
"""


def test_serve_forks_its_worker_before_importing_what_one_process_alone_uses(tmp_path):
    """Imported before the fork, a module only one process uses costs the other the pages
    the first one writes to (bot/entry/server.py `SHARED_WITH_WORKER`): the web modules,
    Flask and Waitress are the web process's; APScheduler and qrcode with Pillow the
    worker's. What both load on first use is loaded before it (`load_shared_data`): the
    mappers, the catalogs, Babel's locale data (~5 MB)."""
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'app.db'}",
        "SLACK_BOT_TOKEN": "xoxb-1",
        "SLACK_SIGNING_SECRET": "s",
        "MANAGER_CHANNEL_ID": "C1",
        "PUBLIC_BASE_URL": "http://localhost:3000",
        "INVITE_SECRET": "x" * 32,
        "SMTP_HOST": "127.0.0.1",
        "SMTP_FROM": "bot@example.com",
    }
    done = subprocess.run(
        [sys.executable, "-c", FORK_POINT], capture_output=True, text=True, timeout=60, env=env
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.splitlines() == [
        "[]",
        "True",
        "True",
        "a date in each language costs less than 1 MiB",
    ]


def test_readiness_finds_the_head_alembic_finds():
    script = ScriptDirectory.from_config(alembic_config("sqlite://"))
    assert code_heads() == frozenset(script.get_heads())


WORKER_QR = """
import sys
from bot.outbox.qr import load_without_pillow, qr_png

load_without_pillow()  # as the worker does when it starts (bot/entry/worker.py)
png = qr_png("https://partners.example/invite/abc")
print("PIL" in sys.modules)
sys.stdout.buffer.write(png)
"""


def test_the_worker_draws_qr_codes_without_pillow():
    """qrcode imports Pillow's drawers only when it can: the worker does not let it (~4 MB),
    and its QR codes still read back."""
    done = subprocess.run([sys.executable, "-c", WORKER_QR], capture_output=True, timeout=60)
    assert done.returncode == 0, done.stderr[-3000:]
    first, _, png = done.stdout.partition(b"\n")
    assert first == b"False"
    results = zxingcpp.read_barcodes(Image.open(io.BytesIO(png)))
    assert [r.text for r in results] == ["https://partners.example/invite/abc"]
