"""Brand sign-up, sign-in and sign-out in the portal."""

from __future__ import annotations

import re
from dataclasses import replace

import pytest
from flask.testing import FlaskClient
from playwright.sync_api import expect
from sqlalchemy import func, select

from wallet.config import get_settings
from wallet.db import Database
from wallet.loyalty.brands import register_brand
from wallet.loyalty.models import Brand, StaffRole, StaffUser


def _owner(db: Database, email: str = "owner@cafe.test", password: str = "correct horse") -> None:
    with db.transaction() as session:
        register_brand(session, name="Cafe Nero", email=email, password=password)


def _error_of(page, label: str) -> str:
    """The error message shown for the field labelled ``label``."""
    field = page.get_by_label(label, exact=True)
    assert field.get_attribute("aria-invalid") == "true"
    ids = (field.get_attribute("aria-describedby") or "").split()
    return " ".join(page.locator(f"#{i}").inner_text() for i in ids if i.endswith("-error"))


def _csrf(client: FlaskClient, path: str) -> str:
    html = client.get(path).get_data(as_text=True)
    return re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', html).group(1)


def test_a_brand_signs_up_and_lands_in_its_portal(new_page, shoot, db: Database) -> None:
    page = new_page("phone")
    page.goto("/")
    page.get_by_role("link", name="Open a club", exact=True).click()
    shoot(page, "portal-signup")
    page.get_by_label("Brand name").fill("Bean & Leaf")
    page.get_by_label("Email").fill("Owner@BeanLeaf.test")
    page.get_by_label("Password").fill("a long password")
    page.get_by_role("button", name="Create account").click()
    assert page.url.endswith("/portal/")
    assert page.get_by_role("heading", level=1).inner_text() == "Bean & Leaf"
    expect(page.get_by_role("link", name="New club").first).to_be_visible()
    shoot(page, "portal-dashboard-empty")
    with db.session() as session:
        owner = session.scalars(select(StaffUser)).one()
        assert (owner.email, owner.role, owner.brand.name) == ("owner@beanleaf.test", StaffRole.OWNER, "Bean & Leaf")
    page.get_by_role("button", name="Sign out").click()
    assert "/portal/login" in page.url
    page.goto("/portal/")
    assert "/portal/login" in page.url  # signed out means signed out


def test_a_refused_sign_up_shows_each_message_next_to_its_field_and_saves_nothing(new_page, shoot, db) -> None:
    _owner(db, email="taken@brand.test")
    page = new_page("laptop")
    page.goto("/portal/signup")
    page.get_by_label("Email").fill("not an email")
    page.get_by_label("Password").fill("short")
    page.get_by_role("button", name="Create account").click()
    assert "required" in _error_of(page, "Brand name")
    assert "at least 8 characters" in _error_of(page, "Password")
    shoot(page, "portal-signup-refused")
    page.get_by_label("Brand name").fill("Second")
    page.get_by_label("Password").fill("a long password")
    page.get_by_role("button", name="Create account").click()
    assert "like name@example.com" in _error_of(page, "Email")
    page.get_by_label("Email").fill("TAKEN@brand.test")
    page.get_by_label("Password").fill("a long password")
    page.get_by_role("button", name="Create account").click()
    assert "already registered" in _error_of(page, "Email")
    with db.session() as session:
        assert session.scalar(select(func.count(Brand.id))) == 1


def test_a_russian_sign_up_form_refuses_in_russian(new_page, shoot) -> None:
    page = new_page("phone", locale="ru-RU")
    page.goto("/portal/signup")
    page.get_by_label("Пароль").fill("short")
    page.get_by_role("button", name="Создать аккаунт").click()
    assert "8" in _error_of(page, "Пароль") and "символ" in _error_of(page, "Пароль")
    shoot(page, "portal-signup-refused-ru")


def test_a_failed_sign_in_never_says_which_half_was_wrong(new_page, shoot, db) -> None:
    _owner(db)
    page = new_page("phone")
    answers = []
    for email, password in (("owner@cafe.test", "wrong horse"), ("nobody@cafe.test", "correct horse")):
        page.goto("/portal/login")
        page.get_by_label("Email").fill(email)
        page.get_by_label("Password").fill(password)
        page.get_by_role("button", name="Sign in").click()
        answers.append(page.get_by_role("alert").inner_text())
    assert answers[0] == answers[1] and "do not match" in answers[0]
    shoot(page, "portal-login-refused")
    page.get_by_label("Email").fill("owner@cafe.test")
    page.get_by_label("Password").fill("correct horse")
    page.get_by_role("button", name="Sign in").click()
    assert page.get_by_role("heading", level=1).inner_text() == "Cafe Nero"


def test_sign_in_returns_to_the_page_asked_for_but_never_to_another_site(client: FlaskClient, db) -> None:
    _owner(db)
    token = _csrf(client, "/portal/login")
    for target, expected in (("/portal/", "/portal/"), ("https://evil.test/", "/portal/")):
        client.post("/portal/logout", data={"csrf_token": token})
        response = client.post("/portal/login", query_string={"next": target},
                               data={"email": "owner@cafe.test", "password": "correct horse", "csrf_token": token})
        assert response.status_code == 302 and response.headers["Location"] == expected


@pytest.mark.parametrize("per", ["address", "email"])
def test_failed_sign_ins_are_rate_limited(app, client: FlaskClient, db, per: str) -> None:
    app.extensions["wallet.settings"] = replace(get_settings(app), login_rate_limit="3 per minute")
    _owner(db)
    token = _csrf(client, "/portal/login")
    statuses = []
    for attempt in range(5):
        email = "owner@cafe.test" if per == "email" else f"user{attempt}@cafe.test"
        response = client.post("/portal/login", data={"email": email, "password": "nope-nope", "csrf_token": token},
                               environ_base={"REMOTE_ADDR": f"10.0.0.{attempt}" if per == "email" else "10.0.0.9"})
        statuses.append(response.status_code)
    assert statuses == [422, 422, 422, 429, 429]
    assert response.mimetype == "text/html" and int(response.headers["Retry-After"]) > 0
    assert "Too many attempts" in response.get_data(as_text=True)


def test_portal_pages_need_a_signed_in_brand(client: FlaskClient) -> None:
    response = client.get("/portal/")
    assert response.status_code == 302 and response.headers["Location"].startswith("/portal/login?next=")


def test_a_new_password_signs_out_every_session_opened_with_the_old_one(client: FlaskClient, db) -> None:
    from wallet.loyalty.brands import hash_password

    _owner(db)
    token = _csrf(client, "/portal/login")
    client.post("/portal/login", data={"email": "owner@cafe.test", "password": "correct horse", "csrf_token": token})
    assert client.get("/portal/").status_code == 200
    with db.transaction() as session:
        session.scalars(select(StaffUser)).one().password_hash = hash_password("another horse")
    assert client.get("/portal/").status_code == 302
