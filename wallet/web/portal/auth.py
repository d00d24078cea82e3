"""Sign-up, sign-in and sign-out of brand staff.

Sign-in attempts are rate limited per client address and per email (only
failed attempts count), and a refused sign-in says the same whatever was
wrong: an unknown email and a wrong password look alike, also in timing
(``authenticate_staff``).
"""

from __future__ import annotations

from flask import flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_user, logout_user
from werkzeug.wrappers import Response

from wallet.config import get_settings
from wallet.extensions import get_session, limiter, transactional
from wallet.loyalty.brands import BrandError, authenticate_staff, register_brand
from wallet.loyalty.errors import NotAuthenticated
from wallet.web.forms import refuse
from wallet.web.site import safe_next
from wallet.web.portal import EVERYONE, bp, public_view, staff_roles
from wallet.web.portal.forms import LoginForm, SignupForm
from wallet.web.security import PortalUser

REFUSED = 422


def login_limit() -> str:
    return get_settings().login_rate_limit


def email_key() -> str:
    return "login-email:" + (request.form.get("email") or "").strip().lower()[:320]


def _failed(response: Response) -> bool:
    return response.status_code != 302


@bp.route("/signup", methods=["GET", "POST"])
@public_view
@transactional
def signup() -> Response | tuple[str, int] | str:
    if current_user.is_authenticated:
        return redirect(url_for("portal.dashboard"))
    form = SignupForm()
    if form.validate_on_submit():
        try:
            _brand, owner = register_brand(get_session(), name=form.brand_name.data, email=form.email.data,
                                           password=form.password.data)
            user = PortalUser.of(owner)
        except BrandError as exc:
            refuse(form, exc, {"invalid_email": "email", "email_taken": "email",
                               "invalid_password": "password"}, default="brand_name")
        else:
            login_user(user)
            flash(_("Welcome to Wallet Clubs. Open your first club to start issuing cards."), "success")
            return redirect(url_for("portal.dashboard"))
    return render_template("portal/signup.html", form=form), (REFUSED if form.errors else 200)


@bp.route("/login", methods=["GET", "POST"])
@public_view
@limiter.limit(login_limit, methods=["POST"], deduct_when=_failed)
@limiter.limit(login_limit, methods=["POST"], key_func=email_key, deduct_when=_failed)
@transactional
def login() -> Response | tuple[str, int] | str:
    if current_user.is_authenticated:
        return redirect(url_for("portal.dashboard"))
    form = LoginForm()
    refused = False
    if form.validate_on_submit():
        try:
            user = PortalUser.of(authenticate_staff(get_session(), form.email.data, form.password.data))
        except NotAuthenticated:
            refused = True
        else:
            login_user(user)
            return redirect(safe_next(request.args.get("next")) or url_for("portal.dashboard"))
    status = REFUSED if (refused or form.errors) else 200
    return render_template("portal/login.html", form=form, refused=refused), status


@bp.post("/logout")  # a POST, so its CSRF token makes sign-out deliberate
@staff_roles(*EVERYONE)
def logout() -> Response:
    logout_user()
    flash(_("You are signed out."), "info")
    return redirect(url_for("portal.login"))
