"""What a member's card shows, as plain data.

The Apple and Google renderers (and any card page) draw from this one
function, so every wallet shows the same figures. The member's figures are
its one shape (``wallet.loyalty.ledger.serialise.member_values``), the one
the API and webhooks send, so a card never disagrees with them; the
program's rules are the club's typed ``Program`` (``wallet.loyalty.program``),
never its raw JSON.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

from wallet.loyalty.ledger.serialise import member_values
from wallet.loyalty.locales import LOCALES
from wallet.loyalty.models import Club, Membership
from wallet.loyalty.program import Program


@dataclass(frozen=True)
class CardFacts:
    club_id: int
    club_name: str
    brand_name: str
    member_name: str
    card_number: str
    serial_number: str
    currency: str
    version: int
    modified_at: datetime
    active: bool
    ended_at: datetime | None
    # Points: spendable and not yet spendable (pending window).
    has_points: bool
    balance: int
    pending: int
    # Cashback money balance in minor units of ``currency``.
    has_cashback: bool
    cash_balance: int
    cashback_percent: Decimal | None
    # Discount in force for this member: the tier's if it has one, else the club's.
    discount_percent: Decimal | None
    tier: str | None
    has_stamps: bool
    stamps: int
    stamps_required: int | None
    stamp_reward: str | None
    expiring_points: int
    expiring_on: date | None
    message: str | None
    terms: str
    contact_email: str | None
    contact_phone: str | None
    website: str | None
    # The languages the card is written in, and the one its values (texts
    # that mix numbers and words) are written in: the member's own if the
    # card has it, else the card's first.
    languages: tuple[str, ...]
    language: str


def _latest_message(membership: Membership, club: Club) -> str | None:
    # A message sent to one tier lands on the membership; the card shows
    # whichever of it and the club-wide message is newer.
    if not membership.message:
        return club.message
    if not club.message:
        return membership.message
    if membership.message_at and club.message_at and membership.message_at < club.message_at:
        return club.message
    return membership.message


def card_languages(club: Club) -> tuple[str, ...]:
    return tuple(club.languages or LOCALES)


def card_language(locale: str | None, languages: tuple[str, ...]) -> str:
    return locale if locale in languages else languages[0]


def card_facts(membership: Membership, club: Club | None = None) -> CardFacts:
    club = club or membership.club
    program = Program.of(club)
    member = member_values(membership)
    expiring = member["expiring"] or {"points": 0, "date": None}
    languages = card_languages(club)
    return _new_facts(
        club_id=club.id,
        club_name=club.name,
        brand_name=club.brand.name,
        member_name=member["name"],
        card_number=member["card_number"],
        serial_number=member["serial_number"],
        currency=club.currency,
        version=membership.version,
        modified_at=membership.card_modified_at,
        active=member["status"] == "active",
        ended_at=membership.ended_at,
        has_points=program.points is not None,
        balance=member["balance"],
        pending=member["pending"],
        has_cashback=program.cashback_percent is not None,
        cash_balance=member["cash_balance"],
        cashback_percent=program.cashback_percent or None,
        discount_percent=program.discount_for(member["tier"]),
        tier=member["tier"],
        has_stamps=program.stamps_required is not None,
        stamps=member["stamps"],
        stamps_required=program.stamps_required,
        stamp_reward=program.stamp_reward,
        expiring_points=expiring["points"],
        expiring_on=expiring["date"],
        message=_latest_message(membership, club),
        terms=club.terms,
        contact_email=club.contact_email,
        contact_phone=club.contact_phone,
        website=club.website,
        languages=languages,
        language=card_language(member["locale"], languages),
    )


def _new_facts(**values: object) -> CardFacts:
    """CardFacts(**values) without the frozen dataclass's __init__, which
    sets each of its 32 fields through object.__setattr__: a third of what
    the facts of a card cost. Every field is given (tests compare with the
    dataclass's own constructor)."""
    facts = object.__new__(CardFacts)
    facts.__dict__.update(values)
    return facts
