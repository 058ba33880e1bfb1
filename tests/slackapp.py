"""Runs `prereg-bot serve` as a user runs it and talks to it the way Slack does: signed
HTTP requests to /slack/events. Its Web API calls land on a FakeSlack; its mail on a real
SMTP server."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import subprocess
import sys
import time
import urllib.parse
import uuid
from pathlib import Path
from typing import Any

import requests
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.exc import OperationalError

from store.models import Base
from tests.fakeslack import FakeSlack
from tests.mailbox import SmtpServer, free_port

SIGNING_SECRET = "test-signing-secret"
BOT_TOKEN = "xoxb-test-token"
MANAGER_CHANNEL = "CMANAGERS"
INVITE_SECRET = "test-invite-secret-0123456789abcdef"
TEAM = {"id": "T1", "domain": "example"}


def sign(
    body: str, timestamp: int | str | None = None, secret: str = SIGNING_SECRET
) -> dict[str, str]:
    ts = str(int(time.time()) if timestamp is None else timestamp)
    base = f"v0:{ts}:{body}".encode()
    digest = hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()
    return {"X-Slack-Request-Timestamp": ts, "X-Slack-Signature": f"v0={digest}"}


class RunningApp:
    def __init__(
        self,
        db_url: str,
        fake: FakeSlack,
        smtp: SmtpServer,
        workdir: Path,
        env: dict[str, str] | None = None,
    ) -> None:
        self.db_url = db_url
        self.fake = fake
        self.smtp = smtp
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.workdir = workdir
        self.env = {
            **os.environ,
            "DATABASE_URL": db_url,
            "SLACK_API_URL": fake.url,
            "SLACK_BOT_TOKEN": BOT_TOKEN,
            "SLACK_SIGNING_SECRET": SIGNING_SECRET,
            "MANAGER_CHANNEL_ID": MANAGER_CHANNEL,
            "PUBLIC_BASE_URL": self.base_url,
            "INVITE_SECRET": INVITE_SECRET,
            "SMTP_HOST": "127.0.0.1",
            "SMTP_PORT": str(smtp.port),
            "SMTP_FROM": "prereg-bot@vendor.example",
            "PORT": str(self.port),
            "VENDOR_NAME": "Nimbus Cloud",
            "PROGRAM_NAME": "Partner Network",
            "VENDOR_LOGO_URL": "https://cdn.nimbus.example/logo.png",
            "SUPPORT_URL": "https://nimbus.example/partner-help",
            "SUPPORT_EMAIL": "partner-help@nimbus.example",
            # Tests run the sweep themselves (`sweep(at=...)`), as of the instant they choose;
            # tests/test_scheduler.py checks the in-process timer on its own app.
            "PREREG_SCHEDULER": "false",
            **(env or {}),
        }
        self.proc: subprocess.Popen[bytes] | None = None
        self.http = requests.Session()

    # --- process ---------------------------------------------------------------------------

    def start(self, timeout: float = 30.0) -> RunningApp:
        log = open(self.workdir / f"serve-{self.port}.log", "wb")  # noqa: SIM115 - kept for the process
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "bot.entry.cli", "serve"], env=self.env, stdout=log, stderr=log
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"serve exited early:\n{self.log()}")
            try:
                if requests.get(self.base_url + "/healthz", timeout=1).status_code == 200:
                    return self
            except requests.ConnectionError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"serve did not answer /healthz:\n{self.log()}")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)

    def log(self) -> str:
        return (self.workdir / f"serve-{self.port}.log").read_text(errors="replace")[-5000:]

    def log_size(self) -> int:
        """Where the log ends now: `log_since(mark)` reads what a test made the app write."""
        return (self.workdir / f"serve-{self.port}.log").stat().st_size

    def log_since(self, mark: int) -> str:
        with (self.workdir / f"serve-{self.port}.log").open("rb") as log:
            log.seek(mark)
            return log.read().decode(errors="replace")

    def cli(
        self, *args: str, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "bot.entry.cli", *args],
            env={**self.env, **(env or {})},
            capture_output=True,
            text=True,
            timeout=120,
        )

    def sweep(self, at: str | None = None) -> subprocess.CompletedProcess[str]:
        # --yes: a test's instant is often ahead of now, on purpose
        done = self.cli("sweep", *(["--at", at, "--yes"] if at else []))
        assert done.returncode == 0, done.stderr
        return done

    def clean(self) -> None:
        """Empties every table between tests (the app keeps running). The app's background
        worker may still hold row locks from the previous test, so a deadlock is retried."""
        engine = create_engine(self.db_url)
        try:
            for attempt in range(5):
                try:
                    self._empty_tables(engine)
                    return
                except OperationalError:
                    if attempt == 4:
                        raise
                    time.sleep(0.2 * (attempt + 1))
        finally:
            engine.dispose()

    @staticmethod
    def _empty_tables(engine: Engine) -> None:
        with engine.begin() as conn:
            if conn.dialect.name == "postgresql":
                names = ", ".join(t.name for t in Base.metadata.sorted_tables)
                conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
            else:
                for table in reversed(Base.metadata.sorted_tables):
                    conn.execute(table.delete())

    # --- Slack requests --------------------------------------------------------------------

    def post_slack(
        self,
        body: str,
        content_type: str = "application/x-www-form-urlencoded",
        headers: dict[str, str] | None = None,
        timestamp: int | str | None = None,
        secret: str = SIGNING_SECRET,
    ) -> requests.Response:
        all_headers = {
            "Content-Type": content_type,
            **sign(body, timestamp, secret),
            **(headers or {}),
        }
        return self.http.post(
            self.base_url + "/slack/events", data=body.encode(), headers=all_headers, timeout=10
        )

    def command(
        self,
        user: str,
        text: str = "",
        channel: str = "CGENERAL",
        headers: dict[str, str] | None = None,
        team_id: str = TEAM["id"],
        enterprise_id: str | None = None,
    ) -> requests.Response:
        form = {
            "token": "legacy",
            "team_id": team_id,
            "team_domain": TEAM["domain"],
            "channel_id": channel,
            "channel_name": "general",
            "user_id": user,
            "user_name": user.lower(),
            "command": "/preregister",
            "text": text,
            "api_app_id": "A1",
            "response_url": self.fake.response_url,
            "trigger_id": f"trigger.{uuid.uuid4().hex}",
        }
        if enterprise_id:  # a workspace of an Enterprise Grid org, the app installed org-wide
            form |= {"enterprise_id": enterprise_id, "is_enterprise_install": "true"}
        return self.post_slack(urllib.parse.urlencode(form), headers=headers)

    def seen_reply(self, response: requests.Response, before: int) -> dict[str, Any]:
        """What the person sees as the answer to a request: the ack's body when it carries a
        message (Slack shows it as the reply), else the next post to the response_url after
        the first `before` ones."""
        assert response.status_code == 200, self.log()
        if response.content:
            message = response.json()
            if message.get("text") or message.get("blocks"):
                return message
        return self.fake.wait_for_response(before + 1)[before]

    def ask(self, user: str, text: str, **kwargs: Any) -> dict[str, Any]:
        """Sends `/preregister <text>` and returns the reply the person sees (`seen_reply`)."""
        before = len(self.fake.responses)
        return self.seen_reply(self.command(user, text, **kwargs), before)

    def interactive(
        self, payload: dict[str, Any], headers: dict[str, str] | None = None
    ) -> requests.Response:
        body = urllib.parse.urlencode({"payload": json.dumps(payload)})
        return self.post_slack(body, headers=headers)

    def view_submission(
        self,
        user: str,
        callback_id: str,
        values: dict[str, dict[str, dict[str, Any]]],
        private_metadata: str = "",
        view_id: str | None = None,
        headers: dict[str, str] | None = None,
        team_id: str = TEAM["id"],
        user_team_id: str | None = None,
        app_installed_team_id: str | None = None,
    ) -> requests.Response:
        payload = {
            "type": "view_submission",
            "team": {"id": team_id, "domain": "example"},
            "user": {"id": user, "team_id": user_team_id or team_id},
            "api_app_id": "A1",
            "trigger_id": f"trigger.{uuid.uuid4().hex}",
            "view": {
                "id": view_id or f"V{uuid.uuid4().hex[:10].upper()}",
                **(
                    {"app_installed_team_id": app_installed_team_id}
                    if app_installed_team_id
                    else {}
                ),
                "type": "modal",
                "callback_id": callback_id,
                "private_metadata": private_metadata,
                "state": {"values": values},
                "hash": "h",
            },
        }
        return self.interactive(payload, headers)

    def block_action(
        self,
        user: str,
        action_id: str,
        value: str | None = None,
        block_id: str = "b",
        channel: str = "CGENERAL",
        message_ts: str | None = "1700000000.000100",
        container_type: str = "message",
        extra_action: dict[str, Any] | None = None,
        view: dict[str, Any] | None = None,
        state: dict[str, Any] | None = None,
        team_id: str = TEAM["id"],
        user_team_id: str | None = None,
    ) -> requests.Response:
        action = {
            "action_id": action_id,
            "block_id": block_id,
            "type": "button",
            **(extra_action or {}),
        }
        if value is not None:
            action["value"] = value
        payload: dict[str, Any] = {
            "type": "block_actions",
            "team": {"id": team_id, "domain": "example"},
            "user": {"id": user, "team_id": user_team_id or team_id},
            "api_app_id": "A1",
            "trigger_id": f"trigger.{uuid.uuid4().hex}",
            "response_url": self.fake.response_url,
            "actions": [action],
        }
        if container_type == "message":
            payload["container"] = {
                "type": "message",
                "message_ts": message_ts,
                "channel_id": channel,
            }
            payload["channel"] = {"id": channel}
            payload["message"] = {"ts": message_ts, "text": "", "blocks": []}
        else:
            payload["container"] = {"type": "view", "view_id": (view or {}).get("id", "VHOME")}
            payload["view"] = view or {"id": "VHOME", "type": "home", "callback_id": "home"}
        if state is not None:
            payload["state"] = state
        return self.interactive(payload)

    def event(self, event: dict[str, Any], team_id: str = TEAM["id"]) -> requests.Response:
        body = json.dumps(
            {
                "token": "legacy",
                "team_id": team_id,
                "authorizations": [
                    {"team_id": team_id, "enterprise_id": None, "is_enterprise_install": False}
                ],
                "api_app_id": "A1",
                "type": "event_callback",
                "event_id": f"Ev{uuid.uuid4().hex[:10]}",
                "event_time": int(time.time()),
                "event": event,
            }
        )
        return self.post_slack(body, content_type="application/json")
