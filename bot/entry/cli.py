"""The `prereg-bot` command line (part of the contract: see DESIGN.md).

Operators see one line on standard error when something goes wrong, never a traceback.
Exit codes: 0 done, 1 a runtime failure (database, port, migration), 2 bad usage or
configuration (the command changed nothing).
"""

from __future__ import annotations

import argparse
import errno
import json
import logging
import os
import socket
import sys
from collections.abc import Callable, Sequence
from dataclasses import asdict, is_dataclass
from datetime import datetime, timedelta
from importlib import metadata
from typing import TYPE_CHECKING, Any

from bot.clock import SystemClock
from bot.entry.observability import configure_logging, prepare_metrics_dir
from bot.errors import InvalidInput
from bot.settings import ConfigError, Settings, serve_required, socket_required

if TYPE_CHECKING:
    from bot.admin import Admin, ManagerRow, PartnerDetail, PartnerRow, PreregDetail
    from bot.workspaces import WorkspaceView

log = logging.getLogger("prereg_bot")

FUTURE_SLACK = timedelta(minutes=1)
"""`sweep --at` further ahead of now than this acts on the future for real: it asks first."""

MEMBER_HELP = (
    "a Slack member: USER_ID (e.g. U0123ABCD) for someone of the vendor's workspace, "
    "TEAM_ID:USER_ID for someone of a partner's own workspace (distributed mode)"
)
PARTNER_REF_HELP = "the partner's name as `partner list` shows it (quote it), or its id"
JSON_HELP = "print a JSON array (one object per row) instead of tab-separated lines"


class Failure(Exception):
    """A runtime failure: the message is the one line the operator sees (exit code 1)."""


class _Formatter(argparse.HelpFormatter):
    """Wraps each paragraph of a description on its own, keeping the blank lines between."""

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        fill = super()._fill_text
        return "\n\n".join(fill(p, width, indent) for p in text.split("\n\n"))


def _command(sub: Any, name: str, summary: str, details: str = "") -> argparse.ArgumentParser:
    """A sub-command whose `--help` shows the summary and, below it, the details."""
    return sub.add_parser(
        name,
        help=summary,
        description=summary[0].upper() + summary[1:] + "." + (f"\n\n{details}" if details else ""),
        formatter_class=_Formatter,
    )


def _version() -> str:
    try:
        return metadata.version("prereg-bot")
    except metadata.PackageNotFoundError:
        return "unknown (not installed)"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="prereg-bot",
        description="The partner preregistration Slack app and its operator commands. Every "
        "command reads its settings from environment variables (README: Configuration) and "
        "brings the database schema up to date first.\n\nExit codes: 0 done; 1 a runtime "
        "failure (database unreachable, port taken, migration failed); 2 bad usage or "
        "configuration, nothing changed.",
        formatter_class=_Formatter,
    )
    parser.add_argument("--version", action="version", version=f"prereg-bot {_version()}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    _command(
        sub,
        "serve",
        "serve Slack and the invitation pages over HTTP on $PORT",
        "Answers /slack/events, /healthz, /invite/<token> and /slack/install, and starts the "
        "background worker that delivers notices and runs the sweep every "
        "PREREG_SWEEP_INTERVAL_SECONDS.",
    )
    _command(
        sub,
        "socket",
        "connect to Slack in Socket Mode (needs SLACK_APP_TOKEN)",
        "For a Slack app without a public URL; the invitation pages still need `serve`.",
    )
    _sweep_parser(sub)
    _partner_parser(sub)
    _workspaces_parser(sub)
    _manager_parser(sub)
    _preregistration_parser(sub)
    _directory_parser(sub)
    _customers_parser(sub)
    add_report_parser(sub)

    db = _command(sub, "db", "the database schema").add_subparsers(
        dest="action", required=True, metavar="ACTION"
    )
    _command(
        db,
        "upgrade",
        "apply the database migrations",
        "Safe to repeat; serve, socket and every other command also run it first.",
    )
    return parser


