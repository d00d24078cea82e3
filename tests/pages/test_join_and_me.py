"""Joining a club on a phone, joining twice, and /me across brands."""

from __future__ import annotations

import re

from flask.testing import FlaskClient
from playwright.sync_api import expect
from sqlalchemy import func, select

from tests.support.apple import ca_bundle, manifest_problems, openssl_verify, unzip
from wallet.db import Database
from wallet.loyalty.brands import register_brand
from wallet.loyalty.clubs import create_club
from wallet.loyalty.models import Membership, OutboxEvent

IPHONE_UA = ("Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 "
             "(KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1")
CLUB = {"name": "Bean Club", "category": "cafe", "currency": "RUB", "terms": "Points last a year.",
        "program": {"points": {"earn_points": 1, "per_amount": 100}, "bonuses": {"welcome_points": 50}}}


def _club(db: Database, email: str = "owner@bean.test", **data: object) -> int:
    with db.transaction() as session:
        brand, _owner = register_brand(session, name="Bean", email=email, password="correct horse")
        return create_club(session, brand, {**CLUB, **data}).id


def _members(db: Database) -> int:
    with db.session() as session:
        return session.scalar(select(func.count(Membership.id))) or 0


def _notifications(db: Database) -> list[dict]:
    with db.session() as session:
        return [row.payload for row in session.scalars(
            select(OutboxEvent).where(OutboxEvent.kind == "notification").order_by(OutboxEvent.id))]


def _error_of(page, label: str) -> str:  # type: ignore[no-untyped-def]
    field = page.get_by_label(label, exact=True)
    ids = (field.get_attribute("aria-describedby") or "").split()
    return " ".join(page.locator(f"#{i}").inner_text() for i in ids if i.endswith("-error"))


def _join(page, name: str = "Anna Petrova", email: str = "", phone: str = "", consent: bool = True) -> None:  # type: ignore[no-untyped-def]
    page.get_by_label("Name").fill(name)
    page.get_by_label("Email").fill(email)
    page.get_by_label("Phone").fill(phone)
    if consent:
        page.get_by_label("I agree to the club's terms").check()
    page.get_by_role("button", name="Join and get my card").click()


def test_a_customer_joins_on_a_phone_sees_the_card_and_adds_a_pass_that_verifies(
    new_page, shoot, db: Database, dev_certs_dir
) -> None:
    club_id = _club(db)
    page = new_page("phone", user_agent=IPHONE_UA)
    page.goto(f"/clubs/{club_id}")
    page.get_by_role("link", name="Join the club").click()
    shoot(page, "join")
    _join(page, email="anna@example.test")
    assert re.search(r"/cards/[A-Za-z0-9_-]{16,}$", page.url)
    shoot(page, "card-after-join")
    assert page.locator("[data-field=balance]").inner_text() == "50"  # the welcome bonus
    assert page.get_by_role("status").inner_text().startswith("Welcome to Bean Club")
    with page.expect_download() as download:
        page.get_by_role("link", name="Add to Apple Wallet").click()
    files = unzip(download.value.path().read_bytes())
    assert manifest_problems(files) == []
    assert openssl_verify(files["signature"], files["manifest.json"], ca_bundle(dev_certs_dir)).returncode == 0
    assert _members(db) == 1


def test_the_join_form_refuses_bad_input_next_to_each_field_and_saves_nothing(new_page, shoot, db) -> None:
    club_id = _club(db)
    page = new_page("phone")
    page.goto(f"/clubs/{club_id}/join")
    _join(page, name="", consent=False)
    assert "required" in _error_of(page, "Name")
    assert "Agree to the terms" in _error_of(page, "I agree to the club's terms")
    assert "email or a phone number" in _error_of(page, "Email")
    shoot(page, "join-refused")
    _join(page, email="not-an-email")
    assert "name@example.com" in _error_of(page, "Email")
    _join(page, phone="12")
    assert "international format" in _error_of(page, "Phone")
    page.get_by_label("Referral code").fill("NOSUCHCODE")
    _join(page, email="anna@example.test")
    assert "not valid" in _error_of(page, "Referral code")
    assert _members(db) == 0 and _notifications(db) == []


