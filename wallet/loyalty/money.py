"""Money: integer minor units of an ISO 4217 currency, and how people read it.

Every amount the service stores or receives is an integer count of the
currency's minor unit (kopecks, cents, fils; yen and CFA francs have none).
How many digits a currency has after the decimal point, which currencies
exist and how an amount is written in a language all come from the Unicode
CLDR through Babel, so 150000 XOF reads "150 000 F CFA" and 1500 JPY
"¥1,500", never "1,500.00 XOF".
"""

from __future__ import annotations

import unicodedata
from datetime import date
from decimal import Decimal
from functools import lru_cache

from babel.core import get_global
from babel.numbers import format_currency, get_currency_precision, get_currency_symbol, get_territory_currencies

from wallet.loyalty.locales import babel_locale

MICROS = 6  # Google Wallet's Money is in millionths of the major unit
NBSP = "\u00a0"


@lru_cache(maxsize=1)
def _tender(as_of: date) -> frozenset[str]:
    codes: set[str] = set()
    for territory in get_global("territory_currencies"):
        codes.update(get_territory_currencies(territory, start_date=as_of, tender=True))
    return frozenset(codes)


def currencies() -> frozenset[str]:
    """Codes of the currencies that are legal tender somewhere today (a club
    counts money in one of them)."""
    return _tender(date.today())


def is_currency(code: object) -> bool:
    return isinstance(code, str) and code.upper() in currencies()


@lru_cache(maxsize=512)
def exponent(currency: str) -> int:
    """Digits after the decimal point: JPY 0, RUB 2, BHD 3, XOF 0."""
    return int(get_currency_precision(currency.upper()))


def to_major(minor: int, currency: str) -> Decimal:
    """150050 RUB minor units -> Decimal("1500.50")."""
    return Decimal(minor).scaleb(-exponent(currency))


def to_minor(major: Decimal | int | str, currency: str) -> int:
    """Decimal("1500.50") RUB -> 150050; ValueError when the amount has more
    digits after the point than the currency (0.5 JPY does not exist)."""
    amount = Decimal(str(major)).scaleb(exponent(currency))
    if not amount.is_finite() or amount != amount.to_integral_value():
        raise ValueError(f"{major} {currency} has more decimals than the currency ({exponent(currency)})")
    return int(amount)


def to_micros(minor: int, currency: str) -> int:
    """Minor units as millionths of the major unit (Google's Money.micros)."""
    digits = exponent(currency)
    if digits > MICROS:
        return minor // 10 ** (digits - MICROS)
    return minor * 10 ** (MICROS - digits)


def _symbol_or_space(char: str) -> bool:
    return unicodedata.category(char)[0] in "SZ"


def _currency_spacing(text: str, symbol: str) -> str:
    """CLDR's currencySpacing, which Babel does not apply: a symbol that ends
    (or starts) with a letter gets a no-break space before a digit next to it,
    so "RUB1,234.56" reads "RUB 1,234.56" while "$12.50" stays."""
    start = text.find(symbol)
    if start < 0 or not symbol:
        return text
    end = start + len(symbol)
    if end < len(text) and text[end].isdigit() and not _symbol_or_space(symbol[-1]):
        text = text[:end] + NBSP + text[end:]
    if start > 0 and text[start - 1].isdigit() and not _symbol_or_space(symbol[0]):
        text = text[:start] + NBSP + text[start:]
    return text


# Every changed pass writes its cash balance, and Babel's pattern costs about
# 19 us a call: the same few amounts recur across members and card states.
@lru_cache(maxsize=4096)
def format_money(minor: int, currency: str, locale: str) -> str:
    """An amount as a person reading ``locale`` writes it, with the
    currency's own digits: 150000 XOF in "fr" is "150 000 F CFA"."""
    code = currency.upper()
    where = babel_locale(locale)
    text = format_currency(to_major(minor, code), code, locale=where)
    return _currency_spacing(text, get_currency_symbol(code, locale=where))
