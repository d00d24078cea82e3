"""What every page shares: the layout, the language, error pages, CSRF."""

from __future__ import annotations

import re

import pytest
from flask.testing import FlaskClient
from playwright.sync_api import expect
from sqlalchemy import func, select

from wallet.db import Database
from wallet.loyalty.models import Brand


def test_home_lists_clubs_and_shows_brands_the_way_in(new_page, shoot, live_server) -> None:
    for device in ("phone", "laptop"):
        page = new_page(device)
        page.goto("/")
        assert page.get_by_role("heading", level=1).inner_text() == "Every loyalty card in your phone's wallet"
        expect(page.get_by_role("link", name="Open a club", exact=True)).to_be_visible()
        expect(page.get_by_label("Search clubs")).to_be_visible()
        shoot(page, "home")


def test_a_russian_browser_gets_russian_pages_and_can_switch_to_english(new_page, shoot) -> None:
    page = new_page("phone", locale="ru-RU")
    page.goto("/")
    assert page.locator("html").get_attribute("lang") == "ru"
    assert page.get_by_role("heading", level=1).inner_text() == "Все карты лояльности — в кошельке телефона"
    shoot(page, "home-ru")
    page.get_by_role("link", name="English").click()
    assert page.get_by_role("heading", level=1).inner_text() == "Every loyalty card in your phone's wallet"
    page.goto("/clubs")  # the choice is remembered
    assert page.get_by_role("heading", level=1).inner_text() == "Clubs"
    page.get_by_role("link", name="Русский").click()
    assert page.get_by_role("heading", level=1).inner_text() == "Клубы"


def test_keyboard_users_can_skip_to_the_content_and_see_where_they_are(laptop) -> None:
    laptop.goto("/")
    laptop.keyboard.press("Tab")
    skip = laptop.get_by_role("link", name="Skip to content")
    assert skip.evaluate("el => el === document.activeElement")
    outline = skip.evaluate("el => getComputedStyle(el).outlineStyle")
    assert outline != "none"


def test_unknown_pages_are_html_in_the_readers_language_but_the_api_stays_json(client: FlaskClient) -> None:
    page = client.get("/no/such/page", headers={"Accept-Language": "ru"})
    assert page.status_code == 404 and page.mimetype == "text/html"
    assert "Страница не найдена" in page.get_data(as_text=True)
    api = client.get("/api/v1/no/such/thing")
    assert api.status_code == 404 and api.get_json()["error"]["code"] == "not_found"


def test_a_wrong_method_on_a_page_is_an_html_405_with_allow(client: FlaskClient) -> None:
    response = client.put("/portal/login")
    assert response.status_code == 405 and response.mimetype == "text/html"
    assert "POST" in response.headers["Allow"]


def test_a_form_posted_without_its_csrf_token_is_refused_and_saves_nothing(client: FlaskClient, db: Database) -> None:
    response = client.post("/portal/signup", data={"brand_name": "Forged", "email": "forged@brand.test",
                                                   "password": "long enough"})
    assert response.status_code == 400 and response.mimetype == "text/html"
    assert "Reload the page" in response.get_data(as_text=True)
    with db.session() as session:
        assert session.scalar(select(func.count(Brand.id))) == 0


@pytest.mark.parametrize("target", ["https://evil.test/", "//evil.test/x", "/\\evil.test", "javascript:alert(1)"])
def test_the_language_switch_never_leads_to_another_site(client: FlaskClient, target: str) -> None:
    response = client.get("/language/ru", query_string={"next": target})
    assert response.status_code == 302 and response.headers["Location"] == "/"


def test_static_files_are_versioned_by_content(client: FlaskClient) -> None:
    html = client.get("/").get_data(as_text=True)
    href = re.search(r'href="(/assets/app\.css\?v=[0-9a-f]{10})"', html)
    assert href and client.get(href.group(1)).status_code == 200
