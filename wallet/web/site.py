"""What every page shares: static files, the language switch and the
template helpers of the base layout."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from flask import Blueprint, current_app, redirect, request, url_for
from flask_babel import get_locale
from werkzeug.wrappers import Response

from wallet.config import LANGUAGES, get_settings

bp = Blueprint("site", __name__, static_folder="static", static_url_path="/assets")

LANGUAGE_NAMES = {"en": "English", "ru": "Русский"}
LANGUAGE_COOKIE = "lang"
_YEAR = 365 * 24 * 3600


def safe_next(target: str | None) -> str | None:
    """``target`` when it is a path on this site, else None: a redirect after
    sign-in must never send anyone to another host."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return None
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or any(ord(ch) < 32 for ch in target):
        return None
    return target


@bp.get("/language/<code>")
def choose_language(code: str) -> Response:
    """Remembers the chosen language in a cookie and goes back to the page.
    A GET, so the switch is a plain link: it changes nothing but how pages
    are worded."""
    back = safe_next(request.args.get("next")) or url_for("public.home")
    response = redirect(back)
    if code in LANGUAGES:
        response.set_cookie(LANGUAGE_COOKIE, code, max_age=_YEAR, samesite="Lax", httponly=True,
                            secure=request.is_secure)
    return response


def public_url(endpoint: str, **values: object) -> str:
    """The address of a page as people outside reach it (PUBLIC_BASE_URL),
    for links that leave the site: emails, QR codes, links to copy."""
    return get_settings().public_base_url + url_for(endpoint, **values)


def asset_url(filename: str) -> str:
    """The URL of a static file with a digest of its content, so browsers may
    cache it for long and still see each new version."""
    digests: dict[str, str] = current_app.extensions.setdefault("wallet.web.assets", {})
    if filename not in digests:
        path = Path(bp.static_folder or "") / filename
        digests[filename] = hashlib.sha256(path.read_bytes()).hexdigest()[:10]
    return url_for("site.static", filename=filename, v=digests[filename])


def template_globals() -> dict[str, Any]:
    locale = get_locale()
    current = locale.language if locale else "en"
    return {
        "asset_url": asset_url,
        "current_language": current,
        "languages": [(code, LANGUAGE_NAMES.get(code, code)) for code in LANGUAGES],
        "here": request.full_path.rstrip("?") if request else "/",
    }
