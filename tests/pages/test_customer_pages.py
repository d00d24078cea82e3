"""The customer's pages: catalogue, club page, poster and the card page."""

from __future__ import annotations

import io
from datetime import date, timedelta

import pytest
import zxingcpp
from flask.testing import FlaskClient
from PIL import Image
from playwright.sync_api import expect

from wallet.db import Database
from wallet.loyalty.brands import register_brand
from wallet.loyalty.clubs import create_club
from wallet.loyalty.members import enrol
from wallet.loyalty.models import Club, Membership

from tests.support.apple import ca_bundle, manifest_problems, openssl_verify, unzip

BEAN_CLUB = {
    "name": "Bean & Leaf Rewards", "category": "cafe", "currency": "RUB",
    "description": "Coffee and tea with points on every cup.",
    "background_color": "#3B2F2F", "foreground_color": "#FFFFFF", "label_color": "#E8C39E",
    "terms": "Points are valid for one year.", "contact_email": "hello@beanleaf.test",
    "locations": [{"name": "Bean & Leaf Arbat", "latitude": 55.7494, "longitude": 37.5917}],
    "program": {"points": {"earn_points": 5, "per_amount": 10000, "redeem_value": 100, "expiry_days": 365},
                "tiers": {"window_days": 365, "review_days": 30, "levels": [
                    {"name": "Silver", "min_spend": 0}, {"name": "Gold", "min_spend": 3000000}]},
                "bonuses": {"welcome_points": 100}},
}
IPHONE_UA = ("Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 "
             "(KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1")
ANDROID_UA = ("Mozilla/5.0 (Linux; Android 15; Pixel 9) AppleWebKit/537.36 (KHTML, like Gecko) "
              "Chrome/131.0.0.0 Mobile Safari/537.36")
BOOK_CLUB = {"name": "Page Turner Club", "category": "books", "currency": "EUR",
             "description": "Five percent off every book.", "barcode_format": "code128",
             "program": {"discount": {"percent": "5"}}}


def _brand_with_clubs(db: Database, email: str, *clubs: dict) -> list[int]:
    with db.transaction() as session:
        brand, _owner = register_brand(session, name=email.split("@")[0].title(), email=email,
                                       password="correct horse")
        return [create_club(session, brand, dict(data)).id for data in clubs]


def _member(db: Database, club_id: int, **figures: object) -> str:
    """A member enrolled as the API does; returns the card page's token."""
    with db.transaction() as session:
        member, _ = enrol(session, session.get(Club, club_id), email="anna@example.test", name="Anna Petrova")
        for key, value in figures.items():
            setattr(member, key, value)
        return member.download_token


@pytest.fixture
def clubs(db: Database) -> list[int]:
    return _brand_with_clubs(db, "owner@beanleaf.test", BEAN_CLUB, BOOK_CLUB)


def test_the_catalogue_searches_and_filters_by_category(new_page, shoot, clubs) -> None:
    for device in ("phone", "laptop"):
        page = new_page(device)
        page.goto("/clubs")
        expect(page.get_by_role("link", name="Bean & Leaf Rewards")).to_have_count(1)
        shoot(page, "catalogue")
        page.get_by_label("Search clubs").fill("book")
        page.get_by_role("button", name="Search").click()
        expect(page.get_by_text("1 club", exact=True)).to_be_visible()
        expect(page.get_by_role("link", name="Bean & Leaf Rewards")).to_have_count(0)
        page.get_by_label("Search clubs").fill("")
        page.get_by_role("button", name="Search").click()
        page.get_by_role("navigation", name="Categories").get_by_role("link", name="Cafés").click()
        assert "category=cafe" in page.url
        expect(page.get_by_role("link", name="Page Turner Club")).to_have_count(0)
        expect(page.get_by_role("link", name="Bean & Leaf Rewards")).to_have_count(1)


def test_a_search_for_wildcards_finds_only_what_it_says(client: FlaskClient, clubs) -> None:
    html = client.get("/clubs", query_string={"q": "%"}).get_data(as_text=True)
    assert "Bean &amp; Leaf Rewards" not in html and "0 clubs" in html


def test_any_search_text_is_answered_without_an_error(client: FlaskClient, clubs) -> None:
    for q in ("bean\x00", "_" * 500, "' OR 1=1 --"):
        assert client.get("/clubs", query_string={"q": q, "category": "nope", "page": "x"}).status_code == 200
    assert client.get("/clubs?q=%ED%A0%80%00%FF").status_code == 200  # not UTF-8 at all


def test_a_club_page_tells_its_benefits_terms_and_where_to_join(new_page, shoot, clubs) -> None:
    for device, locale in (("phone", "en-US"), ("laptop", "en-US"), ("phone", "ru-RU")):
        page = new_page(device, locale=locale)
        page.goto(f"/clubs/{clubs[0]}")
        benefits = page.locator(".benefits").inner_text().replace("\u00a0", " ")
        shoot(page, f"club-{locale}")
        if locale == "en-US":
            assert "5 points for every RUB 100.00 spent" in benefits
            assert "100 points welcome bonus" in benefits
            expect(page.get_by_text("Points are valid for one year.")).to_be_visible()
            page.get_by_role("link", name="Join the club").click()
            assert page.url.endswith(f"/clubs/{clubs[0]}/join")
        else:
            assert "5 баллов за каждые 100,00" in benefits
            expect(page.get_by_role("link", name="Вступить в клуб")).to_be_visible()


