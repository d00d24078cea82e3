"""pass.json as a pass is built (a template per club state and card shape,
the member's values spliced in) is the pass.json of the plain data path
(``build_pass_json``), for cards of every shape: programs, tiers, expiring
and pending points, ended cards, names and messages that need escaping or
cutting, card numbers that some barcode formats cannot carry, store and
poster cards."""

from __future__ import annotations

import dataclasses
import json
import random
from datetime import date, datetime, timezone
from decimal import Decimal
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select

from tests.support.apple import make_club, make_member
from wallet.apple import passdata
from wallet.db import Database
from wallet.loyalty.cardfacts import CardFacts, card_facts
from wallet.loyalty.models import Membership


def _club(rnd: random.Random) -> tuple[dict[str, Any], passdata.ClubContext]:
    def pick(*choices: Any) -> Any:
        return rnd.choice(choices)

    club = dict(
        club_id=7, club_name="Café \"Q\"", brand_name="Brand", currency=pick("EUR", "JPY", "BHD"),
        has_points=pick(True, False), has_cashback=pick(True, False), has_stamps=pick(True, False),
        cashback_percent=pick(None, Decimal("2.5")), stamps_required=pick(None, 10),
        stamp_reward=pick(None, "", "Free coffee", "  two\nlines  {x}"), terms=pick("", "Terms \\ \"quoted\" {}", "\ufdd0news\ufdd0"),
        contact_email=pick(None, "hi@club.test"), contact_phone=None, website=pick(None, "https://club.test"),
        languages=("en", "ru"),
    )
    ctx = passdata.ClubContext(
        pass_type_identifier="pass.test", team_identifier="TEAM", web_service_url="https://wallet.test/apple",
        organization_name=pick("Org {0}", "\ufdd0balance\ufdd0"), logo_text=None, description="A card", foreground_color=None,
        background_color="#112233", label_color=None,
        barcode_format=pick("qr", "ean13", "itf", "code39", "codabar", "code128", "pdf417", "aztec"),
        locations=[{"latitude": 1, "longitude": 2, "name": "Shop"}],
        card_style=pick("store_card", "poster"), featured_actions=(("shop", "https://club.test/shop"),),
    )
    return club, ctx


def _member(rnd: random.Random, i: int) -> dict[str, Any]:
    def pick(*choices: Any) -> Any:
        return rnd.choice(choices)

    return dict(
        member_name=pick("", "  ", "Ann", "A member name long enough to be cut on the front", "Q\"uote\\ \u2028 \ufdd0x\ufdd0 {0} {card_number}"),
        card_number=pick("000000000012", "4006381333931", "12345", "AB-12", "\u00ff\u20ac"),
        serial_number=f"serial-{i}", version=i, modified_at=datetime(2026, 1, 1, tzinfo=timezone.utc),
        active=pick(True, True, False),
        ended_at=datetime(2026, 5, 1, 3, 4, 5, 678, tzinfo=timezone.utc),
        balance=rnd.randrange(-5, 100_000), pending=rnd.randrange(-5, 50), cash_balance=rnd.randrange(0, 99_999),
        discount_percent=pick(None, Decimal("5"), Decimal("12.5")),
        tier=pick(None, "", "Gold", "A tier name long enough to be cut"), stamps=rnd.randrange(0, 12),
        expiring_points=pick(0, 1, 3, 350), expiring_on=pick(None, date(2027, 12, 1)),
        message=pick(None, "", "Hello\n  there", "\"news\"" * 400), language=pick("en", "ru"),
    )


@pytest.mark.parametrize("seed", range(4))
def test_template_gives_the_plain_pass_json(seed: int) -> None:
    rnd = random.Random(seed)
    shapes = set()
    for _club_number in range(60):
        club, ctx = _club(rnd)
        club_json = None
        for i in range(30):
            facts = CardFacts(**club, **_member(rnd, i))
            club_json = club_json or passdata.club_json(facts, ctx)
            survey = rnd.choice((None, "https://wallet.test/s/1?t=x"))
            built = passdata.pass_json_bytes(facts, club_json, authentication_token=f"token-{i}", survey_url=survey)
            plain = passdata.build_pass_json(facts, ctx, authentication_token=f"token-{i}", survey_url=survey)
            assert json.loads(built) == plain
            assert built.decode("utf-8").startswith("{" + club_json.keys + ",")
        assert club_json is not None
        shapes.update(club_json.templates)
    assert len(shapes) > 100  # many shapes were tried, not one


def test_templates_are_shared_by_cards_of_one_shape() -> None:
    rnd = random.Random(0)
    club, ctx = _club(rnd)
    member = _member(rnd, 1)
    first = CardFacts(**club, **member)
    club_json = passdata.club_json(first, ctx)
    passdata.pass_json_bytes(first, club_json, authentication_token="a" * 20)
    other = dataclasses.replace(first, balance=first.balance + 1, serial_number="other")
    text = passdata.pass_json_bytes(other, club_json, authentication_token="b" * 20)
    assert len(club_json.templates) == 1
    assert json.loads(text)["serialNumber"] == "other"


def test_card_facts_are_whole(app: Flask, db: Database) -> None:
    """The facts are built without the dataclass's __init__: every field is set."""
    member_id = make_member(db, make_club(db))
    with app.app_context(), db.session() as session:
        facts = card_facts(session.get(Membership, member_id))
    assert facts == CardFacts(**{f.name: getattr(facts, f.name) for f in dataclasses.fields(CardFacts)})
    assert set(vars(facts)) == {f.name for f in dataclasses.fields(CardFacts)}


def test_card_facts_read_alike_loaded_expired_and_as_a_row(app: Flask, db: Database) -> None:
    """A membership's values are read from its loaded state when it has
    them all, through its attributes (which load them) when one is
    expired, and a row by its columns' names: the same facts each way."""
    member_id = make_member(db, make_club(db))
    with app.app_context(), db.session() as session:
        member = session.get(Membership, member_id)
        member.tier = "Gold"  # a change not flushed yet is what the card shows
        loaded = card_facts(member)
        session.flush()
        session.expire(member, ["tier"])
        expired = card_facts(member)
        assert "tier" in vars(member)  # read (and loaded) through its attribute
        row = session.execute(select(*Membership.__table__.c).where(Membership.id == member_id)).one()
        from_row = card_facts(row, member.club)  # type: ignore[arg-type]
    assert loaded.tier == "Gold"
    assert loaded == expired == from_row
