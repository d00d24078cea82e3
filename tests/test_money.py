"""Money in each currency's own digits: stored as minor units, written the way
the reader's language writes it, and handed to Google as micros."""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal
from typing import Any

import pytest
from flask import Flask

from tests.support.apple import make_club, make_member, unzip
from wallet.db import Database
from wallet.google.objects import loyalty_object
from wallet.loyalty.cardfacts import card_facts
from wallet.loyalty.locales import format_percent, short_date
from wallet.loyalty.models import Membership
from wallet.loyalty.money import exponent, format_money, is_currency, to_major, to_micros, to_minor

NBSP, NNBSP = "\u00a0", "\u202f"

# currency, exponent, minor units, major units
CURRENCIES = [
    ("JPY", 0, 1500, Decimal("1500")),
    ("RUB", 2, 123456, Decimal("1234.56")),
    ("BHD", 3, 1234, Decimal("1.234")),
    ("XOF", 0, 150000, Decimal("150000")),
]


@pytest.mark.parametrize(("currency", "digits", "minor", "major"), CURRENCIES)
def test_each_currency_has_its_own_exponent(currency: str, digits: int, minor: int, major: Decimal) -> None:
    assert exponent(currency) == digits
    assert exponent(currency.lower()) == digits
    assert to_major(minor, currency) == major
    assert to_minor(major, currency) == minor
    assert to_micros(minor, currency) == int(major * 1_000_000)


def test_an_amount_finer_than_the_currency_is_refused() -> None:
    with pytest.raises(ValueError, match="JPY"):
        to_minor(Decimal("0.5"), "JPY")
    with pytest.raises(ValueError, match="BHD"):
        to_minor("1.2345", "BHD")
    assert to_minor("1.230", "BHD") == 1230


@pytest.mark.parametrize(
    ("minor", "currency", "locale", "text"),
    [
        (1500, "JPY", "en", "¥1,500"),
        (1500, "JPY", "ru", f"1{NBSP}500{NBSP}¥"),
        (123456, "RUB", "ru", f"1{NBSP}234,56{NBSP}₽"),
        (123456, "RUB", "en", f"RUB{NBSP}1,234.56"),
        (1234, "BHD", "en", f"BHD{NBSP}1.234"),
        (1234, "BHD", "ru", f"1,234{NBSP}BHD"),
        (150000, "XOF", "fr", f"150{NNBSP}000{NBSP}F{NNBSP}CFA"),
        (150000, "XOF", "ru", f"150{NBSP}000{NBSP}F{NNBSP}CFA"),
        (150000, "XOF", "en", f"F{NNBSP}CFA{NBSP}150,000"),
        (-1250, "USD", "en", "-$12.50"),
        # A tag with a region, and one no one knows (a card must still render).
        (123456, "RUB", "ru-RU", f"1{NBSP}234,56{NBSP}₽"),
        (1500, "JPY", "xx-unknown", "¥1,500"),
    ],
)
def test_money_reads_as_the_language_writes_it(minor: int, currency: str, locale: str, text: str) -> None:
    assert format_money(minor, currency, locale) == text


def test_repeated_amounts_read_the_same_in_each_language() -> None:
    # Passes of many members ask for the same amounts and rates again.
    for _ in range(2):
        assert format_money(123456, "RUB", "ru") == f"1{NBSP}234,56{NBSP}₽"
        assert format_money(123456, "RUB", "en") == f"RUB{NBSP}1,234.56"
        assert format_money(123456, "USD", "en") == "$1,234.56"
        assert format_percent(Decimal("2.5"), "en") == "2.5%"
        assert format_percent(Decimal("2.5"), "ru") == f"2,5{NBSP}%"
        assert format_percent(Decimal("12.75"), "ru") == f"12,75{NBSP}%"
        assert format_percent(Decimal("0.125"), "en") == "0.125%"


def test_only_currencies_in_use_are_accepted() -> None:
    assert is_currency("XOF") and is_currency("bhd") and is_currency("JPY") and is_currency("RUB")
    assert not is_currency("ABC") and not is_currency("") and not is_currency(None)


def test_dates_follow_the_language() -> None:
    today = date(2027, 1, 10)
    assert short_date(date(2027, 3, 5), "en", today) == "Mar 5"
    assert short_date(date(2027, 3, 5), "en-GB", today) == "5 Mar"
    assert short_date(date(2027, 3, 5), "ru", today) == "5 мар."
    assert short_date(date(2028, 3, 5), "ru", today) == f"5 мар. 2028{NNBSP}г."


def _cash_card(app: Flask, db: Database, currency: str, minor: int, locale: str) -> tuple[Any, Any]:
    from wallet.apple.pkpass import render_pkpass

    club = make_club(db, currency=currency, program={"cashback": {"percent": "5"}})
    member = make_member(db, club, cash_balance=minor, locale=locale)
    with app.app_context(), db.session() as session:
        membership = session.get(Membership, member)
        pass_json = json.loads(unzip(render_pkpass(membership))["pass.json"])
        google = loyalty_object("3388000000000000000", membership, card_facts(membership),
                                public_base_url="https://wallet.test")
    return pass_json["storeCard"], google


@pytest.mark.parametrize(
    ("currency", "minor", "locale", "shown", "micros"),
    [
        ("XOF", 150000, "ru", f"150{NBSP}000{NBSP}F{NNBSP}CFA", 150_000_000_000),
        ("JPY", 1500, "en", "¥1,500", 1_500_000_000),
        ("BHD", 1234, "en", f"BHD{NBSP}1.234", 1_234_000),
        ("RUB", 123456, "ru", f"1{NBSP}234,56{NBSP}₽", 1_234_560_000),
    ],
)
def test_cards_show_cashback_in_the_currencys_own_digits(
    app: Flask, db: Database, currency: str, minor: int, locale: str, shown: str, micros: int
) -> None:
    card, google = _cash_card(app, db, currency, minor, locale)
    primary = card["primaryFields"][0]
    assert (primary["key"], primary["value"]) == ("cash", shown)
    # The lock-screen message is the same value in the member's language.
    assert primary["changeMessage"] == "Cashback balance: %@"
    money = google["secondaryLoyaltyPoints"]["balance"]["money"]
    # Money.micros is an int64, which Google's JSON carries as a string.
    assert money == {"micros": str(micros), "currencyCode": currency}


@pytest.mark.parametrize(
    ("lang", "text"),
    [("en", f"RUB{NBSP}1,234.56 by Mar 5"), ("ru", f"1{NBSP}234,56{NBSP}₽ by 5 мар.")],
)
def test_pages_write_money_and_dates_in_the_page_language(app: Flask, lang: str, text: str) -> None:
    from flask import render_template_string

    with app.test_request_context(f"/?lang={lang}"):
        page = render_template_string("{{ 123456 | money('RUB') }} by {{ day | day }}",
                                      day=date(date.today().year, 3, 5))
    assert page == text
