"""The partner's invitation link and QR code (R8 no) when Slack's upload limit is reached: the
notice waits for its turn (bot/pacing.py) and its QR code is drawn once, for the upload that
goes, not also for the try that was paced (issue 15: a burst of submissions drew every code
twice on the background worker)."""

from __future__ import annotations

from pathlib import Path

import pytest

import handlers.invitations
from bot.admin import Admin
from bot.settings import Settings
from bot.wiring.app import create_services
from store.migrate import upgrade
from tests.fakeslack import FakeSlack
from tests.helpers import add_partner, form

ACME = "UACME1"
BURST = 10  # files.getUploadURLExternal: tier 4, bursts of 10 per workspace (bot/pacing.py)


def test_a_paced_share_draws_its_qr_code_once(
    fake_slack: FakeSlack, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"sqlite:///{tmp_path / 'share.db'}"
    upgrade(url)
    settings = Settings.from_env(
        {
            "DATABASE_URL": url,
            "SLACK_API_URL": fake_slack.url,
            "SLACK_BOT_TOKEN": "xoxb-share-pacing",
            "INVITE_SECRET": "share-pacing-secret",
            "PUBLIC_BASE_URL": "https://invite.test",
        }
    )
    fake_slack.reset()
    services = create_services(settings, worker=True)  # the worker's senders: paced
    try:
        add_partner(Admin(services.db, services.clock), "Acme GmbH", ACME)
        view = services.service.preregister(ACME, form(send=False)).preregistration
        drawn: list[str] = []
        draw = handlers.invitations.qr_png
        monkeypatch.setattr(
            handlers.invitations, "qr_png", lambda data: drawn.append(data) or draw(data)
        )
        # Uploads that went just before used up this workspace's burst.
        for i in range(BURST):
            services.client.files_getUploadURLExternal(filename=f"earlier-{i}.png", length=1)

        services.deliverer.deliver_due()  # paced first, then sent at its turn

        shared = [
            call
            for call in fake_slack.calls_to("files.completeUploadExternal")
            if "Invitation QR code" in str(call.args.get("files"))
        ]
        assert len(shared) == 1
        link = services.service.view(view.id)
        assert link is not None
        assert drawn == [handlers.invitations.invitations_of(services).link_for(link)]
    finally:
        services.db.dispose()