def _sweep_parser(sub: Any) -> None:
    sweep = _command(
        sub,
        "sweep",
        "run all scheduled work once",
        "Expires preregistrations past their 15 days, records the reminders, review "
        "escalations and digests that are due, and delivers every due notice, all as of one "
        "instant. For cron when PREREG_SCHEDULER=false.",
    )
    sweep.add_argument(
        "--at",
        metavar="ISO-8601",
        help="the instant to run as of, e.g. 2026-12-01T09:00:00Z (default: now). An instant "
        "more than a minute ahead expires and sends for real: it asks for confirmation, or "
        "needs --yes",
    )
    sweep.add_argument(
        "--yes",
        action="store_true",
        help="confirm an --at in the future without asking (for scripts)",
    )


def _partner_parser(sub: Any) -> None:
    partner = _command(sub, "partner", "manage partners and their Slack members").add_subparsers(
        dest="action", required=True, metavar="ACTION"
    )
    add = _command(
        partner,
        "add",
        "create a partner with its Slack members",
        "A partner needs a reserved contact email or mobile (rule R1) before its members can "
        "preregister customers.",
    )
    add.add_argument("--name", required=True, help="the partner's company name, unique")
    add.add_argument("--country", required=True, help="business country, ISO 3166 alpha-2 (DE)")
    add.add_argument(
        "--member", action="append", default=[], metavar="[TEAM_ID:]USER_ID", help=MEMBER_HELP
    )
    add.add_argument("--contact-email", help="the partner's reserved contact email (R1)")
    add.add_argument(
        "--contact-mobile", help="the partner's reserved contact mobile, e.g. +49 1512 3456789"
    )

    plist = _command(
        partner,
        "list",
        "list partners",
        "One line each: id, name, country, reserved contact, live claims of the 100 allowed, "
        "members, active or deactivated.",
    )
    plist.add_argument("--json", action="store_true", help=JSON_HELP)

    show = _command(
        partner,
        "show",
        "show one partner",
        "Its country, reserved contacts, members, notice channels and preregistrations per status.",
    )
    show.add_argument("partner", metavar="PARTNER", help=PARTNER_REF_HELP)
    show.add_argument("--json", action="store_true", help="print a JSON object")

    edit = _command(
        partner,
        "edit",
        "change a partner's name, country or reserved contacts",
        "Give only what changes; everything is checked before anything is written. An empty "
        "value (--contact-mobile '') removes that contact.",
    )
    edit.add_argument("partner", metavar="PARTNER", help=PARTNER_REF_HELP)
    edit.add_argument("--name", help="the new company name")
    edit.add_argument("--country", help="the new business country, ISO 3166 alpha-2")
    edit.add_argument("--contact-email", help="the new reserved contact email ('' removes it)")
    edit.add_argument("--contact-mobile", help="the new reserved contact mobile ('' removes it)")

    members = _command(partner, "members", "add or remove a partner's Slack members")
    maction = members.add_subparsers(dest="member_action", required=True, metavar="ACTION")
    for name, summary in (
        ("add", "let these Slack users preregister for the partner"),
        ("remove", "stop these Slack users preregistering for the partner"),
    ):
        cmd = _command(
            maction,
            name,
            summary,
            "All or nothing: one bad or unknown member and nothing changes. A user can be a "
            "member of one partner only.",
        )
        cmd.add_argument("partner", metavar="PARTNER", help=PARTNER_REF_HELP)
        cmd.add_argument("members", nargs="+", metavar="[TEAM_ID:]USER_ID", help=MEMBER_HELP)

    deactivate = _command(
        partner,
        "deactivate",
        "stop a partner preregistering",
        "Its members can no longer preregister; its live preregistrations (Under review and "
        "Preregistered) expire now and the partner is told as for any expiry. Its history and "
        "associated customers stay.",
    )
    deactivate.add_argument("partner", metavar="PARTNER", help=PARTNER_REF_HELP)

    link = _command(
        partner,
        "link",
        "link an installed workspace to a partner",
        "Distributed mode: the workspace's members can then be named TEAM_ID:USER_ID members.",
    )
    link.add_argument("--partner", required=True, metavar="NAME", help="the partner's name")
    link.add_argument(
        "--team", required=True, metavar="TEAM_ID", help="team id (or org id, org-wide install)"
    )


