"""The `prereg-bot` command line (part of the contract: see DESIGN.md)."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING

from bot.clock import SystemClock
from bot.entry.observability import configure_logging, prepare_metrics_dir
from bot.errors import InvalidInput
from bot.settings import ConfigError, Settings

if TYPE_CHECKING:
    from bot.workspaces import WorkspaceView

log = logging.getLogger("prereg_bot")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="prereg-bot", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    sub.add_parser("serve", help="serve Slack and the invitation pages over HTTP on $PORT")
    sub.add_parser("socket", help="connect to Slack in Socket Mode (needs SLACK_APP_TOKEN)")

    sweep = sub.add_parser("sweep", help="run all scheduled work once")
    sweep.add_argument("--at", help="ISO-8601 instant to run as of (default: now)")

    partner = sub.add_parser("partner", help="manage partners").add_subparsers(
        dest="action", required=True
    )
    add = partner.add_parser("add", help="create a partner with its Slack members")
    add.add_argument("--name", required=True)
    add.add_argument("--country", required=True, help="business country, ISO 3166 alpha-2")
    add.add_argument(
        "--member",
        action="append",
        default=[],
        metavar="[TEAM_ID:]USER_ID",
        help="a Slack member; a bare user id is of the vendor's workspace",
    )
    add.add_argument("--contact-email")
    add.add_argument("--contact-mobile")
    partner.add_parser("list", help="list partners")
    plink = partner.add_parser("link", help="link an installed workspace to a partner")
    plink.add_argument("--partner", required=True, metavar="NAME")
    plink.add_argument(
        "--team", required=True, metavar="TEAM_ID", help="team id (or org id, org-wide install)"
    )

    workspaces = sub.add_parser("workspaces", help="workspaces that installed the app")
    workspaces.add_subparsers(dest="action", required=True).add_parser(
        "list", help="each installation: team, name, linked partner, installed or revoked"
    )

    manager = sub.add_parser("manager", help="manage ecosystem managers").add_subparsers(
        dest="action", required=True
    )
    madd = manager.add_parser("add", help="register an ecosystem manager")
    madd.add_argument(
        "slack_user_id",
        metavar="[TEAM_ID:]USER_ID",
        help="a bare user id is of the vendor's workspace",
    )
    madd.add_argument("--email", help="contact email shown to partners (R13)")

    directory = sub.add_parser("directory", help="the vendor's customer directory").add_subparsers(
        dest="action", required=True
    )
    imp = directory.add_parser("import", help="import or update accounts from a CSV file")
    imp.add_argument("file", metavar="FILE.csv")

    customers = sub.add_parser("customers", help="preregistered customers").add_subparsers(
        dest="action", required=True
    )
    export = customers.add_parser("export", help="CSV of preregistrations to stdout or --output")
    export.add_argument("--partner", help="only this partner's customers")
    export.add_argument("--output", "-o", help="file to write (default: standard output)")

    db = sub.add_parser("db", help="database").add_subparsers(dest="action", required=True)
    db.add_parser("upgrade", help="apply migrations")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    configure_logging(args.command)
    if args.command == "serve":  # before anything imports prometheus_client
        prepare_metrics_dir()
    try:
        settings = Settings.from_env()
        return _dispatch(args, settings)
    except ConfigError as exc:
        print(f"prereg-bot: {exc}", file=sys.stderr)
        return 2
    except InvalidInput as exc:
        for field, message in exc.errors.items():
            print(f"prereg-bot: {field}: {message}", file=sys.stderr)
        return 2


def _dispatch(args: argparse.Namespace, settings: Settings) -> int:
    command = args.command
    if command == "serve":
        from bot.entry.server import serve

        return serve(settings)
    if command == "socket":
        from bot.entry.server import socket_mode

        return socket_mode(settings)
    if command == "db":
        from store.migrate import upgrade

        upgrade(settings.database_url)
        print("database is up to date")
        return 0
    if command == "sweep":
        return _sweep(args, settings)
    return _admin(args, settings)


def _sweep(args: argparse.Namespace, settings: Settings) -> int:
    from bot.entry.sweep import EARLIEST_AT, LATEST_AT, run_sweep_command, sweep_instant

    at = None
    if args.at:
        try:
            parsed = datetime.fromisoformat(args.at)
        except ValueError:
            print(f"prereg-bot: --at: {args.at!r} is not an ISO-8601 instant", file=sys.stderr)
            return 2
        at = sweep_instant(parsed)
        if at is None:
            print(
                f"prereg-bot: --at: {args.at!r} is out of range: give an instant from "
                f"{EARLIEST_AT.date()} up to {LATEST_AT.date()} (UTC)",
                file=sys.stderr,
            )
            return 2
    return run_sweep_command(settings, at)


def _admin(args: argparse.Namespace, settings: Settings) -> int:
    from bot.admin import Admin
    from bot.directory_import import DirectoryImportError, import_file
    from store.db import Database
    from store.migrate import upgrade

    upgrade(settings.database_url)
    db = Database(settings.database_url)
    admin = Admin(db, SystemClock(), home=settings.home_team)
    try:
        if args.command == "partner" and args.action == "add":
            pid = admin.add_partner(
                args.name, args.country, args.member, args.contact_email, args.contact_mobile
            )
            print(f"partner {args.name!r} created (id {pid})")
        elif args.command == "partner" and args.action == "list":
            for p in admin.partners():
                contact = p.contact_email or p.contact_mobile or "NO RESERVED CONTACT"
                print(
                    f"{p.id}\t{p.name}\t{p.country}\t{contact}\t"
                    f"live {p.live}/100\tmembers {','.join(p.members)}"
                )
        elif args.command == "partner" and args.action == "link":
            from bot.workspaces import Workspaces

            linked = Workspaces(db, SystemClock()).link(args.team, args.partner)
            print(
                f"workspace {linked.org_id} ({linked.name or 'unnamed'}) linked to {args.partner!r}"
            )
        elif args.command == "workspaces":
            from bot.workspaces import Workspaces

            for w in Workspaces(db, SystemClock()).listing():
                print(_workspace_line(w))
        elif args.command == "manager":
            created = admin.add_manager(args.slack_user_id, args.email)
            print(f"manager {args.slack_user_id} {'added' if created else 'updated'}")
        elif args.command == "directory":
            try:
                count = import_file(db, args.file, SystemClock().now())
            except FileNotFoundError:
                print(f"prereg-bot: {args.file}: no such file", file=sys.stderr)
                return 2
            except DirectoryImportError as exc:
                for error in exc.errors:
                    print(f"prereg-bot: {args.file}: {error}", file=sys.stderr)
                print(f"prereg-bot: {exc}", file=sys.stderr)
                return 1
            print(f"imported {count} directory account(s)")
        elif args.command == "customers":
            if args.output:
                with open(args.output, "w", newline="", encoding="utf-8") as fh:
                    count = admin.export_customers(fh, args.partner)
                print(f"exported {count} preregistration(s) to {args.output}")
            else:
                admin.export_customers(sys.stdout, args.partner)
        return 0
    finally:
        db.dispose()


def _workspace_line(w: WorkspaceView) -> str:
    where = f"{w.enterprise_id} (org-wide)" if w.is_enterprise_install else w.team_id
    when = w.revoked_at if w.status == "revoked" else w.installed_at
    return (
        f"{where}\t{w.name or '-'}\t{w.partner_name or 'not linked'}\t"
        f"{w.status} {when:%Y-%m-%d %H:%M} UTC"
    )


if __name__ == "__main__":
    sys.exit(main())
