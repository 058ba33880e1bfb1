"""The managers' desk end to end, as managers and partners use it: signed Slack requests to the
running app (SQLite and PostgreSQL), its Web API calls recorded on the fake Slack. Send back for
information and resubmit, the unanswered question's reminder and expiry, similar requests beside
the review, one reviewer per case, the managers' App Home, the weekly report and its chart, and
the races between two people acting at once."""

from __future__ import annotations

import io
import json
import threading
from datetime import UTC, datetime, timedelta

import pytest
from PIL import Image
from sqlalchemy import select

from bot.desk import Desk
from bot.report import PNG_KEY, STATUS_COLOURS
from handlers import views
from handlers.views import desk as desk_views
from store.models import AuditEvent, Preregistration
from tests.blockkit import assert_valid_message, assert_valid_view
from tests.helpers import eventually
from tests.slackapp import MANAGER_CHANNEL
from tests.slackfixtures import (
    MANAGER,
    MEMBER,
    OTHER_MEMBER,
    body_text,
    element,
    modal_values,
)

MANAGER2 = "UMANAGER2"


def message_of(call) -> dict:  # type: ignore[no-untyped-def]
    return {"text": call.args.get("text"), "blocks": call.json_arg("blocks") or []}


@pytest.fixture
def posted(app, direct):
    """A request under review (FR customer, DE partner), posted to the manager channel."""
    direct.partner()
    direct.manager()
    direct.manager(MANAGER2, "eco2@vendor.example")
    response = app.view_submission(
        MEMBER, "preregister", modal_values(email="client@customer.fr", mobile="+33 6 12 34 56 78")
    )
    assert response.json()["response_action"] == "update"
    [row] = direct.service.list_customers(MEMBER).items
    row = eventually(
        lambda: (v := direct.service.view(row.id)).review_message_ts and v, what="review ts"
    )
    return row


def click(app, action_id: str, value: str, user: str, **kw):  # type: ignore[no-untyped-def]
    response = app.block_action(user, action_id, value, channel=MANAGER_CHANNEL, **kw)
    assert response.status_code == 200
    return response


def submit(app, user: str, callback: str, values: dict, meta: str) -> dict:  # type: ignore[no-untyped-def]
    response = app.view_submission(user, callback, values, private_metadata=meta)
    assert response.status_code == 200
    return response.json() if response.content else {}


def text_value(block: str, value: str) -> dict:
    return {block: {views.VALUE_ACTION: {"type": "plain_text_input", "value": value}}}


def note(app, before: int) -> str:  # type: ignore[no-untyped-def]
    return app.fake.wait_for_response(before + 1)[before]["text"]


def audits(direct, pid: int) -> list[tuple[str, str, str]]:  # type: ignore[no-untyped-def]
    with direct.db.session() as s:
        rows = s.scalars(
            select(AuditEvent).where(AuditEvent.preregistration_id == pid).order_by(AuditEvent.id)
        )
        return [(e.actor, e.action, e.result) for e in rows]


def send_back_over_http(app, pid: int, question: str) -> None:  # type: ignore[no-untyped-def]
    opened_before = len(app.fake.calls_to("views.open"))
    click(app, desk_views.SEND_BACK_ACTION, str(pid), MANAGER)
    opened = app.fake.wait_for("views.open", count=opened_before + 1)[opened_before]
    modal = opened.json_arg("view")
    assert_valid_view(modal)
    meta = modal["private_metadata"]
    blank = submit(app, MANAGER, desk_views.SEND_BACK_CALLBACK, text_value("question", "  "), meta)
    assert "question" in blank["errors"]
    answer = submit(
        app, MANAGER, desk_views.SEND_BACK_CALLBACK, text_value("question", question), meta
    )
    assert answer == {}


# --- send back for information ---------------------------------------------------------------


