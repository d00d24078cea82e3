"""What a member's card shows, as plain data.

The Apple and Google renderers (and any card page) draw from this one
function, so every wallet shows the same figures. The member's figures are
the columns that the API and webhooks send
(``wallet.loyalty.ledger.serialise.member_values``), read with the same
rules, so a card never disagrees with them; the program's rules are the
club's typed ``Program`` (``wallet.loyalty.program``), never its raw JSON.

What every card of a club state shares (``ClubFacts``) is made once by
whoever keeps that state (a pass's club design); per card only the member's
part is read.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal

from wallet.db import values_reader
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


def _latest_message(member_message: str | None, member_message_at: datetime | None,
                    club: ClubFacts) -> str | None:
    # A message sent to one tier lands on the membership; the card shows
    # whichever of it and the club-wide message is newer.
    if not member_message:
        return club.message
    if not club.message:
        return member_message
    if member_message_at and club.message_at and member_message_at < club.message_at:
        return club.message
    return member_message


def card_languages(club: Club) -> tuple[str, ...]:
    return tuple(club.languages or LOCALES)


def card_language(locale: str | None, languages: tuple[str, ...]) -> str:
    return locale if locale in languages else languages[0]


@dataclass(frozen=True, eq=False)
class ClubFacts:
    """What the card facts of every member of one club state share: made
    once per club state by whoever keeps that state (a pass's club design),
    so a card computes only its member's part."""

    program: Program
    # The CardFacts fields that come from the club alone, by name.
    shared: dict[str, object]
    message: str | None
    message_at: datetime | None
    # The discount of each tier met so far (a club has a few).
    discounts: dict[str | None, Decimal | None] = field(default_factory=dict)

    def discount_for(self, tier: str | None) -> Decimal | None:
        try:
            return self.discounts[tier]
        except KeyError:
            found = self.discounts[tier] = self.program.discount_for(tier)
            return found


def club_facts(club: Club) -> ClubFacts:
    """The club's share of its cards (``club`` with its brand loaded)."""
    program = Program.of(club)
    return ClubFacts(
        program=program,
        shared=dict(
            club_id=club.id,
            club_name=club.name,
            brand_name=club.brand.name,
            currency=club.currency,
            has_points=program.points is not None,
            has_cashback=program.cashback_percent is not None,
            cashback_percent=program.cashback_percent or None,
            has_stamps=program.stamps_required is not None,
            stamps_required=program.stamps_required,
            stamp_reward=program.stamp_reward,
            terms=club.terms,
            contact_email=club.contact_email,
            contact_phone=club.contact_phone,
            website=club.website,
            languages=card_languages(club),
        ),
        message=club.message,
        message_at=club.message_at,
    )


def card_facts(membership: Membership, club: Club | None = None) -> CardFacts:
    return member_facts(membership, club_facts(club or membership.club))


# What a card shows of the member, read in one call (a membership, or a
# row with its columns' names): the columns ``member_values`` gives the API
# and webhooks, less what no card shows. The first eleven are card facts as
# they are, named in _DIRECT.
_MEMBER = values_reader(Membership, (
    "name", "card_number", "serial_number", "version", "card_modified_at", "ended_at", "balance", "pending",
    "cash_balance", "tier", "stamps", "status", "expiring_points", "expiring_on", "message", "message_at", "locale"))
_DIRECT = ("member_name", "card_number", "serial_number", "version", "modified_at", "ended_at", "balance", "pending",
           "cash_balance", "tier", "stamps")


def member_facts(membership: Membership, club: ClubFacts) -> CardFacts:
    """The card facts of ``membership`` in the club state of ``club``.

    Made without the frozen dataclass's __init__, which sets each of its
    32 fields through object.__setattr__: the club's share and the member's
    values go into the object's dict as they are (every field is given;
    tests compare with the dataclass's own constructor)."""
    values = _MEMBER(membership)
    (status, expiring_points, expiring_on, message, message_at, locale) = values[11:]
    facts = object.__new__(CardFacts)
    state = facts.__dict__
    state.update(club.shared)
    state.update(zip(_DIRECT, values))  # the first eleven
    state["active"] = status == "active"
    # As member_values' "expiring": both or neither.
    if expiring_points and expiring_on:
        state["expiring_points"], state["expiring_on"] = expiring_points, expiring_on
    else:
        state["expiring_points"], state["expiring_on"] = 0, None
    state["discount_percent"] = club.discount_for(values[9])
    state["message"] = _latest_message(message, message_at, club)
    state["language"] = card_language(locale, club.shared["languages"])  # type: ignore[arg-type]
    return facts
