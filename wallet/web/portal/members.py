"""A club's members in the portal: the list with its search, a member's
card and ledger, and the adjustment form (Points, Reason). Managers and
owners; a cashier has the till.

The list never loads the club's members whole: a page is one keyset query
(newest first, ``?before=<id>``) and a search is an indexed lookup: the
card number or its start (the club's unique card number index), the email
or phone in their canonical form, or the start of a name as typed or with
a capital first letter (the club and name index).
"""

from __future__ import annotations

from flask import abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from sqlalchemy import Select, and_, func, or_, select
from sqlalchemy.orm import Session
from werkzeug.wrappers import Response

from wallet.extensions import get_read_session
from wallet.loyalty import ledger
from wallet.loyalty.cardfacts import card_facts
from wallet.loyalty.contacts import normalize_email, normalize_phone
from wallet.loyalty.errors import LoyaltyError
from wallet.loyalty.ledger_models import REWARD, STAMP, LedgerTransaction
from wallet.loyalty.models import Club, Membership
from wallet.web.barcodes import barcode_base64
from wallet.web.filters import points
from wallet.web.forms import refuse
from wallet.web.portal import MANAGERS, bp, staff_roles
from wallet.web.portal.auth import REFUSED
from wallet.web.portal.members_booking import FormReused, book_once
from wallet.web.portal.members_forms import AdjustForm
from wallet.web.portal.scope import brand_club_or_404, brand_member_or_404
from wallet.web.security import current_staff
from wallet.web.wording import ENTRY_NAMES

PAGE_SIZE = 50
_MAX_ID = 2**63 - 1
_MAX_QUERY = 100

# Wording of the core's refusals on the booking forms (adjustment, till).
BOOKING_REFUSALS = {
    "insufficient_balance": lambda: _("The member does not have that many points."),
    "membership_ended": lambda: _("This card has ended: nothing can be booked on it."),
    "invalid_reason": lambda: _("Enter a reason of at most 500 characters, on one or more lines."),
    "invalid_amount": lambda: _("This amount is outside what the club's rules allow."),
    "no_stamps": lambda: _("This club gives no stamps."),
}


def actor() -> str:
    """Who booked, as the ledger records it."""
    return f"staff:{current_staff().staff_id}"


def refuse_booking(form: AdjustForm, exc: LoyaltyError, field: str) -> None:
    wording = {code: text() for code, text in BOOKING_REFUSALS.items()}
    refuse(form, exc, {"invalid_reason": "reason"}, default=field, wording=wording)


def _prefix(column, text: str):  # type: ignore[no-untyped-def]
    """``column`` starts with ``text``, as a range an index answers."""
    return and_(column >= text, column < text + "\U0010ffff")


def search(club: Club, q: str) -> Select[tuple[Membership]]:
    """The club's members matching ``q``, by any of the indexed ways."""
    query = select(Membership).where(Membership.club_id == club.id)
    if not q:
        return query
    found = []
    compact = q.replace(" ", "").replace("-", "")
    if compact.isascii() and compact.isdigit():
        found.append(_prefix(Membership.card_number, compact))
    if "@" in q:
        try:
            found.append(Membership.email == normalize_email(q))
        except LoyaltyError:
            pass
    if sum(ch.isdigit() for ch in q) >= 6:
        try:
            found.append(Membership.phone == normalize_phone(q, country=club.country))
        except LoyaltyError:
            pass
    if not q.isdigit():
        found.extend(_prefix(Membership.name, form) for form in {q, q[:1].upper() + q[1:]})
    return query.where(or_(*found))


def _before() -> int | None:
    before = request.args.get("before", type=int)
    if before is not None and not 0 < before <= _MAX_ID:
        abort(404)
    return before


