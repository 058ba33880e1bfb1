"""Plain words in the reader's language: the catalogs, the views in both languages, and the
language followed end to end (the reader's Slack locale, `/preregister language`)."""

from __future__ import annotations

import dataclasses
import re
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po

from bot.desk import ProgramRow, Similar, SimilarRow
from bot.errors import InvalidInput
from bot.i18n import (
    LOCALE_DIR,
    N_,
    _,
    from_accept_language,
    from_slack_locale,
    translations,
    use,
)
from bot.models import DeleteResult, Eligibility, Page, PartnerSummary, PartnerView, PreregView
from bot.report import ReportData, summary_text
from bot.rules import CAUSES, refusal
from bot.schedule import Digest
from bot.service import PreregistrationService
from bot.validation import clean_email
from bot.workspaces import LinkRequestView, Onboarding, PolicySaved, WorkspaceView
from handlers import errors, invitations, views
from handlers.reminder_views import (
    digest_message,
    expired_message,
    reminder_message,
    review_due_soon_message,
    review_overdue_message,
)
from handlers.views import desk as desk_views
from tests.blockkit import accessibility_problems, assert_valid_message, assert_valid_view
from tests.helpers import eventually
from tests.slackfixtures import MEMBER, body_text

ROOT = Path(__file__).resolve().parents[1]
KEYWORDS = {"_": None, "N_": None, "ngettext": (1, 2)}
PLACEHOLDER = re.compile(r"\{[a-z_]+\}|%\([a-z_]+\)s")
METHOD_MAP = [("**/templates/**.html", "jinja2"), ("**.py", "python")]


def extracted() -> set[str]:
    found: set[str] = set()
    for top in ("bot", "handlers"):
        for _file, _line, message, _comments, _context in extract_from_dir(
            ROOT / top, METHOD_MAP, keywords=KEYWORDS
        ):
            found.update([message] if isinstance(message, str) else message)
    return found


def catalog(lang: str) -> dict[str, str]:
    with (LOCALE_DIR / lang / "LC_MESSAGES" / "messages.po").open("rb") as po:
        texts: dict[str, str] = {}
        for m in read_po(po):
            ids = [m.id] if isinstance(m.id, str) else list(m.id)
            strings = [m.string] if isinstance(m.string, str) else list(m.string)
            # a plural text counts as translated when every form is
            texts.update((i, strings[0] if all(strings) else "") for i in ids if i)
        return texts


def test_every_marked_text_has_a_chinese_translation_with_the_same_placeholders():
    zh = catalog("zh")
    texts = extracted()
    missing = sorted(t for t in texts if not zh.get(t))
    assert missing == [], f"not in bot/locale/zh (run `make i18n` and translate): {missing}"
    for text in texts:
        assert set(PLACEHOLDER.findall(text)) == set(PLACEHOLDER.findall(zh[text])), text


def test_the_catalog_is_compiled_from_the_po_file_and_not_kept_as_mo():
    assert list(LOCALE_DIR.rglob("*.mo")) == []
    assert translations("zh").gettext("Preregister") == "预注册"
    assert translations("en").gettext("Preregister") == "Preregister"


@pytest.mark.parametrize(
    ("locale", "lang"), [("zh-CN", "zh"), ("zh-TW", "zh"), ("en-US", "en"), (None, "en")]
)
def test_slack_locale_picks_the_language(locale, lang):
    assert from_slack_locale(locale) == lang


@pytest.mark.parametrize(
    ("header", "lang"),
    [("zh-CN,zh;q=0.9,en;q=0.8", "zh"), ("fr;q=0.9, zh;q=0.8, en;q=0.5", "zh"), ("de", "en"),
     ("en-GB,zh;q=0.1", "en"), ("", "en"), ("garbage;q=x", "en")],
)  # fmt: skip
def test_accept_language_picks_the_language(header, lang):
    assert from_accept_language(header) == lang


def _prereg(status: str = "under_review") -> PreregView:
    now = datetime(2026, 12, 1, 9, tzinfo=UTC)
    return PreregView(
        id=7, partner_id=1, partner_name="Acme GmbH", full_name="Clara <b>", email="c@x.de",
        mobile="+49 1512 3456789", send_invitation=True, association_type="reseller",
        status=status, customer_country="FR", partner_country="DE", review_reason=None,
        submitted_by=MEMBER, submitted_at=now, review_due_at=now + timedelta(days=2),
        decided_at=None, decided_by=None, decision_reason=None,
        expires_at=now + timedelta(days=15), associated_at=None, deleted_at=None,
        invited_at=None, review_channel_id=None, review_message_ts=None,
    )  # fmt: skip


