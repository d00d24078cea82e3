"""The brand's people: the owner invites them by link with a role, changes
their role and takes access away; the invited person opens the link, chooses
a name and password and is in.

The invitation's link goes by email and is also shown to the owner once,
to pass on another way (a cashier without a work mailbox); only its digest
is kept. Everything here but accepting an invitation is the owner's.
"""

from __future__ import annotations

from collections.abc import Callable

from flask import flash, redirect, render_template, url_for
from flask_babel import gettext as _
from flask_login import login_user, logout_user
from sqlalchemy.orm import Session
from werkzeug.wrappers import Response

from wallet.extensions import get_read_session, get_session, transactional
from wallet.loyalty.brands import BrandError
from wallet.loyalty.errors import NotFound, RuleViolation
from wallet.loyalty.models import StaffInvite, StaffRole
from wallet.loyalty.notifications import queue_email
from wallet.loyalty.staff import (
    INVITE_TTL,
    accept_invite,
    change_role,
    find_invite,
    invite_staff,
    list_staff,
    open_invites,
    remove_staff,
    withdraw_invite,
)
from wallet.web.forms import refuse
from wallet.web.portal import bp, public_view
from wallet.web.portal.actions import act, submitted
from wallet.web.portal.auth import REFUSED
from wallet.web.portal.forms import AcceptInviteForm, InviteForm, RoleForm
from wallet.web.security import PortalUser, current_staff
from wallet.web.site import public_url
from wallet.web.wording import ROLE_DUTIES, ROLE_NAMES

# Wording for the refusals of this page, by the core's error code.
_REFUSALS = {
    "last_owner": lambda: _("The brand needs an owner: make someone else owner first."),
    "cannot_remove_self": lambda: _("You cannot remove yourself. Another owner can."),
    "staff_not_found": lambda: _("That person is no longer on your staff."),
    "invite_not_found": lambda: _("That invitation was already used or withdrawn."),
}


def _send_invitation(session: Session, invite: StaffInvite, link: str) -> None:
    staff = current_staff()
    inviter = staff.name or staff.email
    queue_email(
        session, to=invite.email, brand_id=invite.brand_id,
        subject=_("%(person)s invites you to %(brand)s on Wallet Clubs", person=inviter, brand=staff.brand_name),
        body=_("%(person)s invites you to work for %(brand)s on Wallet Clubs. Your role: %(role)s. %(duties)s\n\n"
               "Open this link within %(days)s days to choose your password:\n\n%(link)s\n\n"
               "If you did not expect this, ignore this email.",
               person=inviter, brand=staff.brand_name, role=ROLE_NAMES[invite.role],
               duties=ROLE_DUTIES[invite.role], days=INVITE_TTL.days, link=link),
    )


def _page(session: Session, invite_form: InviteForm, *, link: str | None = None, invited: str | None = None,
          status: int = 200) -> tuple[str, int]:
    brand_id = current_staff().brand_id
    people = list_staff(session, brand_id)
    body = render_template(
        "portal/staff.html", form=invite_form, people=people, invites=open_invites(session, brand_id),
        role_forms={person.id: RoleForm(prefix=f"staff-{person.id}", role=person.role.value) for person in people},
        role_names=ROLE_NAMES, role_duties=ROLE_DUTIES, link=link, invited=invited,
    )
    return body, status


@bp.get("/staff")
def staff() -> tuple[str, int]:
    return _page(get_read_session(), InviteForm(role=StaffRole.CASHIER.value))


@bp.post("/staff/invitations")
@transactional
def invite() -> tuple[str, int]:
    form = InviteForm()
    session = get_session()
    made = submitted(
        form, lambda: invite_staff(session, current_staff().brand_id, email=form.email.data,
                                   role=StaffRole(form.role.data), invited_by=current_staff().staff_id),
        lambda exc: refuse(form, exc, {}, default="email", wording={
            "email_taken": _("This address already signs in to a brand. Invite another one.")}),
        refused_by=BrandError)
    if made is None:
        return _page(session, form, status=REFUSED)
    invitation, token = made
    link = public_url("portal.accept_invitation", token=token)
    _send_invitation(session, invitation, link)
    # Drawn from the session that wrote, so the new invitation is listed.
    return _page(session, InviteForm(formdata=None, role=StaffRole.CASHIER.value), link=link,
                 invited=invitation.email, status=201)


def _act(action: Callable[[Session], object], done: str) -> Response:
    return act(action, done, "portal.staff", _REFUSALS)


@bp.post("/staff/invitations/<int:invite_id>/withdraw")
@transactional
def withdraw(invite_id: int) -> Response:
    brand_id = current_staff().brand_id
    return _act(lambda session: withdraw_invite(session, brand_id, invite_id), _("The invitation is withdrawn."))


@bp.post("/staff/<int:staff_id>/role")
@transactional
def set_role(staff_id: int) -> Response:
    form = RoleForm(prefix=f"staff-{staff_id}")
    if not form.validate_on_submit():
        flash(_("Choose one of the roles."), "error")
        return redirect(url_for("portal.staff"))
    role = StaffRole(form.role.data)
    brand_id = current_staff().brand_id
    return _act(lambda session: change_role(session, brand_id, staff_id, role),
                _("The role is changed to %(role)s.", role=ROLE_NAMES[role]))


@bp.post("/staff/<int:staff_id>/remove")
@transactional
def remove(staff_id: int) -> Response:
    staff = current_staff()
    return _act(lambda session: remove_staff(session, staff.brand_id, staff_id, acting_id=staff.staff_id),
                _("Their access is removed."))


@bp.route("/invitations/<token>", methods=["GET", "POST"])
@public_view
@transactional
def accept_invitation(token: str) -> Response:
    form = AcceptInviteForm()
    headers = {"Referrer-Policy": "no-referrer"}
    session = get_session()
    try:
        invitation = find_invite(session, token)
    except NotFound:
        body = render_template("portal/link_expired.html", again=None)
        return Response(body, status=404, mimetype="text/html", headers=headers)
    brand_name, role, email = invitation.brand.name, invitation.role, invitation.email
    if form.validate_on_submit():
        try:
            user = PortalUser.of(accept_invite(session, token, name=form.name.data, password=form.password.data))
        except RuleViolation as exc:
            refuse(form, exc, {"invalid_password": "password"}, default="name")
        else:
            logout_user()
            login_user(user)
            flash(_("Welcome to %(brand)s.", brand=brand_name), "success")
            response = redirect(url_for("portal.dashboard"))
            response.headers.update(headers)
            return response
    body = render_template("portal/invitation.html", form=form, brand_name=brand_name, email=email,
                           role=ROLE_NAMES[role], duties=ROLE_DUTIES[role])
    return Response(body, status=REFUSED if form.errors else 200, mimetype="text/html", headers=headers)