def test_send_back_asks_the_submitter_and_resubmit_puts_it_back_under_review(app, posted, direct):
    pid = posted.id
    send_back_over_http(app, pid, "Which <b>subsidiary</b> & country?")
    assert direct.status(pid) == "action_required"
    # the customer stays claimed and counts against the quota (R4); the deadline pauses
    assert direct.service.summary(MEMBER).quota_used == 1

    [dm] = app.fake.wait_for("chat.postMessage", where=lambda c: c.args.get("channel") == MEMBER)
    dm_message = message_of(dm)
    assert_valid_message(dm_message)
    assert "Which &lt;b&gt;subsidiary&lt;/b&gt; &amp; country?" in body_text(dm_message)
    resubmit = element(dm_message, desk_views.RESUBMIT_ACTION)
    assert resubmit["value"] == str(pid)
    [update] = app.fake.wait_for("chat.update")
    assert "Sent back for information" in body_text(message_of(update))
    assert update.args["ts"] == posted.review_message_ts

    reply = app.ask(MEMBER, "list action required")
    assert "Action required" in body_text(reply) and "subsidiary" in body_text(reply)

    # the member clicks "Edit and resubmit": the form opens filled in as submitted
    app.block_action(MEMBER, desk_views.RESUBMIT_ACTION, str(pid), channel=MEMBER)
    opened = app.fake.wait_for("views.open", count=2)[-1]
    modal = opened.json_arg("view")
    assert_valid_view(modal)
    initial = {
        b["block_id"]: b["element"].get("initial_value")
        for b in modal["blocks"]
        if b["type"] == "input"
    }
    assert initial["email"] == "client@customer.fr" and initial["full_name"] == "Clara Customer"
    values = modal_values(email="client@customer.fr", mobile="+33 6 12 34 56 78")
    meta = modal["private_metadata"]
    missing = submit(app, MEMBER, desk_views.RESUBMIT_CALLBACK, values, meta)
    assert "answer" in missing["errors"]
    assert direct.status(pid) == "action_required"
    values |= text_value("answer", "Customer SAS, <France> only")
    done = submit(app, MEMBER, desk_views.RESUBMIT_CALLBACK, values, meta)
    assert done["response_action"] == "update"
    row = direct.service.view(pid)
    assert row.status == "under_review"
    assert row.review_due_at > datetime.now(UTC) + timedelta(hours=24)  # a fresh deadline

    # the same review post is updated (buttons back) and the answer threaded under it
    updates = app.fake.wait_for("chat.update", count=2)
    again = message_of(updates[-1])
    assert_valid_message(again)
    assert element(again, views.APPROVE_ACTION)["value"] == str(pid)
    [answer] = app.fake.wait_for(
        "chat.postMessage", where=lambda c: c.args.get("thread_ts") == posted.review_message_ts
    )
    assert "Customer SAS, &lt;France&gt; only" in answer.args["text"]
    assert audits(direct, pid)[-2:] == [
        (MANAGER, "send_back", "action_required"),
        (MEMBER, "resubmit", "under_review"),
    ]


def test_unanswered_question_is_reminded_then_expires(app, posted, direct):
    pid = posted.id
    send_back_over_http(app, pid, "Who signs the contract?")
    due = direct.service.view(pid).info_due_at
    app.fake.wait_for("chat.postMessage", where=lambda c: c.args.get("channel") == MEMBER)

    app.sweep(at=(due - timedelta(hours=12)).isoformat())
    reminders = [
        c
        for c in app.fake.calls_to("chat.postMessage")
        if c.args.get("channel") == MEMBER and "Reminder" in (c.args.get("text") or "")
    ]
    assert len(reminders) == 1 and direct.status(pid) == "action_required"
    app.sweep(at=(due - timedelta(hours=11)).isoformat())  # no second reminder
    assert len([c for c in app.fake.calls_to("chat.postMessage") if "Reminder" in str(c.args)]) == 1

    app.sweep(at=(due + timedelta(minutes=1)).isoformat())
    assert direct.status(pid) == "expired"
    assert any(
        "went unanswered" in (c.args.get("text") or "")
        for c in app.fake.calls_to("chat.postMessage")
        if c.args.get("channel") == MEMBER
    )
    assert ("system", "expire", "expired") in audits(direct, pid)
    # the customer is free again
    direct.partner("Other SAS", OTHER_MEMBER, country="FR")
    assert direct.prereg("client@customer.fr", OTHER_MEMBER, mobile="+33 6 12 34 56 78").status


# --- similar requests ---------------------------------------------------------------------------


