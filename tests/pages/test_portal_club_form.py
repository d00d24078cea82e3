"""Opening a club and changing its settings in the portal: the card's live
preview beside the form, pictures checked on upload, the program's kinds as
sections, and every refusal shown next to its field with nothing saved."""

from __future__ import annotations

import base64
import io
import re

from flask.testing import FlaskClient
from PIL import Image
from playwright.sync_api import expect
from sqlalchemy import func, select
from sqlalchemy.orm import undefer_group

from tests.support.portal import brand, client_sign_in, error_of, person, sign_in
from wallet.db import Database
from wallet.loyalty.barcodes import ean13_valid
from wallet.loyalty.clubs import create_club
from wallet.loyalty.members import enrol
from wallet.loyalty.models import Club, StaffRole


# The preview is drawn by a request per pause in typing; a busy machine
# answers slowly.
PREVIEW_WAIT = 30_000


def _png(size: tuple[int, int] = (320, 100), colour: tuple[int, int, int] = (200, 30, 30)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, colour).save(out, format="PNG")
    return out.getvalue()


def _jpeg() -> bytes:
    out = io.BytesIO()
    Image.effect_noise((375, 123), 80).convert("RGB").save(out, format="JPEG")
    return out.getvalue()


def _upload(name: str, data: bytes, mime: str = "image/png") -> dict:
    return {"name": name, "mimeType": mime, "buffer": data}


def _preview(page):  # type: ignore[no-untyped-def]
    return page.get_by_role("complementary", name="Card preview")


def _clubs(db: Database) -> list[Club]:
    with db.session() as session:
        clubs = list(session.scalars(select(Club).options(undefer_group("artwork")).order_by(Club.id)))
        session.expunge_all()
        return clubs


def test_a_brand_signs_up_makes_a_club_with_a_logo_sees_the_preview_and_edits_it(new_page, shoot, db) -> None:
    page = new_page("laptop")
    page.goto("/portal/signup")
    page.get_by_label("Brand name").fill("Bean")
    page.get_by_label("Email").fill("owner@bean.test")
    page.get_by_label("Password").fill("correct horse")
    page.get_by_role("button", name="Create account").click()
    page.get_by_role("link", name="New club").first.click()
    assert page.url.endswith("/portal/clubs/new")
    preview = _preview(page)
    # A new club earns points: the card's primary field says so at once.
    expect(preview.locator("[data-field=balance] .wp-label")).to_have_text("Points", timeout=PREVIEW_WAIT)
    first_logo = preview.locator(".wp-logo").get_attribute("src")

    page.get_by_label("Club name").fill("Bean Club")
    expect(preview.locator("[data-field=logo_text]")).to_have_text("Bean Club", timeout=PREVIEW_WAIT)
    page.get_by_label("Logo", exact=True).set_input_files(_upload("logo.png", _png()))
    expect(preview.locator(".wp-logo")).not_to_have_attribute("src", first_logo, timeout=PREVIEW_WAIT)
    page.get_by_label("Background colour").fill("#0a5c36")
    expect(preview.locator(".wallet-pass")).to_have_attribute(
        "style", "--wp-bg: rgb(10, 92, 54); --wp-fg: rgb(255, 255, 255); --wp-label: rgb(209, 213, 219)",
        timeout=PREVIEW_WAIT)
    page.get_by_label("Category").select_option(label="Cafés")
    page.get_by_label("Country").select_option("RU")
    page.get_by_label("A discount on every purchase").check()
    page.get_by_label("Discount, %", exact=True).fill("5")
    expect(preview.locator("[data-field=discount] .wp-value")).to_have_text("5%", timeout=PREVIEW_WAIT)
    page.get_by_text("Shop locations").click()
    shop = page.get_by_role("group", name="Shop 1", exact=True)
    shop.get_by_label("Shop name").fill("Arbat")
    shop.get_by_label("Latitude").fill("55,7520")
    shop.get_by_label("Longitude").fill("37.5925")
    page.get_by_label("Terms", exact=True).fill("Points are not money.")
    shoot(page, "portal-club-new")
    page.get_by_role("button", name="Open the club").click()

    [club] = _clubs(db)
    assert page.url.endswith(f"/portal/clubs/{club.id}")
    assert "Bean Club is open" in page.get_by_role("status").inner_text()
    assert (club.name, club.category, club.country, club.background_color) == ("Bean Club", "cafe", "RU", "#0A5C36")
    assert club.logo_png.startswith(b"\x89PNG") and Image.open(io.BytesIO(club.logo_png)).size == (320, 100)
    assert club.program["points"]["earn_points"] == 1 and club.program["points"]["per_amount"] == 100
    assert club.program["discount"] == {"percent": "5"}
    assert club.locations == [{"name": "Arbat", "latitude": 55.752, "longitude": 37.5925, "relevant_text": None}]

    page.get_by_role("link", name="Settings and card").click()
    assert page.get_by_label("Club name").input_value() == "Bean Club"
    assert page.get_by_label("For each amount spent").input_value() == "1.00"
    shoot(page, "portal-club-settings")
    page.get_by_label("Stamps: a reward after a number of purchases").check()
    page.get_by_label("Purchases for the reward").fill("6")
    page.get_by_label("Reward", exact=True).fill("A free coffee")
    page.get_by_label("Points earned", exact=True).fill("3")
    expect(_preview(page).locator("[data-field=stamps] .wp-value")).to_have_text("3 / 6", timeout=PREVIEW_WAIT)
    # A card in Russian only: the preview labels it in Russian on an English page.
    page.get_by_role("group", name="Languages of the card").get_by_label("English").uncheck()
    expect(_preview(page).locator("[data-field=balance] .wp-label")).to_have_text("Баллы", timeout=PREVIEW_WAIT)
    page.get_by_role("button", name="Save the settings").click()
    assert page.url.endswith(f"/portal/clubs/{club.id}")
    [club] = _clubs(db)
    assert club.program["stamps"] == {"required": 6, "reward": "A free coffee"}
    assert club.languages == ["ru"]
    assert club.program["points"]["earn_points"] == 3 and club.logo_png  # the logo is kept

    phone = new_page("phone")
    sign_in(phone, "owner@bean.test")
    phone.goto(f"/portal/clubs/{club.id}/settings")
    expect(_preview(phone).locator("[data-field=logo_text]")).to_have_text("Bean Club", timeout=PREVIEW_WAIT)
    shoot(phone, "portal-club-settings")
    phone.goto("/portal/clubs/new")
    shoot(phone, "portal-club-new")


