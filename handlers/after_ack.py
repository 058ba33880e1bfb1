"""Ack first, work after: listeners whose only answer to Slack is an empty ack.

The Bolt app runs with `process_before_response=True`, so Slack gets its HTTP answer the moment a
listener returns. `after_ack` makes a listener that acks at once and hands the work (database,
Web API calls, replies to response_url) to a thread pool, with the arguments it asked for.

Bolt's default runner instead starts each listener on a pool and polls every 10 ms for its
ack, which put ~10 ms on every ack; its lazy listeners deep-copy the whole request, which cost
~1 ms of CPU each (bench/ack_latency.py, docs/performance.md).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from concurrent.futures import Executor, ThreadPoolExecutor
from typing import Any

from slack_bolt.kwargs_injection.args import Args

from handlers.errors import report

WORK_THREADS = 32
"""Work after the ack waits on Slack and the database, so many threads, little CPU each."""


class AfterAck:
    def __init__(self, executor: Executor) -> None:
        self.executor = executor

    def __call__(self, work: Callable[..., None]) -> Callable[[Args], None]:
        names = list(inspect.signature(work).parameters)

        # Bolt injects what a listener's parameters name; `args` asks for all of them.
        def listener(args: Args) -> None:
            args.ack()
            kwargs = {name: getattr(args, name) for name in names}
            self.executor.submit(self._run, work, kwargs, args.body)

        listener.__name__ = work.__name__
        listener.__qualname__ = work.__qualname__
        listener.__doc__ = work.__doc__
        return listener

    @staticmethod
    def _run(work: Callable[..., None], kwargs: dict[str, Any], body: dict[str, Any]) -> None:
        """Failures after the ack cannot change Slack's answer: log them and tell the user."""
        try:
            work(**kwargs)
        except Exception as error:
            report(error, body)


after_ack = AfterAck(ThreadPoolExecutor(WORK_THREADS, thread_name_prefix="after-ack"))
