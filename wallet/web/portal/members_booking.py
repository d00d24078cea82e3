"""Booking from a portal form exactly once: the adjustment form and the till.

Each render of such a form carries a fresh key (the hidden ``once`` field);
the booking goes through the API's Idempotency-Key mechanism
(``wallet.api.idempotency``) under that key, scoped to the brand, so a
double tap, a retried POST or a reload books once and shows the first
booking. While the first submit is still booking the second waits for it.
A refused booking (a rule the core enforces) leaves its key unused: nothing
was booked, and the corrected form may go again.
"""

from __future__ import annotations

import hashlib
import json
import time
import uuid
from collections.abc import Callable, Mapping

from flask import Response, request
from flask_babel import lazy_gettext as _l
from sqlalchemy.orm import Session
from wtforms import HiddenField
from wtforms.validators import DataRequired, Regexp

from wallet.api.idempotency import REPLAY_HEADER, Answered, claim, store
from wallet.extensions import unit_of_work
from wallet.web.security import current_staff

# Page keys live beside API keys of the same brand; the prefix keeps a
# page's key from ever meeting one a till chose.
_PREFIX = "page:"
_WAIT = 10.0  # seconds a second submit waits for the first to finish


class FormReused(Exception):
    """The form's key was already used for other values (the browser's Back
    button, then a changed form), or its first submit is still booking after
    a long wait: nothing was booked by this submit."""


def once_field() -> HiddenField:
    """The hidden key of a booking form, fresh on every render."""
    return HiddenField(default=lambda: uuid.uuid4().hex,
                       validators=[DataRequired(), Regexp(r"^[0-9a-f]{32}$",
                                                          message=_l("Reload the page and try again."))])


def _fingerprint(values: Mapping[str, object]) -> str:
    body = json.dumps({"path": request.path, **values}, sort_keys=True, default=str)
    return hashlib.sha256(body.encode()).hexdigest()


def book_once(key: str, values: Mapping[str, object], work: Callable[[Session], int]) -> int:
    """Run ``work`` (which books in the session it is given and returns the
    ledger entry's id) once per form key, and return that id; a repeat of
    the same form returns the first booking's id without booking again. The
    key is claimed in the booking's own transaction, so a refusal (a
    LoyaltyError from ``work``, passed on to the caller) leaves it free."""
    brand_id = current_staff().brand_id
    key = _PREFIX + key
    fingerprint = _fingerprint(values)
    deadline = time.monotonic() + _WAIT
    while True:
        try:
            with unit_of_work() as session:
                row_id = claim(session, brand_id, key, fingerprint)
                transaction_id = work(session)
                store(session, row_id, Response(json.dumps({"transaction_id": transaction_id}), status=201,
                                                mimetype="application/json"))
            return transaction_id
        except Answered as settled:
            answer = settled.response
        if answer.headers.get(REPLAY_HEADER):
            return int(json.loads(answer.get_data(as_text=True))["transaction_id"])
        if json.loads(answer.get_data(as_text=True))["error"]["code"] == "idempotency_key_reused":
            raise FormReused(key)
        if time.monotonic() > deadline:
            raise FormReused(key)
        time.sleep(0.1)  # the first submit is still booking; its answer comes shortly
