"""What a member's card shows, as plain data.

The Apple and Google renderers (and any card page) draw from this one
function, so every wallet shows the same figures. The program's rules are
read from ``club.program`` (see ``wallet.loyalty.program`` for its schema).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from wallet.loyalty.models import Club, Membership


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


def _percent(value: Any) -> Decimal | None:
    if value is None or value == "":
        return None
    try:
        result = Decimal(str(value))
    except InvalidOperation:
        return None
    return result if result > 0 else None


def _tier_level(program: dict[str, Any], tier: str | None) -> dict[str, Any]:
    if not tier:
        return {}
    for level in (program.get("tiers") or {}).get("levels") or []:
        if level.get("name") == tier:
            return level
    return {}


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


def card_facts(membership: Membership, club: Club | None = None) -> CardFacts:
    club = club or membership.club
    program = club.program or {}
    level = _tier_level(program, membership.tier)
    discount = _percent(level.get("discount_percent")) or _percent(
        (program.get("discount") or {}).get("percent")
    )
    stamps = program.get("stamps") or {}
    return CardFacts(
        club_id=club.id,
        club_name=club.name,
        brand_name=club.brand.name,
        member_name=membership.name,
        card_number=membership.card_number,
        serial_number=membership.serial_number,
        currency=club.currency,
        version=membership.version,
        modified_at=membership.card_modified_at,
        active=membership.status == "active",
        ended_at=membership.ended_at,
        has_points="points" in program,
        balance=membership.balance,
        pending=membership.pending,
        has_cashback="cashback" in program,
        cash_balance=membership.cash_balance,
        cashback_percent=_percent((program.get("cashback") or {}).get("percent")),
        discount_percent=discount,
        tier=membership.tier,
        has_stamps="stamps" in program,
        stamps=membership.stamps,
        stamps_required=stamps.get("required"),
        stamp_reward=stamps.get("reward"),
        expiring_points=membership.expiring_points,
        expiring_on=membership.expiring_on,
        message=_latest_message(membership, club),
        terms=club.terms,
        contact_email=club.contact_email,
        contact_phone=club.contact_phone,
        website=club.website,
    )
