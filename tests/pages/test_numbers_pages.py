"""The numbers page in a browser: a club's figures with their charts, in
English and Russian, on a phone and a laptop; a CSV of each chart; and only
the brand's own staff (owners and managers) see them."""

from __future__ import annotations

import csv
import io
from datetime import timedelta
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.support.portal import brand, client_sign_in, person, sign_in
from wallet.db import Database, utcnow
from wallet.loyalty import ledger
from wallet.loyalty.card_events import record_card_changes
from wallet.loyalty.clubs import create_club
from wallet.loyalty.members import enrol
from wallet.loyalty.models import Brand, StaffRole
from wallet.loyalty.nps import answer_survey

PROGRAM = {"points": {"earn_points": 1, "per_amount": 100, "redeem_value": 50},
           "tiers": {"window_days": 365, "review_days": 30, "levels": [
               {"name": "Silver", "min_spend": 0}, {"name": "Gold", "min_spend": 100_000}]}}


@pytest.fixture
def club(db: Database) -> dict[str, Any]:
    """Three members this week: Anna buys twice (200.00, 1,500.00: Gold) and
    promotes, Boris buys once and detracts with a comment, Clara only joins."""
    brand_id = brand(db, "owner@bean.test")
    now = utcnow() - timedelta(hours=1)
    with db.transaction() as session:
        club = create_club(session, session.get(Brand, brand_id), {"name": "Bean Club", "currency": "RUB",
                                                                   "program": PROGRAM})
        anna, _ = enrol(session, club, email="anna@example.test", name="Anna", source="join_page", now=now)
        boris, _ = enrol(session, club, email="boris@example.test", name="Boris", source="api", now=now)
        enrol(session, club, email="clara@example.test", name="Clara", source="import", now=now)
        ledger.purchase(session, anna, amount=20_000, actor="till", now=now)
        ledger.purchase(session, anna, amount=150_000, actor="till", now=now)
        ledger.purchase(session, boris, amount=10_000, actor="till", now=now)
        record_card_changes(session, anna, before=[], after=["apple"], now=now)
        answer_survey(session, anna, score=10, now=now)
        answer_survey(session, boris, score=4, comment="Too slow at lunch", now=now)
        return {"brand_id": brand_id, "club_id": club.id}


def test_the_owner_reads_the_clubs_numbers_and_downloads_a_csv(new_page, shoot, club) -> None:
    for device in ("laptop", "phone"):
        page = new_page(device)
        sign_in(page, "owner@bean.test")
        page.goto(f"/portal/clubs/{club['club_id']}")
        page.get_by_role("link", name="Numbers").click()
        expect(page.get_by_role("heading", name="Numbers of Bean Club")).to_be_visible()
        tiles = page.locator(".stat-tiles")
        expect(tiles.locator(".stat", has_text="Members").first).to_contain_text("3")
        expect(tiles.locator(".stat", has_text="Repeat purchase rate")).to_contain_text("50%")  # Anna of 2
        expect(tiles.locator(".stat", has_text="NPS")).to_contain_text("0")  # 1 promoter, 1 detractor
        # Anna's 1,700 points and Boris's 100 at 0.50 each.
        expect(tiles.locator(".stat", has_text="Points liability")).to_contain_text("900.00")
        expect(page.get_by_role("img", name="Members joined by source")).to_be_visible()
        expect(page.get_by_role("img", name="NPS per month")).to_be_visible()
        expect(page.get_by_role("row", name="Join page 1")).to_be_visible()
        expect(page.get_by_role("row", name="Apple Wallet 1 0 1")).to_be_visible()
        expect(page.get_by_text("Too slow at lunch")).to_be_visible()
        shoot(page, "numbers")
        with page.expect_download() as download:
            page.get_by_role("link", name="CSV: per tier").click()
        rows = list(csv.reader(io.StringIO(open(download.value.path(), encoding="utf-8-sig").read())))
        assert rows == [["tier", "answers", "promoters", "passives", "detractors", "nps"],
                        ["Gold", "1", "1", "0", "0", "100"], ["Silver", "1", "0", "0", "1", "-100"]]


def test_the_numbers_in_russian_and_the_whole_brand(new_page, shoot, club) -> None:
    page = new_page("phone")
    sign_in(page, "owner@bean.test")
    page.goto(f"/language/ru?next=/portal/clubs/{club['club_id']}/numbers")
    expect(page.get_by_role("heading", name="Показатели клуба Bean Club")).to_be_visible()
    expect(page.get_by_role("img", name="Участники по источникам")).to_be_visible()
    shoot(page, "numbers-ru")
    page.goto("/portal/")
    page.get_by_role("navigation", name="Кабинет").get_by_role("link", name="Показатели").click()
    expect(page.get_by_role("heading", name="Показатели всех клубов")).to_be_visible()
    expect(page.locator(".stat-tiles .stat").first).to_contain_text("3")


def test_a_period_the_page_cannot_show_is_said_next_to_the_field(new_page, club) -> None:
    page = new_page("laptop")
    sign_in(page, "owner@bean.test")
    page.goto(f"/portal/clubs/{club['club_id']}/numbers?from=2027-02-01&to=2027-01-01")
    expect(page.get_by_label("First day")).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#period-error")).to_contain_text("at most two years apart")


def test_only_the_brands_owner_and_managers_see_its_numbers(app, db: Database, club) -> None:
    person(db, club["brand_id"], StaffRole.MANAGER, "max@bean.test")
    person(db, club["brand_id"], StaffRole.CASHIER, "kate@bean.test")
    brand(db, "owner@books.test", name="Books")
    pages = [f"/portal/clubs/{club['club_id']}/numbers", f"/portal/clubs/{club['club_id']}/numbers/nps.csv"]
    expected = {"max@bean.test": 200, "kate@bean.test": 403, "owner@books.test": 404}
    for email, status in expected.items():
        client = app.test_client()
        client_sign_in(client, email)
        for path in pages:
            assert client.get(path).status_code == status, (email, path)
    stranger = app.test_client()
    client_sign_in(stranger, "owner@books.test")
    own = stranger.get("/portal/numbers/members.csv").get_data(as_text=True)
    assert "total,0" in own  # the other brand's members are not counted
    assert stranger.get(f"/portal/clubs/{club['club_id']}/numbers/nope.csv").status_code == 404
    owner = app.test_client()
    client_sign_in(owner, "owner@bean.test")
    assert owner.get(f"/portal/clubs/{club['club_id']}/numbers/nope.csv").status_code == 404
    assert "total,3" in owner.get("/portal/numbers/members.csv").get_data(as_text=True)
