"""A message to a club's cards (managers and the owner): the text lands in
the pass's news field and on the lock screen, through the same core call as
the API's POST /api/v1/clubs/{club_id}/messages."""

from __future__ import annotations

from flask import flash, redirect, render_template, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_babel import ngettext
from werkzeug.wrappers import Response
from wtforms import SelectField, TextAreaField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, Length

from wallet.extensions import get_read_session, get_session, transactional
from wallet.loyalty.messages import MAX_MESSAGE, send_club_message
from wallet.loyalty.models import Club
from wallet.loyalty.program import Program
from wallet.web.forms import PageForm, refuse
from wallet.web.portal import MANAGERS, bp, staff_roles
from wallet.web.portal.actions import submitted
from wallet.web.portal.auth import REFUSED
from wallet.web.portal.scope import brand_club_or_404


class MessageForm(PageForm):
    text = TextAreaField(_l("Message"), validators=[DataRequired(), Length(max=MAX_MESSAGE)],
                         description=_l("Up to 500 characters. It replaces the card's previous news."))
    tier = SelectField(_l("Send to"), choices=[], default="")


def _form(club: Club, **kwargs: object) -> MessageForm:
    form = MessageForm(**kwargs)
    program = Program.of(club)
    levels = [level.name for level in program.tiers.levels] if program.tiers else []
    form.tier.choices = [SelectChoice("", _("Every member")),
                         *(SelectChoice(name, _("Level %(name)s", name=name)) for name in levels)]
    return form


@bp.get("/clubs/<int:club_id>/message")
@staff_roles(*MANAGERS)
def club_message(club_id: int) -> str:
    club = brand_club_or_404(get_read_session(), club_id)
    return render_template("portal/club_message.html", club=club, form=_form(club, formdata=None))


@bp.post("/clubs/<int:club_id>/message")
@staff_roles(*MANAGERS)
@transactional
def send_message(club_id: int) -> Response | tuple[str, int]:
    session = get_session()
    club = brand_club_or_404(session, club_id)
    form = _form(club)
    cards = submitted(
        form, lambda: send_club_message(session, club, text=form.text.data, tier=form.tier.data or None),
        lambda exc: refuse(form, exc, {"unknown_tier": "tier"}, default="text", wording={
            "invalid_text": _("Write up to 500 characters, without special characters."),
            "unknown_tier": _("The club has no such level any more. Choose again."),
        }))
    if cards is None:
        return render_template("portal/club_message.html", club=club, form=form), REFUSED
    flash(ngettext("The message is on its way to %(num)s card.", "The message is on its way to %(num)s cards.",
                   cards), "success")
    return redirect(url_for("portal.club", club_id=club.id))
