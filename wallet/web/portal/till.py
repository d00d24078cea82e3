"""The till: a phone-sized page for brands without a point-of-sale
integration. The cashier types or scans the card number (the camera through
the browser's BarcodeDetector where there is one, static/portal.js), sees
the member, and books a purchase, a redemption or a stamp through the core's
operations (the first two the API's own), each form render with its own key
so that a double tap books once (members_booking). A club that runs stamps
counts a stamp with every purchase, as the core does for the API, and its
till also gives a stamp alone (``ledger.stamp``), for a purchase rung up
elsewhere.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from decimal import Decimal

from flask import flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from sqlalchemy.orm import Session
from werkzeug.wrappers import Response

from wallet.extensions import get_read_session
from wallet.loyalty import ledger
from wallet.loyalty.cardfacts import card_facts
from wallet.loyalty.errors import LoyaltyError
from wallet.loyalty.ledger_models import LedgerTransaction
from wallet.loyalty.members import find_membership
from wallet.loyalty.models import Club, Membership
from wallet.loyalty.money import exponent, to_minor
from wallet.web.portal import EVERYONE, bp, staff_roles
from wallet.web.portal.auth import REFUSED
from wallet.web.portal.members import club_member_or_404, actor, flash_booked, refuse_booking
from wallet.web.portal.members_booking import FormReused, book_once
from wallet.web.portal.members_forms import CardForm, PurchaseForm, RedeemForm, StampForm
from wallet.web.portal.scope import brand_club_or_404


_CODABAR_GUARDS = re.compile(r"^[A-Da-d]([0-9]+)[A-Da-d]$")


def _card_number(text: str) -> str:
    number = "".join(text.split()).replace("-", "")
    # A Codabar scanner may pass on the start and stop letters around the number.
    guarded = _CODABAR_GUARDS.match(number)
    return guarded.group(1) if guarded else number


BookingForm = PurchaseForm | RedeemForm | StampForm
# The till's booking forms, by the name the template knows each by.
FORMS: dict[str, type[BookingForm]] = {"purchase": PurchaseForm, "redeem": RedeemForm, "stamp": StampForm}


def _page(club: Club, card_form: CardForm, member: Membership | None = None, refused: BookingForm | None = None,
          status: int = 200) -> tuple[str, int]:
    """The till; ``refused`` is shown with its errors, the other forms fresh."""
    facts = card_facts(member) if member is not None else None
    step = Decimal(1).scaleb(-exponent(club.currency))
    forms = {name: refused if isinstance(refused, kind) else kind(formdata=None) for name, kind in FORMS.items()}
    return render_template("portal/till.html", club=club, card_form=card_form, member=member, facts=facts,
                           amount_step=step, **forms), status


@bp.get("/clubs/<int:club_id>/till")
@staff_roles(*EVERYONE)
def till(club_id: int) -> tuple[str, int]:
    session = get_read_session()
    club = brand_club_or_404(session, club_id)
    if "card" not in request.args:
        return _page(club, CardForm(formdata=None))
    form = CardForm(request.args)
    if not form.validate():
        return _page(club, form, status=REFUSED)
    number = _card_number(form.card.data)
    member = None
    if number.isascii() and number.isdigit() and len(number) <= 32:
        member = find_membership(session, club, card_number=number)
    if member is None:
        form.card.errors = [_("No card of this club has that number. Check it and try again.")]
        return _page(club, form, status=REFUSED)
    return _page(club, CardForm(formdata=None, card=member.card_number), member)


# What a booking form asks for: the values its key stands for (the same
# values book once) and the core operation, given the member at the till.
Booking = tuple[dict[str, object], Callable[[Session, Membership], LedgerTransaction]]


class _Unreadable(Exception):
    """What was typed cannot be booked as it is; the form's field says why."""


def _book(club_id: int, member_id: int, form: BookingForm, field: str,
          booking: Callable[[Membership], Booking]) -> Response | tuple[str, int]:
    """Checks the posted ``form``, then books ``booking(member)`` once for
    the form's key and goes back to the member at the till; a refusal shows
    under ``field``."""
    session = get_read_session()
    member = club_member_or_404(session, club_id, member_id)
    if not form.validate_on_submit():
        return _refused(member, form)
    try:
        values, operation = booking(member)
    except _Unreadable:
        return _refused(member, form)

    def work(write: Session) -> int:
        entry = operation(write, club_member_or_404(write, club_id, member_id))
        write.flush()
        return int(entry.id)

    try:
        entry_id = book_once(form.once.data, values, work)
    except FormReused:
        flash(_("That form was already used. Nothing more was booked; here is a fresh one."), "error")
    except LoyaltyError as exc:
        refuse_booking(form, exc, field)  # type: ignore[arg-type]
        return _refused(member, form)
    else:
        flash_booked(session, entry_id)
    return redirect(url_for("portal.till", club_id=club_id, card=member.card_number))


def _refused(member: Membership, form: BookingForm) -> tuple[str, int]:
    card = CardForm(formdata=None, card=member.card_number)
    return _page(member.club, card, member, refused=form, status=REFUSED)


@bp.post("/clubs/<int:club_id>/till/<int:member_id>/purchases")
@staff_roles(*EVERYONE)
def till_purchase(club_id: int, member_id: int) -> Response | tuple[str, int]:
    form = PurchaseForm()

    def booking(member: Membership) -> Booking:
        currency = member.club.currency
        try:
            amount = to_minor(form.amount.data, currency)
        except ValueError:
            form.amount.errors = [_("Use at most %(digits)s digits after the point for %(currency)s.",
                                    digits=exponent(currency), currency=currency)]
            raise _Unreadable from None
        return ({"type": "purchase", "amount": amount},
                lambda write, m: ledger.purchase(write, m, amount=amount, actor=actor()))

    return _book(club_id, member_id, form, "amount", booking)


@bp.post("/clubs/<int:club_id>/till/<int:member_id>/redemptions")
@staff_roles(*EVERYONE)
def till_redeem(club_id: int, member_id: int) -> Response | tuple[str, int]:
    form = RedeemForm()
    return _book(club_id, member_id, form, "points", lambda _member: (
        {"type": "redeem", "points": form.points.data},
        lambda write, m: ledger.redeem(write, m, points=form.points.data, actor=actor())))


@bp.post("/clubs/<int:club_id>/till/<int:member_id>/stamps")
@staff_roles(*EVERYONE)
def till_stamp(club_id: int, member_id: int) -> Response | tuple[str, int]:
    return _book(club_id, member_id, StampForm(), "once", lambda _member: (
        {"type": "stamp"}, lambda write, m: ledger.stamp(write, m, actor=actor())))
