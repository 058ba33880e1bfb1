"""Every text a partner, a manager or a customer reads is marked for translation (issue 19).

A static check over the source: in every module whose texts people read, an English phrase
(two words or more) in a string literal must be the argument of `_`, `N_` or `ngettext`, and so
must any word in a Block Kit text position (a button's "Approve", a modal's title). Checked
deny-by-default: a new module or a new text is covered without anyone listing it. The few
literals that stay English are the positions no person reads (log lines, exceptions that only
reach the log, job results, dict keys, docstrings) and a short allowlist below, each with its
reason. Modules read only by the operator are listed in OPERATOR_ONLY with theirs.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

OPERATOR_ONLY = {
    "bot/entry/": "the CLI and the processes: read by the operator (the vendor's IT), English "
    "by design (README: Languages)",
    "bot/admin.py": "the operator commands behind the CLI (partner, manager, preregistration)",
    "bot/directory_import.py": "`prereg-bot directory import`: errors for the operator",
    "bot/privacy.py": "`prereg-bot customers forget|export-person`: the operator's",
    "bot/settings.py": "configuration errors at start, for the operator",
    "bot/identity.py": "`--member` parsing: members are picked in Slack, typed only in the CLI",
    "bot/logs.py": "log lines",
    "bot/metrics.py": "Prometheus help texts",
    "bot/pacing.py": "log lines about Slack's rate limits",
    "bot/outbox/delivery.py": "the outbox's own bookkeeping: log lines and job outcomes",
    "bot/slack/workspaces.py": "exception reasons that are logged (WorkspaceUnavailable)",
    "bot/web/health.py": "/healthz and /readyz, read by probes",
    "bot/web/metrics.py": "/metrics, read by Prometheus",
    "bot/web/slack_endpoint.py": "answers to Slack's servers, not to a person",
    "bot/web/slack_shape.py": "why a payload was refused: logged, answered to Slack's servers",
}

ALLOWED = [
    ("handlers/views/help.py", r"^/preregister ", "the commands as the reader types them"),
    ("handlers/commands.py", r"^daily digests$", "a lookup key (KINDS), shown through N_"),
    ("handlers/views/home.py", r"^prereg-bot$", "the app's name"),
    ("", r"^text/\w+; charset=utf-8$", "a MIME type"),
    ("bot/report.py", r"^upper left$", "matplotlib's legend position"),
    ("bot/report.py", r"^(WenQuanYi|Noto|Source Han|Droid|DejaVu) ", "font names"),
    ("bot/web/app.py", r"^database unavailable$|^not ready: ", "/healthz and /readyz, for probes"),
    ("bot/service.py", r"^The customer's country \(", "the stored review_reason (a record); "
     "shown translated from the two countries (handlers/views/common.review_why)"),
    ("bot/workspaces.py", r"^There is no partner named|^No workspace .* has installed the app",
     "`prereg-bot partner link` (the CLI)"),
]  # fmt: skip

MARKERS = {"_", "N_", "ngettext"}
LOG_METHODS = {"debug", "info", "warning", "error", "exception", "critical", "log"}
LOGGERS = {"log", "logger", "logging"}
INTERNAL_ERRORS = {
    "PermanentFailure", "NotPostedYet", "RuntimeError", "ValueError", "TypeError", "KeyError",
    "LookupError", "AssertionError", "NotImplementedError", "TokenChanged",
    "WorkspaceUnavailable", "TokenError", "persist",  # persist(write, what): `what` is for the log
}  # fmt: skip
JOB_RESULT_KEYS = {"skipped"}
"""A sender's result ({"skipped": "already posted"}) is recorded for the operator."""

TEXT_KEYS = {"text", "title", "submit", "close", "placeholder", "label", "hint", "alt_text",
             "accessibility_label", "initial_comment", "subject"}  # fmt: skip
TEXT_BUILDERS = {"plain", "md", "section", "context", "header", "button", "ephemeral", "say",
                 "refusal_message", "notice_modal", "respond", "set_title", "suptitle"}  # fmt: skip
