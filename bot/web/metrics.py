"""`GET /metrics`: the Prometheus text format, behind a bearer token.

With METRICS_TOKEN unset the route answers 404, as if it were not there: nothing about the
app leaks to whoever can reach it, and a scraper set up without the token fails loudly. With
it set, a scrape without `Authorization: Bearer <METRICS_TOKEN>` gets 401.

The counters of both processes of `serve` (this web process and the worker) are read from
PROMETHEUS_MULTIPROC_DIR (bot/metrics.py); what the database holds is read now, with three
cheap grouped queries (store/deliveries.py, store/stats.py).
"""

from __future__ import annotations

import hmac
import logging
import os
from collections.abc import Iterator

from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector

from bot.clock import Clock
from store import deliveries, stats
from store.db import Database

log = logging.getLogger(__name__)


class StateCollector:
    """What the database holds right now, collected when scraped."""

    def __init__(self, db: Database, clock: Clock) -> None:
        self._db = db
        self._clock = clock

    def collect(self) -> Iterator[Metric]:
        now = self._clock.now()
        depth = GaugeMetricFamily(
            "prereg_outbox_depth", "Notices not yet sent (pending), by kind", labels=["kind"]
        )
        age = GaugeMetricFamily(
            "prereg_outbox_oldest_due_age_seconds",
            "How long the oldest notice due now has been waiting, by kind",
            labels=["kind"],
        )
        by_status = GaugeMetricFamily(
            "prereg_preregistrations", "Preregistrations by status", labels=["status"]
        )
        with self._db.session() as s:
            outbox = deliveries.outbox_summary(s, now=now)
            counts = stats.preregistrations_by_status(s)
            reviews = stats.reviews(s, now=now)
        for row in outbox:
            depth.add_metric([row.kind], row.depth)
            waited = (now - row.oldest_due_at).total_seconds() if row.oldest_due_at else 0.0
            age.add_metric([row.kind], max(0.0, waited))
        for status, count in sorted(counts.items()):
            by_status.add_metric([status], count)
        yield depth
        yield age
        yield by_status
        yield GaugeMetricFamily("prereg_reviews_open", "Reviews not yet decided", reviews.open)
        yield GaugeMetricFamily(
            "prereg_reviews_overdue", "Reviews past their deadline (R3)", reviews.overdue
        )


class _ThisProcess:
    """The default registry's metrics, when no multiprocess directory is set."""

    def collect(self) -> Iterator[Metric]:
        yield from REGISTRY.collect()


class MetricsPage:
    def __init__(self, token: str | None, state: StateCollector) -> None:
        self._token = token
        self._state = state

    @property
    def enabled(self) -> bool:
        return bool(self._token)

    def authorised(self, header: str | None) -> bool:
        scheme, _, given = (header or "").partition(" ")
        expected = self._token or ""
        return (
            bool(expected)
            and scheme.lower() == "bearer"
            and hmac.compare_digest(given.strip().encode(), expected.encode())
        )

    def render(self) -> tuple[bytes, str]:
        registry = CollectorRegistry(auto_describe=False)
        if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            MultiProcessCollector(registry)
        else:
            registry.register(_ThisProcess())  # type: ignore[arg-type]
        registry.register(self._state)  # type: ignore[arg-type]
        return generate_latest(registry), CONTENT_TYPE_LATEST
