"""Process-wide services hung on the app: the database, rate limiter, i18n;
and the request's sessions with the one way a request owns its transaction.

A request that writes does so in a unit of work: ``@transactional`` on a
view (or ``write_endpoint`` for the JSON API, which adds Idempotency-Key on
top of ``unit_of_work``). The view writes through ``get_session()`` and never
commits: the unit of work commits when the view answers, and rolls back when
it raises or answers 400 or more, so a refused request changes nothing.
Code outside a request (commands, workers) uses ``Database.transaction()``,
which commits and rolls back the same way.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import wraps
from typing import Any, TypeVar

from flask import Flask, Request, Response, current_app, g, request
from flask.sessions import SecureCookieSession, SecureCookieSessionInterface, SessionMixin
from flask_babel import Babel
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from sqlalchemy.orm import Session

from wallet.config import LANGUAGES, PROJECT_ROOT, get_settings
from wallet.db import Database
from wallet.loyalty.webhook_targets import TargetPolicy
from wallet.ratelimit import ProcessMemoryStorage  # noqa: F401  (registers wallet-memory://)

limiter = Limiter(key_func=get_remote_address, default_limits=[])
babel = Babel()


class CookieSessions(SecureCookieSessionInterface):
    """Flask's signed-cookie session, opened only when the request carries
    the cookie. Most requests carry none (phones fetching passes, tills
    calling the API) and used to pay for building the cookie's signer
    anyway, and for working out the cookie's attributes to write nothing
    back. A session that a page fills is signed and written as before."""

    def open_session(self, app: Flask, request: Request) -> SecureCookieSession | None:
        # No Cookie header at all is told from the environ alone: parsing
        # the absent header (werkzeug walks every header for it) cost more.
        if app.secret_key and ("HTTP_COOKIE" not in request.environ
                               or not request.cookies.get(self.get_cookie_name(app))):
            return self.session_class()
        return super().open_session(app, request)

    def save_session(self, app: Flask, session: SessionMixin, response: Response) -> None:
        if not session and not session.modified:
            # Flask's answer for an empty session nobody changed, without
            # working out the cookie's attributes that it would not use.
            if session.accessed:
                response.vary.add("Cookie")
            return
        super().save_session(app, session, response)


def _select_locale() -> str | None:
    languages = LANGUAGES
    chosen = request.args.get("lang") or request.cookies.get("lang")
    if chosen in languages:
        return chosen
    return request.accept_languages.best_match(languages)


def init_app(app: Flask) -> None:
    settings = get_settings(app)
    app.session_interface = CookieSessions()
    app.extensions["wallet.db"] = Database(settings.database_url)
    app.extensions["wallet.webhook_targets"] = TargetPolicy(allow_private=settings.webhook_allow_private)
    limiter.init_app(app)
    babel.init_app(app, locale_selector=_select_locale,
                   default_translation_directories=str(_translations_dir()))
    app.teardown_appcontext(_close_session)


def _translations_dir() -> object:
    return PROJECT_ROOT / "wallet" / "translations"


def get_db(app: Flask | None = None) -> Database:
    return (app or current_app).extensions["wallet.db"]


def webhook_targets(app: Flask | None = None) -> TargetPolicy:
    """Where webhooks may point (WEBHOOK_ALLOW_PRIVATE) and the resolver that
    checks names; tests swap in a resolver that answers from their data."""
    return (app or current_app).extensions["wallet.webhook_targets"]


def get_session() -> Session:
    """The request's write session (BEGIN IMMEDIATE on SQLite), closed at
    teardown; only inside the request's unit of work, which owns its
    transaction."""
    if not g.get("in_unit_of_work"):
        raise RuntimeError("get_session() outside a unit of work: decorate the view with @transactional")
    return _write_session()


def _write_session() -> Session:
    if "db_session" not in g:
        g.db_session = get_db().write_session()
    return g.db_session


@contextmanager
def unit_of_work() -> Iterator[Session]:
    """The request's transaction: what the block writes through
    ``get_session()`` is committed when the block ends, and rolled back if
    it raises (the exception goes on)."""
    if g.get("in_unit_of_work"):
        raise RuntimeError("this request already has a unit of work open")
    session = _write_session()
    g.in_unit_of_work = True
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        g.in_unit_of_work = False


F = TypeVar("F", bound=Callable[..., Any])


class _Refused(Exception):
    """A view's answer of 400 or more, carried out of the unit of work so
    that what the view wrote is rolled back."""

    def __init__(self, response: Response) -> None:
        super().__init__(response.status)
        self.response = response


def transactional(view: F) -> F:
    """Run a view that writes in the request's unit of work: committed when
    it answers below 400, rolled back when it answers 400 or more or raises."""

    @wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Response:
        try:
            with unit_of_work():
                response = current_app.make_response(view(*args, **kwargs))
                if response.status_code >= 400:
                    raise _Refused(response)
        except _Refused as refused:
            return refused.response
        return response

    return wrapper  # type: ignore[return-value]


WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def request_session() -> Session:
    """Where a request's first read goes (the API key's lookup): for a
    method that writes, the write session its unit of work goes on in, so
    the read and the work share one connection checkout (and, on SQLite,
    one write lock); for any other, the read session."""
    return _write_session() if request.method in WRITE_METHODS else get_read_session()


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
