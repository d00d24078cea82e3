"""Clubs through the API: create, list, read, change; what a change re-renders."""

from __future__ import annotations

from sqlalchemy import func, select

from tests.support.api import Api, error_code, make_brand
from wallet.loyalty.models import Club, OutboxEvent
from wallet.loyalty.outbox import OutboxKind


def test_a_brand_creates_a_club_and_reads_it_back(client, db):
    api = Api(client, make_brand(db).key)
    club = api.club(
        name="Morning Beans", currency="eur", background_color="#112233", barcode_format="pdf417",
        locations=[{"name": "Main St", "latitude": 55.75, "longitude": 37.61, "relevant_text": "Coffee?"}],
        program={"discount": {"percent": 5}},
    )
    assert club["currency"] == "EUR"
    assert club["program"] == {"discount": {"percent": "5"}}
    assert club["locations"][0]["latitude"] == 55.75
    assert club["design_version"] == 1
    assert club["languages"] == ["en", "ru"]
    assert api.get(f"/clubs/{club['id']}").get_json() == club


def test_a_club_chooses_the_languages_of_its_card(client, db):
    api = Api(client, make_brand(db).key)
    club = api.club(name="Kofe", languages=["ru"])
    assert club["languages"] == ["ru"]
    # Kept in the service's order, each once: the first is the card's fallback.
    changed = api.patch(f"/clubs/{club['id']}", {"languages": ["ru", "en", "ru"]}).get_json()
    assert changed["languages"] == ["en", "ru"]
    for languages in ([], ["de"], "ru", None):
        response = api.patch(f"/clubs/{club['id']}", {"languages": languages})
        assert response.status_code == 422, (languages, response.get_json())
        assert "languages" in response.get_json()["error"]["message"]
    assert api.get(f"/clubs/{club['id']}").get_json()["languages"] == ["en", "ru"]


def test_club_rules_are_checked(client, db):
    api = Api(client, make_brand(db).key)
    bad = [
        {"name": "X", "currency": "ABC"},
        {"name": "X", "background_color": "red"},
        {"name": "X", "barcode_format": "ean8"},
        {"name": "X", "locations": [{"latitude": 91, "longitude": 0}]},
        {"name": "X", "locations": [{"latitude": 1, "longitude": 1}] * 11},
        {"name": "X", "program": {"points": {"earn_points": -1}}},
        {"name": "X", "program": {"lottery": {}}},
        {"name": "X", "colour": "#FFFFFF"},
        {"name": ""},
        {"name": "X" * 65},
        {"name": "X", "website": "ftp://example.com"},
        {"name": "X", "languages": []},
        {"name": "X", "languages": ["en", "fr"]},
    ]
    for body in bad:
        response = api.post("/clubs", body)
        assert response.status_code == 422, (body, response.get_json())
        error_code(response)
    assert api.get("/clubs").get_json()["items"] == []


def test_clubs_list_pages_with_an_opaque_cursor(client, db):
    api = Api(client, make_brand(db).key)
    ids = [api.club(name=f"Club {i}")["id"] for i in range(5)]
    first = api.get("/clubs?limit=2").get_json()
    assert [c["id"] for c in first["items"]] == ids[:2]
    second = api.get(f"/clubs?limit=2&cursor={first['next_cursor']}").get_json()
    third = api.get(f"/clubs?limit=2&cursor={second['next_cursor']}").get_json()
    assert [c["id"] for c in second["items"] + third["items"]] == ids[2:]
    assert third["next_cursor"] is None
    assert api.get("/clubs?limit=0").status_code == 400
    assert api.get("/clubs?limit=501").status_code == 400
    assert api.get("/clubs?limit=abc").status_code == 400
    assert error_code(api.get("/clubs?cursor=not-a-cursor")) == "invalid_cursor"


def test_a_design_change_bumps_the_design_version_and_rerenders_every_card(client, db):
    api = Api(client, make_brand(db).key)
    club = api.club()
    for i in range(3):
        api.member(club["id"], email=f"m{i}@example.com")

    def card_changes() -> int:
        with db.session() as s:
            return s.scalar(select(func.count()).where(OutboxEvent.kind == OutboxKind.CARD_CHANGED)) or 0

    before = card_changes()
    changed = api.patch(f"/clubs/{club['id']}", {"background_color": "#000000"}).get_json()
    assert changed["design_version"] == 2 and changed["background_color"] == "#000000"
    assert card_changes() == before + 3
    # Off-card fields re-render nothing; the same value again changes nothing.
    api.patch(f"/clubs/{club['id']}", {"description": "Now with oat milk"})
    api.patch(f"/clubs/{club['id']}", {"background_color": "#000000"})
    assert card_changes() == before + 3
    # A rename shows on the card but is not artwork.
    renamed = api.patch(f"/clubs/{club['id']}", {"name": "Beans & Co"}).get_json()
    assert renamed["design_version"] == 2
    assert card_changes() == before + 6


def test_a_bad_patch_changes_nothing(client, db):
    api = Api(client, make_brand(db).key)
    club = api.club()
    response = api.patch(f"/clubs/{club['id']}", {"name": "Renamed", "label_color": "#12345"})
    assert response.status_code == 422
    with db.session() as s:
        assert s.get(Club, club["id"]).name == "Beans"


def test_currency_is_fixed_once_members_hold_points(client, db):
    api = Api(client, make_brand(db).key)
    club = api.club()
    assert api.patch(f"/clubs/{club['id']}", {"currency": "USD"}).status_code == 200
    api.member(club["id"])
    response = api.patch(f"/clubs/{club['id']}", {"currency": "EUR"})
    assert response.status_code == 422 and error_code(response) == "currency_locked"
