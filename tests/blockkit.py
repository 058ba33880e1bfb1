"""Checks every view and message the app builds against Block Kit's limits, with slack-sdk's
own models (they validate lengths and counts when `to_dict()` runs) plus the limits the models
do not count (blocks per message or view, private_metadata)."""

from __future__ import annotations

import json
from typing import Any

from slack_sdk.models.blocks import Block
from slack_sdk.models.views import View

MAX_MESSAGE_BLOCKS = 50
MAX_VIEW_BLOCKS = 100
MAX_PRIVATE_METADATA = 3000
MAX_TEXT = 40_000


def assert_valid_blocks(blocks: list[dict[str, Any]]) -> None:
    parsed = Block.parse_all(blocks)
    assert len(parsed) == len(blocks), "a block was not recognised by slack-sdk"
    for block, original in zip(parsed, blocks, strict=True):
        assert block is not None, f"unknown block: {original}"
        block.to_dict()  # raises SlackObjectFormationError on a broken limit


def assert_valid_message(message: dict[str, Any]) -> None:
    """A chat.postMessage / chat.update / response_url body."""
    blocks = message.get("blocks") or []
    if isinstance(blocks, str):
        blocks = json.loads(blocks)
    assert len(blocks) <= MAX_MESSAGE_BLOCKS, f"{len(blocks)} blocks in one message"
    assert_valid_blocks(blocks)
    text = message.get("text") or ""
    assert text or blocks, "a message needs text or blocks"
    assert len(text) <= MAX_TEXT


def assert_valid_view(view: dict[str, Any] | str) -> None:
    if isinstance(view, str):
        view = json.loads(view)
    assert len(view.get("blocks", [])) <= MAX_VIEW_BLOCKS, "too many blocks in a view"
    assert len(view.get("private_metadata") or "") <= MAX_PRIVATE_METADATA
    View(**view).to_dict()
    assert_valid_blocks(view.get("blocks", []))
