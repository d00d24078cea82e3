"""The LoyaltyClass and LoyaltyObject we write, checked against Google's own
description of the API (the walletobjects v1 discovery document that
google-api-python-client ships), and the save link that carries them."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import jwt
import pytest
from sqlalchemy import select

from tests.support.apple import POINTS_TIERS_PROGRAM, make_club, make_member
from tests.support.discovery import problems
from wallet.google.identity import get_identity
from wallet.google.links import SAVE_URL_PREFIX, google_save_url
from wallet.google.objects import loyalty_class, loyalty_object
from wallet.loyalty.cardfacts import card_facts
from wallet.loyalty.models import Membership

ISSUER = "3388000000011111111"

PROGRAMS: dict[str, dict[str, Any]] = {
    "points, tiers and cashback": POINTS_TIERS_PROGRAM,
    "discount": {"discount": {"percent": "7.5"}},
    "cashback": {"cashback": {"percent": "5"}},
    "stamps": {"stamps": {"required": 8, "reward": "A free coffee"}},
    "cashback and stamps": {"cashback": {"percent": "5"}, "stamps": {"required": 8, "reward": "Tea"}},
}


def _bodies(app, db, program: dict[str, Any], languages: tuple[str, ...] = ("en", "ru"),
            **member: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    club_id = make_club(db, program=program, website="https://coffee.test", country="RU",
                        locations=[{"name": "Main St", "latitude": 55.75, "longitude": 37.61}],
                        languages=list(languages))
    member_id = make_member(db, club_id, **member)
    with app.app_context(), db.session() as session:
        membership = session.get(Membership, member_id)
        return (loyalty_class(ISSUER, membership.club, public_base_url="https://wallet.test"),
                loyalty_object(ISSUER, membership, card_facts(membership), public_base_url="https://wallet.test"))


@pytest.mark.parametrize("program", PROGRAMS.values(), ids=PROGRAMS.keys())
def test_every_class_and_object_fits_googles_schema(app, db, program) -> None:
    cls, obj = _bodies(app, db, program, balance=1250, tier="Gold", cash_balance=12345, stamps=3,
                       expiring_points=300, expiring_on=date.today() + timedelta(days=9), locale="ru")
    assert problems("LoyaltyClass", cls) == []
    assert problems("LoyaltyObject", obj) == []


def test_the_class_carries_the_clubs_look_and_our_callback(app, db) -> None:
    cls, obj = _bodies(app, db, POINTS_TIERS_PROGRAM)
    assert cls["id"] == obj["classId"] == f"{ISSUER}.{cls['id'].split('.', 1)[1]}"
    assert cls["reviewStatus"] == "UNDER_REVIEW"
    assert cls["callbackOptions"] == {"url": "https://wallet.test/google/callback"}
    assert cls["programLogo"]["sourceUri"]["uri"].startswith("https://wallet.test/google/images/clubs/")
    assert cls["hexBackgroundColor"] == "#1f2937"
    assert cls["locations"] == [{"latitude": 55.75, "longitude": 37.61}]
    assert {u["uri"] for u in cls["linksModuleData"]["uris"]} == {
        "https://coffee.test", "mailto:hello@coffee.test", "tel:+79000000000"}
    # Labels in both languages, as the Apple pass says them.
    assert cls["localizedAccountIdLabel"]["translatedValues"] == [{"language": "ru-RU", "value": "Номер карты"}]
    assert "rewardsTier" not in obj


def test_the_object_shows_the_members_figures_tier_and_expiring_points(app, db) -> None:
    soon = date.today() + timedelta(days=9)
    _cls, obj = _bodies(app, db, POINTS_TIERS_PROGRAM, balance=1250, tier="Gold", cash_balance=150050,
                        expiring_points=300, expiring_on=soon, card_number="123456789012")
    assert obj["id"].startswith(ISSUER + ".") and all(c.isalnum() or c in "._-" for c in obj["id"])
    assert obj["state"] == "ACTIVE"
    assert (obj["accountId"], obj["accountName"]) == ("123456789012", "Anna Petrova")
    assert obj["loyaltyPoints"]["balance"] == {"int": 1250}
    # RUB has two decimals: 1500.50 is 1,500,500,000 micros.
    assert obj["secondaryLoyaltyPoints"]["balance"]["money"] == {"micros": "1500500000", "currencyCode": "RUB"}
    assert obj["barcode"] == {"type": "QR_CODE", "value": "123456789012", "alternateText": "123456789012"}
    modules = {m["id"]: m for m in obj["textModulesData"]}
    assert modules["tier"]["body"] == "Gold"
    assert modules["expiring"]["body"].startswith("300 points expire on")
    assert modules["expiring"]["localizedBody"]["translatedValues"][0]["value"].startswith("300 баллов сгорят")
    assert modules["terms"]["body"] == "Points are valid for one year."


def test_a_club_in_russian_only_writes_its_card_in_russian_only(app, db) -> None:
    cls, obj = _bodies(app, db, POINTS_TIERS_PROGRAM, languages=("ru",), balance=10, tier="Gold",
                       expiring_points=300, expiring_on=date.today() + timedelta(days=9), locale="en")
    assert problems("LoyaltyClass", cls) == [] and problems("LoyaltyObject", obj) == []
    assert cls["accountIdLabel"] == "Номер карты"
    assert cls["localizedAccountIdLabel"] == {"defaultValue": {"language": "ru-RU", "value": "Номер карты"}}
    assert obj["loyaltyPoints"]["localizedLabel"] == {"defaultValue": {"language": "ru-RU", "value": "Баллы"}}
    modules = {m["id"]: m for m in obj["textModulesData"]}
    assert modules["expiring"]["body"].startswith("300 баллов сгорят")
    assert "translatedValues" not in modules["expiring"]["localizedBody"]


def test_an_ended_membership_is_expired_and_huge_figures_still_fit(app, db) -> None:
    _cls, obj = _bodies(app, db, POINTS_TIERS_PROGRAM, status="ended", balance=2**40)
    assert obj["state"] == "EXPIRED"
    assert obj["loyaltyPoints"]["balance"] == {"string": str(2**40)}
    assert problems("LoyaltyObject", obj) == []


def _decoded(app, url: str) -> dict[str, Any]:
    token = url.removeprefix(SAVE_URL_PREFIX)
    identity = get_identity(app)
    assert jwt.get_unverified_header(token) == {"alg": "RS256", "kid": identity.private_key_id, "typ": "JWT"}
    return jwt.decode(token, identity.private_key.public_key(), algorithms=["RS256"], audience="google")


def test_a_development_save_link_is_the_full_form_and_fits_the_schema(app, db) -> None:
    member_id = make_member(db, make_club(db))
    with app.test_request_context(), db.session() as session:
        claims = _decoded(app, google_save_url(session.get(Membership, member_id)))
    assert {"iss", "aud", "typ", "iat", "origins", "payload"} <= set(claims)
    assert (claims["typ"], claims["origins"]) == ("savetowallet", ["https://wallet.test"])
    assert [problems("LoyaltyClass", c) for c in claims["payload"]["loyaltyClasses"]] == [[]]
    assert [problems("LoyaltyObject", o) for o in claims["payload"]["loyaltyObjects"]] == [[]]


def test_a_demo_members_save_link_decodes_verifies_and_fits_the_schema(app) -> None:
    import json

    result = app.test_cli_runner().invoke(args=["demo"])
    assert result.exit_code == 0, result.output
    member = json.loads(result.output)["members"][0]
    claims = _decoded(app, member["google_save_url"])
    [obj] = claims["payload"]["loyaltyObjects"]
    assert obj["accountId"] == member["card_number"]
    assert problems("LoyaltyObject", obj) == []
    assert [problems("LoyaltyClass", c) for c in claims["payload"]["loyaltyClasses"]] == [[]]


def test_the_object_links_the_members_survey_in_both_languages(app, db) -> None:
    _cls, obj = _bodies(app, db, POINTS_TIERS_PROGRAM)
    with db.session() as session:
        token = session.scalars(select(Membership.download_token)
                                .where(Membership.card_number == obj["accountId"])).one()
    [link] = obj["linksModuleData"]["uris"]
    assert link["uri"] == f"https://wallet.test/cards/{token}/survey"
    assert link["localizedDescription"]["translatedValues"] == [
        {"language": "ru-RU", "value": "Насколько вероятно, что вы порекомендуете нас?"}]
