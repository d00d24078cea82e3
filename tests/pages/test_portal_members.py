"""A club's members in the portal and its till, in a real browser: the brand
finds a member and adjusts the balance, the cashier books at the till, the
card page shows both; a double submit books once; every form refuses bad
input with a visible message and books nothing; other brands get 404 and a
cashier 403 on the members' pages."""

from __future__ import annotations

import re
from typing import Any

from flask.testing import FlaskClient
from sqlalchemy import func, select

from tests.support.portal import client_sign_in
from wallet.db import Database
from wallet.loyalty.brands import register_brand
from wallet.loyalty.clubs import create_club
from wallet.loyalty.ledger_models import LedgerTransaction
from wallet.loyalty.imports import start_import
from wallet.loyalty.members import enrol
from wallet.loyalty.models import Club, Membership, StaffRole
from wallet.loyalty.staff import accept_invite, invite_staff

PASSWORD = "correct horse"


def _brand(db: Database, email: str, club_name: str, program: dict[str, Any] | None = None) -> tuple[int, int]:
    """A brand with a club that earns 1 point per 1.00 RUB; (brand id, club id)."""
    with db.transaction() as session:
        brand, _owner = register_brand(session, name=club_name.split()[0], email=email, password=PASSWORD)
        data = {"name": club_name, "category": "cafe", "currency": "RUB", "country": "RU",
                "program": program or {"points": {"earn_points": 1, "per_amount": 100}}}
        return brand.id, create_club(session, brand, data).id


def _staff(db: Database, brand_id: int, role: StaffRole, email: str) -> None:
    with db.transaction() as session:
        _, token = invite_staff(session, brand_id, email=email, role=role)
        accept_invite(session, token, name=email.split("@")[0].title(), password=PASSWORD)


def _member(db: Database, club_id: int, name: str, email: str) -> Membership:
    with db.transaction() as session:
        member, _ = enrol(session, session.get(Club, club_id), email=email, name=name)
        session.flush()
        session.expunge(member)
        return member


def _entries(db: Database, member_id: int, kind: str) -> int:
    with db.session() as session:
        return session.scalar(select(func.count(LedgerTransaction.id)).where(
            LedgerTransaction.membership_id == member_id, LedgerTransaction.type == kind)) or 0


def _balance(db: Database, member_id: int) -> int:
    with db.session() as session:
        return session.get(Membership, member_id).balance  # type: ignore[union-attr]


def _sign_in(page, email: str) -> None:  # type: ignore[no-untyped-def]
    page.goto("/portal/login")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(re.compile(r"/portal/$"))


def _error_of(page, label: str) -> str:  # type: ignore[no-untyped-def]
    field = page.get_by_label(label, exact=True)
    assert field.get_attribute("aria-invalid") == "true"
    ids = (field.get_attribute("aria-describedby") or "").split()
    return " ".join(page.locator(f"#{i}").inner_text() for i in ids if i.endswith("-error"))


def test_the_brand_adjusts_a_balance_the_cashier_books_a_purchase_and_the_card_shows_both(
    new_page, shoot, db: Database
) -> None:
    brand_id, club_id = _brand(db, "owner@bean.test", "Bean Club")
    _staff(db, brand_id, StaffRole.CASHIER, "kate@bean.test")
    for n in range(3):
        _member(db, club_id, f"Someone {n}", f"someone{n}@example.com")
    ann = _member(db, club_id, "Ann Lee", "ann@example.com")

    for device in ("laptop", "phone"):
        page = new_page(device)
        _sign_in(page, "owner@bean.test")
        page.get_by_role("link", name="Bean Club").click()
        shoot(page, "portal-club-with-members")
        page.get_by_role("link", name="Members", exact=True).click()
        assert page.get_by_role("status").inner_text() == "4 members"
        shoot(page, "portal-members")
        for query in ("ann", "ANN@example.com", ann.card_number, ann.card_number[:6]):
            page.get_by_label("Find a member").fill(query)
            page.get_by_role("button", name="Search").click()
            assert page.get_by_role("status").inner_text() == "1 member", query
        page.get_by_role("link", name="Ann Lee").click()
        assert page.locator("[data-field=card_number]").inner_text() == ann.card_number
        shoot(page, "portal-member")
    page.get_by_label("Points").fill("50")
    page.get_by_label("Reason").fill("Points from the paper card")
    page.get_by_role("button", name="Book the adjustment").click()
    assert "+50 points" in page.get_by_role("status").inner_text()
    assert page.locator("[data-field=balance]").inner_text() == "50"
    assert page.locator("tr[data-entry=adjust]").count() == 1
    shoot(page, "portal-member-adjusted")

    till = new_page("phone")
    _sign_in(till, "kate@bean.test")
    till.get_by_role("link", name="Till", exact=True).click()
    shoot(till, "portal-till")
    till.get_by_label("Card number").fill(" ".join(re.findall("....", ann.card_number)))
    till.get_by_role("button", name="Find the card").click()
    assert till.locator("[data-field=balance]").inner_text() == "50"
    shoot(till, "portal-till-member")
    till.get_by_label("Amount").fill("12.50")
    till.get_by_role("button", name="Book the purchase").click()
    assert "+12 points" in till.get_by_role("status").inner_text()
    assert till.locator("[data-field=balance]").inner_text() == "62"
    shoot(till, "portal-till-booked")
    till.get_by_label("Points to redeem").fill("2")
    till.get_by_role("button", name="Redeem").click()
    assert till.locator("[data-field=balance]").inner_text() == "60"

    card = new_page("phone")
    card.goto(f"/cards/{ann.download_token}")
    assert card.locator("[data-field=balance]").inner_text() == "60"
    page.reload()
    kinds = [row.get_attribute("data-entry") for row in page.locator("tbody tr").all()]
    assert kinds == ["redeem", "purchase", "adjust"]
    assert _balance(db, ann.id) == 60


