"""The weekly program report: preregistrations by status per week, conversion preregistered ->
associated, and reviews decided within their two working days or late. `report_data` counts;
`render_png` draws it (matplotlib, Agg, imported here only, so `serve` never loads it) and keeps
the counts it drew in the PNG's text chunk `prereg-report` (JSON), for whoever must check it."""

from __future__ import annotations

import io
import json
import logging
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime, timedelta

from babel.numbers import format_percent

from bot.i18n import BABEL_LOCALES, _, language, use
from bot.rules import status_word
from store import desk as desk_store
from store.db import Database
from store.models import ALL_STATUSES

log = logging.getLogger(__name__)

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


def summary_text(data: ReportData) -> str:
    """The few lines posted with the chart (plain facts, no user text), in the language of the
    current context (the managers' channel)."""
    total = sum(sum(v) for v in data.by_status.values())
    conversion = (
        format_percent(data.conversion, locale=BABEL_LOCALES[language()])
        if data.conversion is not None
        else _("none preregistered yet")
    )
    decided = sum(data.on_time) + sum(data.late)
    parts = ", ".join(
        f"{sum(v)} {status_word(status)}" for status, v in data.by_status.items() if sum(v)
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


CJK_FONTS = ("WenQuanYi Micro Hei", "Noto Sans CJK SC", "Noto Sans SC", "Source Han Sans SC",
             "WenQuanYi Zen Hei", "Droid Sans Fallback")  # fmt: skip
"""Fonts with Chinese glyphs, best first (Debian: fonts-wqy-microhei, installed by .ci/run)."""


def cjk_font() -> str | None:
    """The name of an installed font that draws Chinese, or None. Fonts installed after
    matplotlib cached its list are found on disk and added."""
    from matplotlib import font_manager

    def known() -> str | None:
        names = {f.name for f in font_manager.fontManager.ttflist}
        return next((n for n in CJK_FONTS if n in names), None)

    if (name := known()) is None:
        for path in font_manager.findSystemFonts():
            if any(k in path.lower() for k in ("wqy", "notosanscjk", "sourcehan", "droidsans")):
                font_manager.fontManager.addfont(path)
        name = known()
    return name


def render_png(data: ReportData) -> bytes:
    """Three charts in one PNG, solid colours (no anti-aliasing on bars, so they can be counted),
    titled in the language in use. Chinese needs a font with its glyphs: without one the
    chart's words are English (boxes would say nothing), the posted summary is Chinese still."""
    import matplotlib

    matplotlib.use("Agg")
    font = cjk_font() if language() != "en" else None
    if language() != "en" and font is None:
        log.warning("no font with Chinese glyphs installed: the report chart is in English")
        with use("en"):
            return _draw(data, None)
    return _draw(data, font)


def _draw(data: ReportData, font: str | None) -> bytes:
    from matplotlib import rc_context
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    fonts = {"font.sans-serif": [font, "DejaVu Sans"]} if font else {}
    with rc_context({"font.family": "sans-serif", **fonts}):
        labels = [w[5:] for w in data.weeks]
        xs = list(range(len(labels)))
        fig = Figure(figsize=(11, 10), dpi=80)
        top, middle, bottom = fig.subplots(3, 1)
        base = [0] * len(xs)
        for status, values in data.by_status.items():
            colour = STATUS_COLOURS.get(status, "#444444")
            top.bar(xs, values, bottom=base, color=colour, label=status_word(status),
                    antialiased=False)  # fmt: skip
            base = [b + v for b, v in zip(base, values, strict=True)]
        top.set_title(_("Preregistration requests by week submitted (status now)"))
        width = 0.4
        pairs = (
            (middle, data.claimed, CLAIMED_COLOUR, status_word("preregistered"),
             data.associated, CONVERTED_COLOUR, status_word("associated")),
            (bottom, data.on_time, ON_TIME_COLOUR, _("within 2 working days"),
             data.late, LATE_COLOUR, _("late")),
        )  # fmt: skip
        for ax, left, left_colour, left_label, right, right_colour, right_label in pairs:
            ax.bar([x - width / 2 for x in xs], left, width, color=left_colour, label=left_label,
                   antialiased=False)  # fmt: skip
            ax.bar([x + width / 2 for x in xs], right, width, color=right_colour,
                   label=right_label, antialiased=False)  # fmt: skip
        conversion = (
            format_percent(data.conversion, locale=BABEL_LOCALES[language()])
            if data.conversion is not None
            else _("none preregistered yet")
        )
        middle.set_title(_("Conversion preregistered → associated: {rate}").format(rate=conversion))
        bottom.set_title(_("Reviews decided"))
        for ax in (top, middle, bottom):
            ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))
            ax.set_xticks(xs, labels, fontsize=7)
            ax.yaxis.set_major_locator(MaxNLocator(integer=True))
        fig.tight_layout()
        out = io.BytesIO()
        fig.savefig(out, format="png", metadata={PNG_KEY: data.to_json()})
    return out.getvalue()
