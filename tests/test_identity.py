"""The customer across clubs is joined to memberships only by what the
person proves: a sign-in link opened from their inbox or a code typed from
their phone. Never by an email or phone a brand or a stranger typed."""

from __future__ import annotations

import re
from datetime import date, timedelta

import pytest
from sqlalchemy import select

from tests.support.ledger import T0, join, make_club, member
from wallet.db import Database, utcnow
from wallet.loyalty import identity
from wallet.loyalty.errors import NotAuthenticated, RateLimited
from wallet.loyalty.members import enrol, update_profile
from wallet.loyalty.models import Club, Customer, Membership, OutboxEvent, SignInChallenge
from wallet.loyalty.outbox import OutboxKind

LINK = re.compile(r"https://wallet\.test/me/sign-in/([A-Za-z0-9_-]+)")
CODE = re.compile(r"\b(\d{6})\b")


def link_for(token: str) -> str:
    return f"https://wallet.test/me/sign-in/{token}"


def sent(db: Database) -> list[dict]:
    with db.session() as s:
        return [row.payload for row in s.scalars(
            select(OutboxEvent).where(OutboxEvent.kind == OutboxKind.NOTIFICATION).order_by(OutboxEvent.id))]


def last_token(db: Database, to: str) -> str:
    [body] = [p["body"] for p in sent(db) if p["to"] == to][-1:]
    return LINK.search(body).group(1)


def last_code(db: Database, to: str) -> str:
    [body] = [p["body"] for p in sent(db) if p["to"] == to][-1:]
    return CODE.search(body).group(1)


def sign_in_by_email(db: Database, email: str, **kwargs) -> Customer:
    identity.request_email_sign_in(db, email, link_for=link_for)
    return identity.verify_email_sign_in(db, last_token(db, email.lower()), **kwargs)


def cards(db: Database, customer_id: int) -> set[int]:
    with db.session() as s:
        return {m.id for m in identity.memberships_of(s, customer_id)}


def test_opening_the_emailed_link_ties_every_membership_with_that_email_across_brands(db: Database) -> None:
    coffee = join(db, make_club(db), "ann@example.com", name="Ann")
    books = join(db, make_club(db), "ANN@example.com", name="Anna")
    other = join(db, make_club(db), "bob@example.com")
    assert member(db, coffee).customer_id is None  # enrolment alone joins nothing

    customer = sign_in_by_email(db, "Ann@Example.com")
    assert cards(db, customer.id) == {coffee, books}
    assert member(db, other).customer_id is None
    with db.session() as s:
        assert identity.proven_identifiers(s, customer.id) == [("email", "ann@example.com")]


def test_a_sign_in_link_works_once_and_only_its_hash_is_stored(db: Database) -> None:
    identity.request_email_sign_in(db, "ann@example.com", link_for=link_for, locale="ru")
    token = last_token(db, "ann@example.com")
    assert "Откройте ссылку" in sent(db)[-1]["body"]
    with db.session() as s:
        [challenge] = s.scalars(select(SignInChallenge))
        assert token not in challenge.secret_hash and len(challenge.secret_hash) == 64
        assert challenge.expires_at - challenge.created_at == identity.EMAIL_LINK_LIFETIME
    first = identity.verify_email_sign_in(db, token)
    with pytest.raises(NotAuthenticated) as err:
        identity.verify_email_sign_in(db, token)
    assert err.value.code == "sign_in_link_invalid"
    for bad in ("x" * 43, "", None, "ü" * 43):
        with pytest.raises(NotAuthenticated):
            identity.verify_email_sign_in(db, bad)  # type: ignore[arg-type]
    assert first.id is not None


