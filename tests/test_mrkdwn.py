from datetime import UTC, datetime

from handlers.mrkdwn import escape, format_when, link


def test_escape_defuses_mentions_and_links():
    assert escape("<!channel>") == "&lt;!channel&gt;"
    assert escape("<https://evil.example|click>") == "&lt;https://evil.example|click&gt;"
    assert escape("R&D") == "R&amp;D"


def test_link_label_cannot_break_out():
    assert link("https://x.example/a", "a|<b>") == "<https://x.example/a|a/&lt;b&gt;>"


def test_format_when_uses_the_readers_zone_and_falls_back_to_utc():
    at = datetime(2026, 12, 8, 9, 0, tzinfo=UTC)
    assert format_when(at, "Europe/Berlin") == "Tue 8 Dec 2026, 10:00 CET"
    assert format_when(at, "Not/AZone") == "Tue 8 Dec 2026, 09:00 UTC"
    assert format_when(at, None) == "Tue 8 Dec 2026, 09:00 UTC"