def test_review_post_shows_similar_requests_at_the_domain_masked(app, direct):
    direct.partner()
    direct.manager()
    direct.partner("Rival SARL", OTHER_MEMBER, country="FR")
    rival = direct.prereg(
        "olivia.other@customer.fr", OTHER_MEMBER, name="Olivia Secret", mobile="+33 6 11 22 33 44"
    )
    assert rival.status == "preregistered"
    direct.prereg("anna@gmail.com", OTHER_MEMBER, name="Anna Free", mobile="+33 6 11 22 33 45")
    app.view_submission(
        MEMBER, "preregister", modal_values(email="client@customer.fr", mobile="+33 6 12 34 56 78")
    )
    app.view_submission(
        MEMBER, "preregister", modal_values(email="bob@gmail.com", mobile="+33 6 12 34 56 70")
    )
    posts = app.fake.wait_for(
        "chat.postMessage", count=2, where=lambda c: c.args.get("channel") == MANAGER_CHANNEL
    )
    by_email = {("gmail" if "gmail" in body_text(message_of(c)) else "corp"): c for c in posts}
    corp = body_text(message_of(by_email["corp"]))
    assert "Similar requests at customer.fr" in corp
    assert "Rival SARL" in corp and "Preregistered" in corp and "o••@customer.fr" in corp
    assert "Olivia" not in corp and "olivia.other" not in corp  # masked (R11)
    assert_valid_message(message_of(by_email["corp"]))
    free = body_text(message_of(by_email["gmail"]))
    assert "free-mail domain" in free and "Anna" not in free and "Rival SARL" not in free


# --- one reviewer per case ---------------------------------------------------------------------


def test_take_release_reassign_and_approve_by_another_asks_to_confirm(app, posted, direct):
    pid = posted.id
    before = len(app.fake.responses)
    click(app, desk_views.TAKE_ACTION, str(pid), MANAGER)
    assert f"<@{MANAGER}> is reviewing" in note(app, before)
    [update] = app.fake.wait_for("chat.update")
    assert f"<@{MANAGER}> is reviewing this" in body_text(message_of(update))
    assert element(message_of(update), desk_views.RELEASE_ACTION)

    before = len(app.fake.responses)
    click(app, desk_views.TAKE_ACTION, str(pid), MANAGER2)
    assert "already has this case" in note(app, before)
    before = len(app.fake.responses)
    click(app, desk_views.RELEASE_ACTION, str(pid), MANAGER2)
    assert "Only the manager who has this case" in note(app, before)
    before = len(app.fake.responses)
    click(app, desk_views.TAKE_ACTION, str(pid), MEMBER)
    assert "Only ecosystem managers" in note(app, before)

    # reassign with the users_select: the case goes to MANAGER2
    before = len(app.fake.responses)
    click(
        app,
        desk_views.REASSIGN_ACTION,
        None,
        MANAGER,
        block_id=f"review_{pid}",
        extra_action={"type": "users_select", "selected_user": MANAGER2},
    )
    assert f"<@{MANAGER2}> is reviewing" in note(app, before)
    assert direct.service.view(pid).reviewer == MANAGER2

    # MANAGER approves a case MANAGER2 has: asked to confirm first, nothing decided yet
    click(app, views.APPROVE_ACTION, str(pid), MANAGER)
    [opened] = app.fake.wait_for("views.open")
    modal = opened.json_arg("view")
    assert_valid_view(modal)
    assert f"<@{MANAGER2}> is reviewing" in body_text(modal)
    assert direct.status(pid) == "under_review"
    assert (
        submit(app, MANAGER, desk_views.APPROVE_CONFIRM_CALLBACK, {}, modal["private_metadata"])
        == {}
    )
    eventually(lambda: direct.status(pid) == "preregistered", what="approved")
    actions = [a for _, a, _ in audits(direct, pid)]
    assert actions[-3:] == ["take", "reassign", "approve"]

    # MANAGER2 releases nothing now: the case is decided
    before = len(app.fake.responses)
    click(app, desk_views.RELEASE_ACTION, str(pid), MANAGER2)
    assert "already decided" in note(app, before)


# --- managers' App Home ------------------------------------------------------------------------


