"""A brand's people beyond its owner, and getting back in without a password.

Invitations: the owner invites an email address with a role (``StaffRole``).
The link works once, for ``INVITE_TTL``, and the person chooses their own
name and password when opening it; a new invitation to the same address
replaces the old one, and the owner can withdraw one still open.

Password resets: a link for the address, working once, for ``RESET_TTL``.
Asking for one answers nothing about whether the address has an account
(``request_password_reset`` gives None for an unknown address and callers
answer the same either way), and at most ``MAX_RESETS_PER_HOUR`` links are
made for one person an hour, so nobody can flood someone's inbox through
the form. Using a link ends every other link of that person, and the new
password hash signs out every session opened with the old one.

Both links carry 32 random bytes of which only the SHA-256 is stored, and
using one is a conditional UPDATE (still open, not expired), so two tabs
racing with the same link use it once.

A brand always keeps an owner: the last one can neither be removed nor
demoted, and nobody removes themselves.
"""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session, joinedload

from wallet.db import utcnow
from wallet.loyalty.brands import (
    BrandError,
    add_staff_user,
    check_new_password,
    hash_password,
    normalize_email,
    staff_by_email,
    token_digest,
)
from wallet.loyalty.errors import NotFound, RuleViolation
from wallet.loyalty.fields import valid_text
from wallet.loyalty.models import PasswordReset, StaffInvite, StaffRole, StaffUser

INVITE_TTL = timedelta(days=7)
RESET_TTL = timedelta(hours=1)
MAX_RESETS_PER_HOUR = 3
# token_urlsafe(32) is 43 characters; anything far from that is no token of ours.
_TOKEN_LENGTHS = range(32, 65)


class StaffError(RuleViolation):
    default_code = "invalid_staff"


def _new_token() -> tuple[str, str]:
    token = secrets.token_urlsafe(32)
    return token, token_digest(token)


def _digest(token: object) -> str | None:
    if not isinstance(token, str) or len(token) not in _TOKEN_LENGTHS or not token.isascii():
        return None
    return token_digest(token)


# Invitations

def invite_staff(session: Session, brand_id: int, *, email: str, role: StaffRole,
                 invited_by: int | None = None, now: datetime | None = None) -> tuple[StaffInvite, str]:
    """An invitation for ``email`` to sign in to the brand with ``role``;
    returns it and the token of its link (shown or sent once, never stored).
    BrandError when the address is not one (invalid_email) or already signs
    in to a brand (email_taken): one email signs in to one brand."""
    email = normalize_email(email)
    if not isinstance(role, StaffRole):
        raise StaffError("role must be owner, manager or cashier", code="invalid_role")
    if session.scalar(select(StaffUser.id).where(StaffUser.email == email)) is not None:
        raise BrandError(f"{email} already signs in to a brand", code="email_taken")
    now = now or utcnow()
    session.execute(
        update(StaffInvite)
        .where(StaffInvite.brand_id == brand_id, StaffInvite.email == email,
               StaffInvite.accepted_at.is_(None), StaffInvite.revoked_at.is_(None))
        .values(revoked_at=now)
    )
    token, digest = _new_token()
    invite = StaffInvite(brand_id=brand_id, email=email, role=role, token_hash=digest, invited_by_id=invited_by,
                         created_at=now, expires_at=now + INVITE_TTL)
    session.add(invite)
    session.flush()
    return invite, token


def _open_invite_query(now: datetime):  # type: ignore[no-untyped-def]
    return (select(StaffInvite).options(joinedload(StaffInvite.brand))
            .where(StaffInvite.accepted_at.is_(None), StaffInvite.revoked_at.is_(None),
                   StaffInvite.expires_at > now))


def find_invite(session: Session, token: object, *, now: datetime | None = None) -> StaffInvite:
    """The open invitation of ``token``; NotFound (invite_not_found) when it
    is unknown, used, withdrawn or expired: all look alike."""
    digest = _digest(token)
    invite = (session.scalar(_open_invite_query(now or utcnow()).where(StaffInvite.token_hash == digest))
              if digest else None)
    if invite is None:
        raise NotFound("this invitation link is unknown, used, withdrawn or expired", code="invite_not_found")
    return invite


def accept_invite(session: Session, token: object, *, name: str, password: str,
                  now: datetime | None = None) -> StaffUser:
    """The new staff user the invitation of ``token`` makes, signing in with
    its email and ``password``. A refused password or name leaves the link
    open; a link used by a racing request is NotFound here."""
    now = now or utcnow()
    invite = find_invite(session, token, now=now)
    check_new_password(password)
    name = valid_text(name, "name", max_len=200, code="invalid_name")
    claimed = session.execute(
        update(StaffInvite)
        .where(StaffInvite.id == invite.id, StaffInvite.accepted_at.is_(None), StaffInvite.revoked_at.is_(None))
        .values(accepted_at=now)
    ).rowcount
    if claimed != 1:
        raise NotFound("this invitation link was used already", code="invite_not_found")
    return add_staff_user(session, invite.brand, email=invite.email, password=password, role=invite.role,
                          name=name)


def open_invites(session: Session, brand_id: int, *, now: datetime | None = None) -> list[StaffInvite]:
    """The brand's invitations still waiting for their person, newest first."""
    query = _open_invite_query(now or utcnow()).where(StaffInvite.brand_id == brand_id)
    return list(session.scalars(query.order_by(StaffInvite.created_at.desc(), StaffInvite.id.desc())))


