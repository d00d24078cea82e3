"""Who is signed in to the brand portal, and CSRF on every page form.

Flask-Login keeps the staff user's id in the signed session cookie together
with a fingerprint of their password hash: a new password signs out every
session opened with the old one. CSRF is checked for every POST to a page
blueprint (``protect_pages``); the JSON API, PassKit and Google routes
authenticate otherwise and are left alone.
"""

from __future__ import annotations

from dataclasses import dataclass

from flask import Blueprint
from flask_babel import lazy_gettext as _l
from flask_login import LoginManager, UserMixin, current_user
from flask_wtf.csrf import CSRFProtect
from sqlalchemy import select
from sqlalchemy.orm import joinedload

from wallet.extensions import get_read_session
from wallet.loyalty.brands import session_fingerprint
from wallet.loyalty.models import StaffRole, StaffUser

csrf = CSRFProtect()
login_manager = LoginManager()
login_manager.login_view = "portal.login"
login_manager.login_message = _l("Please sign in to open that page.")
login_manager.login_message_category = "info"
login_manager.session_protection = "basic"


@dataclass(frozen=True)
class PortalUser(UserMixin):
    """The signed-in staff user as pages see them: plain values, no ORM row
    that outlives its session."""

    staff_id: int
    fingerprint: str
    brand_id: int
    brand_name: str
    email: str
    name: str
    role: StaffRole

    def get_id(self) -> str:
        return f"{self.staff_id}:{self.fingerprint}"

    @classmethod
    def of(cls, staff: StaffUser) -> PortalUser:
        return cls(staff_id=staff.id, fingerprint=session_fingerprint(staff), brand_id=staff.brand_id,
                   brand_name=staff.brand.name, email=staff.email, name=staff.name, role=staff.role)


@login_manager.user_loader
def _load_user(user_id: str) -> PortalUser | None:
    staff_id, _, fingerprint = user_id.partition(":")
    if not staff_id.isdigit() or len(staff_id) > 18:
        return None
    staff = get_read_session().scalar(
        select(StaffUser).options(joinedload(StaffUser.brand)).where(StaffUser.id == int(staff_id))
    )
    if staff is None or session_fingerprint(staff) != fingerprint:
        return None
    return PortalUser.of(staff)


def current_staff() -> PortalUser:
    """The signed-in staff user; only for views behind the portal's sign-in."""
    user = current_user._get_current_object()  # type: ignore[attr-defined]
    if not isinstance(user, PortalUser):
        raise RuntimeError("current_staff() outside the signed-in portal")
    return user


def protect_pages(bp: Blueprint) -> None:
    """Checks the CSRF token of every POST (PUT, PATCH, DELETE) to ``bp``."""
    bp.before_request(_check_csrf)


def _check_csrf() -> None:
    csrf.protect()
