"""What the processes count, for `GET /metrics` (bot/web/metrics.py serves them).

`serve` runs two processes (the web process and its background worker), so prometheus_client
runs in its multiprocess mode there: each process writes its counters to files in
PROMETHEUS_MULTIPROC_DIR, which bot/entry/observability.py sets before this module is first
imported, and the web process adds them up when scraped. What the database holds (outbox
depth, reviews, preregistrations) is read when scraped instead, by the web process alone.

Label values come from a fixed set or from ids the app chose (Slack methods, notice kinds,
action and callback ids), never from what a user typed.
"""

from __future__ import annotations

from prometheus_client import Counter, Histogram

SLACK_REQUESTS = Histogram(
    "prereg_slack_request_seconds",
    "Slack requests answered (count) and the time to answer them, by surface and status class",
    ["surface", "outcome"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 3.0, 5.0, 10.0),
)
DELIVERIES = Counter(
    "prereg_deliveries",
    "Outbox notices attempted, by kind and outcome (sent, retried, failed, paced)",
    ["kind", "outcome"],
)
SLACK_RATE_LIMITED = Counter(
    "prereg_slack_rate_limited", "Web API calls Slack answered 429 (rate limited)", ["method"]
)
SLACK_PACED = Counter(
    "prereg_slack_paced",
    "Web API calls held back by the app's own pacing (deferred or waited for)",
    ["method"],
)
EMAILS = Counter("prereg_emails", "Invitation emails handed to SMTP, by outcome", ["outcome"])
SWEEP_SECONDS = Histogram(
    "prereg_sweep_duration_seconds",
    "How long one run of the scheduled sweep took",
    buckets=(0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0),
)
