"""Process-wide services hung on the app: the database, rate limiter, i18n."""

from __future__ import annotations

from flask import Flask, current_app, g, request
from flask_babel import Babel
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from sqlalchemy.orm import Session

from wallet.db import Database
from wallet.loyalty.webhook_targets import TargetPolicy
from wallet.schema import upgrade_schema

limiter = Limiter(key_func=get_remote_address, default_limits=[])
babel = Babel()


def _select_locale() -> str | None:
    languages = current_app.config["LANGUAGES"]
    chosen = request.args.get("lang") or request.cookies.get("lang")
    if chosen in languages:
        return chosen
    return request.accept_languages.best_match(languages)


def init_app(app: Flask) -> None:
    url = app.config["DATABASE_URL"]
    if app.config["AUTO_MIGRATE"]:
        upgrade_schema(url)
    app.extensions["wallet.db"] = Database(url)
    app.extensions["wallet.webhook_targets"] = TargetPolicy(allow_private=app.config["WEBHOOK_ALLOW_PRIVATE"])
    limiter.init_app(app)
    babel.init_app(app, locale_selector=_select_locale,
                   default_translation_directories=str(_translations_dir()))
    app.teardown_appcontext(_close_session)


def _translations_dir() -> object:
    from wallet.config import PROJECT_ROOT

    return PROJECT_ROOT / "wallet" / "translations"


def get_db(app: Flask | None = None) -> Database:
    return (app or current_app).extensions["wallet.db"]


def webhook_targets(app: Flask | None = None) -> TargetPolicy:
    """Where webhooks may point (WEBHOOK_ALLOW_PRIVATE) and the resolver that
    checks names; tests swap in a resolver that answers from their data."""
    return (app or current_app).extensions["wallet.webhook_targets"]


def get_session() -> Session:
    """The request's write session (BEGIN IMMEDIATE on SQLite), closed at
    teardown. Handlers commit explicitly."""
    if "db_session" not in g:
        g.db_session = get_db().write_session()
    return g.db_session


def get_read_session() -> Session:
    """The request's read-only session, for handlers that never write."""
    if "db_read_session" not in g:
        g.db_read_session = get_db().session()
    return g.db_read_session


def _close_session(_exc: BaseException | None) -> None:
    for name in ("db_session", "db_read_session"):
        session = g.pop(name, None)
        if session is not None:
            session.close()
