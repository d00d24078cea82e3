"""GET /apple/cards/<download_token>.pkpass: a member's current pass.

The token is the only secret in the URL, so unknown and malformed tokens get
the same 404, and answers are never cached by shared caches (the pass holds
the member's authentication token).
"""

from __future__ import annotations

import re

from flask import Blueprint, jsonify

from wallet.apple.pkpass import MIME_TYPE, settings_for
from wallet.apple.serving import read_card_by_download_token, signed_pass
from wallet.extensions import get_db
from wallet.http_rules import Response

bp = Blueprint("apple_download", __name__)

# download tokens are URL-safe base64 or hex; anything else cannot match.
_TOKEN = re.compile(r"[A-Za-z0-9_-]{16,64}")


def _not_found() -> tuple[Response, int]:
    return jsonify(error={"code": "not_found", "message": "no such card"}), 404


@bp.get("/apple/cards/<token>.pkpass")
def download_pass(token: str) -> Response | tuple[Response, int]:
    if not _TOKEN.fullmatch(token):
        return _not_found()
    db = get_db()
    state = read_card_by_download_token(db, token)
    signed = signed_pass(db, state, settings_for()) if state is not None else None
    if state is None or signed is None:
        return _not_found()
    response = Response(signed.parts, mimetype=MIME_TYPE)
    response.content_length = len(signed)
    response.headers["Content-Disposition"] = 'attachment; filename="card.pkpass"'
    response.headers["Cache-Control"] = "no-store"
    response.last_modified = state.modified_at
    return response
