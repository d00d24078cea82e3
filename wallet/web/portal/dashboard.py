"""The brand's home in the portal: its clubs, each with its member count."""

from __future__ import annotations

from flask import render_template
from sqlalchemy import func, select

from wallet.extensions import get_read_session
from wallet.loyalty.models import Club, Membership
from wallet.web.portal import EVERYONE, bp, staff_roles
from wallet.web.security import current_staff


@bp.get("/")
@staff_roles(*EVERYONE)
def dashboard() -> str:
    rows = get_read_session().execute(
        select(Club, func.count(Membership.id))
        .outerjoin(Membership, (Membership.club_id == Club.id) & (Membership.status == "active"))
        .where(Club.brand_id == current_staff().brand_id)
        .group_by(Club.id)
        .order_by(Club.created_at, Club.id)
    ).all()
    return render_template("portal/dashboard.html", clubs=[(club, members) for club, members in rows])
