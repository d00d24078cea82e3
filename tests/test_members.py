"""Enrolling people: one card per person per club, a profile per card that
belongs to its club's brand alone."""

from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import func, select

from tests.support.api import Api, make_brand
from tests.support.ledger import T0, TIERS, assert_consistent, join, make_club, member
from wallet.db import Database
from wallet.loyalty.barcodes import luhn_valid
from wallet.loyalty.contacts import normalize_email, normalize_phone
from wallet.loyalty.errors import RuleViolation
from wallet.loyalty.members import enrol, find_membership, get_membership, update_profile
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


def test_the_same_email_in_two_brands_clubs_makes_two_profiles_and_joins_nothing(db: Database) -> None:
    a = join(db, make_club(db), "ann@example.test", name="Ann", phone="+79161234567",
             birthday=date(1990, 1, 5))
    b = join(db, make_club(db), "ANN@example.test", name="Anna K.")
    first, second = member(db, a), member(db, b)
    assert a != b
    assert (first.name, first.phone, first.birthday) == ("Ann", "+79161234567", date(1990, 1, 5))
    assert (second.name, second.phone, second.birthday) == ("Anna K.", None, None)
    assert first.customer_id is None and second.customer_id is None
    with db.session() as s:
        assert s.scalar(select(func.count()).select_from(Customer)) == 0


def test_a_member_is_found_by_phone_in_any_format(db: Database) -> None:
    club_id = make_club(db)
    with db.transaction() as s:
        m1, _ = enrol(s, s.get(Club, club_id), phone="+7 (916) 123-45-67", now=T0)
        mid = m1.id
    with db.transaction() as s:
        m2, created = enrol(s, s.get(Club, club_id), phone="0079161234567", now=T0)
        assert (m2.id, created) == (mid, False)
        assert m2.phone == "+79161234567"


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
        assert s.scalar(select(func.count()).select_from(Membership)) == 0


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
    data = events[0]["data"]
    assert data["member"]["id"] == mid
    assert {k: data[k] for k in ("name", "email", "phone", "birthday", "locale")} == {
        "name": "Ann", "email": "ann@example.test", "phone": None, "birthday": "1990-01-05", "locale": "en"}


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


def test_one_active_card_per_email_and_per_phone_in_a_club(db: Database) -> None:
    club_id = make_club(db)
    ann = join(db, club_id, "ann@example.test")
    assert join(db, club_id, "ann@example.test") == ann
    bob = join(db, club_id, "bob@example.test", phone="+79161234567")
    assert join(db, club_id, "robert@example.test", phone="+7 916 123 45 67") == bob
    # Email first: an email of one member and the phone of another give the email's.
    assert join(db, club_id, "ann@example.test", phone="+79161234567") == ann
    with db.session() as s:
        assert s.scalar(select(func.count()).select_from(Membership)) == 2


def test_the_database_itself_refuses_a_second_active_card_with_one_email(db: Database) -> None:
    from sqlalchemy.exc import IntegrityError

    club_id = make_club(db)
    mid = join(db, club_id, "ann@example.test")
    copy = member(db, mid)
    with pytest.raises(IntegrityError), db.transaction() as s:
        s.add(Membership(club_id=club_id, email="ann@example.test", card_number="1", serial_number="x",
                         auth_token="t" * 20, download_token="d" * 20))
    with db.transaction() as s:  # another club may, and so may an ended card
        s.add(Membership(club_id=make_club(db), email=copy.email, card_number="1", serial_number="y",
                         auth_token="t" * 20, download_token="e" * 20))
        s.add(Membership(club_id=club_id, email=copy.email, card_number="2", serial_number="z",
                         auth_token="t" * 20, download_token="f" * 20, status="ended"))


def test_enrolling_an_existing_member_again_changes_nothing_of_their_profile(db: Database) -> None:
    club_id = make_club(db)
    mid = join(db, club_id, "ann@example.test", name="Ann", birthday=date(1990, 1, 5))
    again = join(db, club_id, "ann@example.test", name="Mallory", phone="+79161234567",
                 birthday=date(2000, 2, 2), locale="ru")
    assert again == mid
    m = member(db, mid)
    assert (m.name, m.phone, m.birthday, m.locale) == ("Ann", None, date(1990, 1, 5), "en")


def test_someone_whose_membership_ended_gets_a_new_active_card(db: Database) -> None:
    club_id = make_club(db, {"bonuses": {"welcome_points": 50}})
    old = join(db, club_id, "ann@example.test", name="Ann")
    with db.transaction() as s:
        ended = s.get(Membership, old)
        ended.status, ended.ended_at = "ended", T0
    new = join(db, club_id, "ann@example.test", name="Ann")
    assert new != old
    fresh, gone = member(db, new), member(db, old)
    assert (fresh.status, gone.status) == ("active", "ended")
    assert fresh.card_number != gone.card_number and gone.balance == 50 and fresh.balance == 50
    assert join(db, club_id, "ann@example.test") == new
    with db.session() as s:
        assert find_membership(s, s.get(Club, club_id), email="ann@example.test").id == new


def test_the_brand_edits_a_profile_within_its_club_rules(db: Database) -> None:
    club_id = make_club(db)
    ann = join(db, club_id, "ann@example.test", name="Ann")
    join(db, club_id, "bob@example.test")
    with db.transaction() as s:
        m = update_profile(s, s.get(Membership, ann), {"name": "Ann Lee", "phone": "+7 916 123-45-67",
                                                       "birthday": "1990-01-05", "locale": "ru-RU"})
        assert (m.name, m.phone, m.birthday, m.locale) == ("Ann Lee", "+79161234567", date(1990, 1, 5), "ru")
    assert member(db, ann).version == 2  # the card shows the name: re-rendered
    for data, code in (({"email": "BOB@example.test"}, "email_taken"), ({"email": None, "phone": None},
                       "email_or_phone_required"), ({"card_number": "1"}, "unknown_field"),
                       ({"locale": "de"}, "invalid_locale")):
        with pytest.raises(RuleViolation) as err, db.transaction() as s:
            update_profile(s, s.get(Membership, ann), data)
        assert err.value.code == code
    assert member(db, ann).email == "ann@example.test"


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


@pytest.mark.parametrize("fields", [
    {"email": "not-an-email"},
    {"email": "ann@example.test", "birthday": "31/12/1990"},
    {"email": "ann@example.test", "locale": "de"},
    {"phone": "8 916 123 45 67"},
    {"name": "Ann"},
])
def test_the_api_and_the_core_refuse_bad_member_fields_with_the_same_error(client, db: Database,
                                                                           fields: dict) -> None:
    api = Api(client, make_brand(db).key)
    club_id = api.club(country=None)["id"]  # no country: a number without + cannot be read
    with db.transaction() as s, pytest.raises(RuleViolation) as err:
        enrol(s, s.get(Club, club_id), **fields)
    response = api.post(f"/clubs/{club_id}/members", fields)
    assert response.status_code == 422
    assert response.get_json()["error"] == {"code": err.value.code, "message": err.value.message}
