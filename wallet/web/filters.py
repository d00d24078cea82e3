"""Template filters that write money and dates in the page's language
(the locale Flask-Babel chose for the request): ``{{ member.cash_balance |
money(club.currency) }}``, ``{{ member.expiring_on | day }}``,
``{{ member.balance | points }}``, ``{{ level.discount_percent | percent }}``,
``{{ entry.created_at | when }}``."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from flask import Flask
from babel.numbers import format_percent
from flask_babel import format_datetime, format_decimal, get_locale

from wallet.loyalty.locales import short_date
from wallet.loyalty.money import format_money


def _locale() -> str:
    return str(get_locale() or "en")


def money(minor: int, currency: str) -> str:
    return format_money(minor, currency, _locale())


def day(value: date) -> str:
    return short_date(value, _locale())


def when(value: datetime) -> str:
    """A moment, to the minute, in the language's short form."""
    return format_datetime(value, "short")


def points(number: int) -> str:
    return format_decimal(number)


def percent(value: Decimal | str) -> str:
    """A program's percentage ("2.5", as stored) as the language writes it."""
    return format_percent(Decimal(str(value)) / 100, locale=_locale(), decimal_quantization=False)


def init_app(app: Flask) -> None:
    app.add_template_filter(money, "money")
    app.add_template_filter(day, "day")
    app.add_template_filter(points, "points")
    app.add_template_filter(when, "when")
    app.add_template_filter(percent, "percent")