def withdraw_invite(session: Session, brand_id: int, invite_id: int, *, now: datetime | None = None) -> None:
    """Ends an open invitation of the brand; NotFound for any other."""
    withdrawn = session.execute(
        update(StaffInvite)
        .where(StaffInvite.id == invite_id, StaffInvite.brand_id == brand_id,
               StaffInvite.accepted_at.is_(None), StaffInvite.revoked_at.is_(None))
        .values(revoked_at=now or utcnow())
    ).rowcount
    if withdrawn != 1:
        raise NotFound(f"no open invitation {invite_id}", code="invite_not_found")


# The brand's people

def list_staff(session: Session, brand_id: int) -> list[StaffUser]:
    role_order = {StaffRole.OWNER: 0, StaffRole.MANAGER: 1, StaffRole.CASHIER: 2}
    people = session.scalars(select(StaffUser).where(StaffUser.brand_id == brand_id).order_by(StaffUser.id))
    return sorted(people, key=lambda person: role_order[person.role])


def _brand_staff(session: Session, brand_id: int, staff_id: int) -> StaffUser:
    staff = session.scalar(select(StaffUser).where(StaffUser.id == staff_id, StaffUser.brand_id == brand_id))
    if staff is None:
        raise NotFound(f"no staff user {staff_id}", code="staff_not_found")
    return staff


def _keep_an_owner(session: Session, brand_id: int, leaving: StaffUser) -> None:
    # Locking the owners' rows makes two owners demoting each other at once
    # wait for one another, so the second sees the first's change.
    owners = session.scalars(
        select(StaffUser.id).where(StaffUser.brand_id == brand_id, StaffUser.role == StaffRole.OWNER)
        .with_for_update()
    ).all()
    if set(owners) <= {leaving.id}:
        raise StaffError("a brand needs an owner: make someone else owner first", code="last_owner")


def change_role(session: Session, brand_id: int, staff_id: int, role: StaffRole) -> StaffUser:
    """Gives a person of the brand another role; the last owner keeps theirs."""
    if not isinstance(role, StaffRole):
        raise StaffError("role must be owner, manager or cashier", code="invalid_role")
    staff = _brand_staff(session, brand_id, staff_id)
    if staff.role == StaffRole.OWNER and role != StaffRole.OWNER:
        _keep_an_owner(session, brand_id, staff)
    staff.role = role
    return staff


def remove_staff(session: Session, brand_id: int, staff_id: int, *, acting_id: int) -> None:
    """Takes a person's access to the brand away; their open sessions end at
    their next request, as the session's user is looked up every time."""
    if staff_id == acting_id:
        raise StaffError("you cannot remove yourself", code="cannot_remove_self")
    staff = _brand_staff(session, brand_id, staff_id)
    if staff.role == StaffRole.OWNER:
        _keep_an_owner(session, brand_id, staff)
    session.delete(staff)
    session.flush()


# Password resets

def request_password_reset(session: Session, email: object,
                           *, now: datetime | None = None) -> tuple[StaffUser, str] | None:
    """A reset link for the staff user of ``email``: (person, token), or None
    when there is nobody with that address or they have had
    MAX_RESETS_PER_HOUR links this hour. Callers answer the same either way."""
    staff = staff_by_email(session, email)
    if staff is None:
        return None
    now = now or utcnow()
    recent = session.scalar(
        select(func.count(PasswordReset.id))
        .where(PasswordReset.staff_user_id == staff.id, PasswordReset.created_at > now - timedelta(hours=1))
    ) or 0
    if recent >= MAX_RESETS_PER_HOUR:
        return None
    token, digest = _new_token()
    session.add(PasswordReset(staff_user_id=staff.id, token_hash=digest, created_at=now,
                              expires_at=now + RESET_TTL))
    session.flush()
    return staff, token


def find_password_reset(session: Session, token: object, *, now: datetime | None = None) -> StaffUser:
    """The person whose open reset link ``token`` is; NotFound
    (reset_not_found) when it is unknown, used or expired."""
    digest = _digest(token)
    reset = session.scalar(
        select(PasswordReset).options(joinedload(PasswordReset.staff).joinedload(StaffUser.brand))
        .where(PasswordReset.token_hash == digest, PasswordReset.used_at.is_(None),
               PasswordReset.expires_at > (now or utcnow()))
    ) if digest else None
    if reset is None:
        raise NotFound("this password link is unknown, used or expired", code="reset_not_found")
    return reset.staff


def reset_password(session: Session, token: object, password: str, *, now: datetime | None = None) -> StaffUser:
    """Sets the password of the person whose open reset link ``token`` is and
    ends every reset link they have. A refused password leaves the link open."""
    now = now or utcnow()
    staff = find_password_reset(session, token, now=now)
    check_new_password(password)
    claimed = session.execute(
        update(PasswordReset)
        .where(PasswordReset.token_hash == token_digest(str(token)), PasswordReset.used_at.is_(None))
        .values(used_at=now)
    ).rowcount
    if claimed != 1:
        raise NotFound("this password link was used already", code="reset_not_found")
    session.execute(
        update(PasswordReset)
        .where(PasswordReset.staff_user_id == staff.id, PasswordReset.used_at.is_(None))
        .values(used_at=now)
    )
    staff.password_hash = hash_password(password)
    return staff