def visible(obj: object) -> str:
    """Every text a reader sees in a message or view: the `text` values, recursively."""
    if isinstance(obj, dict):
        parts = [obj["text"]] if isinstance(obj.get("text"), str) else []
        return " ".join(parts + [visible(v) for k, v in obj.items() if k != "text" or
                                 not isinstance(v, str)])  # fmt: skip
    if isinstance(obj, list):
        return " ".join(visible(v) for v in obj)
    return ""


CONTACTS = [("UMANAGER1", "eco@vendor.example")]


def _partner() -> PartnerView:
    return PartnerView(1, "Acme GmbH", "DE", "desk@acme.example", None, None, None, "zh")


def localised_surfaces() -> dict[str, dict]:
    rows = [_prereg("preregistered"), _prereg("under_review"), _prereg("expired")]
    digest = Digest(
        _partner(), date(2026, 12, 7), datetime(2026, 12, 7, 8, tzinfo=UTC),
        {"preregistered": 1, "under_review": 1, "action_required": 1},
        expiring=[rows[0]], expiring_total=1, under_review=[rows[1]],
    )  # fmt: skip
    return {
        "list": views.customer_list(Page(rows, total=12, offset=0, limit=10)),
        "empty list": views.customer_list(Page([], total=0, offset=0, limit=10)),
        "delete": views.delete_message(
            [DeleteResult("c@x.de", True, refusal("china_mainland").message)], CONTACTS
        ),
        "expired": expired_message(rows[0], "Asia/Shanghai"),
        "reminder": reminder_message(rows[0], 3, None),
        "digest": digest_message(digest, None),
        "share button": invitations.share_button_message(rows[0]),
        "review due soon": review_due_soon_message(rows[1]),
        "review overdue": review_overdue_message(rows[1], threaded=True),
        "review overdue, unthreaded": review_overdue_message(rows[1], threaded=False),
        **{
            name: {"text": text}
            for name, text in {
                "share comment": invitations.share_comment(rows[0], "https://x.example/i/t"),
                "associated": invitations.associated_text(rows[0]),
                "pending": invitations.email_pending_text(rows[0]),
                "failing": invitations.email_failing_text(rows[0], "https://x.example/i/t"),
                "declined": invitations.declined_text(rows[0]),
                "guessing": invitations.guessing_text(rows[0], 5),
                "sent late": invitations.email_sent_late_text(rows[0]),
                "email asked": invitations.email_request_reply(rows[0]),
                "email asked, sent": invitations.email_request_reply(
                    replace(rows[0], invited_at=rows[0].submitted_at)
                ),
                "contacts plain": views.contact_plain(CONTACTS),
                "no contacts plain": views.contact_plain([]),
            }.items()
        },
        "help": views.help_message(CONTACTS),
        "flow": views.flow_message(),
        "refusal": views.refusal_message(refusal("china_mainland").message, CONTACTS),
        "error": views.error_message(),
        "check review": views.check_message(
            "c@x.de",
            Eligibility(True, needs_review=True, customer_country="FR", partner_country="DE"),
            CONTACTS,
        ),  # fmt: skip
        "check free": views.check_message("c@x.de", Eligibility(True), CONTACTS),
        **review_surfaces(),
        **onboarding_surfaces(),
        **desk_surfaces(),
    }


def _asked(p: PreregView, reviewer: str | None = None) -> PreregView:
    at = datetime(2026, 12, 2, 9, tzinfo=UTC)
    return replace(
        p, info_question="合同编号？", info_asked_by="UMANAGER1", info_asked_at=at,
        info_due_at=at + timedelta(days=7), info_answer="见附件", reviewer=reviewer,
    )  # fmt: skip