def test_the_new_club_form_refuses_bad_input_next_to_the_field_and_saves_nothing(new_page, shoot, db) -> None:
    brand(db, "owner@bean.test")
    page = new_page("phone")
    sign_in(page, "owner@bean.test")
    page.goto("/portal/clubs/new")
    huge = io.BytesIO()
    Image.new("1", (7000, 7000)).save(huge, format="PNG")
    for label, upload, message in (
        ("Logo", _upload("logo.png", _png()[:60]), "broken or cut short"),
        ("Logo", _upload("notes.png", b"these are words, not pixels"), "not a picture"),
        ("Logo", _upload("huge.png", huge.getvalue()), "too large"),
        ("Strip image", _upload("strip.jpg", _jpeg()[:400], "image/jpeg"), "broken or cut short"),
    ):
        page.get_by_label("Club name").fill("Bean Club")
        page.get_by_label(label, exact=True).set_input_files(upload)
        page.get_by_role("button", name="Open the club").click()
        assert message in error_of(page, label), upload["name"]
    shoot(page, "portal-club-new-refused-picture")

    for label, typed, message in (
        ("Club name", "", "required"),
        ("Club name", "B" * 65, "at most 64 characters"),
        ("Points earned", "-5", "from 0 to"),
        ("For each amount spent", "0.001", "at most 2 digits after the point"),
        ("Warn this many days before points expire", "1.5", "integer"),
    ):
        page.get_by_label("Club name").fill("Bean Club")
        page.get_by_label(label, exact=True).fill(typed)
        page.get_by_role("button", name="Open the club").click()
        assert message in error_of(page, label), (label, typed)
        page.get_by_label(label, exact=True).fill({"Club name": "Bean Club", "Points earned": "1",
                                                  "For each amount spent": "1",
                                                  "Warn this many days before points expire": "14"}[label])
    shoot(page, "portal-club-new-refused")

    page.get_by_label("Levels by spending").check()
    page.get_by_role("group", name="Level 1", exact=True).get_by_label("Name").fill("Silver")
    page.get_by_role("group", name="Level 1", exact=True).get_by_label("From spending of").fill("100")
    page.get_by_role("button", name="Open the club").click()
    level = page.get_by_role("group", name="Level 1", exact=True).get_by_label("From spending of")
    assert level.get_attribute("aria-invalid") == "true"
    assert "starts at 0" in page.locator(f"#{level.get_attribute('id')}-error").inner_text()

    page.get_by_role("group", name="Level 1", exact=True).get_by_label("From spending of").fill("0")
    page.get_by_text("Shop locations").click()
    page.get_by_role("group", name="Shop 1", exact=True).get_by_label("Latitude").fill("100")
    page.get_by_role("group", name="Shop 1", exact=True).get_by_label("Longitude").fill("37")
    page.get_by_role("button", name="Open the club").click()
    latitude = page.get_by_role("group", name="Shop 1", exact=True).get_by_label("Latitude")
    assert "from -90 to 90" in page.locator(f"#{latitude.get_attribute('id')}-error").inner_text()
    assert _clubs(db) == []


