"""A pass as phones fetch it, at the cost of what must be new.

After each push a phone fetches its pass, with If-Modified-Since when it has
one, and every device holding the card fetches the same state. So one query
reads what decides the answer (the pass's token, its Last-Modified and what
the signed pass depends on); a 304 needs nothing more; and a signed pass is
built once per card state and kept, in a bounded per-process cache, for the
next fetch of that state. Only the pass's own zip entries are kept: the club
design's entries are shared (``pkpass.files``).
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session, joinedload

from wallet.apple.pkpass import PassSettings, SignedPass, build_signed_pass
from wallet.apple.pkpass.files import LRU
from wallet.loyalty.models import Brand, Club, Membership

# Own entries of a pass are a few kilobytes: a few thousand card states.
CACHE_SIZE = 4096

_M, _C, _B = Membership.__table__.c, Club.__table__.c, Brand.__table__.c
# Everything a member's signed pass depends on, besides the service's
# settings: the card's version (it grows with every change the card shows),
# its club's state and design, the brand's name. Serial and creation times
# tell a row apart from a deleted one whose id was used again.
_STATE_COLUMNS = (_M.id, _M.auth_token, _M.card_modified_at, _M.serial_number, _M.version,
                  _C.id, _C.updated_at, _C.design_version, _C.created_at, _B.name)
_STATE = select(*_STATE_COLUMNS).select_from(
    Membership.__table__.join(Club.__table__, _M.club_id == _C.id).join(Brand.__table__, _C.brand_id == _B.id)
)


@dataclass(frozen=True)
class CardState:
    membership_id: int
    auth_token: str
    modified_at: datetime
    key: Hashable


def _state(row: tuple) -> CardState:  # type: ignore[type-arg]
    return CardState(membership_id=row[0], auth_token=row[1], modified_at=row[2], key=tuple(row[2:]))


def card_state(session: Session, serial_number: str) -> CardState | None:
    """The state of the pass with this serial number, in one query."""
    row = session.execute(_STATE.where(_M.serial_number == serial_number)).first()
    return None if row is None else _state(tuple(row))


def _state_of(membership: Membership) -> CardState:
    club = membership.club
    return _state((membership.id, membership.auth_token, membership.card_modified_at, membership.serial_number,
                   membership.version, club.id, club.updated_at, club.design_version, club.created_at,
                   club.brand.name))


_passes: LRU[SignedPass] = LRU(CACHE_SIZE)


def signed_pass_of(membership: Membership, settings: PassSettings) -> tuple[SignedPass, CardState]:
    """The member's signed pass (club and brand loaded), built once per card state."""
    state = _state_of(membership)
    found = _passes.get((state.key, settings))
    if found is None:
        found = build_signed_pass(membership, settings)
        _passes.put((state.key, settings), found)
    return found, state


def signed_pass(session: Session, state: CardState, settings: PassSettings) -> tuple[SignedPass, CardState] | None:
    """The signed pass of a card state read by ``card_state``: from the cache,
    or built from the membership as it is now (and then the state it was
    built from is returned). None if the membership is gone meanwhile."""
    found = _passes.get((state.key, settings))
    if found is not None:
        return found, state
    membership = session.scalar(
        select(Membership)
        .where(Membership.id == state.membership_id)
        .options(joinedload(Membership.club).joinedload(Club.brand))
    )
    if membership is None:
        return None
    return signed_pass_of(membership, settings)
