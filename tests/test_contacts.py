"""Phone numbers and email addresses as people type them: one canonical form
(E.164, a lowercased address), read in the club's country when written
without "+", refused with 422 when they cannot be read."""

from __future__ import annotations

import pytest

from tests.support.api import Api, error_code, make_brand
from wallet.loyalty.contacts import normalize_country, normalize_email, normalize_phone
from wallet.loyalty.errors import RuleViolation


@pytest.mark.parametrize("typed,country,e164", [
    ("8 (916) 123-45-67", "RU", "+79161234567"),
    ("+7 916 123 45 67", None, "+79161234567"),
    ("0079161234567", None, "+79161234567"),     # the ITU international prefix
    ("0079161234567", "RU", "+79161234567"),     # Russia's own is 810, 00 is read as +
    ("810 44 20 7946 0958", "RU", "+442079460958"),
    ("020 7946 0958", "GB", "+442079460958"),
    ("07400 123456", "GB", "+447400123456"),
    ("030 12345678", "DE", "+493012345678"),
    ("0151 23456789", "DE", "+4915123456789"),
    ("(202) 555-0143", "US", "+12025550143"),
    ("+1 202-555-0143", "DE", "+12025550143"),   # "+" wins over the club's country
    ("090-1234-5678", "JP", "+819012345678"),
    ("06 12 34 56 78", "FR", "+33612345678"),
    ("050 123 4567", "AE", "+971501234567"),
    ("8 701 123 4567", "KZ", "+77011234567"),
])
def test_phones_of_many_countries_become_e164(typed: str, country: str | None, e164: str) -> None:
    assert normalize_phone(typed, country=country) == e164


@pytest.mark.parametrize("typed,country", [
    ("8 (916) 123-45-67", None),   # no "+" and no country: cannot be read
    ("12", "RU"),
    ("+7 916 123", None),          # too short for Russia
    ("+999 1234567", None),        # no such country code
    ("8 916 123 45 67 89 00", "RU"),
    ("call me", "RU"),
    ("", "RU"),
])
def test_phones_that_cannot_be_read_are_refused(typed: str, country: str | None) -> None:
    with pytest.raises(RuleViolation) as err:
        normalize_phone(typed, country=country)
    assert err.value.code == "invalid_phone"


def test_emails_are_checked_without_dns_and_lowercased() -> None:
    assert normalize_email("  Ann.Lee@Example.COM ") == "ann.lee@example.com"
    assert normalize_email("anna@пример.рф") == "anna@пример.рф"
    assert normalize_email("ann@xn--e1afmkfd.xn--p1ai") == "ann@пример.рф"
    assert normalize_email("ann@staging.example.test") == "ann@staging.example.test"
    for bad in ("ann", "ann@", "@example.com", "ann@example", "ann..lee@example.com", "ann@exa mple.com",
                "ann@localhost", "ann@" + "x" * 300 + ".com"):
        with pytest.raises(RuleViolation) as err:
            normalize_email(bad)
        assert err.value.code == "invalid_email", bad


def test_a_country_is_an_iso_3166_alpha_2_code() -> None:
    assert normalize_country("ru") == "RU"
    assert normalize_country(None) is None
    for bad in ("RUS", "XX", "R", 7):
        with pytest.raises(RuleViolation):
            normalize_country(bad)


def test_a_clubs_country_decides_how_its_members_phones_are_read(client, db):
    api = Api(client, make_brand(db).key)
    club = api.club()
    assert club["country"] is None
    path = f"/clubs/{club['id']}/members"
    refused = api.post(path, {"phone": "8 (916) 123-45-67", "name": "Ann"})
    assert refused.status_code == 422 and error_code(refused) == "invalid_phone"
    assert "country" in refused.get_json()["error"]["message"]

    assert api.patch(f"/clubs/{club['id']}", {"country": "ru"}).get_json()["country"] == "RU"
    member = api.post(path, {"phone": "8 (916) 123-45-67", "name": "Ann"})
    assert member.status_code == 201 and member.get_json()["phone"] == "+79161234567"
    again = api.post(path, {"phone": "+7 916 123 45 67"})
    assert again.status_code == 200 and again.get_json()["id"] == member.get_json()["id"]
    assert [m["id"] for m in api.get(f"{path}?phone=8 916 123-45-67").get_json()["items"]] == [
        member.get_json()["id"]]

    bad = api.patch(f"/clubs/{club['id']}", {"country": "Russia"})
    assert bad.status_code == 422
    assert api.get(f"/clubs/{club['id']}").get_json()["country"] == "RU"
    assert api.post("/clubs", {"name": "Bäckerei", "country": "DE"}).get_json()["country"] == "DE"