def test_the_preview_of_an_ean13_club_shows_an_ean13_card_number(client: FlaskClient, db: Database) -> None:
    brand(db, "owner@bean.test")
    token = client_sign_in(client, "owner@bean.test")
    answer = client.post("/portal/clubs/preview", data={
        "csrf_token": token, "name": "Till Club", "category": "cafe", "currency": "EUR",
        "background_color": "#102030", "foreground_color": "#ffffff", "label_color": "#cccccc",
        "barcode_format": "ean13", "languages": ["en", "ru"]})
    html = answer.get_data(as_text=True)
    assert answer.status_code == 200 and "barcode-ean13" in html
    number = re.search(r'class="wp-alt">(\d+)<', html)
    assert number and ean13_valid(number.group(1))


def test_the_settings_form_refuses_bad_input_and_changes_nothing(new_page, shoot, db) -> None:
    brand_id = brand(db, "owner@bean.test")
    with db.transaction() as session:
        club = create_club(session, brand_id, {"name": "Bean Club", "currency": "RUB", "program": {"points": {}}})
        enrol(session, club, email="ann@example.com", name="Ann")
        club_id = club.id
    before = _clubs(db)[0]
    page = new_page("laptop")
    sign_in(page, "owner@bean.test")
    page.goto(f"/portal/clubs/{club_id}/settings")
    page.get_by_label("Currency").select_option("EUR")
    page.get_by_role("button", name="Save the settings").click()
    assert "currency can no longer change" in error_of(page, "Currency")
    page.get_by_label("Currency").select_option("RUB")
    # Ann's card number is not an EAN-13 number: the barcode cannot switch.
    page.get_by_label("Barcode format").select_option("ean13")
    page.get_by_role("button", name="Save the settings").click()
    assert "cannot carry" in error_of(page, "Barcode format")
    page.get_by_label("Barcode format").select_option("qr")
    page.get_by_label("Contact email").fill("not an address")
    page.get_by_label("Club name").fill("Renamed")
    page.get_by_role("button", name="Save the settings").click()
    assert "name@example.com" in error_of(page, "Contact email")
    page.get_by_label("Contact email").fill("")
    page.get_by_label("Points expire after (days)").fill("3")
    page.get_by_label("Days before new points can be spent").fill("7")
    page.get_by_role("button", name="Save the settings").click()
    assert "expire before they can be spent" in error_of(page, "Points expire after (days)")
    page.get_by_label("Points expire after (days)").fill("")
    languages = page.get_by_role("group", name="Languages of the card")
    for language in ("English", "Русский"):
        languages.get_by_label(language).uncheck()
    page.get_by_role("button", name="Save the settings").click()
    languages = page.get_by_role("group", name="Languages of the card")
    assert "Choose at least one language." in languages.locator(".error").inner_text()
    assert languages.get_by_label("English").is_checked() is False
    shoot(page, "portal-club-settings-refused")
    after = _clubs(db)[0]
    assert (after.name, after.currency, after.program, after.contact_email, after.design_version,
            after.languages) == (before.name, before.currency, before.program, before.contact_email,
                                 before.design_version, ["en", "ru"])


