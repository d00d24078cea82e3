"""The brand portal under /portal: sign-up, sign-in and the brand's own pages.

Every view of this blueprint needs a signed-in staff user unless it is marked
``@public_view`` (sign-up, sign-in, and the like), and is the owner's alone
unless ``@staff_roles(...)`` lets other roles in: a new page is private and
owner-only by default. A role that may not open a page gets 403, and no
page links to it: templates offer a portal link only if ``may_open`` says
the reader's role may follow it (a cashier sees the till only). Views load
what they show through ``wallet.web.portal.scope``, which answers 404 for
anything of another brand.

Roles (``StaffRole``): the owner does everything (staff, API keys,
webhooks); a manager the clubs, their members and messages; a cashier the
till only.

Adding a page: a module here whose views register on ``bp`` (import it at
the bottom of this file); ``current_staff()`` (wallet.web.security) gives
the signed-in person's brand_id and role (``StaffRole``); a form subclasses
``wallet.web.forms.PageForm`` and its template draws each field with
``field()`` from templates/macros/forms.html, showing a core refusal with
``refuse()``; a refused form answers 422 and saves nothing; every text goes
through ``_()`` / ``_l()`` and into the catalogues (README, Pages); a
browser test uses the ``new_page`` and ``shoot`` fixtures of tests/pages.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from flask import Blueprint, abort, current_app, request
from flask_login import current_user

from wallet.loyalty.models import StaffRole
from wallet.web.security import current_staff, login_manager, protect_pages

bp = Blueprint("portal", __name__, url_prefix="/portal")
protect_pages(bp)

F = TypeVar("F", bound=Callable[..., object])


def public_view(view: F) -> F:
    """Marks a portal view that needs no signed-in staff user."""
    view.portal_public = True  # type: ignore[attr-defined]
    return view


def staff_roles(*roles: StaffRole) -> Callable[[F], F]:
    """Lets staff of ``roles`` open the view, besides the owner."""

    def mark(view: F) -> F:
        view.portal_roles = frozenset({StaffRole.OWNER, *roles})  # type: ignore[attr-defined]
        return view

    return mark


MANAGERS = (StaffRole.MANAGER,)
EVERYONE = (StaffRole.MANAGER, StaffRole.CASHIER)


def _roles_of(view: object) -> frozenset[StaffRole]:
    return getattr(view, "portal_roles", frozenset({StaffRole.OWNER}))


@bp.app_template_global()
def may_open(endpoint: str) -> bool:
    """Whether the signed-in person may open the portal view ``endpoint``, by
    the rule ``_require_sign_in`` enforces: a page offers only the links its
    reader can follow."""
    view = current_app.view_functions.get(endpoint)
    if view is None:
        return False
    if getattr(view, "portal_public", False):
        return True
    return bool(current_user.is_authenticated) and current_staff().role in _roles_of(view)


@bp.before_request
def _require_sign_in():  # type: ignore[no-untyped-def]
    view = current_app.view_functions.get(request.endpoint or "")
    if view is None or getattr(view, "portal_public", False):
        return None
    if not current_user.is_authenticated:
        return login_manager.unauthorized()
    if current_staff().role not in _roles_of(view):
        abort(403)
    return None


from wallet.web.portal import auth, clubs, dashboard, password, staff  # noqa: E402,F401  (routes register on bp)
from wallet.web.portal import members, members_csv, till  # noqa: E402,F401
from wallet.web.portal import clubs_edit, clubs_message, keys, numbers, webhooks  # noqa: E402,F401
from wallet.web.portal import campaigns  # noqa: E402,F401
