"""Joining a club: /clubs/<club_id>/join.

A new member lands on their card page. Someone the club already has (by
email or phone) gets no second card, and the page shows nothing of the
first: anyone can type an email, so the card's link goes to the address
the club has for that card (``identity.send_card_link``, a few times an
hour at most), and the page says so.
"""

from __future__ import annotations

from flask import abort, flash, redirect, render_template, request, session, url_for
from flask_babel import get_locale
from flask_babel import gettext as _
from werkzeug.wrappers import Response

from wallet.config import get_settings
from wallet.extensions import get_session, limiter, transactional
from wallet.loyalty.clubs import get_club
from wallet.loyalty.contacts import normalize_email
from wallet.loyalty.errors import NotFound, RuleViolation
from wallet.loyalty.identity import send_card_link
from wallet.loyalty.members import enrol
from wallet.web.forms import refuse
from wallet.web.public import bp
from wallet.web.public.benefits import benefits
from wallet.web.public.catalogue import public_club_or_404
from wallet.web.public.forms import JoinForm

REFUSED = 422
# Which field shows which refusal of the core.
_FIELDS = {
    "email_or_phone_required": "email", "invalid_email": "email", "invalid_phone": "phone",
    "invalid_birthday": "birthday", "invalid_referral_code": "referral_code",
    "unknown_referral_code": "referral_code", "invalid_name": "name",
}


def _join_limit() -> str:
    return get_settings().join_rate_limit


@bp.route("/clubs/<int:club_id>/join", methods=["GET", "POST"])
@limiter.limit(_join_limit, methods=["POST"])
@transactional
def join(club_id: int) -> Response | tuple[str, int] | str:
    club = public_club_or_404(club_id)
    form = JoinForm()
    if request.method == "GET" and request.args.get("ref"):
        form.referral_code.data = request.args["ref"][:32]
    if form.validate_on_submit():
        email, phone = form.email.data or None, form.phone.data or None
        db = get_session()
        try:
            member, created = enrol(db, get_club(db, club_id), email=email, phone=phone, name=form.name.data,
                                    birthday=form.birthday.data, locale=str(get_locale() or "en"),
                                    referral_code=form.referral_code.data or None, actor="web",
                                    source="join_page")
            token = member.download_token
            if not created:
                # To the address the club has for the card, never to the page.
                card_url = get_settings().public_base_url + url_for("public.card", token=token)
                send_card_link(db, member, card_url=card_url)
                matched = email if email and member.email == normalize_email(email) else phone
        except NotFound:
            abort(404)  # the club closed while the form was open
        except RuleViolation as exc:
            refuse(form, exc, _FIELDS, default="email")
        else:
            if created:
                flash(_("Welcome to %(club)s! Add your card to your phone's wallet.", club=club.name), "success")
                return redirect(url_for("public.card", token=token))
            # What the joiner typed that the club knows, for the next page only.
            session["card_link_sent_to"] = matched
            return redirect(url_for("public.join_sent", club_id=club_id))
    return (render_template("public/join.html", club=club, form=form, benefits=benefits(club)),
            REFUSED if form.errors else 200)


@bp.get("/clubs/<int:club_id>/join/sent")
def join_sent(club_id: int) -> Response | str:
    club = public_club_or_404(club_id)
    sent_to = session.pop("card_link_sent_to", None)
    if not sent_to:
        return redirect(url_for("public.join", club_id=club_id))
    return render_template("public/join_sent.html", club=club, sent_to=sent_to)
