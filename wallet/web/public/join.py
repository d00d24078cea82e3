"""Joining a club: /clubs/<club_id>/join.

A new member lands on their card page. Someone the club already has (by
email or phone) gets no second card, and the page shows nothing of the
first: anyone can type an email, so the card's link goes to that email or
phone instead, and the page says so.
"""

from __future__ import annotations

from flask import abort, current_app, flash, redirect, render_template, request, session, url_for
from flask_babel import gettext as _
from sqlalchemy.orm import Session
from werkzeug.wrappers import Response

from wallet.extensions import get_db, limiter
from wallet.loyalty.clubs import get_club
from wallet.loyalty.contacts import normalize_email, normalize_phone
from wallet.loyalty.errors import NotFound, RuleViolation
from wallet.loyalty.members import enrol, find_membership
from wallet.loyalty.models import Club, Membership
from wallet.loyalty.notifications import Channel
from wallet.web.forms import refuse
from wallet.web.public import bp
from wallet.web.public.benefits import benefits
from wallet.web.public.card_links import send_card_link
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
    return current_app.config["JOIN_RATE_LIMIT"]


def _known_member(session: Session, club: Club, email: str | None,
                  phone: str | None) -> tuple[Membership, Channel, str] | None:
    """The member the club already has under the email or the phone typed,
    with the channel and address the club knows them by (never one the
    joiner added: the link must reach the card's owner, not the joiner)."""
    if email:
        member = find_membership(session, club, email=email)
        if member is not None:
            return member, Channel.EMAIL, normalize_email(email)
    if phone:
        member = find_membership(session, club, phone=phone)
        if member is not None:
            return member, Channel.SMS, normalize_phone(phone, country=club.country)
    return None


@bp.route("/clubs/<int:club_id>/join", methods=["GET", "POST"])
@limiter.limit(_join_limit, methods=["POST"])
def join(club_id: int) -> Response | tuple[str, int] | str:
    club = public_club_or_404(club_id)
    form = JoinForm()
    if request.method == "GET" and request.args.get("ref"):
        form.referral_code.data = request.args["ref"][:32]
    if form.validate_on_submit():
        email, phone = form.email.data or None, form.phone.data or None
        channel = Channel.EMAIL if email else Channel.SMS
        try:
            with get_db().transaction() as db:
                found = get_club(db, club_id)
                known = _known_member(db, found, email, phone)
                created = False
                if known is None:
                    member, created = enrol(db, found, email=email, phone=phone, name=form.name.data,
                                            birthday=form.birthday.data,
                                            referral_code=form.referral_code.data or None, actor="web")
                    token = member.download_token
                    if not created:  # joined a moment ago, in another request
                        known = _known_member(db, found, email, phone)
                if known is not None:
                    member, channel, to = known
                    card_url = current_app.config["PUBLIC_BASE_URL"] + url_for("public.card",
                                                                               token=member.download_token)
                    send_card_link(db, member, card_url=card_url, channel=channel, to=to)
        except NotFound:
            abort(404)  # the club closed while the form was open
        except RuleViolation as exc:
            refuse(form, exc, _FIELDS, default="email")
        else:
            if created:
                flash(_("Welcome to %(club)s! Add your card to your phone's wallet.", club=club.name), "success")
                return redirect(url_for("public.card", token=token))
            # Where the link went, for the next page only; never the card.
            session["card_link_sent_to"] = email if channel == Channel.EMAIL else phone
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
