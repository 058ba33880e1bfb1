"""`/preregister` and its subcommands. Every reply goes to the asker only (response_url)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from slack_sdk.errors import SlackApiError

from bot.errors import InvalidInput, NotFound, Refused
from bot.i18n import LANGUAGES, N_, _, use
from bot.slack.after_ack import after_ack
from handlers import views
from handlers.customers import render_list
from handlers.mrkdwn import escape

if TYPE_CHECKING:
    from slack_bolt.kwargs_injection.args import Args

log = logging.getLogger(__name__)

COMMAND = "/preregister"
MAX_DELETE_TARGETS = 20
SLACK_BUSY = N_(
    "Slack did not open the form just now (it is busy or not answering). "
    "Nothing was saved. Type `/preregister` again in a moment."
)
STATUS_ALIASES = {
    "review": "under_review",
    "under-review": "under_review",
    "active": "current",
    "action-required": "action_required",
    "question": "action_required",
}


# Where notices go without a channel (see handlers/reminders.py).
FALLBACKS = {
    "notices": N_("the member who submitted each customer, as a direct message"),
    "daily digests": N_("the notice channel if there is one, else each member as a direct message"),
}
KINDS = {"notices": N_("notices"), "daily digests": N_("daily digests")}


def parse_filter(words: list[str]) -> str | None:
    """`list under review` -> `under_review`; None when unknown."""
    if not words:
        return views.DEFAULT_FILTER
    key = "_".join(w.lower() for w in words)
    key = STATUS_ALIASES.get(key, key)
    return key if key in views.FILTERS else None


def register(app: Any, services: Any) -> None:
    service = services.service

    def contacts() -> list[tuple[str, str | None]]:
        return service.manager_contacts()

    def open_modal(user: str, trigger_id: str, client: Any, respond: Callable) -> None:
        try:
            service.ready_partner(user)
        except Refused as refused:
            respond(views.refusal_message(refused.message, contacts()))
            return
        try:
            client.views_open(trigger_id=trigger_id, view=views.preregistration_modal())
        except SlackApiError as error:
            status = error.response.status_code
            if status != 429 and status < 500:
                raise
            log.warning("views.open for %s failed: Slack answered %s", user, status)
            respond(views.ephemeral(":hourglass: " + _(SLACK_BUSY)))
        except OSError as error:  # no connection or no answer (the client's retries included)
            log.warning("views.open for %s failed: %s", user, error)
            respond(views.ephemeral(":hourglass: " + _(SLACK_BUSY)))

    def list_customers(user: str, args: list[str], respond: Callable) -> None:
        filter_key = parse_filter(args)
        if filter_key is None:
            known = ", ".join(f"`{k}`" for k in views.FILTERS)
            respond(
                views.ephemeral(
                    _("I don't know the status “{status}”. Use one of: {known}.").format(
                        status=escape(" ".join(args)), known=known
                    )
                )
            )
            return
        respond(render_list(services, user, 0, filter_key))

    def check(user: str, args: list[str], respond: Callable) -> None:
        if len(args) != 1:
            respond(views.ephemeral(_("Usage: `/preregister check &lt;email&gt;`")))
            return
        try:
            result = service.check(user, args[0])
        except InvalidInput as invalid:
            respond(views.ephemeral(f":warning: {escape(next(iter(invalid.errors.values())))}"))
            return
        respond(views.check_message(args[0], result, contacts()))

    def delete(user: str, args: list[str], respond: Callable) -> None:
        if not args:
            respond(
                views.ephemeral(_("Usage: `/preregister delete &lt;email&gt; [&lt;email&gt; …]`"))
            )
            return
        if len(args) > MAX_DELETE_TARGETS:
            respond(
                views.ephemeral(
                    _("At most {count} customers at a time.").format(count=MAX_DELETE_TARGETS)
                )
            )
            return
        results = service.delete(user, list(dict.fromkeys(args)))
        respond(views.delete_message(results, contacts()))

    def channel_setting(
        kind: str, setter: Callable, user: str, channel: str, args: list[str], respond: Callable
    ) -> None:
        choice = " ".join(args).lower()
        if choice == "here":
            setter(user, channel)
            respond(
                views.ephemeral(
                    ":white_check_mark: "
                    + _(
                        "Your company's {kind} now go to {channel}. If I am not in this channel "
                        "yet, invite me with `/invite @prereg-bot`."
                    ).format(kind=_(KINDS[kind]), channel=f"<#{escape(channel)}>")
                )
            )
        elif choice == "off":
            setter(user, None)
            fallback = _(FALLBACKS[kind])
            respond(
                views.ephemeral(
                    ":white_check_mark: "
                    + _(
                        "Your company's {kind} no longer go to a channel: they go to {fallback}."
                    ).format(kind=_(KINDS[kind]), fallback=fallback)
                )
            )
        else:
            word = "notify" if kind == "notices" else "digest"
            usage = _("Usage: `/preregister {word} here` or `{word} off`").format(word=word)
            respond(views.ephemeral(usage))

    def language(user: str, channel: str, args: list[str], respond: Callable) -> None:
        choice = " ".join(args).lower()
        if choice not in LANGUAGES:
            respond(views.ephemeral(_("Usage: `/preregister language zh` or `language en`")))
            return
        which = service.set_language(user, channel, choice)
        with use(choice):
            if which == "partner":
                text = _(
                    "Your company's channel notices, digests and invitation emails are now in "
                    "English."
                )
            else:
                text = _("My posts in this channel are now in English.")
            respond(views.ephemeral(":white_check_mark: " + text))

    def form(command, respond, client, context) -> None:  # type: ignore[no-untyped-def]
        """`/preregister` alone: the form, opened after the ack (views.open)."""
        open_modal(context["actor"], command["trigger_id"], client, respond)

    def answer(command, respond, context) -> None:  # type: ignore[no-untyped-def]
        """`/preregister <word> …`: the answer goes in the ack when it is ready in time."""
        user = context["actor"]
        words = (command.get("text") or "").split()
        sub, args = words[0].lower(), words[1:]
        try:
            if sub == "list":
                list_customers(user, args, respond)
            elif sub == "check":
                check(user, args, respond)
            elif sub == "delete":
                delete(user, args, respond)
            elif sub == "notify":
                channel_setting(
                    "notices",
                    service.set_notice_channel,
                    user,
                    command["channel_id"],
                    args,
                    respond,
                )
            elif sub == "digest":
                channel_setting(
                    "daily digests",
                    service.set_digest_channel,
                    user,
                    command["channel_id"],
                    args,
                    respond,
                )
            elif sub == "language":
                language(user, command["channel_id"], args, respond)
            elif sub == "flow":
                respond(views.flow_message())
            elif sub == "help":
                respond(views.help_message(contacts()))
            else:
                note = _("I don't know `{word}`. Here is what I can do:").format(
                    word=escape(sub[:40])
                )
                respond(views.help_message(contacts(), note=note))
        except Refused as refused:
            respond(views.refusal_message(refused.message, contacts()))
        except NotFound as missing:
            respond(views.ephemeral(f":warning: {escape(missing.message)}"))

    open_form = after_ack(form)
    answer_in_ack = after_ack.answering(answer)

    @app.command(COMMAND)
    def preregister(args: Args) -> None:
        (answer_in_ack if (args.command.get("text") or "").split() else open_form)(args)