def desk_surfaces() -> dict[str, dict]:
    """The review post with the desk (similar requests, reviewer, send back), the question's
    DMs and thread answer, the managers' Home and the weekly report's text."""
    at = datetime(2026, 11, 20, 9, tzinfo=UTC)
    similar = Similar(
        "x.de", False,
        others=[SimilarRow("Acme AG", "preregistered", at, "a@x.de", False)],
        own=[SimilarRow("Acme GmbH", "expired", at, "b@x.de", True)],
    )  # fmt: skip
    review = _asked(_prereg(), reviewer="UMANAGER2")
    waiting = _asked(_prereg("action_required"))
    rows = [ProgramRow(1, "Acme GmbH", "DE", 3, 100, {"preregistered": 3}, at),
            ProgramRow(2, "Acme AG", "FR", 0, 100, {}, None)]  # fmt: skip
    now = datetime(2026, 12, 3, 8, tzinfo=UTC)
    queue = [review, replace(_prereg(), id=8)]
    report = ReportData(["2026-11-23", "2026-11-30"], {"preregistered": [2, 1], "rejected": [1, 0]},
                        [2, 1], [1, 0], [2, 1], [1, 0])  # fmt: skip
    return {
        "review request": views.review_request_message(review, similar),
        "review, none similar": views.review_request_message(_prereg(), Similar("x.de", False)),
        "review, free mail": views.review_request_message(_prereg(), Similar("t.de", True)),
        "review waiting": views.review_request_message(waiting, None),
        "question dm": desk_views.info_request_dm(waiting),
        "question reminder": desk_views.info_reminder_dm(waiting),
        "question expired": desk_views.info_expired_dm(waiting),
        "answer in thread": desk_views.answer_in_thread(waiting),
        "reviewer line": {"text": desk_views.reviewer_line(_prereg())},
        "managers home": {"type": "home", "blocks": desk_views.manager_home_blocks(
            queue, 20, rows, 12, 1, 2, "quota", now)},
        "managers home by name": {"type": "home", "blocks": desk_views.manager_home_blocks(
            [], 0, rows, 2, 0, 10, "name", now)},
        "weekly report": {"text": summary_text(report)},
        "report title": {"text": _("Program report {date}").format(date="2026-12-07")},
    }  # fmt: skip


def _link(status: str = "pending", decided: bool = False) -> LinkRequestView:
    at = datetime(2026, 12, 2, 9, tzinfo=UTC)
    return LinkRequestView(
        3, 5, "Acme GmbH", "T0ACME", "T0ACME:UADMIN1", "Acme GmbH", "DE", "desk@acme.example",
        "+49 1512 3456789", status, 1 if status == "approved" else None,
        "Acme GmbH" if status == "approved" else None, "UMANAGER1" if decided else None,
        at if decided else None, None, None, at,
    )  # fmt: skip


def _workspace(partner: bool) -> WorkspaceView:
    return WorkspaceView(
        5, "T0ACME", None, "T0ACME", "Acme GmbH", False, 1 if partner else None,
        "Acme GmbH" if partner else None, False, "T0ACME:UADMIN1", "active",
        datetime(2026, 12, 1, tzinfo=UTC), None,
    )  # fmt: skip


def onboarding_surfaces() -> dict[str, dict]:
    """The partner admin's Home blocks, the link request post decided or not, the DM."""
    admin = member = ["T0ACME:UADMIN1"]
    saved = PolicySaved(False, ["T0ACME:UMEMBER2"], ["T0ACME:UMEMBER3"])
    homes = {
        "home unlinked admin": Onboarding(_workspace(False), True, admin, None, []),
        "home unlinked member": Onboarding(_workspace(False), False, member, None, []),
        "home unlinked no admin": Onboarding(_workspace(False), False, [], None, []),
        "home pending": Onboarding(_workspace(False), True, admin, _link(), []),
        "home policy": Onboarding(_workspace(True), True, admin, None, ["T0ACME:UMEMBER2"]),
    }
    approved, rejected = _link("approved", True), _link("rejected", True)
    return {
        **{
            name: {"type": "home", "blocks": views.onboarding_blocks(state)}
            for name, state in homes.items()
        },
        "policy saved": {"text": views.policy_saved_line(saved)},
        "policy saved everyone": {"text": views.policy_saved_line(PolicySaved(True, [], []))},
        "link request": views.link_request_message(_link(), [(1, "Acme GmbH")]),
        "link approved": views.link_decided_message(approved, None),
        "link rejected": views.link_decided_message(rejected, "缺少合同"),
        "link outcome approved": views.link_outcome_dm(approved, None),
        "link outcome rejected": views.link_outcome_dm(rejected, "缺少合同"),
    }


