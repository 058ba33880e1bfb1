"""The Slack-facing layer: translates Slack payloads to service calls and results to Block Kit.

Each module here may expose `register(app, services)` (Bolt listeners for its surface) and
`register_senders(registry, services)` (how its kinds of outbox notice are sent). They are
found by name, so adding a surface means adding a module.
"""

from __future__ import annotations

import importlib
import pkgutil
from types import ModuleType
from typing import Any

# Bolt tries listeners in the order they were registered, and builds every listener argument
# for each one it tries (~30 µs a try): the surfaces that carry the traffic register first.
BUSIEST_FIRST = ("commands", "review", "modal")


def _modules() -> list[ModuleType]:
    names = sorted(m.name for m in pkgutil.iter_modules(__path__) if not m.name.startswith("_"))
    names.sort(key=lambda name: BUSIEST_FIRST.index(name) if name in BUSIEST_FIRST else 99)
    return [importlib.import_module(f"{__name__}.{name}") for name in names]


def register(app: Any, services: Any) -> None:
    for module in _modules():
        hook = getattr(module, "register", None)
        if hook is not None:
            hook(app, services)


def register_senders(registry: Any, services: Any) -> None:
    for module in _modules():
        hook = getattr(module, "register_senders", None)
        if hook is not None:
            hook(registry, services)