def test_a_russian_browser_gets_the_club_form_in_russian(new_page, shoot, db) -> None:
    brand(db, "owner@bean.test")
    page = new_page("phone", locale="ru-RU")
    page.goto("/portal/login")
    page.get_by_label("Эл. почта").fill("owner@bean.test")
    page.get_by_label("Пароль").fill("correct horse")
    page.get_by_role("button", name="Войти").click()
    page.goto("/portal/clubs/new")
    assert page.get_by_role("heading", level=1).inner_text() == "Новый клуб"
    page.get_by_label("Название клуба").fill("Кофейня")
    expect(_preview_ru(page).locator("[data-field=logo_text]")).to_have_text("Кофейня", timeout=PREVIEW_WAIT)
    expect(_preview_ru(page).locator("[data-field=balance] .wp-label")).to_have_text("Баллы", timeout=PREVIEW_WAIT)
    page.get_by_label("Начисляется баллов", exact=True).fill("-1")
    page.get_by_role("button", name="Открыть клуб").click()
    assert "Введите число от 0 до" in error_of(page, "Начисляется баллов")
    shoot(page, "portal-club-new-ru")


def _preview_ru(page):  # type: ignore[no-untyped-def]
    return page.get_by_role("complementary", name="Предпросмотр карты")


def test_club_forms_of_another_brand_are_404_and_cashiers_are_refused(client: FlaskClient, db: Database) -> None:
    mine = brand(db, "owner@bean.test")
    theirs = brand(db, "owner@books.test", name="Books")
    with db.transaction() as session:
        their_club = create_club(session, theirs, {"name": "Books Club"}).id
    token = client_sign_in(client, "owner@bean.test")
    for path in (f"/portal/clubs/{their_club}/settings", "/portal/clubs/999999/settings",
                 f"/portal/clubs/{2**64}/settings"):
        response = client.get(path)
        assert response.status_code == 404 and response.mimetype == "text/html", path
    for path in (f"/portal/clubs/{their_club}/settings", f"/portal/clubs/{their_club}/preview"):
        response = client.post(path, data={"csrf_token": token, "name": "Mine now"})
        assert response.status_code == 404, path
    assert [c.name for c in _clubs(db) if c.id == their_club] == ["Books Club"]

    person(db, mine, StaffRole.CASHIER, "kim@bean.test")
    cashier = client.application.test_client()
    cashier_token = client_sign_in(cashier, "kim@bean.test")
    assert cashier.get("/portal/clubs/new").status_code == 403
    response = cashier.post("/portal/clubs/new", data={"csrf_token": cashier_token, "name": "Till Club"})
    assert response.status_code == 403
    with db.session() as session:
        assert session.scalar(select(func.count(Club.id))) == 1


def test_the_preview_draws_the_pass_the_form_describes_or_says_what_keeps_it(client: FlaskClient,
                                                                            db: Database) -> None:
    brand(db, "owner@bean.test")
    token = client_sign_in(client, "owner@bean.test")
    form = {"csrf_token": token, "name": "Bean Club", "category": "cafe", "currency": "JPY",
            "background_color": "#102030", "foreground_color": "#ffffff", "label_color": "#cccccc",
            "barcode_format": "pdf417", "points-enabled": "y", "points-earn_points": "2", "points-per_amount": "100",
            "points-rounding": "down", "points-min_purchase": "0", "points-redeem_value": "1",
            "points-pending_days": "0", "points-warning_days": "14", "cashback-enabled": "y",
            "cashback-percent": "2,5", "tiers-window_days": "365", "tiers-review_days": "30",
            "languages": ["en", "ru"]}
    answer = client.post("/portal/clubs/preview", data=form)
    html = answer.get_data(as_text=True)
    assert answer.status_code == 200
    assert 'data-field="logo_text">Bean Club<' in html and "--wp-bg: rgb(16, 32, 48)" in html
    assert 'data-field="balance"' in html and 'data-field="cashback"' in html and "barcode-pdf417" in html
    for typed, reason in ((("points-earn_points", "-1"), "Points earned: Enter a number from 0 to"),
                          (("points-per_amount", "0.5"), "For each amount spent: Enter an amount with at most 0"),
                          (("points-per_amount", "1e999999999"), "For each amount spent: Enter a number")):
        answer = client.post("/portal/clubs/preview", data={**form, typed[0]: typed[1]})
        assert answer.status_code == 422 and reason in answer.get_data(as_text=True), typed
    assert _clubs(db) == []


