"""What a booking needs of its member's club, kept per process: the club's
id, brand, currency and parsed program rules, as plain frozen data.

A booking locks only the member's row and reads, in the same statement,
the club's ``updated_at`` (``figures.get_member_for_update``); the rules
kept here are used only while that still equals the ``updated_at`` they
were read with. Every change of a club's columns moves it (an ORM flush or
a Core UPDATE of the club: the column's ``onupdate``), so a changed club
is read again, never used stale; a club that does not change is read once
per process instead of as ORM objects (the club and its brand, about 40
columns) on every booking. Switching an automatic message on or off moves
it too (``automessages.set_auto_message``): which of them a booking may
put on the card is kept with the rules."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, exists, select
from sqlalchemy.orm import Session

from wallet.loyalty.campaign_models import AutoKind, AutoMessage
from wallet.loyalty.models import Club
from wallet.loyalty.program import Program
from wallet.lru import LRU

# Clubs kept; past it the least recently booked is dropped (a club read again
# costs one query).
MAX_CLUBS = 4096


@dataclass(frozen=True)
class ClubRules:
    """A club's state as a booking reads it. ``program`` is the rules' JSON
    as stored (``Program.of`` reads it; never changed in place), ``rules``
    the same parsed."""

    id: int
    brand_id: int
    currency: str
    program: dict[str, Any]
    rules: Program
    updated_at: datetime
    # The automatic messages a booking may put on the card that the club
    # has switched on with a text (``automessages.ledger_occasions``).
    auto_messages: frozenset[AutoKind] = frozenset()


# Those of a booking's occasions: a tier reached, a birthday bonus.
BOOKING_MESSAGES = (AutoKind.TIER_REACHED, AutoKind.BIRTHDAY)


def _switched_on(kind: AutoKind) -> Any:
    return exists().where(AutoMessage.club_id == Club.id, AutoMessage.kind == kind.value,
                          AutoMessage.enabled.is_(True), AutoMessage.text != "")


_cache: LRU[ClubRules] = LRU(MAX_CLUBS)
_READ = select(Club.brand_id, Club.currency, Club.program, Club.updated_at,
               *(_switched_on(kind) for kind in BOOKING_MESSAGES)).where(Club.id == bindparam("club_id"))


def club_rules(session: Session, club_id: int, updated_at: datetime) -> ClubRules:
    """The club's rules as of ``updated_at`` (read with the member's lock),
    or newer: read from the database when the kept ones are of another
    state."""
    found = _cache.get(club_id)
    if found is not None and found.updated_at == updated_at:
        return found
    brand_id, currency, program, read_at, *switched_on = session.execute(_READ, {"club_id": club_id}).one()
    program = program or {}
    found = ClubRules(id=club_id, brand_id=brand_id, currency=currency, program=program,
                      rules=Program.from_dict(program), updated_at=read_at,
                      auto_messages=frozenset(kind for kind, on in zip(BOOKING_MESSAGES, switched_on) if on))
    _cache.put(club_id, found)
    return found

