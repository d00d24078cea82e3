"""Enrolling customers: one person across clubs, one card per club."""

from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import func, select

from tests.support.ledger import T0, TIERS, assert_consistent, join, make_club, member
from wallet.db import Database
from wallet.loyalty.errors import RuleViolation
from wallet.loyalty.members import (
    enrol,
    find_membership,
    get_membership,
    luhn_valid,
    normalize_email,
    normalize_phone,
)
from wallet.loyalty.models import Club, Customer, Membership, OutboxEvent


def test_a_new_member_gets_a_card_number_serial_and_secret_tokens(db: Database) -> None:
    mid = join(db, make_club(db))
    m = member(db, mid)
    assert m.card_number.isdigit() and len(m.card_number) == 12 and luhn_valid(m.card_number)
    assert len(m.serial_number) == 32
    assert len(m.auth_token) >= 16 and len(m.download_token) >= 16 and m.auth_token != m.download_token
    assert m.referral_code and len(m.referral_code) == 8
    assert (m.version, m.balance, m.status) == (1, 0, "active")


def test_card_numbers_carry_a_luhn_check_digit() -> None:
    assert luhn_valid("79927398713")
    assert not luhn_valid("79927398710")


def test_enrolling_someone_already_in_the_club_returns_the_existing_member(db: Database) -> None:
    club_id = make_club(db)
    with db.transaction() as s:
        first, created = enrol(s, s.get(Club, club_id), email="Ann@Example.TEST", name="Ann", now=T0)
        assert created
        first_id = first.id
    with db.transaction() as s:
        again, created = enrol(s, s.get(Club, club_id), email=" ann@example.test ", now=T0)
        assert (again.id, created) == (first_id, False)


def test_a_customer_is_one_person_across_clubs(db: Database) -> None:
    a = join(db, make_club(db), "ann@example.test")
    b = join(db, make_club(db), "ANN@example.test")
    assert a != b
    assert member(db, a).customer_id == member(db, b).customer_id


def test_a_customer_is_found_by_phone_in_any_format(db: Database) -> None:
    club_id = make_club(db)
    with db.transaction() as s:
        m1, _ = enrol(s, s.get(Club, club_id), phone="+7 (916) 123-45-67", now=T0)
        mid = m1.id
    with db.transaction() as s:
        m2, created = enrol(s, s.get(Club, club_id), phone="0079161234567", now=T0)
        assert (m2.id, created) == (mid, False)
        assert s.get(Customer, m2.customer_id).phone == "+79161234567"


def test_bad_contact_details_are_refused_and_create_nothing(db: Database) -> None:
    club_id = make_club(db)
    cases = [
        ({}, "email_or_phone_required"),
        ({"email": "not-an-email"}, "invalid_email"),
        ({"phone": "12"}, "invalid_phone"),
        ({"email": "a@example.test", "birthday": "31/12/1990"}, "invalid_birthday"),
        ({"email": "a@example.test", "birthday": "2999-01-01"}, "invalid_birthday"),
        ({"email": "a@example.test", "name": "x" * 201}, "invalid_name"),
    ]
    for kwargs, code in cases:
        with db.transaction() as s, pytest.raises(RuleViolation) as err:
            enrol(s, s.get(Club, club_id), **kwargs)
        assert err.value.code == code
    with db.session() as s:
        assert s.scalar(select(func.count()).select_from(Customer)) == 0


def test_normalisation_of_email_and_phone() -> None:
    assert normalize_email("  Ann@Example.Test ") == "ann@example.test"
    assert normalize_phone("8 916 123 45 67", country="RU") == "+79161234567"
    assert normalize_phone("+1 (202) 555-0143") == "+12025550143"


def test_a_tiered_club_starts_members_in_its_first_tier_and_schedules_a_review(db: Database) -> None:
    mid = join(db, make_club(db, {"tiers": TIERS}))
    m = assert_consistent(db, mid)
    assert m.tier == "Silver"
    assert m.tier_review_at is not None and m.tier_review_at > T0


def test_enrolment_queues_the_member_enrolled_webhook(db: Database) -> None:
    club_id = make_club(db, webhook=True)
    mid = join(db, club_id, "ann@example.test", birthday=date(1990, 1, 5), name="Ann")
    with db.session() as s:
        events = [p["event"] for (p,) in s.execute(select(OutboxEvent.payload).where(OutboxEvent.kind == "webhook"))]
    assert [e["type"] for e in events] == ["member.enrolled"]
    assert events[0]["data"]["member"]["id"] == mid and events[0]["data"]["email"] == "ann@example.test"


def test_members_are_found_by_card_number_email_or_phone(db: Database) -> None:
    club_id = make_club(db)
    mid = join(db, club_id, "ann@example.test")
    card = member(db, mid).card_number
    with db.session() as s:
        club = s.get(Club, club_id)
        assert find_membership(s, club, card_number=card).id == mid
        assert find_membership(s, club, email="ANN@example.test").id == mid
        assert find_membership(s, club, email="bob@example.test") is None
        assert get_membership(s, mid, brand_id=club.brand_id).id == mid
        with pytest.raises(Exception) as err:
            get_membership(s, mid, brand_id=club.brand_id + 1000)
        assert getattr(err.value, "code", None) == "member_not_found"


def test_memberships_are_unique_per_club_and_customer(db: Database) -> None:
    club_id = make_club(db)
    join(db, club_id, "ann@example.test")
    join(db, club_id, "ann@example.test")
    with db.session() as s:
        assert s.scalar(select(func.count()).select_from(Membership)) == 1


@pytest.mark.parametrize("field,value,code", [
    ("email", "a\x00b@example.test", "invalid_email"),
    ("name", "Ann\x00", "invalid_name"),
    ("name", "\ud800", "invalid_name"),
    ("phone", "+7916\x001234567", "invalid_phone"),
    ("referral_code", "AB\x00", "invalid_referral_code"),
])
def test_text_postgresql_cannot_store_is_refused_as_bad_input(db: Database, field: str, value: str,
                                                               code: str) -> None:
    club_id = make_club(db)
    kwargs = {"email": "ann@example.test", field: value}
    with db.transaction() as s, pytest.raises(RuleViolation) as err:
        enrol(s, s.get(Club, club_id), **kwargs)
    assert err.value.code == code
    with db.session() as s, pytest.raises(RuleViolation):
        find_membership(s, s.get(Club, club_id), card_number="12\x00")
