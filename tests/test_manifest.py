"""manifest.yml against Slack's published manifest schema (../shared/slack/, see its README)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from jsonschema import Draft7Validator

from tests.conftest import IN_CI

ROOT = Path(__file__).parents[1]
SCHEMA = Path(__file__).parents[2] / "shared" / "slack" / "manifest.schema.1.0.0.json"


@pytest.fixture(scope="module")
def manifest() -> dict:
    return yaml.safe_load((ROOT / "manifest.yml").read_text())


@pytest.fixture(scope="module")
def validator() -> Draft7Validator:
    if not SCHEMA.exists():
        if IN_CI:
            pytest.fail(f"CI needs Slack's manifest schema at {SCHEMA}")
        pytest.skip(f"Slack's manifest schema not found at {SCHEMA}")
    schema = json.loads(SCHEMA.read_text())
    Draft7Validator.check_schema(schema)
    return Draft7Validator(schema)


def test_manifest_validates_against_slacks_schema(manifest, validator):
    errors = sorted(validator.iter_errors(manifest), key=lambda e: list(e.path))
    assert not errors, "\n".join(f"{list(e.path)}: {e.message}" for e in errors)


def test_schema_rejects_a_broken_manifest(manifest, validator):
    broken = json.loads(json.dumps(manifest))
    broken["features"]["slash_commands"][0]["command"] = "preregister"  # no leading slash
    broken["display_information"]["surprise"] = True
    assert len(list(validator.iter_errors(broken))) >= 2


def test_manifest_has_the_contract_surface(manifest):
    command = manifest["features"]["slash_commands"][0]
    assert command["command"] == "/preregister"
    assert command["description"] and command["usage_hint"]
    urls = {
        command["url"],
        manifest["settings"]["interactivity"]["request_url"],
        manifest["settings"]["event_subscriptions"]["request_url"],
    }
    assert urls == {"https://YOUR-HOST/slack/events"}
    assert manifest["settings"]["interactivity"]["is_enabled"] is True
    assert manifest["features"]["app_home"]["home_tab_enabled"] is True
    assert manifest["settings"]["event_subscriptions"]["bot_events"][0] == "app_home_opened"
    assert set(manifest["oauth_config"]["scopes"]["bot"]) == {
        "commands",
        "chat:write",
        "im:write",
        "users:read",
        "files:write",
    }


def test_oauth_asks_for_the_scopes_the_manifest_declares(manifest):
    """Distributed mode installs through /slack/install with bot/slack/oauth.py's scopes."""
    from bot.slack.oauth import BOT_SCOPES, REDIRECT_PATH

    assert sorted(manifest["oauth_config"]["scopes"]["bot"]) == sorted(BOT_SCOPES)
    assert manifest["oauth_config"]["redirect_urls"] == [f"https://YOUR-HOST{REDIRECT_PATH}"]
    assert manifest["settings"]["org_deploy_enabled"] is True
    assert {"app_uninstalled", "tokens_revoked"} <= set(
        manifest["settings"]["event_subscriptions"]["bot_events"]
    )