def test_a_referral_link_prefills_its_code_and_a_russian_browser_joins_in_russian(new_page, shoot, db) -> None:
    club_id = _club(db)
    page = new_page("phone", locale="ru-RU")
    page.goto(f"/clubs/{club_id}/join?ref=ABCD2345")
    assert page.get_by_label("Код приглашения").input_value() == "ABCD2345"
    shoot(page, "join-ru")
    page.get_by_label("Код приглашения").fill("")
    page.get_by_label("Имя").fill("Анна")
    page.get_by_label("Телефон").fill("+7 916 123-45-67")
    page.get_by_label("Я принимаю условия клуба").check()
    page.get_by_role("button", name="Вступить и получить карту").click()
    expect(page.get_by_role("link", name="Добавить в Apple Wallet")).to_be_visible()
    shoot(page, "card-ru")


def test_joining_again_makes_no_second_card_shows_nothing_of_it_and_sends_its_link(new_page, shoot, db) -> None:
    club_id = _club(db)
    first = new_page("phone")
    first.goto(f"/clubs/{club_id}/join")
    _join(first, email="anna@example.test")
    card_url = first.url
    stranger = new_page("laptop")
    stranger.goto(f"/clubs/{club_id}/join")
    _join(stranger, name="Someone Else", email="ANNA@example.test")
    shoot(stranger, "join-again")
    text = stranger.locator("main").inner_text()
    assert "We have sent the link to that card to ANNA@example.test" in text or "anna@example.test" in text
    assert "/cards/" not in stranger.content() and "Anna Petrova" not in text
    assert _members(db) == 1
    [sent] = _notifications(db)
    assert sent["channel"] == "email" and sent["to"] == "anna@example.test"
    assert card_url.split("/cards/")[1] in sent["body"]


def test_me_signs_in_by_an_emailed_link_and_shows_every_card_across_brands(new_page, shoot, db) -> None:
    bean = _club(db)
    books = _club(db, email="owner@books.test", name="Page Turner", category="books")
    for club_id in (bean, books):
        page = new_page("phone")
        page.goto(f"/clubs/{club_id}/join")
        _join(page, email="anna@example.test")
    page = new_page("phone")
    page.goto("/me")
    shoot(page, "me-sign-in")
    page.get_by_label("Email").fill("anna@example.test")
    page.get_by_role("button", name="Send me a sign-in link").click()
    assert "anna@example.test" in page.get_by_role("status").inner_text()
    link = re.search(r"https?://\S+/me/sign-in/\S+", _notifications(db)[-1]["body"]).group(0)
    page.goto(link)
    page.get_by_role("button", name="Sign in and show my cards").click()
    expect(page.get_by_role("heading", name="Bean Club")).to_be_visible()
    expect(page.get_by_role("heading", name="Page Turner")).to_be_visible()
    shoot(page, "me")
    page.get_by_text("Leave this club").first.click()
    page.get_by_role("button", name=re.compile("^Leave ")).first.click()
    assert "You have left" in page.get_by_role("status").inner_text()
    with db.session() as session:
        assert session.scalar(select(func.count(Membership.id)).where(Membership.status == "ended")) == 1
    page.goto(link)
    page.get_by_role("button", name="Sign in and show my cards").click()
    assert "expired or was already used" in page.get_by_role("alert").inner_text()


def test_nobody_leaves_a_club_for_someone_else(client: FlaskClient, db) -> None:
    club_id = _club(db)
    html = client.get(f"/clubs/{club_id}/join").get_data(as_text=True)
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', html).group(1)
    client.post(f"/clubs/{club_id}/join", data={"csrf_token": token, "name": "Anna", "email": "anna@example.test",
                                                "consent": "y"})
    with db.session() as session:
        member_id = session.scalars(select(Membership.id)).one()
    with client.session_transaction() as cookie:
        cookie["customer_id"] = 424242  # signed in as somebody else
    response = client.post(f"/me/cards/{member_id}/leave", data={"csrf_token": token})
    assert response.status_code == 404
    with db.session() as session:
        assert session.get(Membership, member_id).status == "active"