def review_surfaces() -> dict[str, dict]:
    """The review post decided, and the outcome DM to the submitter (R3)."""
    at = datetime(2026, 12, 2, 9, tzinfo=UTC)
    decided = {"decided_by": "UMANAGER1", "decided_at": at, "decision_reason": "不在目标市场"}
    approved = replace(_prereg("preregistered"), **decided)
    rejected = replace(_prereg("rejected"), **decided)
    return {
        "review approved": views.review_decided_message(approved),
        "review rejected": views.review_decided_message(rejected),
        "review expired": views.review_decided_message(_prereg("expired")),
        "outcome approved": views.review_outcome_dm(approved),
        "outcome approved, no one named": views.review_outcome_dm(_prereg("preregistered")),
        "outcome rejected": views.review_outcome_dm(rejected),
    }


def localised_views() -> dict[str, dict]:
    return {
        "modal": views.preregistration_modal(),
        "confirmation": views.confirmation_modal(_prereg()),
        "error modal": views.error_modal(),
        "reject modal": views.reject_modal(_prereg(), "{}"),
        "link modal": views.link_modal("Acme GmbH"),
        "link sent": views.link_sent_modal(_link()),
        "link reject modal": views.link_reject_modal(_link(), "{}"),
        "approve anyway": desk_views.approve_confirm_modal(_prereg(), "UMANAGER2", "{}"),
        "send back": desk_views.send_back_modal(_prereg(), "{}"),
        "resubmit": desk_views.resubmit_modal(_asked(_prereg("action_required")), "{}"),
        "resubmitted": desk_views.resubmitted_modal(_prereg()),
        "resubmitted, no due": desk_views.resubmitted_modal(replace(_prereg(), review_due_at=None)),
        "managers home view": views.home_view(None, [_prereg()], CONTACTS, "CMANAGERS"),
        "managers home view, empty": views.home_view(None, [], CONTACTS),
        "home": views.home_view(
            PartnerSummary(_partner(), 3, 100, {"preregistered": 3}, [_prereg("preregistered")]),
            None,
            CONTACTS,
        ),
    }


# Words that stay as they are in Chinese text: commands, placeholders, names, addresses.
ALLOWED_LATIN = re.compile(
    r"`[^`]*`|<[^>]*>|:[a-z_]+:|prereg-bot|/preregister|\b(?:list|check|delete|flow|help)\b|"
    r"Slack|Acme (?:GmbH|AG)|Clara|[\w.+-]+@[\w.-]+|\+[\d ]+|"
    r"FR|DE|Reseller|QR|zh|en|under review|preregistered|associated|rejected|expired|"
    r"deleted|all|notify off|digest off|\b[A-Z]\d\b|\b[A-Z]{2,5}\b",  # codes, zones: CST
)


def _english_words(text: str) -> list[str]:
    return re.findall(r"[A-Za-z]{3,}", ALLOWED_LATIN.sub(" ", text))


# On the invitation page and in its email: links, the test app's brand, the partner's name,
# the time zone, and the language switch's "English".
WEB_LATIN = re.compile(
    r"https?://\S+|Nimbus Cloud|Partner Network|Acme & Söhne|\bUTC\b|\bEnglish\b"
)


class _VisibleText(HTMLParser):
    """What a reader of an HTML page sees: its text (not style), title and alternative texts."""

    def __init__(self) -> None:
        super().__init__()
        self.parts: list[str] = []
        self._hidden = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("style", "script"):
            self._hidden += 1
        self.parts += [v for k, v in attrs if k in ("alt", "title", "aria-label") and v]
        if tag == "input" and ("type", "submit") in attrs:
            self.parts += [v for k, v in attrs if k == "value" and v]

    def handle_endtag(self, tag: str) -> None:
        if tag in ("style", "script"):
            self._hidden -= 1

    def handle_data(self, data: str) -> None:
        if not self._hidden:
            self.parts.append(data)


def visible_html(html: str) -> str:
    parser = _VisibleText()
    parser.feed(html)
    return " ".join(parser.parts)


def english_words_in_html(html: str) -> list[str]:
    """English words left in a Chinese page or email (HTML)."""
    return english_words_in_text(visible_html(html))