def _workspaces_parser(sub: Any) -> None:
    workspaces = _command(sub, "workspaces", "workspaces that installed the app")
    wlist = _command(
        workspaces.add_subparsers(dest="action", required=True, metavar="ACTION"),
        "list",
        "list installations",
        "One line each: team (or org) id, name, linked partner, installed or revoked, since "
        "when (UTC).",
    )
    wlist.add_argument("--json", action="store_true", help=JSON_HELP)


def _manager_parser(sub: Any) -> None:
    manager = _command(sub, "manager", "manage ecosystem managers").add_subparsers(
        dest="action", required=True, metavar="ACTION"
    )
    madd = _command(
        manager,
        "add",
        "register an ecosystem manager, or change their email",
        "Managers approve or reject reviews in MANAGER_CHANNEL_ID.",
    )
    madd.add_argument("slack_user_id", metavar="[TEAM_ID:]USER_ID", help=MEMBER_HELP)
    madd.add_argument("--email", help="contact email shown to partners for help (R13)")
    mlist = _command(manager, "list", "list ecosystem managers", "Slack user, email, since when.")
    mlist.add_argument("--json", action="store_true", help=JSON_HELP)
    mremove = _command(
        manager,
        "remove",
        "unregister an ecosystem manager",
        "They can no longer approve or reject reviews; what they decided stays.",
    )
    mremove.add_argument("slack_user_id", metavar="[TEAM_ID:]USER_ID", help=MEMBER_HELP)


def _preregistration_parser(sub: Any) -> None:
    prereg = _command(sub, "preregistration", "look up preregistrations").add_subparsers(
        dest="action", required=True, metavar="ACTION"
    )
    show = _command(
        prereg,
        "show",
        "show a preregistration, its status and its history",
        "By id, or by the customer's email (every preregistration of that customer, oldest "
        "first). History is the audit trail: when, who, what, with what result.",
    )
    show.add_argument("target", metavar="EMAIL|ID", help="the customer's email, or the id")
    show.add_argument("--json", action="store_true", help=JSON_HELP)


def _directory_parser(sub: Any) -> None:
    directory = _command(sub, "directory", "the vendor's customer directory").add_subparsers(
        dest="action", required=True, metavar="ACTION"
    )
    imp = _command(
        directory,
        "import",
        "import or update accounts from a CSV file",
        "The whole file is checked first: one bad row and nothing is imported. Header: "
        "email,country,china_mainland,associated_partner,consumer,contract,cash_spend,"
        "direct_sales_preregistered,enterprise_master",
    )
    imp.add_argument("file", metavar="FILE.csv", help="the CSV file (UTF-8)")


def _customers_parser(sub: Any) -> None:
    customers = _command(sub, "customers", "preregistered customers").add_subparsers(
        dest="action", required=True, metavar="ACTION"
    )
    export = _command(
        customers,
        "export",
        "export preregistrations as CSV",
        "Every preregistration with its customer, status and dates; cells that a spreadsheet "
        "would read as a formula start with a quote.",
    )
    export.add_argument("--partner", metavar="NAME", help="only this partner's customers")
    export.add_argument("--output", "-o", metavar="FILE", help="file to write (default: stdout)")
    _add_privacy_commands(customers)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    configure_logging(args.command)
    if args.command == "serve":  # before anything imports prometheus_client
        prepare_metrics_dir()
    try:
        settings = Settings.from_env()
        return _dispatch(args, settings)
    except ConfigError as exc:
        return _say(str(exc), 2)
    except InvalidInput as exc:
        for field, message in exc.errors.items():
            print(f"prereg-bot: {field}: {message}", file=sys.stderr)
        return 2
    except Failure as exc:
        return _say(str(exc), 1)
    except KeyboardInterrupt:
        return _say("interrupted", 1)
    except Exception as exc:  # noqa: BLE001 - the operator gets one line, not a traceback
        return _say(_unexpected(exc), 1)


def _say(line: str, code: int) -> int:
    print(f"prereg-bot: {line}", file=sys.stderr)
    return code


def _unexpected(exc: Exception) -> str:
    from sqlalchemy.exc import DBAPIError

    if isinstance(exc, DBAPIError):
        return f"the database failed: {_first_line(exc.orig)}"
    return f"unexpected error: {type(exc).__name__}: {_first_line(exc)}"


