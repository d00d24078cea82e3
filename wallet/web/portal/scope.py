"""Loading a brand's rows for the portal: the one place tenant isolation is
decided. Another brand's id, an unknown id and a malformed one all answer
404, so staff cannot even learn which ids exist elsewhere."""

from __future__ import annotations

from flask import abort
from sqlalchemy import select
from sqlalchemy.orm import Session

from wallet.loyalty.models import Club, Membership
from wallet.web.security import current_staff

_MAX_ID = 2**63 - 1


def brand_club_or_404(session: Session, club_id: int) -> Club:
    """The signed-in staff's brand's club ``club_id``, or 404."""
    if not 0 < club_id <= _MAX_ID:
        abort(404)
    club = session.scalar(select(Club).where(Club.id == club_id, Club.brand_id == current_staff().brand_id))
    if club is None:
        abort(404)
    return club


def brand_member_or_404(session: Session, member_id: int) -> Membership:
    """A membership in one of the signed-in staff's brand's clubs, or 404."""
    if not 0 < member_id <= _MAX_ID:
        abort(404)
    member = session.scalar(
        select(Membership).join(Club, Club.id == Membership.club_id)
        .where(Membership.id == member_id, Club.brand_id == current_staff().brand_id)
    )
    if member is None:
        abort(404)
    return member