@bp.get("/clubs/<int:club_id>/members")
@staff_roles(*MANAGERS)
def members(club_id: int) -> str:
    session = get_read_session()
    club = brand_club_or_404(session, club_id)
    # Control characters and lone surrogates match nothing and PostgreSQL refuses them.
    q = " ".join("".join(ch for ch in request.args.get("q", "") if ch.isprintable()).split())[:_MAX_QUERY]
    before = _before()
    query = search(club, q)
    if before is not None:
        query = query.where(Membership.id < before)
    rows = list(session.scalars(query.order_by(Membership.id.desc()).limit(PAGE_SIZE + 1)))
    more = len(rows) > PAGE_SIZE
    rows = rows[:PAGE_SIZE]
    total = session.scalar(select(func.count()).select_from(search(club, q).subquery())) or 0
    return render_template("portal/members.html", club=club, members=rows, q=q, total=total,
                           next_before=rows[-1].id if more else None, paged=before is not None)


def club_member_or_404(session: Session, club_id: int, member_id: int) -> Membership:
    member = brand_member_or_404(session, member_id)
    if member.club_id != club_id:
        abort(404)
    return member


def _member_page(session: Session, member: Membership, form: AdjustForm, status: int = 200) -> tuple[str, int]:
    club = member.club
    facts = card_facts(member)
    before = _before()
    entries = ledger.list_transactions(session, member.id, limit=PAGE_SIZE + 1, before_id=before)
    more = len(entries) > PAGE_SIZE
    entries = entries[:PAGE_SIZE]
    barcode = barcode_base64(facts.card_number, club.barcode_format)
    return render_template("portal/member.html", club=club, member=member, facts=facts, barcode=barcode,
                           entries=entries, next_before=entries[-1].id if more else None, paged=before is not None,
                           form=form, entry_names=ENTRY_NAMES), status


@bp.get("/clubs/<int:club_id>/members/<int:member_id>")
@staff_roles(*MANAGERS)
def member(club_id: int, member_id: int) -> tuple[str, int]:
    session = get_read_session()
    return _member_page(session, club_member_or_404(session, club_id, member_id), AdjustForm())


def flash_booked(session: Session, entry_id: int) -> None:
    """Says what a booking did, on the page that follows it; read afresh,
    as the booking committed after this request's reads began."""
    session.rollback()
    entry = session.get(LedgerTransaction, entry_id)
    if entry is None:  # deleted with its member since
        return
    member = session.get(Membership, entry.membership_id)
    if entry.type == STAMP:
        reward = session.scalar(select(LedgerTransaction).where(
            LedgerTransaction.membership_id == entry.membership_id, LedgerTransaction.type == REWARD,
            LedgerTransaction.id > entry.id).order_by(LedgerTransaction.id).limit(1))
        if reward is not None and (reward.details or {}).get("source_id") == entry.id:
            flash(_("The card is full: give the reward, %(reward)s.", reward=reward.reason or ""), "success")
        else:
            flash(_("Stamp added: %(stamps)s so far.", stamps=member.stamps if member else 0), "success")
        return
    flash(_("Booked: %(change)s points. The balance is now %(balance)s.",
            change=f"{entry.points:+d}", balance=points(member.balance if member else 0)), "success")


@bp.post("/clubs/<int:club_id>/members/<int:member_id>/adjustments")
@staff_roles(*MANAGERS)
def adjust(club_id: int, member_id: int) -> Response | tuple[str, int]:
    form = AdjustForm()
    session = get_read_session()
    found = club_member_or_404(session, club_id, member_id)
    if form.validate_on_submit():
        change, reason = form.points.data, form.reason.data

        def work(write: Session) -> int:
            entry = ledger.adjust(write, club_member_or_404(write, club_id, member_id), points=change, reason=reason,
                                  actor=actor())
            write.flush()
            return entry.id

        try:
            entry_id = book_once(form.once.data, {"points": change, "reason": reason}, work)
        except FormReused:
            flash(_("That form was already used. Nothing more was booked; here is a fresh one."), "error")
            return redirect(url_for("portal.member", club_id=club_id, member_id=member_id))
        except LoyaltyError as exc:
            refuse_booking(form, exc, "points")
        else:
            flash_booked(session, entry_id)
            return redirect(url_for("portal.member", club_id=club_id, member_id=member_id))
    return _member_page(session, found, form, REFUSED)
