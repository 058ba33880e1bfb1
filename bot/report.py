"""The weekly program report: preregistrations by status per week, conversion preregistered ->
associated, and reviews decided within their two working days or late. `report_data` counts;
`render_png` draws it (matplotlib, Agg, imported here only, so `serve` never loads it) and keeps
the counts it drew in the PNG's text chunk `prereg-report` (JSON), for whoever must check it."""

from __future__ import annotations

import io
import json
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime, timedelta

from babel.numbers import format_percent

from bot.i18n import BABEL_LOCALES, N_, _, language
from store import desk as desk_store
from store.db import Database
from store.models import ALL_STATUSES

PNG_KEY = "prereg-report"
STATUS_COLOURS = {
    "under_review": "#f2c14e",
    "action_required": "#9b5de5",
    "preregistered": "#4d96ff",
    "associated": "#2a9d8f",
    "rejected": "#e63946",
    "expired": "#8d99ae",
    "deleted": "#6c584c",
}
CLAIMED_COLOUR = "#1d3557"
CONVERTED_COLOUR = "#52b788"
ON_TIME_COLOUR = "#06d6a0"
LATE_COLOUR = "#ef476f"


@dataclass(frozen=True)
class ReportData:
    weeks: list[str]
    """The Monday of each week, oldest first (ISO dates)."""
    by_status: dict[str, list[int]]
    """Requests submitted in each week, by their status now."""
    claimed: list[int]
    """Of those, the ones that became preregistered (their 15 days started)."""
    associated: list[int]
    on_time: list[int]
    """Reviews decided in each week within their two working days."""
    late: list[int]

    @property
    def conversion(self) -> float | None:
        claimed = sum(self.claimed)
        return sum(self.associated) / claimed if claimed else None

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)


def week_start(at: datetime) -> date:
    d = at.astimezone(UTC).date()
    return d - timedelta(days=d.weekday())


def report_data(db: Database, now: datetime, weeks: int = 12) -> ReportData:
    first = week_start(now) - timedelta(weeks=weeks - 1)
    starts = [first + timedelta(weeks=i) for i in range(weeks)]
    index = {d: i for i, d in enumerate(starts)}
    by_status = {status: [0] * weeks for status in ALL_STATUSES}
    claimed, associated, on_time, late = ([0] * weeks for _ in range(4))
    since = datetime(first.year, first.month, first.day, tzinfo=UTC)
    with db.session() as s:
        rows = desk_store.report_rows(s, since)
    for status, submitted, expires, assoc, decided, decided_by, due in rows:
        i = index.get(week_start(submitted))
        if i is not None:
            by_status.setdefault(status, [0] * weeks)[i] += 1
            claimed[i] += expires is not None or assoc is not None
            associated[i] += assoc is not None
        j = index.get(week_start(decided)) if decided is not None else None
        if j is not None and decided_by and due is not None:
            if decided <= due:
                on_time[j] += 1
            else:
                late[j] += 1
    return ReportData(
        [d.isoformat() for d in starts], by_status, claimed, associated, on_time, late
    )


STATUS_WORDS = {
    "under_review": N_("Under review"),
    "action_required": N_("Action required"),
    "preregistered": N_("Preregistered"),
    "associated": N_("Associated"),
    "rejected": N_("Rejected"),
    "expired": N_("Expired"),
    "deleted": N_("Deleted"),
}


def _status_word(status: str) -> str:
    word = STATUS_WORDS.get(status)
    return _(word).lower() if word else status.replace("_", " ")


def summary_text(data: ReportData) -> str:
    """The few lines posted with the chart (plain facts, no user text), in the language of the
    current context (the managers' channel)."""
    total = sum(sum(v) for v in data.by_status.values())
    conversion = (
        format_percent(data.conversion, locale=BABEL_LOCALES[language()])
        if data.conversion is not None
        else "n/a"
    )
    decided = sum(data.on_time) + sum(data.late)
    parts = ", ".join(
        f"{sum(v)} {_status_word(status)}" for status, v in data.by_status.items() if sum(v)
    )
    requests = _("{n} preregistration requests").format(n=total)
    lines = [
        "*"
        + _("Program report, weeks of {first} to {last}").format(
            first=data.weeks[0], last=data.weeks[-1]
        )
        + "*",
        "• " + requests + (_(": {parts}").format(parts=parts) if parts else ""),
        "• "
        + _("Conversion preregistered → associated: {rate} ({associated} of {claimed})").format(
            rate=conversion, associated=sum(data.associated), claimed=sum(data.claimed)
        ),
        "• "
        + _("Reviews decided within two working days: {on_time} of {decided}").format(
            on_time=sum(data.on_time), decided=decided
        ),
    ]
    return "\n".join(lines)


def render_png(data: ReportData) -> bytes:
    """Three charts in one PNG, solid colours (no anti-aliasing on bars, so they can be counted)."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    labels = [w[5:] for w in data.weeks]
    xs = list(range(len(labels)))
    fig = Figure(figsize=(11, 10), dpi=80)
    top, middle, bottom = fig.subplots(3, 1)
    base = [0] * len(xs)
    for status, values in data.by_status.items():
        colour = STATUS_COLOURS.get(status, "#444444")
        top.bar(xs, values, bottom=base, color=colour, label=status, antialiased=False)
        base = [b + v for b, v in zip(base, values, strict=True)]
    top.set_title("Preregistration requests by week submitted (status now)")
    top.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    width = 0.4
    middle.bar(
        [x - width / 2 for x in xs],
        data.claimed,
        width,
        color=CLAIMED_COLOUR,
        label="preregistered",
        antialiased=False,
    )
    middle.bar(
        [x + width / 2 for x in xs],
        data.associated,
        width,
        color=CONVERTED_COLOUR,
        label="associated",
        antialiased=False,
    )
    conversion = f"{data.conversion:.0%}" if data.conversion is not None else "n/a"
    middle.set_title(f"Conversion preregistered → associated: {conversion}")
    middle.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    bottom.bar(
        [x - width / 2 for x in xs],
        data.on_time,
        width,
        color=ON_TIME_COLOUR,
        label="within 2 working days",
        antialiased=False,
    )
    bottom.bar(
        [x + width / 2 for x in xs],
        data.late,
        width,
        color=LATE_COLOUR,
        label="late",
        antialiased=False,
    )
    bottom.set_title("Reviews decided")
    bottom.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    from matplotlib.ticker import MaxNLocator

    for ax in (top, middle, bottom):
        ax.set_xticks(xs, labels, fontsize=7)
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    fig.tight_layout()
    out = io.BytesIO()
    fig.savefig(out, format="png", metadata={PNG_KEY: data.to_json()})
    return out.getvalue()