def _sent_at_once(page, action: str, *, times: int) -> list[int]:  # type: ignore[no-untyped-def]
    """The page's form posting to ``action`` sent ``times`` times at once, as
    it stands (the same key each time), around the page's own script that
    disables the button: each answer's status, a redirect as 302."""
    return page.evaluate("""async ([action, times]) => {
        const form = document.querySelector(`form[action$='${action}']`);
        const body = new URLSearchParams(new FormData(form));
        const sends = Array.from({length: times}, () => fetch(form.action, {method: "POST", body, redirect: "manual"}));
        return (await Promise.all(sends)).map((answer) => answer.type === "opaqueredirect" ? 302 : answer.status);
    }""", [action, times])


def test_a_double_submit_of_a_booking_form_books_once(new_page, db: Database) -> None:
    _brand_id, club_id = _brand(db, "owner@bean.test", "Bean Club")
    ann = _member(db, club_id, "Ann Lee", "ann@example.com")
    page = new_page("phone")
    _sign_in(page, "owner@bean.test")
    page.goto(f"/portal/clubs/{club_id}/till?card={ann.card_number}")
    page.get_by_label("Amount").fill("100")
    # The same rendered form sent three times at once, as a double tap on a
    # slow network would (the page's own script disables the button; this
    # goes around it).
    assert _sent_at_once(page, "/purchases", times=3) == [302, 302, 302]
    page.get_by_role("button", name="Book the purchase").click()  # and once more, the normal way
    assert _entries(db, ann.id, "purchase") == 1
    assert _balance(db, ann.id) == 100

    page.goto(f"/portal/clubs/{club_id}/members/{ann.id}")
    page.get_by_label("Points").fill("-30")
    page.get_by_label("Reason").fill("Returned goods")
    _sent_at_once(page, "/adjustments", times=2)
    assert _entries(db, ann.id, "adjust") == 1
    assert _balance(db, ann.id) == 70
    # The same key with other values (Back, change, send): refused, nothing booked.
    page.get_by_label("Points").fill("-31")
    page.evaluate("""async () => {
        const form = document.querySelector("form[action$='/adjustments']");
        await fetch(form.action, {method: "POST", body: new URLSearchParams(new FormData(form))});
    }""")
    assert _entries(db, ann.id, "adjust") == 1


