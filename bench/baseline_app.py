"""The baseline of the ack-latency benchmark: the least a Bolt app can do for the same
requests, served the same way as `prereg-bot serve` (Waitress, 16 threads, the same size of
Bolt listener pool), through Bolt's Flask adapter as Bolt's own examples do.
It verifies the signature, acks, and calls the same Web API method on the same Slack stand-in
(views.open for the slash command, chat.update for a button click). For bench/visible.py it
answers `/preregister <text>` and the `bench_visible_respond` button with a constant message on
response_url, `bench_visible_modal` with views.open, and app_home_opened with views.publish.
With BASELINE_ANSWER_IN_ACK set, `/preregister <text>` is answered in the ack instead (Bolt's
`ack(text)` idiom for a quick reply), as `serve` answers its subcommands; that variant runs
with `process_before_response=True` (as `serve` does), because Bolt's default runner polls for
the ack every 10 ms, which would put ~10 ms on every answer and flatter `serve`.
For bench/floor.py (BASELINE_READ_URL set, with BASELINE_ANSWER_IN_ACK) `/preregister list
[status]` is answered in the ack with `serve`'s own answer made the least costly way: the page
read by serve's one statement (`page_for_member`) and drawn by serve's Block Kit builder
(`customer_list`), without serve's middleware, language look-up, replay record, logs or metrics.
For bench/throughput.py (BASELINE_DATABASE_URL set) it stores the submitted preregistration
form with one INSERT into `preregistrations` (partner BASELINE_PARTNER_ID), then acks with a
constant view: no rule, no audit, no outbox.

    SLACK_SIGNING_SECRET=... SLACK_API_URL=... PORT=... [BASELINE_ANSWER_IN_ACK=1] \
        python -m bench.baseline_app
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

from flask import Flask, request
from slack_bolt import App
from slack_bolt.adapter.flask import SlackRequestHandler
from slack_sdk import WebClient
from sqlalchemy import text
from waitress import serve

from bot.slack.after_ack import WORK_THREADS
from store.db import make_engine

MODAL = {
    "type": "modal",
    "callback_id": "baseline",
    "title": {"type": "plain_text", "text": "Preregister"},
    "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": "baseline"}}],
}


DONE = {**MODAL, "callback_id": "baseline_done"}
ANSWER = {"response_type": "ephemeral", "text": "baseline"}
INSERT = text(
    "INSERT INTO preregistrations (partner_id, full_name, email, email_norm, mobile,"
    " send_invitation, association_type, status, submitted_by, submitted_at, expires_at,"
    " invite_failed_attempts) VALUES (:partner, :name, :email, :email_norm, :mobile, false,"
    " 'reseller', 'preregistered', :user, :now, :expires, 0)"
)


def _value(values: dict[str, Any], block: str) -> str:
    return str(((values.get(block) or {}).get("value") or {}).get("value") or "")


HOME = {"type": "home", "blocks": MODAL["blocks"]}


def page_reader(url: str) -> Callable[[dict[str, Any]], dict[str, Any]]:
    """The first page of `/preregister list [status]` for the command's user, as serve shows it
    (English; the user must be a partner's member with rows in that status). Imported here:
    the other benchmarks' bare app (bench/footprint.py measures its memory) loads none of it."""
    from bot.models import Page, PartnerView, PreregView
    from handlers.commands import parse_filter
    from handlers.views.customers import FILTERS, PAGE_SIZE, customer_list
    from store.preregistrations import page_for_member

    engine = make_engine(url, pool_size=16, max_overflow=4)

    def read(body: dict[str, Any]) -> dict[str, Any]:
        key = parse_filter(body["text"].split()[1:]) or "current"
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            rows, partner_row, total = page_for_member(
                conn, body["user_id"], None, statuses=FILTERS[key], offset=0, limit=PAGE_SIZE
            )
        if partner_row is None:
            raise RuntimeError("bench/floor.py: the command's user has no rows in that status")
        partner = PartnerView.from_row(partner_row)
        page = Page([PreregView.of(row, partner) for row in rows], total, 0, PAGE_SIZE)
        return customer_list(page, key)

    return read


def build() -> Flask:
    client = WebClient(
        token=os.environ.get("SLACK_BOT_TOKEN", "xoxb-baseline"),
        base_url=os.environ["SLACK_API_URL"],
    )
    in_ack = bool(os.environ.get("BASELINE_ANSWER_IN_ACK"))
    bolt = App(
        signing_secret=os.environ["SLACK_SIGNING_SECRET"],
        client=client,
        token_verification_enabled=False,
        listener_executor=ThreadPoolExecutor(max_workers=WORK_THREADS),
        process_before_response=in_ack,
    )

    read_url = os.environ.get("BASELINE_READ_URL")
    answer = page_reader(read_url) if read_url else (lambda _body: ANSWER)

    @bolt.command("/preregister")
    def command(ack, body, client, respond):  # type: ignore[no-untyped-def]
        if body.get("text") and in_ack:
            ack(answer(body))
            return
        ack()
        if body.get("text"):  # bench/visible.py: a constant answer where serve has one to show
            respond(ANSWER)
        else:
            client.views_open(trigger_id=body["trigger_id"], view=MODAL)

    url = os.environ.get("BASELINE_DATABASE_URL")
    if url:
        engine = make_engine(url, pool_size=16, max_overflow=4)
        partner = int(os.environ["BASELINE_PARTNER_ID"])

        @bolt.view("preregister")
        def submitted(ack, body, view):  # type: ignore[no-untyped-def]
            values = view["state"]["values"]
            email = _value(values, "email")
            now = datetime.now(UTC).replace(tzinfo=None)
            with engine.begin() as conn:
                conn.execute(
                    INSERT,
                    {
                        "partner": partner,
                        "name": _value(values, "full_name"),
                        "email": email,
                        "email_norm": email.lower(),
                        "mobile": _value(values, "mobile"),
                        "user": body["user"]["id"],
                        "now": now,
                        "expires": now + timedelta(days=15),
                    },
                )
            ack(response_action="update", view=DONE)

    @bolt.action("bench_visible_respond")
    def visible_respond(ack, respond):  # type: ignore[no-untyped-def]
        ack()
        respond(ANSWER)

    @bolt.action("bench_visible_modal")
    def visible_modal(ack, body, client):  # type: ignore[no-untyped-def]
        ack()
        client.views_open(trigger_id=body["trigger_id"], view=MODAL)

    @bolt.event("app_home_opened")
    def home(ack, event, client):  # type: ignore[no-untyped-def]
        ack()
        client.views_publish(user_id=event["user"], view=HOME)

    @bolt.action(re.compile(".*"))
    def action(ack, body, client):  # type: ignore[no-untyped-def]
        ack()
        container = body.get("container", {})
        client.chat_update(
            channel=container.get("channel_id", "C0"),
            ts=container.get("message_ts", "1"),
            text="ok",
        )

    web = Flask("baseline")
    handler = SlackRequestHandler(bolt)

    @web.post("/slack/events")
    def events():  # type: ignore[no-untyped-def]
        return handler.handle(request)

    @web.get("/healthz")
    def healthz():  # type: ignore[no-untyped-def]
        return {"status": "ok"}

    return web


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING)
    serve(build(), host="127.0.0.1", port=int(os.environ["PORT"]), threads=16)
