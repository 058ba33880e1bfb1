"""Logging: readable text by default, JSON lines with `LOG_FORMAT=json`, and the ids of what a
line is about (request, Slack team and user, partner, preregistration) on every line.

The ids live in context variables: the Slack endpoint binds the request's, the service binds
the partner and preregistration it works on, the outbox binds the notice's. Work handed to
another thread carries them when it is run in a copy of the caller's context
(bot/slack/after_ack.py). Only ids are bound, never names, emails or mobiles.
"""

from __future__ import annotations

import contextvars
import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

FIELDS = ("request_id", "slack_team", "slack_user", "partner_id", "preregistration_id", "notice")
_context: contextvars.ContextVar[dict[str, Any]] = contextvars.ContextVar("prereg_log_context")

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s%(process_tag)s: %(message)s"

QUIET = {
    # APScheduler says "Running job ..." and "... executed successfully" on every run.
    "apscheduler": logging.WARNING,
    "alembic": logging.WARNING,
}


def bind(**fields: Any) -> None:
    """Adds ids to the current context (this thread's, or a copy run for one job)."""
    known = {k: v for k, v in fields.items() if v is not None and k in FIELDS}
    if known:
        _context.set({**_context.get({}), **known})


@contextmanager
def bound(**fields: Any) -> Iterator[None]:
    """`bind` for the length of a block; the context before it is restored afterwards."""
    token = _context.set({k: v for k, v in fields.items() if v is not None and k in FIELDS})
    try:
        yield
    finally:
        _context.reset(token)


def current() -> dict[str, Any]:
    return dict(_context.get({}))


class _ContextFilter(logging.Filter):
    """Puts the bound ids on each record (JSON lines show them; text stays as it was)."""

    def __init__(self, process_tag: str) -> None:
        super().__init__()
        self._tag = process_tag

    def filter(self, record: logging.LogRecord) -> bool:
        record.process_tag = self._tag
        for key, value in _context.get({}).items():
            setattr(record, key, value)
        return True


def _json_formatter() -> logging.Formatter:
    from pythonjsonlogger.json import JsonFormatter

    return JsonFormatter(
        "%(asctime)s %(levelname)s %(name)s %(message)s %(threadName)s %(process)d",
        rename_fields={
            "asctime": "time",
            "levelname": "level",
            "name": "logger",
            "threadName": "thread",
            "process": "pid",
        },
        reserved_attrs=[*_RESERVED, "process_tag"],
        timestamp=False,
    )


_RESERVED = [
    "args",
    "created",
    "exc_info",
    "exc_text",
    "filename",
    "funcName",
    "levelno",
    "lineno",
    "module",
    "msecs",
    "msg",
    "pathname",
    "processName",
    "relativeCreated",
    "stack_info",
    "thread",
    "taskName",
]


def configure(level: int = logging.INFO, fmt: str = "text", process_tag: str = "") -> None:
    """Sets up the root logger of this process once (again: replaces the handler).
    `fmt` is LOG_FORMAT: `json` for JSON lines, anything else for text."""
    handler = logging.StreamHandler(sys.stderr)
    if fmt == "json":
        handler.setFormatter(_json_formatter())
    else:
        handler.setFormatter(logging.Formatter(TEXT_FORMAT))
    handler.addFilter(_ContextFilter(f" [{process_tag}]" if process_tag else ""))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    for name, quiet in QUIET.items():
        logging.getLogger(name).setLevel(quiet)
