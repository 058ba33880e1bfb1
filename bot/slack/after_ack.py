"""Ack first, work after: listeners whose only answer to Slack is an empty ack.

The Bolt app runs with `process_before_response=True`, so Slack gets its HTTP answer the moment a
listener returns. `after_ack` makes a listener that acks at once and hands the work (database,
Web API calls, replies to response_url) to a thread pool, with the arguments it asked for.
Over HTTP the work is held until the server has written the ack (`AfterAck.holding`, used by
bot/web/slack_endpoint.py), so that it does not compete with the ack it follows.

`after_ack.answering` makes a listener whose answer goes in the ack when it is ready in time:
the work starts on the pool at once and its first reply (`respond`) becomes the ack's body, which
Slack shows as the reply; if it is not ready within `budget`, the listener acks empty and the
reply goes to response_url when ready, once the ack has been written (as with `after_ack`).

Bolt's default runner instead starts each listener on a pool and polls every 10 ms for its
ack, which put ~10 ms on every ack; its lazy listeners deep-copy the whole request, which cost
~1 ms of CPU each (bench/ack_latency.py, docs/performance.md).
"""

from __future__ import annotations

import contextvars
import inspect
import logging
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Executor, ThreadPoolExecutor
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from slack_bolt.kwargs_injection.args import Args

log = logging.getLogger(__name__)

Reporter = Callable[[BaseException, dict[str, Any]], None]

WORK_THREADS = 32
"""Work after the ack waits on Slack and the database, so many threads, little CPU each."""

ANSWER_BUDGET = 1.5
"""Seconds a listener waits for an answer to put in its ack: well inside Slack's 3 s, and past
the request path's lock wait on PostgreSQL (1 s, store/db.py), so "busy" is told in the ack."""

ACK_WRITE_WAIT = 5.0
"""A reply after the ack waits at most this long for the ack to be written."""


class Held:
    """Work a request's listeners handed over, waiting until Slack has its answer."""

    def __init__(self, executor: Executor) -> None:
        self._executor = executor
        self._jobs: list[tuple[Any, ...]] = []
        self._signals: list[threading.Event] = []

    def add(self, *job: Any) -> None:
        self._jobs.append(job)

    def signal(self, written: threading.Event) -> None:
        """Set `written` on release (no thread needed)."""
        self._signals.append(written)

    def release(self) -> None:
        jobs, self._jobs = self._jobs, []
        signals, self._signals = self._signals, []
        for written in signals:
            written.set()
        for job in jobs:
            self._executor.submit(*job)


class _Reply:
    """The `respond` of work that answers in the ack: its first message is taken for the ack
    while the listener still waits; after that (too late, or a second message) messages go to
    response_url once the ack has been written. One lock decides between "in the ack" and
    "too late", so a message is never both, nor lost."""

    def __init__(self, respond: Callable[..., Any] | None) -> None:
        self._respond = respond
        self._lock = threading.Lock()
        self._decided = threading.Event()
        self.written = threading.Event()
        """Set once Slack's answer has been written."""
        self._message: dict[str, Any] | None = None
        self._waiting = True

    def __call__(self, text: str | dict[str, Any] = "", **fields: Any) -> Any:
        message = text if isinstance(text, dict) else {"text": text, **fields}
        with self._lock:
            if self._waiting:
                self._waiting = False
                self._message = message
                self._decided.set()
                return None
        self.written.wait(ACK_WRITE_WAIT)
        if self._respond is None:
            raise ValueError("no response_url to post a late reply to")
        return self._respond(message)

    def finished(self) -> None:
        """The work ended: the listener stops waiting, with or without a message."""
        with self._lock:
            self._waiting = False
            self._decided.set()

    def for_ack(self, budget: float) -> dict[str, Any] | None:
        """The message to put in the ack, if one comes within `budget` seconds; after this,
        every message goes to response_url."""
        self._decided.wait(budget)
        with self._lock:
            self._waiting = False
            return self._message


def _log_only(error: BaseException, body: dict[str, Any]) -> None:
    log.error("unhandled error in work after the ack", exc_info=error)


