"""A forgotten password: a link by email that sets a new one.

The form answers the same page whether or not the address has an account
(``request_password_reset`` decides quietly), and is rate limited like
sign-in, per client address and per email. The link works once, for an
hour (``wallet.loyalty.staff``). Its page sends no Referer, so the token in
its address reaches no other site.
"""

from __future__ import annotations

from flask import flash, redirect, render_template, url_for
from flask_babel import gettext as _
from flask_login import login_user
from sqlalchemy.orm import Session
from werkzeug.wrappers import Response

from wallet.extensions import get_session, limiter, transactional
from wallet.loyalty.brands import BrandError, normalize_email
from wallet.loyalty.errors import NotFound
from wallet.loyalty.models import StaffUser
from wallet.loyalty.notifications import queue_email
from wallet.loyalty.staff import RESET_TTL, find_password_reset, request_password_reset, reset_password
from wallet.web.forms import refuse
from wallet.web.portal import bp, public_view
from wallet.web.portal.auth import REFUSED, email_key, login_limit
from wallet.web.portal.forms import ForgotPasswordForm, NewPasswordForm
from wallet.web.security import PortalUser
from wallet.web.site import public_url


def _send_reset_link(session: Session, staff: StaffUser, token: str) -> None:
    link = public_url("portal.reset_password_page", token=token)
    minutes = int(RESET_TTL.total_seconds() // 60)
    queue_email(
        session, to=staff.email, brand_id=staff.brand_id,
        subject=_("Set a new password for %(brand)s on Wallet Clubs", brand=staff.brand.name),
        body=_("Someone asked to set a new password for %(email)s on Wallet Clubs. If it was you, open this link "
               "within %(minutes)s minutes:\n\n%(link)s\n\nIf it was not you, do nothing: your password stays "
               "as it is.", email=staff.email, minutes=minutes, link=link),
    )


@bp.route("/password/forgot", methods=["GET", "POST"])
@public_view
@limiter.limit(login_limit, methods=["POST"])
@limiter.limit(login_limit, methods=["POST"], key_func=email_key)
@transactional
def forgot_password() -> tuple[str, int] | str:
    form = ForgotPasswordForm()
    if form.validate_on_submit():
        try:
            normalize_email(form.email.data)
        except BrandError as exc:
            refuse(form, exc, {}, default="email")
        else:
            issued = request_password_reset(get_session(), form.email.data)
            if issued is not None:
                _send_reset_link(get_session(), *issued)
            return render_template("portal/password_sent.html", email=form.email.data)
    return render_template("portal/password_forgot.html", form=form), (REFUSED if form.errors else 200)


def _no_referrer(response: Response) -> Response:
    response.headers["Referrer-Policy"] = "no-referrer"
    return response


@bp.route("/password/reset/<token>", methods=["GET", "POST"])
@public_view
@transactional
def reset_password_page(token: str) -> Response:
    form = NewPasswordForm()
    session = get_session()
    try:
        email = find_password_reset(session, token).email
    except NotFound:
        body = render_template("portal/link_expired.html", again=url_for("portal.forgot_password"))
        return _no_referrer(Response(body, status=404, mimetype="text/html"))
    if form.validate_on_submit():
        try:
            user = PortalUser.of(reset_password(session, token, form.password.data))
        except BrandError as exc:
            refuse(form, exc, {}, default="password")
        else:
            login_user(user)
            flash(_("Your new password is set, and you are signed in."), "success")
            return _no_referrer(redirect(url_for("portal.dashboard")))
    body = render_template("portal/password_reset.html", form=form, email=email)
    return _no_referrer(Response(body, status=REFUSED if form.errors else 200, mimetype="text/html"))