def english_words_in_text(text: str) -> list[str]:
    return _english_words(WEB_LATIN.sub(" ", text))


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_every_localised_view_is_valid_in_both_languages(lang):
    with use(lang):
        for name, message in localised_surfaces().items():
            if message.get("type") == "home":  # Home blocks, shown in the Home view
                assert_valid_view(message)
            else:
                assert_valid_message(message)
            if lang == "zh":
                assert _english_words(visible(message)) == [], name
        for name, view in localised_views().items():
            assert_valid_view(view)
            if lang == "zh":
                assert _english_words(visible(view)) == [], name


def test_buttons_say_what_they_act_on():
    """A screen reader hears "Delete Clara" where the button only says "Delete"."""
    with use("en"):
        listing = views.customer_list(Page([_prereg("preregistered")], 1, 0, 10))
    labels = [
        e.get("accessibility_label")
        for b in listing["blocks"]
        for e in [b.get("accessory") or {}, *b.get("elements", [])]
        if e.get("type") == "button"
    ]
    assert "Delete Clara <b>" in labels and "Email the invitation to Clara <b>" in labels


def test_refusals_and_field_errors_follow_the_language():
    with use("zh"):
        assert refusal("not_a_member").message.startswith("您还不是")
        with pytest.raises(InvalidInput) as caught:
            clean_email("clara.example")
        assert "@" in caught.value.errors["email"] and "邮箱" in caught.value.errors["email"]
    with use("en"):
        assert refusal("not_a_member").message.startswith("You are not")
    assert set(CAUSES) >= {"china_mainland", "workspace_not_linked"}


def test_a_chinese_reader_gets_help_in_chinese(app, direct):
    """The reader's Slack locale (users.info include_locale) decides; asked once, then kept."""
    reader = "UZHREADER1"  # new to this app process: its language is not known yet
    direct.partner(member=reader)
    app.fake.user_locale[reader] = "zh-CN"
    reply = app.ask(reader, "help")
    assert_valid_message(reply)
    assert "prereg-bot 帮助" in body_text(reply)
    asked = app.fake.calls_to("users.info")
    assert [c.args.get("include_locale") for c in asked] in (["true"], [True], ["1"])
    assert "客户拓展步骤" in body_text(app.ask(reader, "flow"))
    assert len(app.fake.calls_to("users.info")) == 1


def test_language_command_sets_the_company_language(app, direct):
    pid = direct.partner()
    assert "简体中文" in app.ask(MEMBER, "language zh")["text"]
    assert "language zh" in app.ask(MEMBER, "language fr")["text"]
    with direct.db.session() as s:
        from store.models import Partner

        assert s.get(Partner, pid).language == "zh"


def test_channel_notices_follow_the_company_language(app, direct):
    """`/preregister language zh` by a member: the company's channel notices are in Chinese."""
    direct.partner()
    app.ask(MEMBER, "language zh")
    app.ask(MEMBER, "notify here", channel="CACMENOTICES")
    row = direct.prereg("anna@kunde.de", send=False)
    at = (row.expires_at + timedelta(minutes=1)).astimezone(UTC).isoformat()
    app.sweep(at=at)
    [notice] = app.fake.wait_for(
        "chat.postMessage", where=lambda c: c.args.get("channel") == "CACMENOTICES"
    )
    assert "预注册已过期" in str(notice.args.get("text"))
    assert_valid_message({"text": notice.args["text"], "blocks": notice.json_arg("blocks")})


def _every_invitation_page():  # type: ignore[no-untyped-def]
    from bot.invitations import CUSTOMER, Invitation, InviteState, page_for

    view = _prereg("preregistered")
    retry = datetime(2026, 12, 1, 9, 15, tzinfo=UTC)
    for state in InviteState:
        for prereg in (view, None):
            yield state, page_for(Invitation(state, prereg, attempts_left=2, retry_at=retry))
    withdrawn = dataclasses.replace(view, status="deleted", deleted_by=CUSTOMER)
    yield "withdrawn", page_for(Invitation(InviteState.DELETED, withdrawn))
    yield "one try", page_for(Invitation(InviteState.MISMATCH, view, attempts_left=1))