def _named_like(
    listener: Callable[[Args], None], work: Callable[..., None]
) -> Callable[[Args], None]:
    """The listener under its work's name and doc, for Bolt's logs. Not functools.wraps: its
    `__wrapped__` would make Bolt read the work's parameters instead of `args`."""
    listener.__name__ = work.__name__
    listener.__qualname__ = work.__qualname__
    listener.__doc__ = work.__doc__
    return listener


class AfterAck:
    def __init__(self, executor: Executor) -> None:
        self.executor = executor
        self.report: Reporter = _log_only
        """Told of a failure after the ack; handlers/errors.py sets the one that tells the user."""
        self.explain: Callable[[BaseException, dict[str, Any]], dict[str, Any] | None] = _log_only
        """Logs a failure of work that answers in the ack and returns the message telling the
        user, if any (handlers/errors.py sets it: "busy, try again" for a busy database)."""
        self.prepare: Callable[[Any], None] = lambda _context: None
        """Run with the request's Bolt context before the work (the composition root sets it:
        the reader's language, asked of Slack once per person)."""
        self.budget = ANSWER_BUDGET
        self._local = threading.local()

    def __call__(self, work: Callable[..., None]) -> Callable[[Args], None]:
        names = list(inspect.signature(work).parameters)

        # Bolt injects what a listener's parameters name; `args` asks for all of them.
        def listener(args: Args) -> None:
            args.ack()
            kwargs = {name: getattr(args, name) for name in names}
            # The work runs in a copy of this request's context: its log lines keep its ids,
            # and what middleware set for it (the reader's language) holds on the pool's thread.
            run = contextvars.copy_context().run
            job = (run, self._run, work, kwargs, args.body, getattr(args, "context", None))
            held: Held | None = getattr(self._local, "held", None)
            if held is None:
                self.executor.submit(*job)
            else:
                held.add(*job)

        return _named_like(listener, work)

    def answering(self, work: Callable[..., None]) -> Callable[[Args], None]:
        """A listener whose work's first `respond` goes in the ack if it comes within
        `self.budget` seconds, else to response_url when ready (see the module's doc)."""
        names = list(inspect.signature(work).parameters)

        def listener(args: Args) -> None:
            kwargs = {name: getattr(args, name) for name in names}
            reply = _Reply(getattr(args, "respond", None))
            if "respond" in kwargs:
                kwargs["respond"] = reply
            run = contextvars.copy_context().run
            context = getattr(args, "context", None)
            self.executor.submit(run, self._answer, work, kwargs, args.body, context, reply)
            message = reply.for_ack(self.budget)
            if message is None:
                args.ack()
            else:
                args.ack(message)
            held: Held | None = getattr(self._local, "held", None)
            if held is None:
                reply.written.set()
            else:
                held.signal(reply.written)

        return _named_like(listener, work)

    @contextmanager
    def holding(self) -> Iterator[Held]:
        """Within this block, work handed over on this thread waits in the Held until the
        caller releases it: the web app does so once the answer to Slack has been written, so
        the work does not compete with writing it. If the block fails, the work starts at once."""
        held = self._local.held = Held(self.executor)
        try:
            yield held
        except BaseException:
            held.release()
            raise
        finally:
            self._local.held = None

    def _run(
        self, work: Callable[..., None], kwargs: dict[str, Any], body: dict[str, Any], context: Any
    ) -> None:
        """Failures after the ack cannot change Slack's answer: log them and tell the user."""
        try:
            self.prepare(context)
            work(**kwargs)
        except Exception as error:
            self.report(error, body)

    def _answer(
        self,
        work: Callable[..., None],
        kwargs: dict[str, Any],
        body: dict[str, Any],
        context: Any,
        reply: _Reply,
    ) -> None:
        """A failure is told the same way as the answer: in the ack if still in time."""
        try:
            self.prepare(context)
            work(**kwargs)
        except Exception as error:
            message = self.explain(error, body)
            if message is not None:
                try:
                    reply(message)
                except Exception:  # noqa: BLE001 - telling the user is best effort
                    log.warning("could not tell the user about the error", exc_info=True)
        finally:
            reply.finished()


after_ack = AfterAck(ThreadPoolExecutor(WORK_THREADS, thread_name_prefix="after-ack"))
