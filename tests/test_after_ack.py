"""`after_ack`: the listener acks, the work runs on the pool, and over HTTP it waits until the
answer to Slack has been written."""

from __future__ import annotations

import threading
import time
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


# --- answering: the answer in the ack when it is ready in time --------------------------------


class _CommandArgs:
    """What Bolt hands a listener that asks for `args`, for a slash command."""

    def __init__(self) -> None:
        self.acked: tuple[Any, ...] | None = None
        self.body = {"command": "/preregister", "user_id": "U1"}
        self.posted: list[dict[str, Any]] = []
        self.respond = self.posted.append

    def ack(self, *message: Any) -> None:
        self.acked = message


def test_an_answer_ready_in_time_is_the_acks_body(after_ack: AfterAck) -> None:
    args = _CommandArgs()

    @after_ack.answering
    def work(respond: Any) -> None:
        respond({"text": "the list"})

    work(args)
    assert args.acked == ({"text": "the list"},)
    assert args.posted == []


def test_a_late_answer_is_acked_empty_and_posted_once_the_ack_is_written(
    after_ack: AfterAck,
) -> None:
    after_ack.budget = 0.1
    args = _CommandArgs()
    go, done = threading.Event(), threading.Event()

    @after_ack.answering
    def work(respond: Any) -> None:
        go.wait(5)
        respond({"text": "late"})
        respond({"text": "and more"})
        done.set()

    with after_ack.holding() as held:
        work(args)
        assert args.acked == ()
    go.set()
    assert not done.wait(0.3) and args.posted == []  # the ack is not written yet
    held.release()
    assert done.wait(5)
    assert args.posted == [{"text": "late"}, {"text": "and more"}]


def test_a_failure_in_time_is_told_in_the_ack(after_ack: AfterAck) -> None:
    args = _CommandArgs()
    seen: list[BaseException] = []

    def explain(error: BaseException, body: dict[str, Any]) -> dict[str, Any]:
        seen.append(error)
        return {"text": "busy, try again"}

    after_ack.explain = explain

    @after_ack.answering
    def work(respond: Any) -> None:
        raise RuntimeError("the database is busy")

    work(args)
    assert args.acked == ({"text": "busy, try again"},)
    assert [str(e) for e in seen] == ["the database is busy"]


def test_work_that_says_nothing_is_acked_empty_at_once(after_ack: AfterAck) -> None:
    after_ack.budget = 5.0
    args = _CommandArgs()

    @after_ack.answering
    def work(respond: Any) -> None:
        pass

    started = time.monotonic()
    work(args)
    assert args.acked == () and time.monotonic() - started < 1.0