def test_an_unknown_club_is_404_everywhere(client: FlaskClient, clubs) -> None:
    for path in ("/clubs/999999", "/clubs/999999/join", "/clubs/999999/poster.png", "/clubs/999999/poster.pdf",
                 f"/clubs/{2**70}", "/clubs/0/poster.png"):
        assert client.get(path).status_code == 404, path


def test_the_poster_opens_the_join_page_as_png_and_as_an_a4_pdf(app, client: FlaskClient, clubs) -> None:
    png = client.get(f"/clubs/{clubs[0]}/poster.png")
    assert png.status_code == 200 and png.mimetype == "image/png"
    found = zxingcpp.read_barcodes(Image.open(io.BytesIO(png.data)))
    assert [code.text for code in found] == [f"https://wallet.test/clubs/{clubs[0]}/join"]
    pdf = client.get(f"/clubs/{clubs[0]}/poster.pdf")
    assert pdf.status_code == 200 and pdf.mimetype == "application/pdf" and pdf.data.startswith(b"%PDF")
    assert b"/MediaBox [ 0 0 595.2 841.92 ]" in pdf.data  # A4 in points


def _wallet_order(page) -> list[str]:  # type: ignore[no-untyped-def]
    return page.locator(".wallet-button").evaluate_all("els => els.map(e => e.dataset.wallet)")


def _barcode_text(page) -> str:  # type: ignore[no-untyped-def]
    shot = Image.open(io.BytesIO(page.locator(".pass-barcode img").screenshot()))
    return " ".join(code.text for code in zxingcpp.read_barcodes(shot))


def test_the_card_page_shows_the_card_with_the_phones_own_wallet_first(new_page, shoot, db: Database, clubs) -> None:
    soon = date.today() + timedelta(days=10)
    token = _member(db, clubs[0], balance=1234, tier="Gold", expiring_points=40, expiring_on=soon)
    with db.session() as session:
        card_number = session.query(Membership).one().card_number
    iphone = new_page("phone", user_agent=IPHONE_UA)
    iphone.goto(f"/cards/{token}")
    shoot(iphone, "card-iphone")
    assert iphone.locator("[data-field=balance]").inner_text() == "1,234"
    assert "Gold" in iphone.locator(".pass-tier").inner_text()
    assert iphone.locator(".pass-expiring").inner_text().startswith("40 points expire on")
    assert iphone.locator("[data-field=card_number]").inner_text() == card_number
    assert _barcode_text(iphone) == card_number
    assert _wallet_order(iphone) == ["apple", "google"]
    assert iphone.get_by_role("link", name="Add to Google Wallet").get_attribute("href").startswith(
        "https://pay.google.com/gp/v/save/")
    android = new_page("phone", user_agent=ANDROID_UA, locale="ru-RU")
    android.goto(f"/cards/{token}")
    shoot(android, "card-android-ru")
    assert _wallet_order(android) == ["google", "apple"]
    assert android.locator("[data-field=balance]").inner_text().replace("\u00a0", " ") == "1 234"
    assert "баллов сгорят" in android.locator(".pass-expiring").inner_text()
    laptop = new_page("laptop")
    laptop.goto(f"/cards/{token}")
    shoot(laptop, "card")


def test_a_code128_club_shows_a_code128_barcode(new_page, db: Database, clubs) -> None:
    token = _member(db, clubs[1])
    page = new_page("phone")
    page.goto(f"/cards/{token}")
    shot = Image.open(io.BytesIO(page.locator(".pass-barcode img").screenshot()))
    codes = zxingcpp.read_barcodes(shot)
    assert [c.format for c in codes] == [zxingcpp.BarcodeFormat.Code128]


def test_add_to_apple_wallet_downloads_a_pass_that_verifies(new_page, db: Database, clubs, dev_certs_dir) -> None:
    token = _member(db, clubs[0], balance=77)
    page = new_page("phone", user_agent=IPHONE_UA)
    page.goto(f"/cards/{token}")
    with page.expect_download() as download:
        page.get_by_role("link", name="Add to Apple Wallet").click()
    files = unzip(download.value.path().read_bytes())
    assert manifest_problems(files) == []
    assert openssl_verify(files["signature"], files["manifest.json"], ca_bundle(dev_certs_dir)).returncode == 0


@pytest.mark.parametrize("token", ["A" * 32, "short", "x" * 65, "..%2F..%2Fetc"])
def test_unknown_card_tokens_are_404(client: FlaskClient, clubs, token: str) -> None:
    response = client.get(f"/cards/{token}")
    assert response.status_code == 404 and response.mimetype == "text/html"


def test_the_card_page_is_never_cached_or_indexed(client: FlaskClient, db: Database, clubs) -> None:
    response = client.get(f"/cards/{_member(db, clubs[0])}")
    assert response.status_code == 200
    assert "no-store" in response.headers["Cache-Control"]
    assert response.headers["Referrer-Policy"] == "no-referrer"
