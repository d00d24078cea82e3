"""Opening a club and changing its settings (managers and the owner), with
the card's live preview beside the form.

/portal/clubs/new and /portal/clubs/<club_id>/settings draw the same form
(``clubs_form``); saving goes through the core's ``create_club`` /
``update_club``, the same calls as the API's, and a refusal shows each
problem next to its field and saves nothing. The preview endpoints take
the form as it is being typed and answer the card (``clubs_preview``), or
422 with what keeps it from being drawn.
"""

from __future__ import annotations

from flask import flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from werkzeug.wrappers import Response

from wallet.extensions import get_read_session, get_session, transactional
from wallet.loyalty.clubs import clean_club_fields, create_club, update_club
from wallet.loyalty.errors import RuleViolation
from wallet.loyalty.models import Club
from wallet.web.portal import MANAGERS, bp, staff_roles
from wallet.web.portal.auth import REFUSED
from wallet.web.portal.clubs_form import (
    ClubForm,
    club_fields,
    fit_rows,
    form_values,
    new_club_values,
    problems,
    show_refusal,
    show_unreadable,
)
from wallet.web.portal.clubs_preview import draft_club, preview
from wallet.web.portal.scope import brand_club_or_404
from wallet.web.security import current_staff


def _page(form: ClubForm, club: Club | None, shown: Club, status: int = 200) -> tuple[str, int]:
    fit_rows(form)
    return render_template("portal/club_form.html", form=form, club=club, preview=preview(shown)), status


def _save(form: ClubForm, club: Club | None) -> Club | None:
    """The club created or changed from the form, or None with the form's
    errors set (and nothing written)."""
    if not form.validate_on_submit():
        return None
    data, unreadable = club_fields(form, creating=club is None)
    if unreadable:
        show_unreadable(unreadable)
        return None
    session = get_session()
    try:
        with session.begin_nested():
            if club is None:
                return create_club(session, current_staff().brand_id, data)
            return update_club(session, club, data)
    except RuleViolation as exc:
        show_refusal(form, exc)
        return None


@bp.route("/clubs/new", methods=["GET", "POST"])
@staff_roles(*MANAGERS)
@transactional
def new_club() -> Response | tuple[str, int]:
    form = ClubForm() if _posted() else ClubForm(data=new_club_values())
    saved = _save(form, None)
    if saved is not None:
        flash(_("%(name)s is open. Share its join link or print the poster to bring in members.", name=saved.name),
              "success")
        return redirect(url_for("portal.club", club_id=saved.id))
    return _page(form, None, _draft_or_default(form, None), REFUSED if _posted() else 200)


@bp.route("/clubs/<int:club_id>/settings", methods=["GET", "POST"])
@staff_roles(*MANAGERS)
@transactional
def club_settings(club_id: int) -> Response | tuple[str, int]:
    club = brand_club_or_404(get_session(), club_id)
    form = ClubForm() if _posted() else ClubForm(data=form_values(club))
    saved = _save(form, club)
    if saved is not None:
        flash(_("The settings are saved. Cards in members' phones update by themselves."), "success")
        return redirect(url_for("portal.club", club_id=saved.id))
    return _page(form, club, club if not _posted() else _draft_or_default(form, club),
                 REFUSED if _posted() else 200)


def _posted() -> bool:
    return request.method == "POST"


def _draft_or_default(form: ClubForm, base: Club | None) -> Club:
    """The card as the form describes it, if the core accepts it; else as
    the club is (or a new club would be). A refused form is read again, so
    its fields do not show each refusal twice."""
    try:
        return _draft(ClubForm() if _posted() else form, base)
    except NotDrawn:
        return draft_club({} if base else {"name": _("Your club"), "program": {"points": {}}},
                          current_staff().brand_name, base)


class NotDrawn(ValueError):
    """The form does not describe a card yet; its fields say why."""


def _draft(form: ClubForm, base: Club | None) -> Club:
    """The card the form describes, or NotDrawn with the form's errors set."""
    if _posted() and not form.validate():
        raise NotDrawn()
    data, unreadable = club_fields(form, creating=base is None)
    if unreadable:
        show_unreadable(unreadable)
        raise NotDrawn()
    # A card without a name yet still shows how it will look.
    data["name"] = data["name"] or _("Your club")
    try:
        values = clean_club_fields(data, creating=True)
    except RuleViolation as exc:
        show_refusal(form, exc)
        raise NotDrawn() from None
    return draft_club(values, current_staff().brand_name, base)


def _preview(base: Club | None) -> tuple[str, int]:
    form = ClubForm()
    try:
        shown = _draft(form, base)
    except NotDrawn:
        return render_template("portal/card_preview_waiting.html", reasons=problems(form)), REFUSED
    return render_template("portal/card_preview.html", preview=preview(shown)), 200


@bp.post("/clubs/preview")
@staff_roles(*MANAGERS)
def preview_new_club() -> tuple[str, int]:
    return _preview(None)


@bp.post("/clubs/<int:club_id>/preview")
@staff_roles(*MANAGERS)
def preview_club(club_id: int) -> tuple[str, int]:
    return _preview(brand_club_or_404(get_read_session(), club_id))
