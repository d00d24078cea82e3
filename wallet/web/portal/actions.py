"""A one-button change on a portal list (revoke a key, remove a person):
done in a savepoint, then back to the list saying what happened or why not."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from flask import abort, flash, redirect, url_for
from flask_babel import gettext as _
from sqlalchemy.orm import Session
from werkzeug.wrappers import Response

from wallet.extensions import get_session
from wallet.loyalty.errors import LoyaltyError, NotFound


def act(action: Callable[[Session], object], done: str, back: str,
        refusals: Mapping[str, Callable[[], str]] | None = None) -> Response:
    """Runs ``action`` and redirects to the endpoint ``back``; a refused
    change leaves nothing behind and is worded by ``refusals`` (by the core's
    error code). Something not found that has no wording of its own is a 404:
    another brand's id looks like an unknown one."""
    session = get_session()
    try:
        with session.begin_nested():
            action(session)
    except LoyaltyError as exc:
        wording = (refusals or {}).get(exc.code)
        if isinstance(exc, NotFound) and wording is None:
            abort(404)
        flash(wording() if wording else _("That did not work. Reload the page and try again."), "error")
    else:
        flash(done, "success")
    return redirect(url_for(back))
