"""Languages: a language tag as a Babel locale, and dates, percentages and
plural forms written the way that language writes them (CLDR data through
Babel, never tables of our own).
"""

from __future__ import annotations

from datetime import date, datetime, timezone
from decimal import Decimal
from functools import lru_cache

from babel import Locale, UnknownLocaleError
from babel.dates import format_skeleton
from babel.numbers import format_decimal
from babel.numbers import format_percent as _babel_percent

LOCALES = ("en", "ru")  # the languages cards and messages are written in
FALLBACK = "en"


@lru_cache(maxsize=256)
def babel_locale(tag: str | None) -> Locale:
    """"ru", "ru-RU" or "en_GB" as a Babel Locale; English for a tag that is
    empty or names no language CLDR knows (a card must still render)."""
    try:
        return Locale.parse((tag or FALLBACK).strip().replace("-", "_"))
    except (UnknownLocaleError, ValueError, TypeError):
        return Locale.parse(FALLBACK)


def short_date(day: date, locale: str, today: date | None = None) -> str:
    """Day and month ("Dec 1", "1 дек."), with the year only when it is not
    this year's."""
    today = today or datetime.now(timezone.utc).date()
    skeleton = "MMMd" if day.year == today.year else "yMMMd"
    return format_skeleton(skeleton, day, locale=babel_locale(locale))


def format_percent(value: Decimal, locale: str) -> str:
    """A percentage given in percent (Decimal("2.5")) as the language writes
    it: "2.5%", "2,5 %"; every decimal the value has is kept."""
    return _percent_text(str(value), locale)


# A club's few rates recur on every pass it serves, and Babel's pattern
# costs about 10 us a call. Keyed by the value's text: equal Decimals may
# differ in exponent, so each gets what Babel writes for it.
@lru_cache(maxsize=1024)
def _percent_text(value: str, locale: str) -> str:
    return _babel_percent(Decimal(value) / 100, locale=babel_locale(locale), decimal_quantization=False)


def format_count(count: int, locale: str) -> str:
    """A whole number with the language's grouping: "1,250", "1 250"."""
    return format_decimal(count, locale=babel_locale(locale))


def plural(count: int, locale: str) -> str:
    """CLDR plural category of ``count`` in the language: "one", "few",
    "many" or "other" (Russian needs all four)."""
    return babel_locale(locale).plural_form(abs(count))


def expiring_text(points: int, on: date, locale: str) -> str:
    """"350 points expire on Dec 1" in the member's language, with the
    language's plural form and date format (every wallet's card says it so)."""
    lang = "ru" if locale.lower().startswith("ru") else "en"
    template = _EXPIRING[lang].get(plural(points, locale)) or _EXPIRING[lang]["other"]
    return template.format(n=format_count(points, locale), when=short_date(on, locale))


# A wallet cannot localise a value that mixes a number and words, so the value
# is written in the member's language; keyed by CLDR plural category.
_EXPIRING = {
    "en": {"one": "{n} point expires on {when}", "other": "{n} points expire on {when}"},
    "ru": {"one": "{n} балл сгорит {when}", "few": "{n} балла сгорят {when}",
           "many": "{n} баллов сгорят {when}", "other": "{n} балла сгорят {when}"},
}
