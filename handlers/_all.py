"""Importing this imports every surface module: `serve` does so before it forks its worker,
so that both processes share those modules' pages (bot/entry/worker.py)."""

from __future__ import annotations

from handlers import _modules

_modules()