def test_an_old_link_has_expired_and_a_new_one_replaces_the_old(db: Database) -> None:
    identity.request_email_sign_in(db, "ann@example.com", link_for=link_for, now=utcnow() - timedelta(minutes=21))
    stale = last_token(db, "ann@example.com")
    with pytest.raises(NotAuthenticated) as err:
        identity.verify_email_sign_in(db, stale)
    assert err.value.code == "sign_in_link_expired"
    identity.request_email_sign_in(db, "ann@example.com", link_for=link_for, now=utcnow() - timedelta(minutes=5))
    replaced = last_token(db, "ann@example.com")
    identity.request_email_sign_in(db, "ann@example.com", link_for=link_for)
    with pytest.raises(NotAuthenticated):
        identity.verify_email_sign_in(db, replaced)
    identity.verify_email_sign_in(db, last_token(db, "ann@example.com"))


def test_a_later_enrolment_is_tied_at_the_next_sign_in_not_before(db: Database) -> None:
    first = join(db, make_club(db), "ann@example.com")
    customer = sign_in_by_email(db, "ann@example.com")
    later = join(db, make_club(db), "ann@example.com")
    assert member(db, later).customer_id is None
    again = sign_in_by_email(db, "ann@example.com")
    assert again.id == customer.id
    assert cards(db, customer.id) == {first, later}


def test_a_texted_code_ties_the_memberships_with_that_phone(db: Database) -> None:
    by_phone = join(db, make_club(db), "a1@example.com", phone="+79161234567")
    other_brand = join(db, make_club(db), "a2@example.com", phone="+7 916 123-45-67")
    identity.request_phone_code(db, "8 916 123-45-67", country="RU")
    code = last_code(db, "+79161234567")
    with db.session() as s:
        [challenge] = s.scalars(select(SignInChallenge))
        assert code not in challenge.secret_hash and challenge.secret_hash.startswith("$argon2")
    customer = identity.verify_phone_code(db, "+79161234567", code)
    assert cards(db, customer.id) == {by_phone, other_brand}


def test_wrong_codes_count_even_though_the_call_fails_and_five_spend_the_code(db: Database) -> None:
    identity.request_phone_code(db, "+79161234567")
    code = last_code(db, "+79161234567")
    wrong = "000000" if code != "000000" else "111111"
    for left in (4, 3, 2, 1):
        with pytest.raises(NotAuthenticated) as err:
            identity.verify_phone_code(db, "+79161234567", wrong)
        assert err.value.code == "phone_code_wrong" and f"{left} tries left" in err.value.message
    with pytest.raises(NotAuthenticated) as err:
        identity.verify_phone_code(db, "+79161234567", wrong)
    assert err.value.code == "phone_code_spent"
    with pytest.raises(NotAuthenticated) as err:
        identity.verify_phone_code(db, "+79161234567", code)  # the right one, too late
    assert err.value.code == "phone_code_expired"


def test_a_right_code_after_a_typo_signs_in_and_an_expired_code_does_not(db: Database) -> None:
    identity.request_phone_code(db, "+79161234567", now=utcnow() - timedelta(minutes=11))
    with pytest.raises(NotAuthenticated) as err:
        identity.verify_phone_code(db, "+79161234567", last_code(db, "+79161234567"))
    assert err.value.code == "phone_code_expired"
    identity.request_phone_code(db, "+79161234567")
    code = last_code(db, "+79161234567")
    with pytest.raises(NotAuthenticated):
        identity.verify_phone_code(db, "+79161234567", "12345")
    assert identity.verify_phone_code(db, "+79161234567", f" {code} ").id


def test_nobody_can_flood_an_inbox_or_a_phone_through_the_sign_in_form(db: Database) -> None:
    for _ in range(identity.MAX_CHALLENGES_PER_HOUR):
        identity.request_phone_code(db, "+79161234567")
    with pytest.raises(RateLimited) as err:
        identity.request_phone_code(db, "+79161234567")
    assert err.value.code == "too_many_sign_in_requests" and 0 < err.value.retry_after <= 3601
    identity.request_phone_code(db, "+79161234568")  # another number is not held up
    assert len(sent(db)) == identity.MAX_CHALLENGES_PER_HOUR + 1


