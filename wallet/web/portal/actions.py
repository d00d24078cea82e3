"""The two ways a portal page changes something. ``act``: a one-button
change on a portal list (revoke a key, remove a person), done in a
savepoint, then back to the list saying what happened or why not.
``submitted``: a form that makes something (a key, an invitation, an
import), once the form's own checks pass, with the core's refusal shown on
the form."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TypeVar

from flask import abort, flash, redirect, url_for
from flask_wtf import FlaskForm
from flask_babel import gettext as _
from sqlalchemy.orm import Session
from werkzeug.wrappers import Response

from wallet.extensions import get_session
from wallet.loyalty.errors import LoyaltyError, NotFound, RuleViolation

T = TypeVar("T")


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


def submitted(form: FlaskForm, make: Callable[[], T], show_refusal: Callable[[LoyaltyError], None],
              refused_by: type[LoyaltyError] = RuleViolation) -> T | None:
    """What ``make()`` makes of the posted ``form`` once the form's own
    checks pass; None if they fail or the core refuses it (a ``refused_by``
    error, which ``show_refusal`` puts on the form): the caller then answers
    the form again, refused."""
    if not form.validate_on_submit():
        return None
    try:
        return make()
    except refused_by as exc:
        show_refusal(exc)
        return None
