"""A club in the portal: /portal/clubs/<club_id>, the hub from which the
club's pages are reached (its public page, join link and poster here; its
members, settings, till and imports as they are added)."""

from __future__ import annotations

from flask import render_template, url_for
from sqlalchemy import func, select

from wallet.config import get_settings
from wallet.extensions import get_db, get_read_session
from wallet.google.sync import class_error
from wallet.loyalty.models import Membership
from wallet.web.portal import MANAGERS, bp, staff_roles
from wallet.web.portal.scope import brand_club_or_404


@bp.get("/clubs/<int:club_id>")
@staff_roles(*MANAGERS)
def club(club_id: int) -> str:
    session = get_read_session()
    found = brand_club_or_404(session, club_id)
    members = session.scalar(
        select(func.count(Membership.id)).where(Membership.club_id == found.id, Membership.status == "active")
    ) or 0
    join_url = get_settings().public_base_url + url_for("public.join", club_id=found.id)
    # Google refuses a class for reasons only the brand can fix (a logo it
    # cannot fetch, a name too long): its own words, where the brand looks.
    google_refusal = class_error(get_db(), found.id)
    return render_template("portal/club.html", club=found, members=members, join_url=join_url,
                           google_refusal=google_refusal)
