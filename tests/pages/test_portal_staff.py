"""The brand's people in the portal: a forgotten password set again by an
emailed link, invitations by link with a role, and what each role may open."""

from __future__ import annotations

import logging
import re

import pytest
from flask.testing import FlaskClient
from sqlalchemy import func, select

from wallet.db import Database
from wallet.jobs.outbox import drain
from wallet.loyalty.brands import register_brand
from wallet.loyalty.models import OutboxEvent, PasswordReset, StaffInvite, StaffRole, StaffUser
from wallet.loyalty.staff import accept_invite, invite_staff

LINK = re.compile(r"https?://\S+/portal/(?:password/reset|invitations)/[A-Za-z0-9_-]+")


def _owner(db: Database, email: str = "owner@bean.test") -> int:
    with db.transaction() as session:
        brand, _owner = register_brand(session, name="Bean", email=email, password="correct horse")
        return brand.id


def _person(db: Database, brand_id: int, role: StaffRole, email: str) -> None:
    with db.transaction() as session:
        _, token = invite_staff(session, brand_id, email=email, role=role)
        accept_invite(session, token, name=email.split("@")[0].title(), password="their password")


def _emails(db: Database) -> list[dict]:
    with db.session() as session:
        return [row.payload for row in session.scalars(
            select(OutboxEvent).where(OutboxEvent.kind == "notification").order_by(OutboxEvent.id))]


def _error_of(page, label: str) -> str:  # type: ignore[no-untyped-def]
    field = page.get_by_label(label, exact=True)
    assert field.get_attribute("aria-invalid") == "true"
    ids = (field.get_attribute("aria-describedby") or "").split()
    return " ".join(page.locator(f"#{i}").inner_text() for i in ids if i.endswith("-error"))


def _sign_in(page, email: str, password: str = "correct horse") -> None:  # type: ignore[no-untyped-def]
    page.goto("/portal/login")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()


def test_a_forgotten_password_is_set_again_by_the_link_written_to_the_log(
    new_page, shoot, db: Database, app, caplog: pytest.LogCaptureFixture
) -> None:
    _owner(db)
    page = new_page("phone")
    page.goto("/portal/login")
    page.get_by_role("link", name="Forgot your password?").click()
    shoot(page, "portal-password-forgot")
    page.get_by_label("Email").fill("Owner@Bean.test")
    page.get_by_role("button", name="Send me a link").click()
    said_for_known = page.get_by_role("status").inner_text()
    shoot(page, "portal-password-sent")
    with caplog.at_level(logging.WARNING, logger="wallet.notifications"):
        drain(app)
    [link] = LINK.findall(caplog.text)  # no SMTP_HOST: development reads it in the log
    page.goto(link)
    shoot(page, "portal-password-reset")
    page.get_by_label("New password").fill("a brand new password")
    page.get_by_role("button", name="Set the new password").click()
    assert page.url.endswith("/portal/")
    assert "new password is set" in page.get_by_role("status").inner_text()
    page.goto(link)
    assert page.get_by_role("heading", level=1).inner_text() == "This link no longer works"
    shoot(page, "portal-link-expired")

    stranger = new_page("laptop")
    stranger.goto("/portal/password/forgot")
    stranger.get_by_label("Email").fill("nobody@bean.test")
    stranger.get_by_role("button", name="Send me a link").click()
    assert stranger.get_by_role("status").inner_text() == said_for_known.replace("Owner@Bean.test",
                                                                                "nobody@bean.test")
    assert len(_emails(db)) == 1  # the owner's only
    _sign_in(stranger, "owner@bean.test", "a brand new password")
    assert stranger.get_by_role("heading", level=1).inner_text() == "Bean"


def test_the_password_forms_refuse_bad_input_next_to_the_field_and_change_nothing(new_page, shoot, db) -> None:
    _owner(db)
    page = new_page("phone")
    page.goto("/portal/password/forgot")
    page.get_by_label("Email").fill("not an email")
    page.get_by_role("button", name="Send me a link").click()
    assert "like name@example.com" in _error_of(page, "Email")
    shoot(page, "portal-password-forgot-refused")
    assert _emails(db) == []
    page.get_by_label("Email").fill("owner@bean.test")
    page.get_by_role("button", name="Send me a link").click()
    [link] = LINK.findall(_emails(db)[0]["body"])
    page.goto(link)
    page.get_by_label("New password").fill("short")
    page.get_by_role("button", name="Set the new password").click()
    assert "at least 8 characters" in _error_of(page, "New password")
    shoot(page, "portal-password-reset-refused")
    with db.session() as session:
        assert session.scalar(select(func.count(PasswordReset.id)).where(PasswordReset.used_at.is_(None))) == 1
    _sign_in(page, "owner@bean.test")  # the old password still works
    assert page.get_by_role("heading", level=1).inner_text() == "Bean"


