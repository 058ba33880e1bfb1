"""`after_ack`: the listener acks, the work runs on the pool, and over HTTP it waits until the
answer to Slack has been written."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from bot.slack.after_ack import AfterAck


class _Args:
    """What Bolt hands a listener that asks for `args`."""

    def __init__(self, text: str) -> None:
        self.acked = False
        self.body = {"text": text}
        self.text = text

    def ack(self) -> None:
        self.acked = True


@pytest.fixture
def after_ack() -> AfterAck:
    return AfterAck(ThreadPoolExecutor(2))


def _listener(after_ack: AfterAck, done: list[str], ran: threading.Event) -> Any:
    @after_ack
    def work(text: str) -> None:
        done.append(text)
        ran.set()

    return work


def test_outside_a_request_the_work_starts_at_once(after_ack: AfterAck) -> None:
    done: list[str] = []
    ran = threading.Event()
    args = _Args("now")
    _listener(after_ack, done, ran)(args)
    assert args.acked
    assert ran.wait(5) and done == ["now"]


def test_held_work_waits_for_the_release(after_ack: AfterAck) -> None:
    done: list[str] = []
    ran = threading.Event()
    listener = _listener(after_ack, done, ran)
    with after_ack.holding() as held:
        args = _Args("later")
        listener(args)
    assert args.acked
    assert not ran.wait(0.2) and done == []
    held.release()
    assert ran.wait(5) and done == ["later"]
    listener(_Args("next request, not held"))
    after_ack.executor.shutdown(wait=True)
    assert done == ["later", "next request, not held"]


def test_held_work_starts_if_the_request_fails(after_ack: AfterAck) -> None:
    done: list[str] = []
    ran = threading.Event()
    listener = _listener(after_ack, done, ran)
    with pytest.raises(RuntimeError), after_ack.holding():
        listener(_Args("kept"))
        raise RuntimeError("the web app failed after the ack")
    assert ran.wait(5) and done == ["kept"]
