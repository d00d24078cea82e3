"""The whole path in one go, as people walk it in a real browser (issue 13's
"done when"): a brand signs up, opens a club with a logo while watching the
card's preview, and prints the poster; a customer joins on a phone from the
join link the poster opens, sees the card and adds a .pkpass that verifies;
the brand finds the member and adjusts the balance, its cashier (invited by
link) books a purchase at the till, and the card page shows both; a Russian
browser gets the pages in Russian; another brand is refused the club."""

from __future__ import annotations

import io
import re

from PIL import Image
from playwright.sync_api import expect
from sqlalchemy import select

from tests.support.apple import ca_bundle, manifest_problems, openssl_verify, unzip
from tests.support.portal import PASSWORD
from wallet.db import Database
from wallet.loyalty.models import OutboxEvent

IPHONE_UA = ("Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 "
             "(KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1")
INVITATION = re.compile(r"https?://\S+/portal/invitations/[A-Za-z0-9_-]+")
# The preview is drawn by a request per pause in typing; a busy machine answers slowly.
PREVIEW_WAIT = 30_000


def _logo() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (320, 100), (180, 40, 20)).save(out, format="PNG")
    return out.getvalue()


def _sign_up(page, brand: str, email: str) -> None:  # type: ignore[no-untyped-def]
    page.goto("/portal/signup")
    page.get_by_label("Brand name").fill(brand)
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Create account").click()
    page.wait_for_url(re.compile(r"/portal/$"))


def _invitation_link(db: Database, email: str) -> str:
    with db.session() as session:
        bodies = [row.payload.get("body", "") for row in session.scalars(
            select(OutboxEvent).where(OutboxEvent.kind == "notification").order_by(OutboxEvent.id))
            if row.payload.get("to") == email]
    [link] = INVITATION.findall(" ".join(bodies))
    return link