def _first_line(exc: object) -> str:
    text = str(exc).strip()
    return (text.splitlines() or [type(exc).__name__])[0][:300]


def _dispatch(args: argparse.Namespace, settings: Settings) -> int:
    command = args.command
    if command == "serve":
        settings.require(*serve_required(settings))
        _apart(_prepare_database, settings.database_url)
        return _serve(settings)
    if command == "socket":
        from bot.entry.server import socket_mode

        settings.require(*socket_required(settings))
        _apart(_prepare_database, settings.database_url)
        return socket_mode(settings)
    if command == "sweep":
        at = _sweep_instant(args)
        _prepare_database(settings.database_url)
        from bot.entry.sweep import run_sweep_command

        return run_sweep_command(settings, at)
    _prepare_database(settings.database_url)
    if command == "db":
        print("database is up to date")
        return 0
    if command == "customers" and args.action in ("forget", "export-person"):
        return _privacy(args, settings)
    if command == "report":
        return _report(args, settings)
    return _admin(args, settings)


def _serve(settings: Settings) -> int:
    from bot.entry.server import serve

    try:
        _check_port(settings.port)  # before the worker starts: the operator sees one line
        return serve(settings)
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            raise Failure(
                f"port {settings.port} is already in use: stop what listens there or set PORT "
                "to another port"
            ) from None
        if exc.errno == errno.EACCES:
            raise Failure(f"not allowed to listen on port {settings.port}: set PORT") from None
        raise


