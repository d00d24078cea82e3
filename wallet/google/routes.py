"""Public, stable image URLs that Google Wallet fetches for a club's class.

The design version is part of the URL, so a new logo gets a new URL and
Google's caches never serve the old one; the bytes behind one URL never
change and may be cached for a long time.
"""

from __future__ import annotations

from functools import lru_cache

from flask import Blueprint, Response, abort

from wallet.artwork import square_logo
from wallet.extensions import get_read_session
from wallet.loyalty.models import Club

bp = Blueprint("google", __name__, url_prefix="/google")

PROGRAM_LOGO_SIDE = 660  # Google's recommended programLogo size


@lru_cache(maxsize=256)
def _program_logo(club_id: int, design_version: int, logo: bytes | None, background: str) -> bytes:
    return square_logo(logo, background, PROGRAM_LOGO_SIDE)


@bp.get("/images/clubs/<int:club_id>/logo-<int:version>.png")
def program_logo(club_id: int, version: int) -> Response:
    club = get_read_session().get(Club, club_id)
    if club is None or club.design_version != version:
        abort(404)
    data = _program_logo(club.id, club.design_version, club.logo_png, club.background_color)
    response = Response(data, mimetype="image/png")
    response.headers["Cache-Control"] = "public, max-age=31536000, immutable"
    return response