def test_the_owner_invites_a_cashier_who_chooses_a_password_and_may_open_only_the_till(new_page, shoot, db) -> None:
    _owner(db)
    owner = new_page("laptop")
    _sign_in(owner, "owner@bean.test")
    owner.get_by_role("link", name="Staff").click()
    invite = owner.get_by_role("region", name="Invite someone")
    invite.get_by_label("Email").fill("kim@bean.test")
    invite.get_by_label("Role").select_option(label="Cashier")
    invite.get_by_role("button", name="Send the invitation").click()
    shown = owner.get_by_label("Invitation link").input_value()
    shoot(owner, "portal-staff-invited")
    [email] = _emails(db)
    assert email["to"] == "kim@bean.test" and shown in email["body"]
    assert owner.locator("[data-invite='kim@bean.test']").is_visible()

    kim = new_page("phone")
    kim.goto(shown)
    shoot(kim, "portal-invitation")
    assert kim.get_by_label("Email").input_value() == "kim@bean.test"
    kim.get_by_label("Your name").fill("Kim Lee")
    kim.get_by_label("Password").fill("kim's own password")
    kim.get_by_role("button", name="Join Bean").click()
    assert kim.url.endswith("/portal/")
    assert "Welcome to Bean" in kim.get_by_role("status").inner_text()
    assert kim.get_by_role("link", name="Staff").count() == 0
    response = kim.goto("/portal/staff")
    assert response.status == 403
    shoot(kim, "portal-forbidden")
    kim.goto(shown)
    assert kim.get_by_role("heading", level=1).inner_text() == "This link no longer works"

    owner.reload()
    row = owner.locator("[data-person='kim@bean.test']")
    assert "Kim Lee" in row.inner_text()
    shoot(owner, "portal-staff")


def test_the_owner_changes_a_role_and_takes_access_away(new_page, db) -> None:
    brand_id = _owner(db)
    _person(db, brand_id, StaffRole.CASHIER, "kim@bean.test")
    kim = new_page("phone")
    _sign_in(kim, "kim@bean.test", "their password")
    assert kim.goto("/portal/staff").status == 403

    owner = new_page("laptop")
    _sign_in(owner, "owner@bean.test")
    owner.goto("/portal/staff")
    row = owner.locator("[data-person='kim@bean.test']")
    row.get_by_label("Role").select_option(label="Owner")
    row.get_by_role("button", name="Change").click()
    assert "changed to Owner" in owner.get_by_role("status").inner_text()
    assert kim.goto("/portal/staff").status == 200  # the role counts from the next request

    own_row = owner.locator("[data-person='owner@bean.test']")
    assert own_row.get_by_role("button", name="Remove").count() == 0
    owner.locator("[data-person='kim@bean.test']").get_by_role("button", name="Remove").click()
    assert "access is removed" in owner.get_by_role("status").inner_text()
    kim.goto("/portal/")
    assert "/portal/login" in kim.url
    with db.session() as session:
        assert session.scalars(select(StaffUser.email)).all() == ["owner@bean.test"]


def test_the_invitation_form_refuses_bad_input_and_saves_nothing(new_page, shoot, db) -> None:
    _owner(db)
    _owner(db, email="boss@other.test")
    page = new_page("phone")
    _sign_in(page, "owner@bean.test")
    page.goto("/portal/staff")
    for typed, message in (("", "required"), ("kim@", "like name@example.com"),
                           ("boss@other.test", "already signs in to a brand")):
        page.get_by_label("Email").fill(typed)
        page.get_by_role("button", name="Send the invitation").click()
        assert message in _error_of(page, "Email")
    shoot(page, "portal-staff-refused")
    with db.session() as session:
        assert session.scalar(select(func.count(StaffInvite.id))) == 0
    assert _emails(db) == []


def test_a_refused_invitation_form_keeps_the_link_working(new_page, db) -> None:
    brand_id = _owner(db)
    with db.transaction() as session:
        _, token = invite_staff(session, brand_id, email="kim@bean.test", role=StaffRole.MANAGER)
    page = new_page("phone")
    page.goto(f"/portal/invitations/{token}")
    page.get_by_label("Password").fill("short")
    page.get_by_role("button", name="Join Bean").click()
    assert "required" in _error_of(page, "Your name")
    assert "at least 8 characters" in _error_of(page, "Password")
    page.get_by_label("Your name").fill("Kim")
    page.get_by_label("Password").fill("long enough")
    page.get_by_role("button", name="Join Bean").click()
    assert page.url.endswith("/portal/")


def test_staff_pages_are_the_owners(client: FlaskClient, db) -> None:
    brand_id = _owner(db)
    _person(db, brand_id, StaffRole.MANAGER, "max@bean.test")
    html = client.get("/portal/login").get_data(as_text=True)
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', html).group(1)
    client.post("/portal/login", data={"email": "max@bean.test", "password": "their password", "csrf_token": token})
    assert client.get("/portal/").status_code == 200
    assert client.get("/portal/staff").status_code == 403
    response = client.post("/portal/staff/invitations",
                           data={"email": "x@bean.test", "role": "owner", "csrf_token": token})
    assert response.status_code == 403
    with db.session() as session:
        assert session.scalars(select(StaffInvite.email)).all() == ["max@bean.test"]  # their own, accepted
