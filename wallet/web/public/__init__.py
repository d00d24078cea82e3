"""The customer's pages: the club catalogue, a club's page, its QR poster,
joining, the card page and /me. Every POST carries a CSRF token."""

from __future__ import annotations

from flask import Blueprint

from wallet.web.security import protect_pages

bp = Blueprint("public", __name__)
protect_pages(bp)

from wallet.web.public import cards, catalogue, join, me, poster, survey  # noqa: E402,F401  (routes register on bp)
