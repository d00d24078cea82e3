"""The card page: one membership's card, at /cards/<download_token>.

The token is the secret of the URL (the same one the member's .pkpass link
carries), so unknown and malformed tokens get the same 404 and the page is
never stored by shared caches. It shows what the pass shows, from the same
``card_facts``, with the wallet buttons in the order the phone prefers.
"""

from __future__ import annotations

import re

from flask import abort, make_response, render_template, request
from sqlalchemy import select
from sqlalchemy.orm import joinedload
from werkzeug.wrappers import Response

from wallet.apple.links import apple_pass_url
from wallet.extensions import get_read_session
from wallet.google.links import google_save_url
from wallet.loyalty.cardfacts import card_facts
from wallet.loyalty.models import Club, Membership
from wallet.web.barcodes import barcode_base64
from wallet.web.public import bp

_TOKEN = re.compile(r"[A-Za-z0-9_-]{16,64}")


def valid_token(token: str) -> bool:
    """Whether ``token`` has the shape of a card's URL token."""
    return bool(_TOKEN.fullmatch(token))


def membership_by_token(token: str) -> Membership | None:
    if not valid_token(token):
        return None
    return get_read_session().scalar(
        select(Membership).where(Membership.download_token == token)
        .options(joinedload(Membership.club).joinedload(Club.brand), joinedload(Membership.customer))
    )


def wallet_order(user_agent: str) -> tuple[str, str]:
    """Which wallet button comes first: Google's on Android, Apple's
    elsewhere (iPhone, iPad, Mac, and desktops, where Apple's is a download)."""
    return ("google", "apple") if "android" in user_agent.lower() else ("apple", "google")


@bp.get("/cards/<token>")
def card(token: str) -> Response:
    membership = membership_by_token(token)
    if membership is None:
        abort(404)
    facts = card_facts(membership)
    barcode = barcode_base64(facts.card_number, membership.club.barcode_format)
    response = make_response(render_template(
        "public/card.html", membership=membership, club=membership.club, facts=facts,
        barcode=barcode, apple_url=apple_pass_url(membership), google_url=google_save_url(membership),
        wallets=wallet_order(request.user_agent.string),
    ))
    response.headers["Cache-Control"] = "private, no-store"
    response.headers["Referrer-Policy"] = "no-referrer"  # the URL is the card's key
    response.headers["X-Robots-Tag"] = "noindex"
    return response