def test_every_invitation_page_state_is_in_chinese():
    with use("zh"):
        for state, page in _every_invitation_page():
            words = page.heading + page.message + page.advice
            assert english_words_in_text(words) == [], (state, words)
            assert re.search(r"[\u4e00-\u9fff]", page.heading), state


def test_the_invitation_email_is_in_chinese_with_a_chinese_date():
    from bot.invitations import Branding
    from bot.outbox.mailer import compose

    view = dataclasses.replace(
        _prereg("preregistered"), full_name="王芳", partner_name="Acme & Söhne",
        partner_contact_email="desk@acme.example", partner_language="zh",
    )  # fmt: skip
    brand = Branding("Nimbus Cloud", "Partner Network", support_email="support@nimbus.example")
    message = compose(view, "https://p.example/invite/T0K", "bot@nimbus.example",
                      datetime(2026, 12, 1, tzinfo=UTC), qr=b"png", brand=brand)  # fmt: skip
    assert message["Subject"] == "Acme & Söhne 邀请您成为其客户"
    plain = message.get_body(("plain",)).get_content()
    html = message.get_body(("html",)).get_content()
    assert "2026年12月16日" in plain and "2026年12月16日" in html
    assert '<html lang="zh-CN">' in html
    assert english_words_in_text(plain) == [], plain
    assert english_words_in_html(html) == [], visible_html(html)


def test_the_review_channel_and_the_submitter_each_get_their_own_language(app, direct):
    """A manager sets the review channel to zh: the request and its decided form are posted
    in Chinese there; the submitter, whose Slack is in English, gets the outcome in English."""
    from tests.slackapp import MANAGER_CHANNEL
    from tests.slackfixtures import MANAGER, modal_values

    direct.partner()
    direct.manager()
    app.ask(MANAGER, "language zh", channel=MANAGER_CHANNEL)
    app.view_submission(
        MEMBER, "preregister", modal_values(email="client@customer.fr", mobile="+33 6 12 34 56 78")
    )
    [post] = app.fake.wait_for(
        "chat.postMessage", where=lambda c: c.args.get("channel") == MANAGER_CHANNEL
    )
    assert "需要审核" in post.args["text"] and "批准" in str(post.json_arg("blocks"))
    [row] = direct.service.list_customers(MEMBER).items
    eventually(lambda: direct.service.view(row.id).review_message_ts, what="review ts")
    app.block_action(MANAGER, views.APPROVE_ACTION, str(row.id), channel=MANAGER_CHANNEL)
    [update] = app.fake.wait_for("chat.update")
    assert "已批准" in update.args["text"]
    assert_valid_message({"text": update.args["text"], "blocks": update.json_arg("blocks")})
    [dm] = app.fake.wait_for("chat.postMessage", where=lambda c: c.args.get("channel") == MEMBER)
    assert "was approved" in dm.args["text"]


def test_a_chinese_manager_gets_the_desk_on_home_in_chinese(app, direct):
    """The managers' part of Home is found by its block id, not by its English header: a
    manager who reads Slack in Chinese gets the queue with its buttons and the program."""
    manager = "UZHMANAGER1"  # new to this app process: its language is asked of Slack
    direct.manager(manager, "zh.manager@vendor.example")
    direct.partner()
    row = direct.prereg("client@customer.fr", mobile="+33 6 12 34 56 78")
    app.fake.user_locale[manager] = "zh-CN"
    app.event({"type": "app_home_opened", "user": manager, "tab": "home"})
    [call] = app.fake.wait_for("views.publish")
    view = call.json_arg("view")
    assert_valid_view(view)
    text = body_text(view)
    assert "审核队列" in text and "合作计划" in text and "按名称排序" in text
    ids = {b.get("block_id") for b in view["blocks"]}
    assert f"queue_actions_{row.id}" in ids and "program_sort" in ids


def test_busy_answers_follow_the_language():
    """ "The database is busy": in the form left open and in the ephemeral note."""
    body = {"view": {"state": {"values": {"full_name": {}}}}}
    with use("zh"):
        form = errors._busy_form(body)
        assert form is not None and "数据库暂时繁忙" in form["errors"]["full_name"]
        with pytest.raises(InvalidInput) as caught:  # checked before anything is looked up
            PreregistrationService.set_language(None, "U1", "C1", "fr")  # type: ignore[arg-type]
        assert "请选择" in caught.value.errors["language"]
    with use("en"):
        assert "database is busy" in errors._busy_form(body)["errors"]["full_name"]