def test_a_brand_opens_a_club_a_customer_joins_the_staff_book_and_the_card_shows_it(
    new_page, shoot, db: Database, dev_certs_dir
) -> None:
    # A brand signs up and opens a club with a logo, watching the preview.
    brand = new_page("laptop")
    _sign_up(brand, "Bean", "owner@bean.test")
    shoot(brand, "path-portal-new-brand")
    brand.get_by_role("link", name="New club").first.click()
    preview = brand.get_by_role("complementary", name="Card preview")
    brand.get_by_label("Club name").fill("Bean Club")
    expect(preview.locator("[data-field=logo_text]")).to_have_text("Bean Club", timeout=PREVIEW_WAIT)
    plain_logo = preview.locator(".wp-logo").get_attribute("src")
    brand.get_by_label("Logo", exact=True).set_input_files(
        {"name": "logo.png", "mimeType": "image/png", "buffer": _logo()})
    expect(preview.locator(".wp-logo")).not_to_have_attribute("src", plain_logo, timeout=PREVIEW_WAIT)
    expect(preview.locator("[data-field=balance] .wp-label")).to_have_text("Points", timeout=PREVIEW_WAIT)
    brand.get_by_label("Terms", exact=True).fill("One point for every 1.00 spent.")
    shoot(brand, "path-club-form")
    brand.get_by_role("button", name="Open the club").click()
    club_id = int(re.search(r"/portal/clubs/(\d+)$", brand.url).group(1))  # type: ignore[union-attr]
    assert "Bean Club is open" in brand.get_by_role("status").inner_text()

    # ... and prints the poster, whose QR code opens the join link.
    join_link = brand.get_by_label("Join link").input_value()
    assert join_link.endswith(f"/clubs/{club_id}/join")
    with brand.expect_download() as poster:
        brand.get_by_role("link", name="Poster (PDF)").click(modifiers=["Alt"])  # Alt-click saves the link
    assert poster.value.path().read_bytes().startswith(b"%PDF")
    shoot(brand, "path-club")

    # A customer joins on a phone, sees the card and adds a pass that verifies.
    phone = new_page("phone", user_agent=IPHONE_UA)
    phone.goto(join_link)
    phone.get_by_label("Name").fill("Anna Petrova")
    phone.get_by_label("Email").fill("anna@example.test")
    phone.get_by_label("I agree to the club's terms").check()
    shoot(phone, "path-join")
    phone.get_by_role("button", name="Join and get my card").click()
    assert re.search(r"/cards/[A-Za-z0-9_-]{16,}$", phone.url)
    card_url = phone.url
    assert phone.locator("[data-field=balance]").inner_text() == "0"
    shoot(phone, "path-card")
    with phone.expect_download() as download:
        phone.get_by_role("link", name="Add to Apple Wallet").click()
    files = unzip(download.value.path().read_bytes())
    assert manifest_problems(files) == []
    assert openssl_verify(files["signature"], files["manifest.json"], ca_bundle(dev_certs_dir)).returncode == 0
    assert {"en.lproj/pass.strings", "ru.lproj/pass.strings", "logo@2x.png"} <= set(files)

    # The brand finds the member and adjusts the balance.
    brand.get_by_role("link", name="Members", exact=True).click()
    brand.get_by_label("Find a member").fill("anna@example.test")
    brand.get_by_role("button", name="Search").click()
    assert brand.get_by_role("status").inner_text() == "1 member"
    brand.get_by_role("link", name="Anna Petrova").click()
    card_number = brand.locator("[data-field=card_number]").inner_text()
    brand.get_by_label("Points").fill("50")
    brand.get_by_label("Reason").fill("Points from the paper card")
    brand.get_by_role("button", name="Book the adjustment").click()
    assert "+50 points" in brand.get_by_role("status").inner_text()
    shoot(brand, "path-member-adjusted")

    # The owner invites a cashier by link; the cashier books a purchase at the till.
    brand.get_by_role("link", name="Bean", exact=True).click()
    brand.get_by_role("link", name="Staff", exact=True).click()
    invite = brand.get_by_role("region", name="Invite someone")
    invite.get_by_label("Email").fill("kim@bean.test")
    invite.get_by_label("Role").select_option(label="Cashier")
    invite.get_by_role("button", name="Send the invitation").click()
    till = new_page("phone")
    till.goto(_invitation_link(db, "kim@bean.test"))
    till.get_by_label("Your name").fill("Kim")
    till.get_by_label("Password").fill("the cashier's password")
    till.get_by_role("button", name="Join Bean").click()
    till.wait_for_url(re.compile(r"/portal/$"))
    shoot(till, "path-cashier-portal")
    assert till.get_by_role("link", name="Members").count() == 0  # a cashier is offered the till only
    till.get_by_role("link", name="Till", exact=True).click()
    till.get_by_label("Card number").fill(card_number)
    till.get_by_role("button", name="Find the card").click()
    assert till.locator("[data-field=balance]").inner_text() == "50"
    till.get_by_label("Amount").fill("12.50")
    till.get_by_role("button", name="Book the purchase").click()
    assert "+12 points" in till.get_by_role("status").inner_text()
    shoot(till, "path-till-booked")

    # The card page shows both.
    phone.goto(card_url)
    assert phone.locator("[data-field=balance]").inner_text() == "62"
    shoot(phone, "path-card-after")

    # A Russian browser gets Russian pages.
    russian = new_page("phone", locale="ru-RU")
    russian.goto(f"/clubs/{club_id}")
    assert russian.locator("html").get_attribute("lang") == "ru"
    expect(russian.get_by_role("link", name="Вступить в клуб")).to_be_visible()
    russian.goto(card_url)
    expect(russian.get_by_role("link", name="Добавить в Apple Wallet")).to_be_visible()
    shoot(russian, "path-card-ru")

    # Another brand is refused the club, whatever the page.
    other = new_page("laptop")
    _sign_up(other, "Books", "owner@books.test")
    for path in (f"/portal/clubs/{club_id}", f"/portal/clubs/{club_id}/members", f"/portal/clubs/{club_id}/till",
                 f"/portal/clubs/{club_id}/settings"):
        answer = other.goto(path)
        assert answer is not None and answer.status == 404, path
        assert other.get_by_role("heading", level=1).inner_text() == "Page not found"
    shoot(other, "path-other-brand-refused")
