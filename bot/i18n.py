"""The reader's language: English and Simplified Chinese, from gettext catalogs.

The catalogs are the `.po` files under bot/locale (extracted and updated with Babel:
`make i18n`). They are compiled when first used, in memory, so no `.mo` file is kept in the
repository or can go stale beside its `.po`. The language of what is being written is a
context variable: a request sets it from the reader's Slack locale, a notice from the
partner's language setting, the invitation page from the browser's Accept-Language.

Texts defined at import time (module constants) are marked with `N_` for extraction and
translated with `_` where they are rendered.
"""

from __future__ import annotations

import contextvars
import gettext
import io
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import TypeVar

from babel import Locale, UnknownLocaleError
from babel.dates import format_date as babel_date
from babel.dates import format_time as babel_time
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.numbers import format_decimal
from jinja2 import Environment

LOCALE_DIR = Path(__file__).parent / "locale"
DEFAULT = "en"
LANGUAGES = {"en": "English", "zh": "简体中文"}
BABEL_LOCALES = {"en": "en_GB", "zh": "zh_Hans_CN"}
HTML_LANGS = {"en": "en", "zh": "zh-CN"}
"""The `lang` attribute (and Content-Language) of pages and emails in each language."""

_lang: contextvars.ContextVar[str] = contextvars.ContextVar("lang", default=DEFAULT)

T = TypeVar("T")


@cache
def translations(lang: str) -> gettext.NullTranslations:
    """The compiled catalog of `lang` (English is the source language: no catalog)."""
    path = LOCALE_DIR / lang / "LC_MESSAGES" / "messages.po"
    if lang == DEFAULT or not path.exists():
        return gettext.NullTranslations()
    with path.open("rb") as po:
        catalog = read_po(po, locale=BABEL_LOCALES.get(lang, lang))
    compiled = io.BytesIO()
    write_mo(compiled, catalog)
    compiled.seek(0)
    return gettext.GNUTranslations(compiled)


def language() -> str:
    return _lang.get()


@contextmanager
def use(lang: str | None) -> Iterator[str]:
    """Within the block, texts are in `lang` (unknown or None: English)."""
    token = _lang.set(lang if lang in LANGUAGES else DEFAULT)
    try:
        yield _lang.get()
    finally:
        _lang.reset(token)


def html_lang() -> str:
    return HTML_LANGS[_lang.get()]


def install_jinja(env: Environment) -> None:
    """Jinja2 templates translated with these catalogs, in the language in use when rendered:
    `{% trans %}` blocks and `_()` (new-style: `_('%(name)s', name=...)`, values escaped)."""
    env.add_extension("jinja2.ext.i18n")
    env.install_gettext_callables(gettext=_, ngettext=ngettext, newstyle=True)  # type: ignore[attr-defined]


def set_language(lang: str | None) -> None:
    """Sets the language for the rest of this context (a request's thread of work)."""
    _lang.set(lang if lang in LANGUAGES else DEFAULT)


def _(message: str) -> str:
    return translations(_lang.get()).gettext(message)


def per_language(build: Callable[[], T]) -> Callable[[], T]:
    """`build` run once per language, in that language, and kept: for the texts a view puts
    on every answer that do not change from one answer to the next (labels, templates). The
    catalogs are read once per process (`translations`), so what is kept is what `_` gives.
    Two threads building at once both build the same value; one is kept."""
    built: dict[str, T] = {}

    def get() -> T:
        lang = _lang.get()
        value = built.get(lang)
        if value is None:
            value = built[lang] = build()
        return value

    return get


def ngettext(singular: str, plural: str, n: int) -> str:
    return translations(_lang.get()).ngettext(singular, plural, n)


def N_(message: str) -> str:  # noqa: N802 - gettext's own name for "mark, translate later"
    """Marks a text for extraction; it is translated with `_` where it is shown."""
    return message


def from_slack_locale(locale: str | None) -> str:
    """`zh-CN`, `zh-TW`, `en-US`, ... as one of LANGUAGES (Slack's `users.info` locale)."""
    if locale and locale.lower().startswith("zh"):
        return "zh"
    return DEFAULT


def from_accept_language(header: str | None) -> str:
    """The browser's preferred language among LANGUAGES (RFC 9110 weights honoured)."""
    preferred: list[tuple[float, str]] = []
    for part in (header or "").split(","):
        tag, _sep, params = part.strip().partition(";")
        weight = 1.0
        if params.strip().startswith("q="):
            try:
                weight = float(params.strip()[2:])
            except ValueError:
                weight = 0.0
        if tag:
            preferred.append((weight, tag.strip()))
    for _weight, tag in sorted(preferred, key=lambda p: -p[0]):
        if tag == "*":
            return DEFAULT
        try:
            locale = Locale.parse(tag.replace("-", "_"))
        except (ValueError, UnknownLocaleError):
            continue
        if locale.language in LANGUAGES:
            return locale.language
    return DEFAULT


@cache
def _babel_locale(lang: str) -> Locale:
    """Babel parses a locale given by name again on every call (~4 µs a date)."""
    return Locale.parse(BABEL_LOCALES[lang])


def format_when(at: datetime, with_time: bool = True, length: str = "medium") -> str:
    """A date (and time, to the minute) as the reader writes it, in `at`'s own zone:
    `1 Dec 2026, 09:00` / `2026年12月1日 09:00` (length "long": `1 December 2026, 09:00`)."""
    locale = _babel_locale(_lang.get())
    date = babel_date(at, length, locale=locale)
    if not with_time:
        return date
    pattern = locale.datetime_formats[length]
    return pattern.format(babel_time(at, "short", tzinfo=at.tzinfo, locale=locale), date)


def format_number(value: float) -> str:
    return format_decimal(value, locale=_babel_locale(_lang.get()))