BUILDER_MODULES = [
    "handlers.views.common", "handlers.views.customers", "handlers.views.desk",
    "handlers.views.help", "handlers.views.home", "handlers.views.modal",
    "handlers.views.onboarding", "handlers.views.review", "handlers.reminder_views",
    "handlers.invitations",
]  # fmt: skip
NOT_BUILDERS = {
    "handlers.invitations": {"invitations_of", "register_senders", "register"},
    "handlers.views.desk": {"home_page_state", "queue_blocks_used"},
}
"""Listeners and state parsers, which build no text."""


def builders() -> dict[str, object]:
    """Every public function of the view modules, found by introspection: a new builder is
    in the list without anyone adding it."""
    import importlib
    import inspect

    found = {}
    for name in BUILDER_MODULES:
        module = importlib.import_module(name)
        for attr, fn in vars(module).items():
            if (inspect.isfunction(fn) and fn.__module__ == name and not attr.startswith("_")
                    and attr not in NOT_BUILDERS.get(name, set())):  # fmt: skip
                found[f"{name}.{attr}"] = fn
    return found


def test_every_builder_is_rendered_in_both_languages():
    """The surfaces above call every builder of handlers/views and the notices: one not
    called is one whose English nobody checks, so name it in localised_surfaces/views."""
    import sys

    called: set[object] = set()

    def seen(frame, event, _arg):  # type: ignore[no-untyped-def]
        if event == "call":
            called.add(frame.f_code)

    sys.setprofile(seen)
    try:
        with use("zh"):
            localised_surfaces(), localised_views()
    finally:
        sys.setprofile(None)
    missing = sorted(name for name, fn in builders().items() if fn.__code__ not in called)  # type: ignore[attr-defined]
    assert missing == [], f"never rendered by tests/test_i18n.py: {missing}"


SELF_DESCRIBING = {
    N_("Link this workspace to your company"),
    N_("Sort by quota use"),
    N_("Sort by name"),
}
"""Buttons whose text names what they act on; every other button needs a label that does."""


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_every_surface_is_accessible(lang):
    """A meaningful top-level text (what a notification and a screen reader say), a label on
    every button whose text alone is not enough, alt text on images; in both languages."""
    with use(lang):
        texts = {_(t) for t in SELF_DESCRIBING}
        problems = {
            name: found
            for name, surface in {**localised_surfaces(), **localised_views()}.items()
            if (found := accessibility_problems(surface, texts, "type" not in surface))
        }
    assert problems == {}


INACCESSIBLE = {
    "placeholder text": {"text": "x", "blocks": [{"type": "divider"}]},
    "no text": {"blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": "Hi"}}]},
    "bare delete": {"text": "Your customers", "blocks": [{"type": "actions", "elements": [
        {"type": "button", "text": {"type": "plain_text", "text": "Delete"}, "action_id": "d"}]}]},
    "label = text": {"text": "Your customers", "blocks": [{"type": "actions", "elements": [
        {"type": "button", "text": {"type": "plain_text", "text": "Delete"}, "action_id": "d",
         "accessibility_label": "Delete"}]}]},
    "image, no alt": {"text": "The chart", "blocks": [
        {"type": "image", "image_url": "https://x.example/c.png", "alt_text": " "}]},
}  # fmt: skip


@pytest.mark.parametrize("surface", INACCESSIBLE.values(), ids=INACCESSIBLE.keys())
def test_the_accessibility_check_fails_where_it_should(surface):
    assert accessibility_problems(surface, set(), message=True) != []


REPORT = ReportData(["2026-11-23", "2026-11-30"], {"preregistered": [2, 1], "rejected": [1, 0]},
                    [2, 1], [1, 0], [2, 1], [1, 0])  # fmt: skip


def _drawn(render) -> tuple[bytes, list[str]]:  # type: ignore[no-untyped-def]
    import warnings

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        png = render()
    return png, [str(w.message) for w in caught if "missing from" in str(w.message)]