def test_a_stamp_club_gives_a_stamp_at_the_till_once_per_tap_and_the_reward_when_full(new_page, shoot,
                                                                                      db: Database) -> None:
    brand_id, club_id = _brand(db, "owner@bean.test", "Bean Club",
                               {"stamps": {"required": 3, "reward": "A free coffee"}})
    _staff(db, brand_id, StaffRole.CASHIER, "kate@bean.test")
    ann = _member(db, club_id, "Ann Lee", "ann@example.com")
    page = new_page("phone")
    _sign_in(page, "kate@bean.test")
    page.goto(f"/portal/clubs/{club_id}/till?card={ann.card_number}")
    shoot(page, "portal-till-stamps")
    # A double tap on a slow network: the same rendered form three times at once.
    assert _sent_at_once(page, "/stamps", times=3) == [302, 302, 302]
    assert _entries(db, ann.id, "stamp") == 1
    page.reload()
    assert page.locator("[data-field=stamps]").inner_text() == "1 / 3"
    page.get_by_role("button", name="Add a stamp").click()
    assert "Stamp added: 2 so far." in page.get_by_role("status").inner_text()
    page.get_by_role("button", name="Add a stamp").click()
    assert "give the reward, A free coffee" in page.get_by_role("status").inner_text()
    assert page.locator("[data-field=stamps]").inner_text() == "0 / 3"
    shoot(page, "portal-till-stamp-reward")
    assert (_entries(db, ann.id, "stamp"), _entries(db, ann.id, "reward")) == (3, 1)


def test_a_club_without_stamps_has_no_stamp_button_and_refuses_a_stamp(app, db: Database) -> None:
    _brand_id, club_id = _brand(db, "owner@bean.test", "Bean Club")
    ann = _member(db, club_id, "Ann Lee", "ann@example.com")
    client = app.test_client()
    token = client_sign_in(client, "owner@bean.test")
    html = client.get(f"/portal/clubs/{club_id}/till?card={ann.card_number}").get_data(as_text=True)
    assert "/stamps" not in html
    once = re.search(r'name="once" type="hidden" value="([^"]+)"', html).group(1)  # type: ignore[union-attr]
    response = client.post(f"/portal/clubs/{club_id}/till/{ann.id}/stamps", data={"csrf_token": token, "once": once})
    assert response.status_code == 422
    assert "This club gives no stamps." in response.get_data(as_text=True)
    assert _entries(db, ann.id, "stamp") == 0


def test_every_booking_form_refuses_bad_input_with_a_message_and_books_nothing(
    new_page, shoot, db: Database
) -> None:
    _brand_id, club_id = _brand(db, "owner@bean.test", "Bean Club")
    ann = _member(db, club_id, "Ann Lee", "ann@example.com")
    page = new_page("phone")
    _sign_in(page, "owner@bean.test")

    page.goto(f"/portal/clubs/{club_id}/members/{ann.id}")
    for points, reason, label, message in (
        ("", "Gift", "Points", "whole number"),
        ("0", "Gift", "Points", "other than 0"),
        ("-5", "Gift", "Points", "does not have that many points"),
        ("5", "", "Reason", "Say why"),
    ):
        page.get_by_label("Points").fill(points)
        page.get_by_label("Reason").fill(reason)
        page.get_by_role("button", name="Book the adjustment").click()
        assert message in _error_of(page, label), (points, reason)
    shoot(page, "portal-member-refused")

    page.goto(f"/portal/clubs/{club_id}/till")
    page.get_by_label("Card number").fill("123456789012")
    page.get_by_role("button", name="Find the card").click()
    assert "No card of this club" in _error_of(page, "Card number")
    shoot(page, "portal-till-unknown-card")
    page.get_by_label("Card number").fill(ann.card_number)
    page.get_by_role("button", name="Find the card").click()
    for amount, message in (("-5", "above zero"), ("0", "above zero"), ("", "amount paid"),
                            ("1.234", "at most 2 digits")):
        page.get_by_label("Amount").fill(amount)
        page.get_by_role("button", name="Book the purchase").click()
        assert message in _error_of(page, "Amount"), amount
    shoot(page, "portal-till-refused")
    page.get_by_label("Points to redeem").fill("1")
    page.get_by_role("button", name="Redeem").click()
    assert "does not have that many points" in _error_of(page, "Points to redeem")

    with db.session() as session:
        assert session.scalar(select(func.count(LedgerTransaction.id))) == 0


def _login(client: FlaskClient, email: str) -> None:
    html = client.get("/portal/login").get_data(as_text=True)
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', html).group(1)  # type: ignore[union-attr]
    assert client.post("/portal/login", data={"email": email, "password": PASSWORD,
                                              "csrf_token": token}).status_code == 302