def _check_port(port: int) -> None:
    """Raises the OSError that binding the port would raise, as Waitress binds it."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        probe.bind(("0.0.0.0", port))


def _apart(work: Callable[[str], None], arg: str) -> None:
    """Runs `work(arg)` in a short-lived child process, so that what it imports does not stay
    in this long-lived one: the start-up migration's Alembic, Mako and Pygments (~11 MB, in
    the web process and in the worker forked from it; issue 15). The child's ConfigError or
    Failure is raised here, with its one line; anything else it meets too, as the line this
    command would print for it."""
    if not hasattr(os, "fork"):
        work(arg)
        return
    sys.stdout.flush()
    sys.stderr.flush()
    reader, writer = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: its outcome goes down the pipe
        os.close(reader)
        outcome = ["", ""]
        try:
            work(arg)
        except (ConfigError, Failure) as exc:
            outcome = [type(exc).__name__, str(exc)]
        except BaseException as exc:  # noqa: BLE001 - told to the parent, which says it
            outcome = ["Failure", _unexpected(exc) if isinstance(exc, Exception) else "interrupted"]
        finally:
            os.write(writer, json.dumps(outcome).encode())
            os._exit(0)
    os.close(writer)
    with os.fdopen(reader, "rb") as told:
        said = told.read()
    _, status = os.waitpid(pid, 0)
    if not said:
        raise Failure(f"database migration failed: its process ended ({_ended(status)})")
    kind, message = json.loads(said)
    if kind == "ConfigError":
        raise ConfigError(message)
    if kind == "Failure":
        raise Failure(message)


def _ended(status: int) -> str:
    if os.WIFSIGNALED(status):
        return f"signal {os.WTERMSIG(status)}"
    return f"exit code {os.waitstatus_to_exitcode(status)}"


def _prepare_database(url: str) -> None:
    """Reaches the database, then migrates it, each failure told in one line."""
    from alembic.util.exc import CommandError
    from sqlalchemy import text
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError

    from store.db import make_engine, normalise_url
    from store.migrate import upgrade

    try:
        shown = make_url(normalise_url(url)).render_as_string(hide_password=True)
        engine = make_engine(url)
    except (ArgumentError, NoSuchModuleError, ValueError):
        raise ConfigError(
            "DATABASE_URL is not a database URL: use sqlite:///prereg.db or "
            "postgresql+psycopg://user@host/db"
        ) from None
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except DBAPIError as exc:
        raise Failure(f"cannot use the database {shown}: {_first_line(exc.orig)}") from None
    finally:
        engine.dispose()
    try:
        upgrade(url)
    except CommandError as exc:
        raise Failure(f"database migration failed: {_first_line(exc)}") from None
    except DBAPIError as exc:
        raise Failure(
            f"database migration failed: {_first_line(exc.orig)}; nothing of it was applied"
        ) from None


def _sweep_instant(args: argparse.Namespace) -> datetime | None:
    """The instant of --at (None: now), after the operator confirmed one in the future."""
    from bot.entry.sweep import EARLIEST_AT, LATEST_AT, sweep_instant

    if not args.at:
        return None
    try:
        parsed = datetime.fromisoformat(args.at)
    except ValueError:
        raise ConfigError(
            f"--at: {args.at!r} is not a date and time: write it as 2026-12-01T09:00:00Z "
            "(ISO 8601, Z for UTC)"
        ) from None
    at = sweep_instant(parsed)
    if at is None:
        raise ConfigError(
            f"--at: {args.at!r} is out of range: give an instant from "
            f"{EARLIEST_AT.date()} up to {LATEST_AT.date()} (UTC)"
        )
    ahead = at - SystemClock().now()
    if ahead > FUTURE_SLACK and not args.yes:
        _confirm_future(at, ahead)
    return at


def _confirm_future(at: datetime, ahead: timedelta) -> None:
    what = (
        f"--at {at:%Y-%m-%d %H:%M:%S} UTC is {_span(ahead)} ahead of now: the sweep expires, "
        "reminds and sends notices for real as of then"
    )
    if not sys.stdin.isatty():
        raise ConfigError(f"{what}; pass --yes to do that")
    answer = input(f"{what}. Go ahead? [y/N] ")
    if answer.strip().lower() not in ("y", "yes"):
        raise Failure("sweep not run")


def _span(delta: timedelta) -> str:
    if delta >= timedelta(days=2):
        return f"{delta.days} days"
    if delta >= timedelta(hours=2):
        return f"{int(delta.total_seconds() // 3600)} hours"
    return f"{int(delta.total_seconds() // 60)} minutes"


def _admin(args: argparse.Namespace, settings: Settings) -> int:
    from bot.admin import Admin
    from store.db import Database

    db = Database(settings.database_url)
    admin = Admin(db, SystemClock(), home=settings.home_team)
    try:
        handler = _ADMIN_COMMANDS[args.command]
        return handler(args, admin)
    finally:
        db.dispose()


def _partner(args: argparse.Namespace, admin: Admin) -> int:
    action = args.action
    if action == "add":
        pid = admin.add_partner(
            args.name, args.country, args.member, args.contact_email, args.contact_mobile
        )
        print(f"partner {args.name!r} created (id {pid})")
    elif action == "list":
        _print_rows(args, admin.partners(), _partner_line)
    elif action == "show":
        detail = admin.partner(args.partner)
        if args.json:
            _print_json(detail)
        else:
            _print_partner(detail)
    elif action == "edit":
        detail = admin.edit_partner(
            args.partner,
            name=args.name,
            country=args.country,
            contact_email=args.contact_email,
            contact_mobile=args.contact_mobile,
        )
        print(f"partner {detail.partner.name!r} updated")
        _print_partner(detail)
    elif action == "members":
        _members(args, admin)
    elif action == "deactivate":
        name, expired = admin.deactivate_partner(args.partner)
        print(
            f"partner {name!r} deactivated: {expired} live preregistration(s) expired, "
            "the partner is told as for any expiry"
        )
    elif action == "link":
        from bot.workspaces import Workspaces

        linked = Workspaces(admin.db, SystemClock()).link(args.team, args.partner)
        print(f"workspace {linked.org_id} ({linked.name or 'unnamed'}) linked to {args.partner!r}")
    return 0


def _members(args: argparse.Namespace, admin: Admin) -> None:
    if args.member_action == "add":
        added = admin.add_members(args.partner, args.members)
        skipped = len(set(args.members)) - len(added)
        print(
            f"added {len(added)} member(s)"
            + (f": {', '.join(added)}" if added else "")
            + (f"; {skipped} already a member" if skipped else "")
        )
    else:
        removed = admin.remove_members(args.partner, args.members)
        print(f"removed {len(removed)} member(s): {', '.join(removed)}")


def _print_partner(d: PartnerDetail) -> None:
    p = d.partner
    counts = ", ".join(f"{status} {n}" for status, n in sorted(d.counts.items())) or "none"
    for label, value in (
        ("id", p.id),
        ("name", p.name),
        ("state", "active" if p.active else "deactivated"),
        ("country", p.country),
        ("contact email", p.contact_email or "-"),
        ("contact mobile", p.contact_mobile or "-"),
        ("members", ", ".join(p.members) or "-"),
        ("notice channel", d.notice_channel_id or "- (direct messages)"),
        ("digest channel", d.digest_channel_id or "- (the notice channel)"),
        ("live", f"{p.live}/100"),
        ("preregistrations", counts),
    ):
        print(f"{label + ':':<18}{value}")


def _manager(args: argparse.Namespace, admin: Admin) -> int:
    if args.action == "add":
        created = admin.add_manager(args.slack_user_id, args.email)
        print(f"manager {args.slack_user_id} {'added' if created else 'updated'}")
    elif args.action == "list":
        _print_rows(args, admin.managers(), _manager_line)
    elif args.action == "remove":
        print(f"manager {admin.remove_manager(args.slack_user_id)} removed")
    return 0


def _preregistration(args: argparse.Namespace, admin: Admin) -> int:
    found = admin.preregistrations(args.target)
    if args.json:
        _print_json(found)
        return 0
    for i, p in enumerate(found):
        if i:
            print()
        _print_prereg(p)
    return 0


def _print_prereg(p: PreregDetail) -> None:
    for label, value in (
        ("id", p.id),
        ("partner", p.partner),
        ("status", p.status),
        ("customer", f"{p.full_name} <{p.email}> {p.mobile}"),
        ("country", p.customer_country or "-"),
        ("submitted", f"{_when(p.submitted_at)} by {p.submitted_by}"),
        ("expires", _when(p.expires_at)),
        ("decided", f"{_when(p.decided_at)} by {p.decided_by}" if p.decided_at else "-"),
        ("reason", p.decision_reason or "-"),
        ("associated", _when(p.associated_at)),
        ("expired", _when(p.expired_at)),
        ("deleted", _when(p.deleted_at)),
    ):
        print(f"{label + ':':<12}{value}")
    print("history:")
    for e in p.history:
        print(f"  {_when(e.at)}\t{e.actor}\t{e.action}\t{e.result}")


def _when(at: datetime | None) -> str:
    return f"{at:%Y-%m-%d %H:%M} UTC" if at is not None else "-"


def _workspaces(args: argparse.Namespace, admin: Admin) -> int:
    from bot.workspaces import Workspaces

    _print_rows(args, Workspaces(admin.db, SystemClock()).listing(), _workspace_line)
    return 0


def _directory(args: argparse.Namespace, admin: Admin) -> int:
    from bot.directory_import import DirectoryImportError, import_file

    try:
        count = import_file(admin.db, args.file, SystemClock().now())
    except FileNotFoundError:
        return _say(f"{args.file}: no such file", 2)
    except DirectoryImportError as exc:
        for error in exc.errors:
            print(f"prereg-bot: {args.file}: {error}", file=sys.stderr)
        return _say(str(exc), 1)
    print(f"imported {count} directory account(s)")
    return 0


def _customers(args: argparse.Namespace, admin: Admin) -> int:
    if args.output:
        with open(args.output, "w", newline="", encoding="utf-8") as fh:
            count = admin.export_customers(fh, args.partner)
        print(f"exported {count} preregistration(s) to {args.output}")
    else:
        admin.export_customers(sys.stdout, args.partner)
    return 0


_ADMIN_COMMANDS = {
    "partner": _partner,
    "manager": _manager,
    "preregistration": _preregistration,
    "workspaces": _workspaces,
    "directory": _directory,
    "customers": _customers,
}


def _print_rows(args: argparse.Namespace, rows: Sequence[Any], line: Any) -> None:
    """A list command's rows: JSON with --json, else one tab-separated line each."""
    if args.json:
        _print_json(list(rows))
        return
    for row in rows:
        print(line(row))


