"""Pages for people: the customer pages (``wallet.web.public``: catalogue,
joining, the card page, /me) and the brand portal (``wallet.web.portal``),
in English and Russian, plus what they share (``site``: layout helpers,
static files, the language switch; ``forms``; ``security``: sign-in and
CSRF; ``errors``: error pages) and the health check (``routes``).

Templates live in the top-level templates/ folder: ``public/``, ``portal/``,
``errors/`` and ``macros/``, each page extending ``base.html``.
"""

from __future__ import annotations

from flask import Flask

from wallet.config import get_settings
from wallet.web import errors, filters
from wallet.web.routes import bp as health_bp
from wallet.web.security import csrf, login_manager
from wallet.web.site import bp as site_bp
from wallet.web.site import template_globals


def init_app(app: Flask) -> None:
    """Registers this area's blueprints and services on the app."""
    from wallet.web.portal import bp as portal_bp
    from wallet.web.public import bp as public_bp

    # CSRF is checked by the page blueprints themselves (security.protect_pages):
    # the API, PassKit and Google routes take POSTs from machines.
    app.config.setdefault("WTF_CSRF_CHECK_DEFAULT", False)
    app.config.setdefault("WTF_CSRF_TIME_LIMIT", 8 * 3600)
    app.config.setdefault("SESSION_COOKIE_SAMESITE", "Lax")
    app.config.setdefault("SESSION_COOKIE_HTTPONLY", True)
    app.config.setdefault("SESSION_COOKIE_SECURE", get_settings(app).public_base_url.startswith("https:"))
    csrf.init_app(app)
    login_manager.init_app(app)
    app.context_processor(template_globals)
    for bp in (health_bp, site_bp, public_bp, portal_bp):
        app.register_blueprint(bp)
    filters.init_app(app)
    errors.init_app(app)
