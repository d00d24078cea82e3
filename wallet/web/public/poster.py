"""/clubs/<club_id>/poster.png and .pdf: the club's printable QR poster,
in the reader's language, whose code opens the join page."""

from __future__ import annotations

from flask import Response, url_for
from flask_babel import gettext as _

from wallet.config import get_settings
from wallet.web.posters import PosterStyle, PosterText, poster_pdf, poster_png
from wallet.web.public import bp
from wallet.web.public.benefits import benefits
from wallet.web.public.catalogue import public_club_or_404


def _poster(club_id: int) -> tuple[PosterText, PosterStyle, str]:
    club = public_club_or_404(club_id)
    join_url = get_settings().public_base_url + url_for("public.join", club_id=club.id)
    text = PosterText(
        headline=_("Join our loyalty club"),
        club_name=club.name,
        scan_hint=_("Point your phone's camera at the code"),
        join_url=join_url,
        benefits=tuple(benefits(club)),
        footer=_("Your card in Apple Wallet or Google Wallet"),
    )
    style = PosterStyle(background=club.background_color, foreground=club.foreground_color, logo_png=club.logo_png)
    return text, style, f"poster-{club.id}"


def _answer(body: bytes, mimetype: str, filename: str) -> Response:
    response = Response(body, mimetype=mimetype)
    response.headers["Content-Disposition"] = f'inline; filename="{filename}"'
    response.headers["Cache-Control"] = "public, max-age=600"
    response.vary.add("Accept-Language")
    response.vary.add("Cookie")
    return response


@bp.get("/clubs/<int:club_id>/poster.png")
def poster_image(club_id: int) -> Response:
    text, style, name = _poster(club_id)
    return _answer(poster_png(text, style), "image/png", name + ".png")


@bp.get("/clubs/<int:club_id>/poster.pdf")
def poster_document(club_id: int) -> Response:
    text, style, name = _poster(club_id)
    return _answer(poster_pdf(text, style), "application/pdf", name + ".pdf")