"""Where even one word is read: Block Kit texts, the builders that make them, chart titles."""

NOT_PROSE = re.compile(r"`[^`]*`|<[^>]*>|:[a-z0-9_+-]+:|https?://\S+|\{[^}]*\}|%\(\w+\)s")
PROSE = re.compile(r"[A-Za-z]{2,}[,.:;!?)]?\s+\(?[A-Za-z]{2,}")
WORD = re.compile(r"[A-Za-z]{3,}")


def _name(node: ast.AST) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    return ""


def _text_of(node: ast.AST) -> str | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):  # an f-string: its fixed parts, a value as a word
        return "".join(v.value if isinstance(v, ast.Constant) else " X " for v in node.values)
    return None


def _exempt(node: ast.AST, parents: dict[ast.AST, ast.AST]) -> bool:
    child, parent = node, parents.get(node)
    if isinstance(parent, ast.Expr):
        return True  # a docstring
    while parent is not None and not isinstance(parent, ast.stmt | ast.Module):
        if isinstance(parent, ast.Dict):
            if child in parent.keys:
                return True
            key = parent.keys[parent.values.index(child)] if child in parent.values else None
            if isinstance(key, ast.Constant) and key.value in JOB_RESULT_KEYS:
                return True
        if isinstance(parent, ast.Subscript) and child is parent.slice:
            return True
        if isinstance(parent, ast.Call):
            name = _name(parent.func)
            if name in MARKERS or name in INTERNAL_ERRORS:
                return True
            receiver = parent.func.value if isinstance(parent.func, ast.Attribute) else None
            if name in LOG_METHODS and receiver is not None and _name(receiver) in LOGGERS:
                return True
        child, parent = parent, parents.get(parent)
    return False


def _in_text_position(node: ast.AST, parents: dict[ast.AST, ast.AST]) -> bool:
    parent = parents.get(node)
    if isinstance(parent, ast.Dict) and node in parent.values:
        key = parent.keys[parent.values.index(node)]
        return isinstance(key, ast.Constant) and key.value in TEXT_KEYS
    if isinstance(parent, ast.keyword):
        return parent.arg in TEXT_KEYS
    if isinstance(parent, ast.Call) and parent.args and parent.args[0] is node:
        return _name(parent.func) in TEXT_BUILDERS
    return False


def unmarked(source: str, path: str) -> list[tuple[int, str]]:
    """The English literals of `source` (the module at `path`) that are not marked."""
    tree = ast.parse(source)
    parents = {c: p for p in ast.walk(tree) for c in ast.iter_child_nodes(p)}
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(parents.get(node), ast.JoinedStr):
            continue  # judged with its f-string
        text = _text_of(node)
        if text is None or _exempt(node, parents):
            continue
        words = NOT_PROSE.sub(" ", text)
        if not PROSE.search(words) and not (
            WORD.search(words) and _in_text_position(node, parents)
        ):
            continue
        if any(path.startswith(where) and re.search(pattern, text)
               for where, pattern, _reason in ALLOWED):  # fmt: skip
            continue
        found.append((node.lineno, text))
    return found


def read_by_people() -> list[Path]:
    files = [*sorted((ROOT / "bot").rglob("*.py")), *sorted((ROOT / "handlers").rglob("*.py"))]
    return [
        f
        for f in files
        if not any(str(f.relative_to(ROOT)).startswith(where) for where in OPERATOR_ONLY)
    ]


def test_every_text_people_read_is_marked_for_translation():
    left = [
        f"{path.relative_to(ROOT)}:{line}: {text!r}"
        for path in read_by_people()
        for line, text in unmarked(path.read_text(), str(path.relative_to(ROOT)))
    ]
    assert left == [], "wrap these in _() (or N_ for a constant), then `make i18n`:\n" + "\n".join(
        left
    )


