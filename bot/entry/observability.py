"""Process set-up for operating `serve`: logging, and prometheus_client's multiprocess mode.

prometheus_client picks its mode when it is first imported, from PROMETHEUS_MULTIPROC_DIR, so
`prepare_metrics_dir` runs before anything imports bot/metrics.py. Its documentation asks for
an empty directory at each start: the operator's own directory is emptied of the previous
run's files, and without one a fresh temporary directory is made (removed at exit). The worker
process inherits the variable; a worker that died is marked dead (`mark_dead`).
"""

from __future__ import annotations

import atexit
import logging
import os
import shutil
import sys
import tempfile
from pathlib import Path

from bot import logs

ENV = "PROMETHEUS_MULTIPROC_DIR"
log = logging.getLogger(__name__)


def configure_logging(command: str, env: dict[str, str] | os._Environ[str] = os.environ) -> None:
    """Text or JSON lines (LOG_FORMAT); INFO for the long-running commands, else WARNING."""
    level = logging.INFO if command in ("serve", "socket", "sweep") else logging.WARNING
    fmt = "json" if (env.get("LOG_FORMAT") or "").lower() == "json" else "text"
    logs.configure(level, fmt)


def prepare_metrics_dir() -> Path:
    """An empty PROMETHEUS_MULTIPROC_DIR for this run of `serve` (see above)."""
    if "prometheus_client" in sys.modules:  # too late to change its mode in this process
        log.warning("prometheus_client was imported before its directory was set")
    given = os.environ.get(ENV)
    if given:
        path = Path(given)
        path.mkdir(parents=True, exist_ok=True)
        for stale in path.glob("*.db"):
            stale.unlink(missing_ok=True)
        return path
    path = Path(tempfile.mkdtemp(prefix="prereg-metrics-"))
    os.environ[ENV] = str(path)
    atexit.register(shutil.rmtree, path, True)
    return path


def mark_dead(pid: int | None) -> None:
    """prometheus_client's bookkeeping for a process of `serve` that exited."""
    if pid is None or not os.environ.get(ENV):
        return
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(pid)