def test_a_signed_in_customer_proving_a_phone_adds_it_and_joins_a_record_that_phone_had(db: Database) -> None:
    by_email = join(db, make_club(db), "ann@example.com")
    by_phone = join(db, make_club(db), "ann.work@example.com", phone="+79161234567")
    phone_first = identity.verify_phone_code(db, "+79161234567", _code(db, "+79161234567"))
    email_person = sign_in_by_email(db, "ann@example.com")
    assert phone_first.id != email_person.id
    # Signed in by email, Ann proves the phone too: one person, one record.
    joined = identity.verify_phone_code(db, "+79161234567", _code(db, "+79161234567"),
                                        customer_id=email_person.id)
    assert joined.id == email_person.id
    assert cards(db, email_person.id) == {by_email, by_phone}
    with db.session() as s:
        assert s.get(Customer, phone_first.id) is None
        assert sorted(identity.proven_identifiers(s, email_person.id)) == [
            ("email", "ann@example.com"), ("phone", "+79161234567")]


def _code(db: Database, phone: str) -> str:
    identity.request_phone_code(db, phone)
    return last_code(db, phone)


def test_a_membership_tied_to_someone_stays_theirs_and_a_changed_email_unties_it(db: Database) -> None:
    shared = join(db, make_club(db), "ann@example.com", phone="+79161234567")
    by_email = sign_in_by_email(db, "ann@example.com")
    by_phone = identity.verify_phone_code(db, "+79161234567", _code(db, "+79161234567"))
    assert member(db, shared).customer_id == by_email.id
    assert cards(db, by_phone.id) == set()
    # The brand corrects the email: the proof no longer matches the card.
    with db.transaction() as s:
        update_profile(s, s.get(Membership, shared), {"email": "anna@example.com"})
    assert member(db, shared).customer_id is None
    assert cards(db, sign_in_by_email(db, "anna@example.com").id) == {shared}


def test_an_existing_member_gets_the_link_to_their_card_and_the_joiner_learns_nothing(db: Database) -> None:
    club_id = make_club(db)
    ann = join(db, club_id, "ann@example.com", name="Ann", locale="ru")
    with db.transaction() as s:
        sms_only = enrol(s, s.get(Club, club_id), phone="+79161234567")[0].id
    with db.transaction() as s:
        m = s.get(Membership, ann)
        assert identity.send_card_link(s, m, card_url="https://wallet.test/cards/abc") == "email"
        assert identity.send_card_link(s, s.get(Membership, sms_only), card_url="https://wallet.test/cards/d") == "sms"
    email, text = sent(db)
    assert email["to"] == "ann@example.com" and "https://wallet.test/cards/abc" in email["body"]
    assert "Вы уже участник" in email["body"] and "Coffee" in email["subject"]
    assert text["to"] == "+79161234567" and "https://wallet.test/cards/d" in text["body"]
    with db.transaction() as s:
        m = s.get(Membership, ann)
        results = [identity.send_card_link(s, m, card_url="https://wallet.test/cards/abc") for _ in range(4)]
    assert results == ["email", "email", None, None]  # three an hour, then quiet


def test_signing_in_with_an_email_no_club_knows_looks_the_same_and_ties_nothing(db: Database) -> None:
    join(db, make_club(db), "ann@example.com")
    nobody = sign_in_by_email(db, "nobody@example.com")
    assert cards(db, nobody.id) == set()
    assert sent(db)[0]["to"] == "nobody@example.com"


def test_birthday_and_profile_stay_with_the_brand_that_was_told(db: Database) -> None:
    a = join(db, make_club(db), "ann@example.com", birthday=date(1990, 1, 5), now=T0)
    b = join(db, make_club(db), "ann@example.com", now=T0)
    customer = sign_in_by_email(db, "ann@example.com")
    assert cards(db, customer.id) == {a, b}
    assert member(db, b).birthday is None  # proof joins cards, never profiles
