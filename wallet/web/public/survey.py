"""The members' survey: /cards/<download_token>/survey, linked from the card
page and the back of the card. "How likely are you to recommend us?" from
0 to 10 and an optional comment, once per member per quarter
(wallet.loyalty.nps). The URL is the card page's, so it is as private."""

from __future__ import annotations

from flask import abort, flash, redirect, render_template, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import select
from werkzeug.wrappers import Response
from wtforms import RadioField, TextAreaField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import InputRequired, Length, Optional

from wallet.extensions import get_session, transactional
from wallet.loyalty.errors import RuleViolation
from wallet.loyalty.models import Membership
from wallet.loyalty.nps import COMMENT_MAX, answer_survey, current_answer
from wallet.web.forms import PageForm, refuse
from wallet.web.public import bp
from wallet.web.public.cards import valid_token

REFUSED = 422


class SurveyForm(PageForm):
    score = RadioField(_l("How likely are you to recommend us to a friend?"),
                       choices=[SelectChoice(str(n), str(n)) for n in range(11)],
                       validators=[InputRequired(message=_l("Choose a number from 0 to 10."))])
    comment = TextAreaField(_l("Comment"), validators=[Optional(), Length(max=COMMENT_MAX)],
                            description=_l("What should we keep doing, or do better?"))


@bp.route("/cards/<token>/survey", methods=["GET", "POST"])
@transactional
def survey(token: str) -> Response | tuple[str, int]:
    session = get_session()
    membership = session.scalar(select(Membership).where(Membership.download_token == token)) \
        if valid_token(token) else None
    if membership is None:
        abort(404)
    club = membership.club
    answered = current_answer(session, membership)
    form = SurveyForm()
    if answered is None and membership.status == "active" and form.validate_on_submit():
        try:
            answer_survey(session, membership, score=int(form.score.data), comment=form.comment.data or "")
        except RuleViolation as exc:
            refuse(form, exc, {"invalid_comment": "comment"}, default="score")
        else:
            flash(_("Thank you for your answer!"), "success")
            return redirect(url_for("public.card", token=token))
    page = render_template("public/survey.html", club=club, membership=membership, form=form, answered=answered)
    response = Response(page, status=REFUSED if form.errors else 200, mimetype="text/html")
    response.headers["Cache-Control"] = "private, no-store"
    response.headers["Referrer-Policy"] = "no-referrer"  # the URL is the card's key
    response.headers["X-Robots-Tag"] = "noindex"
    return response
