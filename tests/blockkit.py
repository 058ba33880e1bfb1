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


PLACEHOLDER_TEXTS = {"", "x", "message", "text", "blocks", "..."}


def buttons(obj: Any) -> list[dict[str, Any]]:
    """Every button in a message, view or block list, wherever it sits."""
    if isinstance(obj, dict):
        found = [obj] if obj.get("type") == "button" else []
        return found + [b for v in obj.values() for b in buttons(v)]
    if isinstance(obj, list):
        return [b for v in obj for b in buttons(v)]
    return []


def images(obj: Any) -> list[dict[str, Any]]:
    if isinstance(obj, dict):
        found = [obj] if obj.get("type") == "image" else []
        return found + [i for v in obj.values() for i in images(v)]
    if isinstance(obj, list):
        return [i for v in obj for i in images(v)]
    return []


def accessibility_problems(
    surface: dict[str, Any], self_describing: set[str], message: bool
) -> list[str]:
    """What a screen reader or a notification would miss: a message without a meaningful
    top-level `text`; a button whose text does not say what it acts on (not in
    `self_describing`) and has no `accessibility_label`, or one that only repeats the text;
    an image without alt text."""
    problems = []
    if message:
        text = surface.get("text")
        if not isinstance(text, str) or text.strip().lower() in PLACEHOLDER_TEXTS:
            problems.append(f"no meaningful top-level text: {text!r}")
    for b in buttons(surface.get("blocks") or []):
        shown = b["text"]["text"]
        label = b.get("accessibility_label")
        if shown not in self_describing and (not label or label == shown):
            problems.append(f"button {shown!r} does not say what it acts on")
    for image in images(surface.get("blocks") or []):
        if not (image.get("alt_text") or "").strip():
            problems.append(f"image {image.get('image_url')!r} without alt_text")
    return problems
