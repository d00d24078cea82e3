"""Template filters that write money and dates in the page's language
(the locale Flask-Babel chose for the request): ``{{ member.cash_balance |
money(club.currency) }}``, ``{{ member.expiring_on | day }}``."""

from __future__ import annotations

from datetime import date

from flask import Flask
from flask_babel import get_locale

from wallet.loyalty.locales import short_date
from wallet.loyalty.money import format_money


def _locale() -> str:
    return str(get_locale() or "en")


def money(minor: int, currency: str) -> str:
    return format_money(minor, currency, _locale())


def day(value: date) -> str:
    return short_date(value, _locale())


def init_app(app: Flask) -> None:
    app.add_template_filter(money, "money")
    app.add_template_filter(day, "day")