def _partner_line(p: PartnerRow) -> str:
    contact = p.contact_email or p.contact_mobile or "NO RESERVED CONTACT"
    state = "" if p.active else "\tDEACTIVATED"
    return (
        f"{p.id}\t{p.name}\t{p.country}\t{contact}\t"
        f"live {p.live}/100\tmembers {','.join(p.members)}{state}"
    )


def _manager_line(m: ManagerRow) -> str:
    return f"{m.slack_user_id}\t{m.email or '-'}\tsince {m.created_at:%Y-%m-%d}"


def _print_json(value: Any) -> None:
    print(json.dumps(_plain(value), indent=2, ensure_ascii=False))


def _plain(value: Any) -> Any:
    """Dataclasses, lists and datetimes as JSON values (datetimes in ISO 8601, UTC)."""
    if is_dataclass(value) and not isinstance(value, type):
        return _plain(asdict(value))
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, datetime):
        return value.isoformat()
    return value


def _workspace_line(w: WorkspaceView) -> str:
    where = f"{w.enterprise_id} (org-wide)" if w.is_enterprise_install else w.team_id
    when = w.revoked_at if w.status == "revoked" else w.installed_at
    return (
        f"{where}\t{w.name or '-'}\t{w.partner_name or 'not linked'}\t"
        f"{w.status} {when:%Y-%m-%d %H:%M} UTC"
    )