def test_other_brands_get_404_and_a_cashier_403_on_the_members_pages(app, db: Database) -> None:
    brand_id, club_id = _brand(db, "owner@bean.test", "Bean Club")
    _staff(db, brand_id, StaffRole.CASHIER, "kate@bean.test")
    ann = _member(db, club_id, "Ann Lee", "ann@example.com")
    _other_brand, other_club = _brand(db, "owner@books.test", "Books Club")
    bob = _member(db, other_club, "Bob", "bob@example.com")
    with db.transaction() as session:
        job = start_import(session, session.get(Club, club_id), file_name="a.csv", content=b"email\nx@example.com\n")
        session.flush()
        import_pages = [f"/portal/clubs/{club_id}/imports/{job.id}{tail}" for tail in ("", "/status", "/errors.csv")]

    members_pages = [f"/portal/clubs/{club_id}/members", f"/portal/clubs/{club_id}/members/{ann.id}",
                     f"/portal/clubs/{club_id}/members.csv", f"/portal/clubs/{club_id}/imports", *import_pages]
    till_pages = [f"/portal/clubs/{club_id}/till", f"/portal/clubs/{club_id}/till?card={ann.card_number}"]
    posts = [f"/portal/clubs/{club_id}/members/{ann.id}/adjustments",
             f"/portal/clubs/{club_id}/till/{ann.id}/purchases", f"/portal/clubs/{club_id}/till/{ann.id}/redemptions",
             f"/portal/clubs/{club_id}/till/{ann.id}/stamps", f"/portal/clubs/{club_id}/imports"]

    stranger = app.test_client()
    _login(stranger, "owner@books.test")
    for path in members_pages + till_pages:
        assert stranger.get(path).status_code == 404, path
    token = re.search(r'name="csrf_token" value="([^"]+)"', stranger.get("/portal/").get_data(as_text=True)).group(1)
    for path in posts:
        assert stranger.post(path, data={"csrf_token": token}).status_code == 404, path
    for path in (f"/portal/clubs/{other_club}/members/{ann.id}", f"/portal/clubs/{club_id}/members/{bob.id}",
                 f"/portal/clubs/{club_id}/members/{2**64}", f"/portal/clubs/{club_id}/imports/999999"):
        assert stranger.get(path).status_code == 404, path

    cashier = app.test_client()
    _login(cashier, "kate@bean.test")
    for path in members_pages:
        assert cashier.get(path).status_code == 403, path
    for path in till_pages:
        assert cashier.get(path).status_code == 200, path


def test_what_no_browser_form_sends_is_refused_too_and_books_nothing(app, db: Database) -> None:
    _brand_id, club_id = _brand(db, "owner@bean.test", "Bean Club")
    ann = _member(db, club_id, "Ann Lee", "ann@example.com")
    client = app.test_client()
    _login(client, "owner@bean.test")
    html = client.get(f"/portal/clubs/{club_id}/till?card={ann.card_number}").get_data(as_text=True)
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', html).group(1)  # type: ignore[union-attr]
    once = re.search(r'name="once" type="hidden" value="([^"]+)"', html).group(1)  # type: ignore[union-attr]
    for path, data in (
        (f"/portal/clubs/{club_id}/till/{ann.id}/purchases", {"amount": "NaN"}),
        (f"/portal/clubs/{club_id}/till/{ann.id}/purchases", {"amount": "Infinity"}),
        (f"/portal/clubs/{club_id}/till/{ann.id}/purchases", {"amount": "1e40"}),
        (f"/portal/clubs/{club_id}/till/{ann.id}/purchases", {"amount": "5", "once": "not-a-key"}),
        (f"/portal/clubs/{club_id}/till/{ann.id}/redemptions", {"points": "ten"}),
        (f"/portal/clubs/{club_id}/members/{ann.id}/adjustments", {"points": "ten", "reason": "x"}),
        (f"/portal/clubs/{club_id}/members/{ann.id}/adjustments", {"points": "5", "reason": "a\x00b"}),
        (f"/portal/clubs/{club_id}/members/{ann.id}/adjustments", {"points": str(10**12), "reason": "x"}),
    ):
        response = client.post(path, data={"csrf_token": token, "once": once, **data})
        assert response.status_code == 422, (path, data)
        assert 'class="error"' in response.get_data(as_text=True), (path, data)
    for query in ("\x00", "%", "x" * 5000, "+7 916 000", "@"):
        assert client.get(f"/portal/clubs/{club_id}/members", query_string={"q": query}).status_code == 200
        assert client.get(f"/portal/clubs/{club_id}/till", query_string={"card": query}).status_code == 422
    assert client.get(f"/portal/clubs/{club_id}/members?before=-4").status_code == 404
    with db.session() as session:
        assert session.scalar(select(func.count(LedgerTransaction.id))) == 0
