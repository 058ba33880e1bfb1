"""Configuration from the environment (the contract's variable names)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date


class ConfigError(Exception):
    """A missing or malformed variable: the message is the one line the operator sees."""


def _bool(raw: str | None, default: bool) -> bool:
    if raw is None or raw == "":
        return default
    value = raw.strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"expected true or false, got {raw!r}")


def _int(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name)
    if not raw:
        return default
    try:
        return int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a whole number, got {raw!r}") from None


def _int_list(env: Mapping[str, str], name: str, default: tuple[int, ...]) -> tuple[int, ...]:
    raw = env.get(name)
    if not raw:
        return default
    try:
        return tuple(sorted({int(x) for x in raw.split(",") if x.strip()}, reverse=True))
    except ValueError:
        raise ConfigError(f"{name} must be comma-separated whole numbers, got {raw!r}") from None


def _dates(env: Mapping[str, str], name: str) -> frozenset[date]:
    raw = env.get(name, "")
    try:
        return frozenset(date.fromisoformat(x.strip()) for x in raw.split(",") if x.strip())
    except ValueError:
        raise ConfigError(f"{name} must be comma-separated YYYY-MM-DD dates, got {raw!r}") from None


def _text(env: Mapping[str, str], name: str) -> str | None:
    """A one-line text shown to customers (names, addresses): spaces collapsed."""
    value = " ".join((env.get(name) or "").split())
    return value or None


def _https_url(env: Mapping[str, str], name: str) -> str | None:
    value = _text(env, name)
    if value is not None and not value.startswith(("https://", "http://")):
        raise ConfigError(f"{name} must be an http(s):// URL, got {value!r}")
    return value


ACK_BUDGET_LIMIT_MS = 2500
"""Slack waits 3 s for an ack; an answer budget past this would not leave time to send it."""


def _ack_budget(env: Mapping[str, str]) -> int:
    value = _int(env, "PREREG_ACK_BUDGET_MS", 1500)
    if not 0 <= value <= ACK_BUDGET_LIMIT_MS:
        raise ConfigError(
            f"PREREG_ACK_BUDGET_MS must be between 0 and {ACK_BUDGET_LIMIT_MS}, got {value}"
        )
    return value


def _positive(env: Mapping[str, str], name: str, default: int) -> int:
    value = _int(env, name, default)
    if value < 1:
        raise ConfigError(f"{name} must be at least 1, got {value}")
    return value


PLACEHOLDERS: dict[str, str] = {
    "SLACK_BOT_TOKEN": "xoxb-your-bot-token",
    "SLACK_SIGNING_SECRET": "your-signing-secret",
    "SLACK_APP_TOKEN": "xapp-...",
    "MANAGER_CHANNEL_ID": "C0123456789",
    "PUBLIC_BASE_URL": "https://prereg.example.com",
    "INVITE_SECRET": "change-me-to-a-long-random-string",
    "SMTP_FROM": "prereg-bot@example.com",
    "SLACK_CLIENT_ID": "1234567890.1234567890",
    "SLACK_CLIENT_SECRET": "your-client-secret",
    "VENDOR_TEAM_ID": "T0123456789",
}
"""The example values of `.env.example` that only stand for a real one (tests/test_operate.py
checks them against the file). A copied `.env` still holding one is refused at start."""


def refuse_placeholders(env: Mapping[str, str]) -> None:
    for name, example in PLACEHOLDERS.items():
        if (env.get(name) or "").strip() == example:
            raise ConfigError(
                f"{name} still holds the example value of .env.example ({example}): "
                "set it to the real value (README: Configuration)"
            )


@dataclass(frozen=True)
class Settings:
    database_url: str = "sqlite:///prereg.db"
    slack_bot_token: str | None = None
    slack_signing_secret: str | None = None
    slack_app_token: str | None = None
    slack_api_url: str = "https://slack.com/api/"
    slack_client_id: str | None = None
    slack_client_secret: str | None = None
    vendor_team_id: str | None = None
    manager_channel_id: str | None = None
    public_base_url: str | None = None
    invite_secret: str | None = None
    smtp_host: str | None = None
    smtp_port: int = 25
    smtp_from: str | None = None
    smtp_username: str | None = None
    smtp_password: str | None = None
    smtp_starttls: bool = False
    port: int = 3000
    holidays: frozenset[date] = field(default_factory=frozenset)
    reminder_days: tuple[int, ...] = (3, 1)
    sweep_interval_seconds: int = 60
    review_due_soon_hours: int = 4
    digest_hour_utc: int = 8
    report_weekday: int = 0
    report_hour_utc: int = 8
    run_scheduler: bool = True
    db_pool_size: int = 40
    member_cache: bool = True
    ack_budget_ms: int = 1500
    """PREREG_ACK_BUDGET_MS: how long a command's answer may take to go in the ack."""
    program_name: str | None = None
    vendor_name: str | None = None
    vendor_logo_url: str | None = None
    support_url: str | None = None
    support_email: str | None = None
    retention_days: int = 365
    privacy_key: str | None = None
    metrics_token: str | None = None
    """METRICS_TOKEN: the bearer token of `GET /metrics`; unset, /metrics is not served."""
    log_format: str = "text"
    """LOG_FORMAT: `json` for JSON lines, else readable text."""

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        refuse_placeholders(env)
        try:
            starttls = _bool(env.get("SMTP_STARTTLS"), False)
            scheduler = _bool(env.get("PREREG_SCHEDULER"), True)
            member_cache = _bool(env.get("PREREG_MEMBER_CACHE"), True)
        except ConfigError as exc:
            raise ConfigError(
                f"SMTP_STARTTLS / PREREG_SCHEDULER / PREREG_MEMBER_CACHE: {exc}"
            ) from None
        api_url = env.get("SLACK_API_URL") or "https://slack.com/api/"
        if not api_url.endswith("/"):
            api_url += "/"
        return cls(
            database_url=env.get("DATABASE_URL") or "sqlite:///prereg.db",
            slack_bot_token=env.get("SLACK_BOT_TOKEN") or None,
            slack_signing_secret=env.get("SLACK_SIGNING_SECRET") or None,
            slack_app_token=env.get("SLACK_APP_TOKEN") or None,
            slack_api_url=api_url,
            slack_client_id=env.get("SLACK_CLIENT_ID") or None,
            slack_client_secret=env.get("SLACK_CLIENT_SECRET") or None,
            vendor_team_id=env.get("VENDOR_TEAM_ID") or None,
            manager_channel_id=env.get("MANAGER_CHANNEL_ID") or None,
            public_base_url=(env.get("PUBLIC_BASE_URL") or "").rstrip("/") or None,
            invite_secret=env.get("INVITE_SECRET") or None,
            smtp_host=env.get("SMTP_HOST") or None,
            smtp_port=_int(env, "SMTP_PORT", 25),
            smtp_from=env.get("SMTP_FROM") or None,
            smtp_username=env.get("SMTP_USERNAME") or None,
            smtp_password=env.get("SMTP_PASSWORD") or None,
            smtp_starttls=starttls,
            port=_int(env, "PORT", 3000),
            holidays=_dates(env, "PREREG_HOLIDAYS"),
            reminder_days=_int_list(env, "PREREG_REMINDER_DAYS", (3, 1)),
            sweep_interval_seconds=_int(env, "PREREG_SWEEP_INTERVAL_SECONDS", 60),
            review_due_soon_hours=_int(env, "PREREG_REVIEW_DUE_SOON_HOURS", 4),
            digest_hour_utc=_int(env, "PREREG_DIGEST_HOUR_UTC", 8),
            report_weekday=_int(env, "PREREG_REPORT_WEEKDAY", 0) % 7,
            report_hour_utc=_int(env, "PREREG_REPORT_HOUR_UTC", 8) % 24,
            run_scheduler=scheduler,
            db_pool_size=_int(env, "PREREG_DB_POOL_SIZE", 40),
            member_cache=member_cache,
            ack_budget_ms=_ack_budget(env),
            program_name=_text(env, "PROGRAM_NAME"),
            vendor_name=_text(env, "VENDOR_NAME"),
            vendor_logo_url=_https_url(env, "VENDOR_LOGO_URL"),
            support_url=_https_url(env, "SUPPORT_URL"),
            support_email=_text(env, "SUPPORT_EMAIL"),
            retention_days=_positive(env, "PREREG_RETENTION_DAYS", 365),
            privacy_key=env.get("PREREG_PRIVACY_KEY") or None,
            metrics_token=env.get("METRICS_TOKEN") or None,
            log_format="json" if (env.get("LOG_FORMAT") or "").lower() == "json" else "text",
        )

    @property
    def distributed(self) -> bool:
        """Partners install the app in their own workspaces by OAuth (README: distributed mode)."""
        return bool(self.slack_client_id and self.slack_client_secret)

    @property
    def home_team(self) -> str | None:
        """The vendor's workspace or org: where a bare user id lives. None in single-workspace
        mode without VENDOR_TEAM_ID, where every user id is of the one workspace."""
        return self.vendor_team_id

    def require(self, *names: str) -> None:
        """Raise ConfigError naming the first missing variable (by its environment name)."""
        for name in names:
            if not getattr(self, name.lower()):
                raise ConfigError(f"missing required environment variable {name}")


COMMON_REQUIRED = (
    "SLACK_SIGNING_SECRET",
    "MANAGER_CHANNEL_ID",
    "PUBLIC_BASE_URL",
    "INVITE_SECRET",
    "SMTP_HOST",
    "SMTP_FROM",
)


def serve_required(settings: Settings) -> tuple[str, ...]:
    """What `serve` needs: a bot token in single-workspace mode; in distributed mode the tokens
    come from installations, and VENDOR_TEAM_ID says which one is the vendor's."""
    if settings.distributed:
        return ("SLACK_CLIENT_ID", "SLACK_CLIENT_SECRET", "VENDOR_TEAM_ID", *COMMON_REQUIRED)
    return ("SLACK_BOT_TOKEN", *COMMON_REQUIRED)


def socket_required(settings: Settings) -> tuple[str, ...]:
    return (*serve_required(settings), "SLACK_APP_TOKEN")
