"""Ack first, work after: listeners whose only answer to Slack is an empty ack.

The Bolt app runs with `process_before_response=True`, so Slack gets its HTTP answer the moment a
listener returns. `after_ack` makes a listener that acks at once and hands the work (database,
Web API calls, replies to response_url) to a thread pool, with the arguments it asked for.
Over HTTP the work is held until the server has written the ack (`AfterAck.holding`, used by
bot/web/slack_endpoint.py), so that it does not compete with the ack it follows.

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


class Held:
    """Work a request's listeners handed over, waiting until Slack has its answer."""

    def __init__(self, executor: Executor) -> None:
        self._executor = executor
        self._jobs: list[tuple[Any, ...]] = []

    def add(self, *job: Any) -> None:
        self._jobs.append(job)

    def release(self) -> None:
        jobs, self._jobs = self._jobs, []
        for job in jobs:
            self._executor.submit(*job)


def _log_only(error: BaseException, body: dict[str, Any]) -> None:
    log.error("unhandled error in work after the ack", exc_info=error)


class AfterAck:
    def __init__(self, executor: Executor) -> None:
        self.executor = executor
        self.report: Reporter = _log_only
        """Told of a failure after the ack; handlers/errors.py sets the one that tells the user."""
        self.prepare: Callable[[Any], None] = lambda _context: None
        """Run with the request's Bolt context before the work (the composition root sets it:
        the reader's language, asked of Slack once per person)."""
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

        listener.__name__ = work.__name__
        listener.__qualname__ = work.__qualname__
        listener.__doc__ = work.__doc__
        return listener

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


after_ack = AfterAck(ThreadPoolExecutor(WORK_THREADS, thread_name_prefix="after-ack"))