def test_the_check_covers_the_surfaces():
    """A module is checked unless it is named as the operator's: the views, the listeners,
    the rules' refusals, the web pages and the mailer are."""
    checked = {str(p.relative_to(ROOT)) for p in read_by_people()}
    assert {
        "handlers/views/review.py", "handlers/desk.py", "bot/service.py", "bot/rules.py",
        "bot/web/app.py", "bot/web/invite_pages.py", "bot/outbox/mailer.py", "bot/report.py",
        "bot/slack/oauth.py", "bot/workspaces.py", "bot/desk.py",
    } <= checked  # fmt: skip


UNMARKED = {
    "a reply": 'respond(text="Nothing to delete here.")',
    "a refusal": 'raise Refused("gone", "This request was withdrawn.")',
    "an f-string": 'raise NotFound(f"No preregistration {pid} among yours.")',
    "a field error": 'raise InvalidInput({"email": "The address needs an @."})',
    "a button's one word": 'button("Approve", "approve", "7")',
    "a modal title": 'view = {"type": "modal", "title": {"type": "plain_text", "text": "Reject"}}',
    "a chart title": 'ax.set_title("Reviews decided")',
    "an email subject": 'message["Subject"] = "Your invitation link"',
    "a page": 'def busy():\n    return "Busy, try again.", 503',
    "formatted, not marked": 'text = "{n} customers listed".format(n=3)',
}
MARKED = {
    "a reply": 'respond(text=_("Nothing to delete here."))',
    "a constant": 'HINT = N_("Use the address the customer signs up with.")',
    "a plural": 'ngettext("{n} customer", "{n} customers", n)',
    "a log line": 'log.warning("database busy on %s", path)',
    "an internal error": 'raise PermanentFailure("Slack refused the post: not_in_channel")',
    "a job result": 'return {"skipped": "already posted"}',
    "a docstring": 'def f():\n    """Says what the customer sees."""',
    "a key": 'KINDS = {"daily digests": 1}',
    "an action id": 'button(_("Approve"), "approve_review", "7")',
}


@pytest.mark.parametrize("source", UNMARKED.values(), ids=UNMARKED.keys())
def test_the_check_fails_on_an_unmarked_text(source):
    assert unmarked(source, "handlers/example.py") != []


@pytest.mark.parametrize("source", MARKED.values(), ids=MARKED.keys())
def test_the_check_passes_marked_and_unread_texts(source):
    assert unmarked(source, "handlers/example.py") == []


def shadows_gettext(source: str) -> list[int]:
    """Lines where a module that uses `_` for gettext assigns `_` in a function (`a, _ =
    ...`): every `_()` of that function then fails with UnboundLocalError. A comprehension's
    `_` is its own and harmless."""
    tree = ast.parse(source)
    if not any(
        isinstance(n, ast.ImportFrom)
        and n.module == "bot.i18n"
        and any(a.name == "_" for a in n.names)
        for n in ast.walk(tree)
    ):
        return []
    parents = {c: p for p in ast.walk(tree) for c in ast.iter_child_nodes(p)}
    lines = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and node.id == "_" and isinstance(node.ctx, ast.Store):
            scope = parents.get(node)
            while scope is not None and not isinstance(
                scope, ast.FunctionDef | ast.Lambda | ast.comprehension | ast.Module
            ):
                scope = parents.get(scope)
            if isinstance(scope, ast.FunctionDef):
                lines.append(node.lineno)
    return lines


def test_no_function_hides_gettext_behind_a_throwaway_variable():
    found = {
        str(path.relative_to(ROOT)): lines
        for path in [*ROOT.joinpath("bot").rglob("*.py"), *ROOT.joinpath("handlers").rglob("*.py")]
        if (lines := shadows_gettext(path.read_text()))
    }
    assert found == {}


def test_the_shadowing_check_fails_where_it_should():
    source = (
        "from bot.i18n import _\n"
        "def f(v):\n"
        "    a, _ = v\n"
        "    return _('x')\n"
        "def g(v):\n"
        "    return [a for a, _ in v]\n"
    )
    assert shadows_gettext(source) == [3]