def test_the_weekly_chart_is_titled_in_chinese_with_a_font_that_has_the_glyphs():
    """The chart's titles and legends follow the channel's language; Chinese is drawn with a
    CJK font (.ci/run installs fonts-wqy-microhei), so no glyph comes out as a box."""
    import os

    from bot import report

    if report.cjk_font() is None:
        if os.environ.get("CI"):
            pytest.fail("no font with Chinese glyphs: .ci/run installs fonts-wqy-microhei")
        pytest.skip(
            "no font with Chinese glyphs installed here (apt-get install fonts-wqy-microhei)"
        )
    with use("en"):
        english, missing = _drawn(lambda: report.render_png(REPORT))
        assert missing == []
    with use("zh"):
        chinese, missing = _drawn(lambda: report.render_png(REPORT))
        assert missing == []
        assert chinese != english
        _boxes, missing = _drawn(lambda: report._draw(REPORT, None))  # the check can fail
        assert missing != []


def test_without_a_chinese_font_the_chart_stays_english(monkeypatch):
    """Boxes say nothing: without a CJK font the chart is drawn in English (the posted summary
    is still Chinese), and a warning says why."""
    from bot import report

    with use("en"):
        english = report.render_png(REPORT)
    monkeypatch.setattr(report, "cjk_font", lambda: None)
    with use("zh"):
        fallback, missing = _drawn(lambda: report.render_png(REPORT))
        assert "合作计划报告" in summary_text(REPORT)
    assert missing == [] and fallback == english


def test_the_busy_page_follows_the_readers_language():
    from flask import Blueprint
    from slack_bolt import App

    from bot.clock import SystemClock
    from bot.errors import Busy
    from bot.web.app import build_web_app

    pages = Blueprint("pages", __name__)

    @pages.get("/invite/<token>")
    def stuck(token: str) -> str:
        raise Busy("SELECT", {}, Exception("lock wait timeout"))

    bolt = App(token="xoxb-test", signing_secret="s", token_verification_enabled=False)
    web = build_web_app(
        bolt,
        signing_secret="s",
        clock=SystemClock(),
        pages=pages,
        database_answers=lambda: True,
        first_delivery=lambda _key: True,
    )
    client = web.test_client()
    zh = client.get("/invite/T0K", headers={"Accept-Language": "zh-CN,zh;q=0.9"})
    assert zh.status_code == 503 and zh.headers["Retry-After"] == "5"
    assert zh.headers["Content-Language"] == "zh-CN" and "数据库暂时繁忙" in zh.get_data(True)
    switched = client.get("/invite/T0K?lang=en", headers={"Accept-Language": "zh-CN"})
    assert "The database is busy" in switched.get_data(True)


def test_the_workers_refusal_of_an_approve_click_is_in_the_managers_language(app, direct):
    """The worker decides an Approve click; a refusal it sends back (here: already decided)
    is in the language of the manager who clicked, carried with the click."""
    manager = "UZHMANAGER2"
    direct.manager(manager, "zh.manager2@vendor.example")
    direct.partner()
    row = direct.prereg("client@customer.fr", mobile="+33 6 12 34 56 78")
    app.fake.user_locale[manager] = "zh-CN"
    app.block_action(manager, views.APPROVE_ACTION, str(row.id))
    eventually(lambda: direct.status(row.id) == "preregistered", what="approved")
    before = len(app.fake.responses)
    app.block_action(manager, views.APPROVE_ACTION, str(row.id))
    note = app.fake.wait_for_response(before + 1)[before]
    assert "此申请已有决定" in note["text"] and "已预注册" in note["text"], note["text"]


def test_a_notice_that_goes_by_email_is_in_the_companys_language():
    """The submitter's language is unknown and their workspace gone (Slack cannot be asked):
    the notice, which goes by email, is written in their company's language."""
    from contextlib import contextmanager
    from types import SimpleNamespace

    from bot.i18n import language
    from bot.slack.workspaces import WorkspaceUnavailable
    from handlers.reach import in_reader_language

    @contextmanager
    def reaching(_key):  # type: ignore[no-untyped-def]
        raise WorkspaceUnavailable("T0ACME", "not installed, or uninstalled")
        yield

    services = SimpleNamespace(
        languages=SimpleNamespace(cached=lambda _key: None),
        slack=SimpleNamespace(reaching=reaching),
    )
    with in_reader_language(services, "T0ACME:U1", "zh"):
        assert language() == "zh"
    with in_reader_language(services, "T0ACME:U1"):
        assert language() == "en"
