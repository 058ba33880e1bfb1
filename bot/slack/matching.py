"""Bolt's listener matching without its per-call argument building.

Bolt tries each registered listener in order until one matches, and each of its built-in
matchers (`app.command`, `app.action`, `app.event`, ...) is a function of the request's body
only, called through `build_required_kwargs`: a dict of every argument a listener could ask
for (payload views, `say`, `respond`, ...) built for each listener tried. With ~25 listeners,
App Home opened tried 21 of them: ~17% of the web process's CPU for that request under
cProfile (docs/performance.md, eighth session). `direct_body_matchers` gives each such matcher
its body directly: the same function on the same body, so the same answer.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from slack_bolt.listener_matcher import ListenerMatcher
from slack_bolt.listener_matcher.builtins import BuiltinListenerMatcher

if TYPE_CHECKING:
    from collections.abc import Callable

    from slack_bolt import App, BoltRequest, BoltResponse


class BodyMatcher(ListenerMatcher):
    """A built-in matcher's function, called with the request's body alone."""

    def __init__(self, func: Callable[..., bool]) -> None:
        self.func = func

    def matches(self, req: BoltRequest, resp: BoltResponse) -> bool:
        return self.func(body=req.body)


def direct_body_matchers(app: App) -> int:
    """Replaces each built-in matcher of `app`'s listeners that asks for `body` alone (all of
    Bolt's do); any other matcher is left as it is. Returns how many were replaced. Call it
    once the listeners are registered, before the app takes requests."""
    replaced = 0
    listeners: list[Any] = getattr(app, "_listeners", [])
    for listener in listeners:
        matchers = list(listener.matchers)
        for i, matcher in enumerate(matchers):
            if type(matcher) is BuiltinListenerMatcher and list(matcher.arg_names) == ["body"]:
                matchers[i] = BodyMatcher(matcher.func)
                replaced += 1
        listener.matchers = matchers
    return replaced
