"""Enrolling customers into clubs.

A customer is one person across clubs, found by normalized email (lowercased)
or phone (E.164: "+" and 8 to 15 digits). Enrolling someone already in the
club returns the existing membership, also when two tills enrol the same
person at the same moment: the unique (club, customer) constraint decides,
and the loser of the race reads the winner's row.
"""

from __future__ import annotations

import secrets
import uuid
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from wallet.db import utcnow
from wallet.loyalty.contacts import normalize_email, normalize_phone
from wallet.loyalty.errors import NotFound, RuleViolation
from wallet.loyalty.ledger import grant_bonus, member_figures, set_tier
from wallet.loyalty.models import Club, Customer, Membership
from wallet.loyalty.program import Program, valid_text
from wallet.loyalty.webhooks import emit_event

_REFERRAL_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I
CARD_DIGITS = 12  # 11 random digits and a Luhn check digit


def luhn_check_digit(digits: str) -> str:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2 == 0:  # doubled: the rightmost payload digit sits next to the check digit
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return str((10 - total % 10) % 10)


def luhn_valid(number: str) -> bool:
    return number.isdigit() and len(number) > 1 and luhn_check_digit(number[:-1]) == number[-1]


def new_card_number() -> str:
    body = str(1 + secrets.randbelow(9)) + "".join(str(secrets.randbelow(10)) for _ in range(CARD_DIGITS - 2))
    return body + luhn_check_digit(body)


def new_referral_code() -> str:
    return "".join(secrets.choice(_REFERRAL_ALPHABET) for _ in range(8))


def _parse_birthday(value: Any) -> date | None:
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        value = value.date()
    if isinstance(value, date):
        parsed = value
    elif isinstance(value, str):
        try:
            parsed = date.fromisoformat(value.strip())
        except ValueError:
            raise RuleViolation(f"birthday must be a date YYYY-MM-DD, not {value!r}", code="invalid_birthday") from None
    else:
        raise RuleViolation("birthday must be a date YYYY-MM-DD", code="invalid_birthday")
    if parsed.year < 1900 or parsed > date.today():
        raise RuleViolation("birthday must be a past date after 1900", code="invalid_birthday")
    return parsed


def _find_customer(session: Session, email: str | None, phone: str | None) -> Customer | None:
    if email:
        found = session.scalar(select(Customer).where(Customer.email == email))
        if found is not None:
            return found
    if phone:
        return session.scalar(select(Customer).where(Customer.phone == phone))
    return None


def _get_or_create_customer(
    session: Session, *, email: str | None, phone: str | None, name: str, birthday: date | None
) -> Customer:
    for _ in range(3):
        customer = _find_customer(session, email, phone)
        if customer is not None:
            # Fill in what we learn, never overwrite what the person told another club.
            if phone and not customer.phone and session.scalar(
                select(Customer.id).where(Customer.phone == phone)
            ) is None:
                customer.phone = phone
            if email and not customer.email and session.scalar(
                select(Customer.id).where(Customer.email == email)
            ) is None:
                customer.email = email
            if name and not customer.name:
                customer.name = name
            if birthday and not customer.birthday:
                customer.birthday = birthday
            return customer
        try:
            with session.begin_nested():
                customer = Customer(email=email, phone=phone, name=name, birthday=birthday)
                session.add(customer)
                session.flush()
            return customer
        except IntegrityError:
            continue  # created concurrently: read it
    raise RuleViolation("could not create the customer; try again", code="customer_conflict")


def find_membership(session: Session, club: Club, *, email: str | None = None, phone: str | None = None,
                    card_number: str | None = None) -> Membership | None:
    query = select(Membership).where(Membership.club_id == club.id)
    if card_number is not None:
        card_number = valid_text(card_number, "card_number", max_len=32, code="invalid_card_number")
        return session.scalar(query.where(Membership.card_number == card_number))
    customer = _find_customer(
        session, normalize_email(email) if email else None,
        normalize_phone(phone, country=club.country) if phone else None,
    )
    if customer is None:
        return None
    return session.scalar(query.where(Membership.customer_id == customer.id))


