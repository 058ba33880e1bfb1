"""Installing the app in a workspace by OAuth (distributed mode): Bolt's OAuth flow with
slack-sdk's SQLAlchemy installation and state stores, and the pages a Slack admin sees.

`GET /slack/install` shows "Add to Slack" with a fresh `state` (and its cookie);
`GET /slack/oauth_redirect` checks both, calls `oauth.v2.access` on SLACK_API_URL, stores the
installation, tells `on_installed`, and shows a success or failure page.
"""

from __future__ import annotations

import html
from collections.abc import Callable
from typing import TYPE_CHECKING

from slack_sdk.oauth.installation_store import Installation
from slack_sdk.oauth.state_store.sqlalchemy import SQLAlchemyOAuthStateStore

from bot.i18n import N_, _, from_accept_language, html_lang, use

if TYPE_CHECKING:
    from slack_bolt import BoltRequest, BoltResponse
    from slack_bolt.oauth.callback_options import FailureArgs, SuccessArgs
    from slack_bolt.oauth.oauth_settings import OAuthSettings
    from slack_sdk.oauth.installation_store import InstallationStore
    from sqlalchemy import Engine

BOT_SCOPES = ("commands", "chat:write", "im:write", "users:read", "files:write")
"""The bot scopes of manifest.yml (tests/test_manifest.py keeps the two the same)."""

INSTALL_PATH = "/slack/install"
REDIRECT_PATH = "/slack/oauth_redirect"
STATE_SECONDS = 600

FAILURE_WORDS = {
    "access_denied": N_("The installation was cancelled in Slack."),
    "invalid_browser": N_(
        "This browser did not start the installation (its cookie is missing). Start it again "
        "in this browser."
    ),
    "invalid_state": N_("The installation link has expired or was already used."),
    "missing_code": N_("Slack did not send an authorisation code."),
    "invalid_code": N_("Slack did not accept the authorisation code."),
    "storage_error": N_("The installation could not be saved. Please try again in a moment."),
}
UNKNOWN_FAILURE = N_("Slack reported a problem with the installation.")


def oauth_settings(
    *,
    client_id: str,
    client_secret: str,
    store: InstallationStore,
    engine: Engine,
    on_installed: Callable[[Installation], None],
    help_line: str,
) -> OAuthSettings:
    from slack_bolt.oauth.callback_options import CallbackOptions
    from slack_bolt.oauth.oauth_settings import OAuthSettings

    def success(args: SuccessArgs) -> BoltResponse:
        on_installed(args.installation)
        with use(_reader_language(args.request)):
            return _page(200, _("prereg-bot is installed"), _installed_words(args.installation))

    def failure(args: FailureArgs) -> BoltResponse:
        with use(_reader_language(args.request)):
            words = _(FAILURE_WORDS.get(args.reason, UNKNOWN_FAILURE))
            again = _('<a href="{href}">Start the installation again</a>.').format(
                href=INSTALL_PATH
            )
            return _page(
                args.suggested_status_code,
                _("The installation did not complete"),
                f"<p>{html.escape(words)}</p><p>{again}</p><p>{html.escape(_(help_line))}</p>",
            )

    return OAuthSettings(
        client_id=client_id,
        client_secret=client_secret,
        scopes=list(BOT_SCOPES),
        installation_store=store,
        installation_store_bot_only=True,
        state_store=SQLAlchemyOAuthStateStore(expiration_seconds=STATE_SECONDS, engine=engine),
        install_path=INSTALL_PATH,
        redirect_uri_path=REDIRECT_PATH,
        callback_options=CallbackOptions(success=success, failure=failure),
    )


def _installed_words(installation: Installation) -> str:
    where = installation.enterprise_name if installation.is_enterprise_install else None
    where = where or installation.team_name or _("your workspace")
    return _("<p>prereg-bot is now installed in {where}.</p>").format(where=html.escape(where)) + _(
        "<p>Next: open prereg-bot's <b>Home</b> tab in Slack and ask to link this workspace to "
        "your company's partner account. An ecosystem manager approves the link. Then your "
        "sales people can use <code>/preregister</code>.</p>"
    )


def _reader_language(request: BoltRequest) -> str:
    """The installing admin's browser language (Accept-Language), as on the invitation page."""
    values = request.headers.get("accept-language") or []
    return from_accept_language(values[0] if values else None)


def _page(status: int, title: str, body: str) -> BoltResponse:
    from slack_bolt import BoltResponse

    page = (
        f'<!doctype html><html lang="{html_lang()}"><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title></head>"
        f"<body><main><h1>{html.escape(title)}</h1>{body}</main></body></html>"
    )
    return BoltResponse(
        status=status,
        body=page,
        headers={"Content-Type": "text/html; charset=utf-8", "Content-Language": html_lang()},
    )
