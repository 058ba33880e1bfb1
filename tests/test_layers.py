"""The house keeps its shape: every import runs down the layers of README's "Layout".

entry points -> composition root -> handlers -> wings (web, outbox, slack) -> rules -> store.
Imports inside functions and under TYPE_CHECKING count too: a lazy import is still a dependency.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

RANK = {"entry": 5, "wiring": 4, "handlers": 3, "web": 2, "outbox": 2, "slack": 2}
RANK |= {"rules": 1, "store": 0}

WING_TO_WING = {("web", "slack")}
"""The one edge between wings: the Slack endpoint holds after-ack work until its answer is out."""


def group_of(module: str) -> str | None:
    parts = module.split(".")
    if parts[0] in ("handlers", "store"):
        return parts[0]
    if parts[0] != "bot":
        return None
    if len(parts) > 1 and parts[1] in RANK:
        return parts[1]
    return "rules"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports_of(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(), filename=str(path))
    package = (
        module_name(path) if path.name == "__init__.py" else module_name(path).rpartition(".")[0]
    )
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join([*base, node.module] if node.module else base)
            else:
                target = node.module or ""
            found.append((node.lineno, target))
            # `from bot import notices` imports the module bot.notices, not the package
            found += [(node.lineno, f"{target}.{alias.name}") for alias in node.names]
    return found


def sources() -> list[Path]:
    return sorted(
        path
        for top in ("bot", "handlers", "store")
        for path in (ROOT / top).rglob("*.py")
        if "migrations" not in path.parts
    )


def violations(path: Path) -> list[str]:
    source = group_of(module_name(path))
    found = []
    for line, target in imports_of(path):
        into = group_of(target)
        if into is None or into == source:
            continue
        upward = RANK[into] >= RANK[source] and (source, into) not in WING_TO_WING
        if upward:
            found.append(f"{path.relative_to(ROOT)}:{line} ({source}) imports {target} ({into})")
    return found


def test_every_import_runs_down_the_layers() -> None:
    problems = [problem for path in sources() for problem in violations(path)]
    assert problems == []


def test_every_wing_says_what_it_is() -> None:
    for package in ("entry", "wiring", "web", "outbox", "slack"):
        init = ROOT / "bot" / package / "__init__.py"
        assert ast.get_docstring(ast.parse(init.read_text())), f"bot/{package} has no docstring"


@pytest.mark.parametrize(
    ("code", "upward"),
    [
        ("from bot.wiring.app import Services", "wiring"),
        ("import handlers", "handlers"),
        ("from bot.entry import cli", "entry"),
        ("from bot.outbox import delivery", "outbox"),
        ("from store.db import Database", None),
        ("from bot import notices", None),
    ],
)
def test_the_check_catches_an_upward_import(monkeypatch, code, upward) -> None:
    rules_module = ROOT / "bot" / "service.py"
    monkeypatch.setattr(Path, "read_text", lambda self, *args, **kwargs: code)
    found = violations(rules_module)
    if upward is None:
        assert found == []
    else:
        assert found and all(problem.endswith(f"({upward})") for problem in found)