def enrol(
    session: Session,
    club: Club,
    *,
    email: str | None = None,
    phone: str | None = None,
    name: str = "",
    birthday: date | str | None = None,
    referral_code: str | None = None,
    actor: str = "api",
    now: datetime | None = None,
) -> tuple[Membership, bool]:
    """Enrol a customer into ``club``; returns (membership, created)."""
    if not email and not phone:
        raise RuleViolation("give an email or a phone", code="email_or_phone_required")
    norm_email = normalize_email(email) if email else None
    norm_phone = normalize_phone(phone, country=club.country) if phone else None
    if name is None:
        name = ""
    name = valid_text(name, "name", max_len=200, code="invalid_name", allow_empty=True)
    born = _parse_birthday(birthday)
    if referral_code is not None:
        referral_code = valid_text(referral_code, "referral_code", max_len=32, code="invalid_referral_code",
                                   allow_empty=True) or None
    now = now or utcnow()

    customer = _get_or_create_customer(session, email=norm_email, phone=norm_phone, name=name, birthday=born)
    existing = session.scalar(
        select(Membership).where(Membership.club_id == club.id, Membership.customer_id == customer.id)
    )
    if existing is not None:
        return existing, False

    referrer: Membership | None = None
    if referral_code:
        referrer = session.scalar(
            select(Membership).where(
                Membership.club_id == club.id, Membership.referral_code == referral_code.strip().upper()
            )
        )
        if referrer is None:
            raise RuleViolation(f"no member of this club has referral code {referral_code!r}",
                                code="unknown_referral_code")

    program = Program.of(club)
    member: Membership | None = None
    for _ in range(5):
        candidate = Membership(
            club_id=club.id,
            customer_id=customer.id,
            card_number=new_card_number(),
            serial_number=uuid.uuid4().hex,
            auth_token=secrets.token_urlsafe(24),
            download_token=secrets.token_urlsafe(24),
            referral_code=new_referral_code(),
            referred_by_id=referrer.id if referrer else None,
            name=name or customer.name,
            status="active",
            balance=0, pending=0, cash_balance=0, stamps=0, expiring_points=0,
            version=1, change_seq=0,
            card_modified_at=now.replace(microsecond=0),
            created_at=now,
            tier_review_at=now + timedelta(days=program.tiers.review_days) if program.tiers else None,
        )
        try:
            with session.begin_nested():
                session.add(candidate)
                session.flush()
            member = candidate
            break
        except IntegrityError:
            # Either the same person was enrolled concurrently (return theirs),
            # or a random card number / code collided (draw again).
            existing = session.scalar(
                select(Membership).where(Membership.club_id == club.id, Membership.customer_id == customer.id)
            )
            if existing is not None:
                return existing, False
    if member is None:
        raise RuleViolation("could not allocate a card number; try again", code="card_number_conflict")

    if program.tiers:
        set_tier(session, member, program.tiers.levels[0].name, actor=actor, now=now, reason="enrolled")
    grant_bonus(session, member, program.welcome_points, kind="welcome", dedupe_key=f"welcome:{member.id}",
                actor=actor, program=program, now=now)
    # No card change is recorded: the card did not exist before this
    # transaction, and its first render already shows all of the above.
    emit_event(session, brand_id=club.brand_id, event_type="member.enrolled",
               data={"member": member_figures(member), "email": customer.email, "phone": customer.phone,
                     "name": member.name})
    return member, True


def get_membership(session: Session, membership_id: int, *, brand_id: int | None = None) -> Membership:
    """A membership by id; NotFound for an unknown id or another brand's."""
    member = session.get(Membership, membership_id)
    if member is None or (brand_id is not None and member.club.brand_id != brand_id):
        raise NotFound(f"no member {membership_id}", code="member_not_found")
    return member
