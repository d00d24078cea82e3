"""The front page and the public club catalogue.

Every club is listed, like a bank app lists its partner clubs: search by
name or description, filter by category. Only what a club publishes for
customers is shown (name, description, category, terms, locations).
"""

from __future__ import annotations

from flask import Response, abort, render_template, request
from sqlalchemy import func, or_, select
from sqlalchemy.orm import joinedload

from wallet.extensions import get_read_session
from wallet.loyalty.clubs import CATEGORIES, get_club
from wallet.loyalty.errors import NotFound
from wallet.loyalty.models import Club
from wallet.web.public import bp
from wallet.web.public.benefits import benefits
from wallet.web.wording import CATEGORY_NAMES

PAGE_SIZE = 24
MAX_QUERY = 100


def _search(q: str, category: str | None, limit: int, offset: int = 0) -> tuple[list[Club], int]:
    query = select(Club)
    if category:
        query = query.where(Club.category == category)
    if q:
        # LIKE wildcards typed by a customer are searched for, not obeyed.
        pattern = "%" + q.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        query = query.where(or_(func.lower(Club.name).like(pattern, escape="\\"),
                                func.lower(Club.description).like(pattern, escape="\\")))
    total = get_read_session().scalar(select(func.count()).select_from(query.subquery())) or 0
    clubs = get_read_session().scalars(
        query.options(joinedload(Club.brand)).order_by(Club.name, Club.id).limit(limit).offset(offset)
    ).all()
    return list(clubs), total


@bp.get("/")
def home() -> str:
    clubs, total = _search("", None, 12)
    return render_template("public/home.html", clubs=clubs, total=total, categories=CATEGORY_NAMES)


@bp.get("/clubs")
def catalogue() -> str:
    # PostgreSQL refuses NUL in text, and no club name holds a control character.
    q = "".join(ch for ch in (request.args.get("q") or "") if ch.isprintable()).strip()[:MAX_QUERY]
    category = request.args.get("category") or None
    if category is not None and category not in CATEGORIES:
        category = None
    page = request.args.get("page", default=1, type=int) or 1
    if page < 1 or page > 10_000:
        abort(404)
    clubs, total = _search(q, category, PAGE_SIZE, (page - 1) * PAGE_SIZE)
    pages = max(1, -(-total // PAGE_SIZE))
    return render_template("public/catalogue.html", clubs=clubs, total=total, q=q, category=category,
                           categories=CATEGORY_NAMES, page=page, pages=pages)


def public_club_or_404(club_id: int) -> Club:
    """Any club by id, for the public pages; 404 when there is none."""
    try:
        return get_club(get_read_session(), club_id)
    except NotFound:
        abort(404)


@bp.get("/clubs/<int:club_id>")
def club(club_id: int) -> str:
    found = public_club_or_404(club_id)
    return render_template("public/club.html", club=found, benefits=benefits(found), categories=CATEGORY_NAMES)


@bp.get("/clubs/<int:club_id>/logo.png")
def club_logo(club_id: int) -> Response:
    found = public_club_or_404(club_id)
    if not found.logo_png:
        abort(404)
    response = Response(found.logo_png, mimetype="image/png")
    # The URL carries ?v=<design_version>, so a new logo is a new URL.
    response.cache_control.public = True
    response.cache_control.max_age = 86400
    return response