def test_managers_home_queue_with_buttons_and_program_paged_and_sorted(app, direct):
    direct.manager()
    direct.partner()
    first = direct.prereg("first@customer.fr", mobile="+33 6 12 34 56 78", name="First")
    direct.prereg("second@customer.fr", mobile="+33 6 12 34 56 79", name="Second")
    direct.many(3, prefix="busy")  # Acme's quota use: 5
    for i in range(110):
        direct.admin.add_partner(
            f"Partner {i:03d}", "DE", [f"UP{i:03d}"], contact_email="p@x.example"
        )
    app.event({"type": "app_home_opened", "user": MANAGER, "tab": "home"})
    [call] = app.fake.wait_for("views.publish")
    view = call.json_arg("view")
    assert_valid_view(view)
    assert len(view["blocks"]) <= 100
    text = body_text(view)
    assert text.index("first@customer.fr") < text.index("second@customer.fr")
    assert element(view, views.APPROVE_ACTION, str(first.id))
    assert element(view, desk_views.SEND_BACK_ACTION, str(first.id))
    assert "Program" in text and "111 partners, sorted by quota use" in text
    program = [b for b in view["blocks"] if str(b.get("block_id", ""))[8:].isdigit()]
    assert "Acme GmbH" in body_text(program[0]) and "quota 5 / 100" in body_text(program[0])
    nxt = element(view, desk_views.HOME_PAGE_ACTION)
    assert json.loads(nxt["value"]) == {"p": 1, "s": "quota"}
    shown = {b["block_id"] for b in program}

    app.block_action(MANAGER, desk_views.HOME_PAGE_ACTION, nxt["value"], container_type="view")
    second = app.fake.wait_for("views.publish", count=2)[1].json_arg("view")
    assert_valid_view(second)
    assert len(second["blocks"]) <= 100
    later = {
        b["block_id"]
        for b in second["blocks"]
        if str(b.get("block_id", "")).startswith("program_") and b["block_id"][8:].isdigit()
    }
    assert later and not (later & shown)
    assert element(second, desk_views.HOME_PAGE_ACTION, json.dumps({"p": 0, "s": "quota"}))


# --- the weekly report -------------------------------------------------------------------------


def next_monday_9() -> datetime:
    now = datetime.now(UTC)
    day = now.date() + timedelta(days=(7 - now.weekday()) % 7 or 7)
    return datetime(day.year, day.month, day.day, 9, tzinfo=UTC)


def colour_pixels(png: bytes, hex_colour: str) -> int:
    image = Image.open(io.BytesIO(png)).convert("RGB")
    rgb = tuple(int(hex_colour[i : i + 2], 16) for i in (1, 3, 5))
    return sum(n for n, colour in image.getcolors(maxcolors=1 << 24) if colour == rgb)


def report_rows(direct) -> None:  # type: ignore[no-untyped-def]
    direct.partner()
    direct.manager()
    rows = direct.many(6, prefix="r")  # 6 preregistered
    direct.service.associate(rows[0].id, rows[0].email)  # 1 associated, 5 preregistered
    for i in range(2):
        p = direct.prereg(f"fr{i}@customer.fr", mobile=f"+33 6 12 34 56 7{i}")
        direct.service.reject(MANAGER, p.id, "outside our market")  # 2 rejected, on time


def check_chart(png: bytes) -> None:
    image = Image.open(io.BytesIO(png))
    image.load()
    assert image.format == "PNG" and image.size[0] > 500
    data = json.loads(image.text[PNG_KEY])
    assert sum(data["by_status"]["preregistered"]) == 5
    assert sum(data["by_status"]["associated"]) == 1
    assert sum(data["by_status"]["rejected"]) == 2
    assert sum(data["on_time"]) == 2 and sum(data["late"]) == 0
    assert sum(data["claimed"]) == 6 and sum(data["associated"]) == 1
    # the bars drawn: a status with no rows shows only its legend swatch, so its pixels measure
    # the swatch; the rest of each colour is bar, proportional to the count (same bar width)
    swatch = colour_pixels(png, STATUS_COLOURS["deleted"])
    prereg = colour_pixels(png, STATUS_COLOURS["preregistered"]) - swatch
    rejected = colour_pixels(png, STATUS_COLOURS["rejected"]) - swatch
    associated = colour_pixels(png, STATUS_COLOURS["associated"]) - swatch
    assert rejected > 0 and associated > 0
    assert abs(prereg / rejected - 5 / 2) < 0.15
    assert abs(prereg / associated - 5) < 0.3


def test_weekly_report_posts_the_chart_to_the_managers_channel(app, direct):
    report_rows(direct)
    monday = next_monday_9()
    app.sweep(at=(monday - timedelta(hours=2)).isoformat())  # before the report hour
    assert app.fake.calls_to("files.completeUploadExternal") == []
    app.sweep(at=monday.isoformat())
    app.sweep(at=(monday + timedelta(hours=3)).isoformat())  # once a week, not once a sweep
    [done] = app.fake.calls_to("files.completeUploadExternal")
    assert done.args.get("channel_id") == MANAGER_CHANNEL
    assert "Conversion preregistered → associated: 17%" in done.args.get("initial_comment", "")
    [upload] = [u for u in app.fake.uploads.values() if u.content]
    check_chart(upload.content)
    [slot] = app.fake.calls_to("files.getUploadURLExternal")
    assert slot.args["alt_txt"].startswith("Chart of the program report")