def _artwork_png() -> bytes:
    """A tall picture with a red top half and a blue bottom half."""
    image = Image.new("RGB", (800, 1000), (200, 30, 30))
    image.paste((30, 30, 200), (0, 500, 800, 1000))
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def test_a_brand_chooses_the_poster_card_with_artwork_and_links_and_the_preview_shows_both_looks(
        new_page, shoot, db) -> None:
    brand_id = brand(db, "owner@bean.test")
    with db.transaction() as session:
        club_id = create_club(session, brand_id, {"name": "Bean Club", "program": {"points": {}}}).id
    page = new_page("laptop")
    sign_in(page, "owner@bean.test")
    page.goto(f"/portal/clubs/{club_id}/settings")
    preview = _preview(page)
    # Both looks from the start, the store card (the club's style) first.
    expect(preview.locator("[data-look]")).to_have_count(2, timeout=PREVIEW_WAIT)
    assert preview.locator("[data-look]").first.get_attribute("data-look") == "store_card"
    expect(preview.locator("[data-poster-field=balance] .wpp-label")).to_have_text("Points")

    page.get_by_label("Card style").select_option("poster")
    page.get_by_label("Poster artwork").set_input_files(_upload("poster.png", _artwork_png()))
    first = page.get_by_role("group", name="Link 1", exact=True)
    first.get_by_label("Link", exact=True).select_option("membership_benefits")
    first.get_by_label("Page it opens").fill("https://bean.test/benefits")
    second = page.get_by_role("group", name="Link 2", exact=True)
    second.get_by_label("Link", exact=True).select_option("shop")
    second.get_by_label("Page it opens").fill("https://bean.test/shop")
    expect(preview.locator("[data-look]").first).to_have_attribute("data-look", "poster", timeout=PREVIEW_WAIT)
    poster = preview.locator("[data-look=poster]")
    expect(poster.locator(".wp-actions li")).to_have_text(["› Membership benefits", "› Shop online"],
                                                          timeout=PREVIEW_WAIT)
    # The member's name is the poster's bold title; the card number its footer.
    expect(poster.locator("[data-poster-field=member].wpp-title")).to_have_text("Anna Smith")
    expect(poster.locator("[data-poster-field=card_number] .wpp-value")).to_have_text("400012345678")
    style = poster.locator(".wallet-poster").get_attribute("style") or ""
    shown = Image.open(io.BytesIO(base64.b64decode(style.split("base64,")[1].split(")")[0]))).convert("RGB")
    assert shown.size == (358, 448)
    assert shown.getpixel((179, 10)) == (200, 30, 30) and shown.getpixel((179, 440)) == (30, 30, 200)
    shoot(page, "portal-club-poster")

    # A link without its page is refused under its field; nothing is saved.
    second.get_by_label("Page it opens").fill("")
    page.get_by_role("button", name="Save the settings").click()
    assert "required" in error_of(page.get_by_role("group", name="Link 2", exact=True), "Page it opens")
    assert _clubs(db)[0].card_style == "store_card"
    page.get_by_role("group", name="Link 2", exact=True).get_by_label("Page it opens").fill("https://bean.test/shop")
    page.get_by_label("Poster artwork").set_input_files(_upload("poster.png", _artwork_png()))
    page.get_by_role("button", name="Save the settings").click()
    assert page.url.endswith(f"/portal/clubs/{club_id}")
    [club] = _clubs(db)
    assert club.card_style == "poster" and club.design_version == 2
    assert club.featured_actions == [{"type": "membership_benefits", "url": "https://bean.test/benefits"},
                                     {"type": "shop", "url": "https://bean.test/shop"}]
    assert Image.open(io.BytesIO(club.artwork_png)).size == (800, 1000)

    phone = new_page("phone")
    sign_in(phone, "owner@bean.test")
    phone.goto(f"/portal/clubs/{club_id}/settings")
    expect(_preview(phone).locator("[data-look]").first).to_have_attribute("data-look", "poster")
    assert phone.get_by_label("Card style").input_value() == "poster"
    shoot(phone, "portal-club-poster")