def _add_privacy_commands(customers: argparse._SubParsersAction) -> None:
    """Erasure and access requests of one person (docs/privacy.md)."""
    forget = customers.add_parser(
        "forget", help="erase one person's personal data everywhere (refused while Associated)"
    )
    forget.add_argument("email", help="the person's email address, as registered")
    person = customers.add_parser(
        "export-person", help="everything held about one person, as JSON (an access request)"
    )
    person.add_argument("email", help="the person's email address, as registered")
    person.add_argument("--output", "-o", help="file to write (default: standard output)")


def _privacy(args: argparse.Namespace, settings: Settings) -> int:
    import json

    from bot.errors import Refused
    from bot.privacy import Privacy
    from store.db import Database
    from store.migrate import upgrade

    if not settings.invite_secret and not settings.privacy_key:
        raise ConfigError("missing required environment variable INVITE_SECRET")
    upgrade(settings.database_url)
    db = Database(settings.database_url)
    privacy = Privacy.from_settings(db, SystemClock(), settings)
    try:
        if args.action == "forget":
            done = privacy.forget(args.email)
            print(
                f"erased: {done.rows} preregistration(s), {done.deliveries} notice(s), "
                f"{done.audit_events} audit entr{'y' if done.audit_events == 1 else 'ies'}"
            )
            return 0
        text = json.dumps(privacy.export_person(args.email), indent=2, ensure_ascii=False)
        if args.output:
            with open(args.output, "w", encoding="utf-8") as fh:
                fh.write(text + "\n")
            print(f"wrote everything held about that person to {args.output}")
        else:
            print(text)
        return 0
    except Refused as refused:
        print(f"prereg-bot: refused: {refused.message}", file=sys.stderr)
        return 1
    finally:
        db.dispose()


def add_report_parser(sub: argparse._SubParsersAction) -> None:
    report = sub.add_parser("report", help="the weekly program report's chart, as a PNG file")
    report.add_argument("--weeks", type=int, default=12, help="weeks to show (1-104, default 12)")
    report.add_argument(
        "--output", "-o", default="report.png", metavar="FILE.png", help="where to write the PNG"
    )


def _report(args: argparse.Namespace, settings: Settings) -> int:
    """`prereg-bot report`: the same picture the managers' channel gets on Mondays."""
    from bot.report import render_png, report_data, summary_text
    from store.db import Database
    from store.migrate import upgrade

    if not 1 <= args.weeks <= 104:
        print("prereg-bot: --weeks: give a number of weeks from 1 to 104", file=sys.stderr)
        return 2
    upgrade(settings.database_url)
    db = Database(settings.database_url)
    try:
        data = report_data(db, SystemClock().now(), args.weeks)
    finally:
        db.dispose()
    try:
        with open(args.output, "wb") as fh:
            fh.write(render_png(data))
    except OSError as exc:
        print(f"prereg-bot: {args.output}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    print(summary_text(data).replace("*", ""))
    print(f"chart written to {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
