"""A brand's staff: invitations by single-use link with a role, the owner
who always remains, and password resets that work once, expire, and never
say whether an address has an account."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from wallet.db import Database, utcnow
from wallet.loyalty.brands import BrandError, authenticate_staff, register_brand
from wallet.loyalty.errors import NotFound, RuleViolation
from wallet.loyalty.models import PasswordReset, StaffInvite, StaffRole, StaffUser
from wallet.loyalty.staff import (
    INVITE_TTL,
    MAX_RESETS_PER_HOUR,
    RESET_TTL,
    StaffError,
    accept_invite,
    change_role,
    find_invite,
    find_password_reset,
    invite_staff,
    open_invites,
    remove_staff,
    request_password_reset,
    reset_password,
    withdraw_invite,
)


def _brand(db: Database, email: str = "owner@bean.test") -> tuple[int, int]:
    with db.transaction() as session:
        brand, owner = register_brand(session, name="Bean", email=email, password="correct horse")
        return brand.id, owner.id


def _invite(db: Database, brand_id: int, email: str = "kim@bean.test", role: StaffRole = StaffRole.CASHIER,
            **kw) -> str:
    with db.transaction() as session:
        return invite_staff(session, brand_id, email=email, role=role, **kw)[1]


def _accept(db: Database, token: str, password: str = "kim's password", **kw) -> StaffUser:
    with db.transaction() as session:
        staff = accept_invite(session, token, name="Kim", password=password, **kw)
        session.flush()
        session.expunge(staff)
        return staff


def test_an_invited_person_joins_with_the_role_and_their_own_password_once(db: Database) -> None:
    brand_id, owner_id = _brand(db)
    token = _invite(db, brand_id, email=" Kim@Bean.test ", invited_by=owner_id)
    kim = _accept(db, token)
    assert (kim.email, kim.role, kim.brand_id, kim.name) == ("kim@bean.test", StaffRole.CASHIER, brand_id, "Kim")
    with db.transaction() as session:
        assert authenticate_staff(session, "kim@bean.test", "kim's password").id == kim.id
    with pytest.raises(NotFound):
        _accept(db, token, password="another password")
    with db.session() as session:
        assert session.scalar(select(func.count(StaffUser.id))) == 2
        assert session.scalars(select(StaffInvite)).one().token_hash != token  # only a digest is kept


def test_a_refused_password_leaves_the_invitation_open(db: Database) -> None:
    brand_id, _ = _brand(db)
    token = _invite(db, brand_id)
    with pytest.raises(BrandError):
        _accept(db, token, password="short")
    with pytest.raises(RuleViolation):
        with db.transaction() as session:
            accept_invite(session, token, name="   ", password="long enough")
    assert _accept(db, token).role == StaffRole.CASHIER


def test_invitations_expire_and_can_be_withdrawn_and_a_new_one_replaces_the_old(db: Database) -> None:
    brand_id, _ = _brand(db)
    long_ago = utcnow() - INVITE_TTL - timedelta(minutes=1)
    expired = _invite(db, brand_id, email="old@bean.test", now=long_ago)
    with pytest.raises(NotFound):
        _accept(db, expired)
    first = _invite(db, brand_id)
    second = _invite(db, brand_id, role=StaffRole.MANAGER)
    with pytest.raises(NotFound):
        _accept(db, first)
    with db.transaction() as session:
        [still_open] = open_invites(session, brand_id)
        assert (still_open.email, still_open.role) == ("kim@bean.test", StaffRole.MANAGER)
        withdraw_invite(session, brand_id, still_open.id)
    with pytest.raises(NotFound):
        _accept(db, second)


def test_one_email_signs_in_to_one_brand(db: Database) -> None:
    brand_id, _ = _brand(db)
    _brand(db, email="boss@other.test")
    with pytest.raises(BrandError) as refused, db.transaction() as session:
        invite_staff(session, brand_id, email="BOSS@other.test", role=StaffRole.MANAGER)
    assert refused.value.code == "email_taken"


def test_another_brand_cannot_withdraw_or_change_this_brands_staff(db: Database) -> None:
    brand_id, owner_id = _brand(db)
    other_id, other_owner = _brand(db, email="boss@other.test")
    _invite(db, brand_id)
    with db.session() as session:
        invite_id = session.scalars(select(StaffInvite.id)).one()
    for action in (lambda s: withdraw_invite(s, other_id, invite_id),
                   lambda s: change_role(s, other_id, owner_id, StaffRole.CASHIER),
                   lambda s: remove_staff(s, other_id, owner_id, acting_id=other_owner)):
        with pytest.raises(NotFound), db.transaction() as session:
            action(session)


def test_with_two_owners_one_may_step_down_and_then_the_other_is_the_last(db: Database) -> None:
    brand_id, owner_id = _brand(db)
    kim = _accept(db, _invite(db, brand_id, role=StaffRole.OWNER))
    with db.transaction() as session:
        change_role(session, brand_id, owner_id, StaffRole.MANAGER)
    with pytest.raises(StaffError), db.transaction() as session:
        change_role(session, brand_id, kim.id, StaffRole.MANAGER)
    with db.transaction() as session:
        remove_staff(session, brand_id, owner_id, acting_id=kim.id)
    with db.session() as session:
        assert [(p.id, p.role) for p in session.scalars(select(StaffUser))] == [(kim.id, StaffRole.OWNER)]


def test_the_last_owner_can_be_neither_demoted_nor_removed(db: Database) -> None:
    brand_id, owner_id = _brand(db)
    manager = _accept(db, _invite(db, brand_id, role=StaffRole.MANAGER))
    with pytest.raises(StaffError) as demoted, db.transaction() as session:
        change_role(session, brand_id, owner_id, StaffRole.CASHIER)
    assert demoted.value.code == "last_owner"
    with pytest.raises(StaffError) as removed, db.transaction() as session:
        remove_staff(session, brand_id, owner_id, acting_id=manager.id)
    assert removed.value.code == "last_owner"
    with pytest.raises(StaffError) as self_removed, db.transaction() as session:
        remove_staff(session, brand_id, owner_id, acting_id=owner_id)
    assert self_removed.value.code == "cannot_remove_self"
    with db.session() as session:
        assert session.get(StaffUser, owner_id).role == StaffRole.OWNER


def test_a_reset_link_sets_the_password_once(db: Database) -> None:
    _brand(db)
    with db.transaction() as session:
        staff, token = request_password_reset(session, "Owner@Bean.test")
        _, other_token = request_password_reset(session, "owner@bean.test")
    with db.transaction() as session:
        assert find_password_reset(session, token).email == "owner@bean.test"
        reset_password(session, token, "a new password")
    with db.transaction() as session:
        assert authenticate_staff(session, "owner@bean.test", "a new password").id == staff.id
    for used in (token, other_token):  # using one link ends every link of that person
        with pytest.raises(NotFound), db.transaction() as session:
            reset_password(session, used, "yet another password")


def test_a_refused_new_password_leaves_the_link_open(db: Database) -> None:
    _brand(db)
    with db.transaction() as session:
        _, token = request_password_reset(session, "owner@bean.test")
    with pytest.raises(BrandError), db.transaction() as session:
        reset_password(session, token, "short")
    with db.transaction() as session:
        reset_password(session, token, "long enough now")


def test_a_reset_link_expires(db: Database) -> None:
    _brand(db)
    with db.transaction() as session:
        _, token = request_password_reset(session, "owner@bean.test", now=utcnow() - RESET_TTL - timedelta(seconds=1))
    with pytest.raises(NotFound), db.transaction() as session:
        reset_password(session, token, "a new password")


def test_an_unknown_address_or_junk_gets_no_link_and_no_error(db: Database) -> None:
    _brand(db)
    with db.transaction() as session:
        for email in ("nobody@bean.test", "not an email", None, "\x00@x", "a" * 5000):
            assert request_password_reset(session, email) is None
        for token in ("", "x" * 43, "é" * 43, None, "a" * 10_000):
            with pytest.raises(NotFound):
                find_password_reset(session, token)
            with pytest.raises(NotFound):
                find_invite(session, token)
    with db.session() as session:
        assert session.scalar(select(func.count(PasswordReset.id))) == 0


def test_at_most_a_few_reset_links_an_hour_for_one_person(db: Database) -> None:
    _brand(db)
    now = utcnow()
    with db.transaction() as session:
        issued = [request_password_reset(session, "owner@bean.test", now=now) for _ in range(MAX_RESETS_PER_HOUR + 2)]
        assert [link is not None for link in issued] == [True] * MAX_RESETS_PER_HOUR + [False, False]
        assert request_password_reset(session, "owner@bean.test", now=now + timedelta(minutes=61)) is not None
