"""/me: every club card of one person, across brands.

Signing in proves an email: the page sends a single-use link to it
(``wallet.loyalty.identity``), and opening that link shows a button whose
POST signs in, since mail scanners fetch links and would spend them. The
signed-in customer's id is kept in the session cookie (signed); nothing
else identifies a customer to these pages.
"""

from __future__ import annotations

from flask import abort, flash, redirect, render_template, request, session, url_for
from flask_babel import get_locale
from flask_babel import gettext as _
from werkzeug.wrappers import Response

from wallet.apple.links import apple_pass_url
from wallet.config import get_settings
from wallet.extensions import get_db, get_read_session, get_session, limiter, transactional
from wallet.google.links import google_save_url
from wallet.loyalty.cardfacts import card_facts
from wallet.loyalty.errors import NotAuthenticated, RateLimited, RuleViolation
from wallet.loyalty.identity import memberships_of, request_email_sign_in, verify_email_sign_in
from wallet.loyalty.members import end_membership
from wallet.loyalty.models import Membership
from wallet.web.forms import PageForm, refuse
from wallet.web.public import bp
from wallet.web.public.cards import wallet_order
from wallet.web.public.forms import SignInForm

REFUSED = 422
CUSTOMER_KEY = "customer_id"


def _signed_in_customer() -> int | None:
    value = session.get(CUSTOMER_KEY)
    return value if isinstance(value, int) else None


def _sign_in_limit() -> str:
    return get_settings().join_rate_limit


@bp.get("/me")
def me() -> Response | str:
    customer_id = _signed_in_customer()
    if customer_id is None:
        return render_template("public/me_sign_in.html", form=SignInForm())
    cards = [(m, card_facts(m), apple_pass_url(m), google_save_url(m))
             for m in memberships_of(get_read_session(), customer_id)]
    return render_template("public/me.html", cards=cards, wallets=wallet_order(request.user_agent.string),
                           form=PageForm())


@bp.post("/me/sign-in")
@limiter.limit(_sign_in_limit)
def me_request_link() -> Response | tuple[str, int]:
    form = SignInForm()
    if form.validate_on_submit():
        base = get_settings().public_base_url
        try:
            request_email_sign_in(get_db(), form.email.data,
                                  link_for=lambda token: base + url_for("public.me_link", token=token),
                                  locale=str(get_locale() or "en"))
        except RateLimited:
            form.email.errors = [_("Too many sign-in links were sent to this address. Try again in an hour.")]
        except RuleViolation as exc:
            refuse(form, exc, {}, default="email")
        else:
            session["sign_in_sent_to"] = form.email.data
            return redirect(url_for("public.me_link_sent"))
    return render_template("public/me_sign_in.html", form=form), REFUSED


@bp.get("/me/sign-in/sent")
def me_link_sent() -> Response | str:
    sent_to = session.pop("sign_in_sent_to", None)
    if not sent_to:
        return redirect(url_for("public.me"))
    return render_template("public/me_link_sent.html", sent_to=sent_to)


@bp.route("/me/sign-in/<token>", methods=["GET", "POST"])
def me_link(token: str) -> Response | str | tuple[str, int]:
    form = PageForm()
    if not form.validate_on_submit():
        return render_template("public/me_link.html", form=form)
    try:
        customer = verify_email_sign_in(get_db(), token, customer_id=_signed_in_customer())
    except NotAuthenticated:
        return render_template("public/me_link.html", form=form, refused=True), REFUSED
    session[CUSTOMER_KEY] = customer.id
    session.permanent = True
    return redirect(url_for("public.me"))


@bp.post("/me/sign-out")
def me_sign_out() -> Response:
    session.pop(CUSTOMER_KEY, None)
    flash(_("You are signed out of your cards."), "info")
    return redirect(url_for("public.me"))


@bp.post("/me/cards/<int:member_id>/leave")
@transactional
def me_leave(member_id: int) -> Response:
    customer_id = _signed_in_customer()
    if customer_id is None:
        return redirect(url_for("public.me"))
    member = get_session().get(Membership, member_id)
    # Only one's own card: anything else answers as if it did not exist.
    if member is None or member.customer_id != customer_id:
        abort(404)
    club = member.club.name
    end_membership(get_session(), member)
    flash(_("You have left %(club)s. Its card no longer works.", club=club), "info")
    return redirect(url_for("public.me"))