def test_cli_report_writes_the_same_picture(app, direct, tmp_path):
    report_rows(direct)
    out = tmp_path / "report.png"
    done = app.cli("report", "--weeks", "12", "-o", str(out))
    assert done.returncode == 0, done.stderr
    assert "chart written to" in done.stdout
    check_chart(out.read_bytes())
    bad = app.cli("report", "--weeks", "0", "-o", str(out))
    assert bad.returncode == 2 and "--weeks" in bad.stderr and "Traceback" not in bad.stderr


# --- races ---------------------------------------------------------------------------------------


def at_once(*actions) -> list:  # type: ignore[no-untyped-def]
    barrier = threading.Barrier(len(actions))
    results: list = [None] * len(actions)

    def run(i: int) -> None:
        barrier.wait()
        try:
            results[i] = actions[i]()
        except Exception as exc:  # noqa: BLE001 - the loser's refusal is the result
            results[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(actions))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    return results


@pytest.mark.reliability("fault", "send back vs. approve at the same instant")
def test_send_back_and_approve_at_the_same_instant_one_wins(app, posted, direct, tried):
    tried(1)
    pid = posted.id
    click(app, desk_views.SEND_BACK_ACTION, str(pid), MANAGER)
    meta = app.fake.wait_for("views.open")[0].json_arg("view")["private_metadata"]
    sent, _ = at_once(
        lambda: submit(
            app,
            MANAGER,
            desk_views.SEND_BACK_CALLBACK,
            text_value("question", "Which country?"),
            meta,
        ),
        lambda: click(app, views.APPROVE_ACTION, str(pid), MANAGER2),
    )
    final = eventually(
        lambda: (s := direct.status(pid)) in ("preregistered", "action_required") and s,
        what="a decision",
    )
    results = [r for _, _, r in audits(direct, pid)]
    if final == "action_required":
        assert sent == {}
        eventually(
            lambda: any("already decided" in str(r.get("text")) for r in app.fake.responses),
            what="the approval refused",
        )
        assert "preregistered" not in results
    else:
        assert "already decided" in sent["errors"]["question"]
        assert "action_required" not in results


@pytest.mark.reliability("fault", "resubmit vs. expiry of the unanswered question")
def test_resubmit_and_expiry_at_the_same_instant_one_wins(app, posted, direct, tried):
    tried(1)
    pid = posted.id
    Desk(direct.service).send_back(MANAGER, pid, "Which country?")
    due = direct.service.view(pid).info_due_at
    values = modal_values(email="client@customer.fr", mobile="+33 6 12 34 56 78")
    values |= text_value("answer", "France")
    meta = json.dumps({"id": pid})
    # the sweep runs as of a minute past the deadline; the resubmission arrives meanwhile
    answer, _ = at_once(
        lambda: submit(app, MEMBER, desk_views.RESUBMIT_CALLBACK, values, meta),
        lambda: app.sweep(at=(due + timedelta(minutes=1)).isoformat()),
    )
    final = direct.status(pid)
    assert final in ("under_review", "expired")
    if final == "under_review":
        assert answer["response_action"] == "update"
        assert "expire" not in [a for _, a, _ in audits(direct, pid)]
    else:
        assert "no longer waits" in answer["errors"]["answer"]
        assert "resubmit" not in [a for _, a, r in audits(direct, pid) if r == "under_review"]
    with direct.db.session() as s:
        assert s.get(Preregistration, pid).status == final


@pytest.mark.reliability("fault", "two managers take the same case at once")
def test_two_managers_take_the_same_case_one_has_it(app, posted, direct, tried):
    tried(1)
    pid = posted.id
    desk = Desk(direct.service)
    results = at_once(lambda: desk.take(MANAGER, pid), lambda: desk.take(MANAGER2, pid))
    winners = [r for r in results if not isinstance(r, Exception)]
    losers = [r for r in results if isinstance(r, Exception)]
    assert len(winners) == 1 and len(losers) == 1
    assert "already has this case" in losers[0].message
    assert direct.service.view(pid).reviewer == winners[0].reviewer
    takes = [a for a in audits(direct, pid) if a[1] == "take"]
    assert [r for _, _, r in takes].count("under_review") == 1
