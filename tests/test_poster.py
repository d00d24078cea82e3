"""The poster card (Apple's poster generic pass, iOS and watchOS 27) beside the
store card, for the same member: pass.json against the keys Apple documents
for each style, every image in its size, the signature checked by openssl;
featured actions; the artwork rendered once per club design; Google's hero
image and links; the API's fields.

What Apple documents, as used here: "Creating a poster generic pass" (the
``posterGeneric`` key, a header field, up to four primary fields, footer
fields, back fields and additional info fields; another style dictionary on
the same pass for older devices), the Pass reference (top-level keys,
``featuredActions`` of identifier, type and url), "Add Featured Actions"
(the action types), and the Human Interface Guidelines' pass images
(artwork.png 358 x 448 pt, primaryLogo.png 30 pt high and 30 to 126 wide).
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from PIL import Image, ImageChops, ImageFilter, ImageStat

from tests.support.api import Api, make_brand
from tests.support.apple import (
    ca_bundle,
    make_club,
    make_member,
    manifest_problems,
    openssl_verify,
    unzip,
)
from tests.support.discovery import problems
from wallet.apple import images
from wallet.apple.pkpass import build_signed_pass, render_pkpass, settings_for
from wallet.apple.pkpass import files as pass_files
from wallet.artwork import cover, to_picture_png, to_png
from wallet.db import Database
from wallet.google.objects import loyalty_class
from wallet.loyalty.clubs import update_club
from wallet.loyalty.models import Club, Membership

# Pass (Wallet Passes reference): the top-level keys this service may write.
DOCUMENTED_TOP_LEVEL = {
    "formatVersion", "serialNumber", "passTypeIdentifier", "teamIdentifier", "organizationName", "description",
    "webServiceURL", "authenticationToken", "sharingProhibited", "expirationDate", "voided", "barcode",
    "barcodes", "locations", "backgroundColor", "foregroundColor", "labelColor", "logoText", "featuredActions",
    "boardingPass", "eventTicket", "coupon", "storeCard", "generic", "posterGeneric",
}
STYLE_KEYS = {"boardingPass", "eventTicket", "coupon", "storeCard", "generic", "posterGeneric"}
# PassFields groups each style lays out.
STORE_CARD_GROUPS = {"headerFields", "primaryFields", "secondaryFields", "auxiliaryFields", "backFields"}
POSTER_GROUPS = {"headerFields", "primaryFields", "footerFields", "backFields", "additionalInfoFields"}
FIELD_KEYS = {"key", "label", "value", "changeMessage", "attributedValue", "dataDetectorTypes", "textAlignment"}
# "Add Featured Actions": the predefined action types.
ACTION_TYPES = {"viewSchedule", "watchTrailer", "listenToMusic", "call", "place", "addToBalance", "order", "shop",
                "membershipBenefits", "bookAppointment", "bookCar", "bookFlight", "bookStay", "viewOffersRewards"}

STORE_IMAGES = {
    "icon.png": (29, 29), "icon@2x.png": (58, 58), "icon@3x.png": (87, 87),
    "logo.png": (160, 50), "logo@2x.png": (320, 100), "logo@3x.png": (480, 150),
    "strip.png": (375, 123), "strip@2x.png": (750, 246), "strip@3x.png": (1125, 369),
}
POSTER_IMAGES = {
    **STORE_IMAGES,
    "artwork.png": (358, 448), "artwork@2x.png": (716, 896), "artwork@3x.png": (1074, 1344),
    "primaryLogo.png": (126, 30), "primaryLogo@2x.png": (252, 60), "primaryLogo@3x.png": (378, 90),
}
ACTIONS = [{"type": "membership_benefits", "url": "https://coffee.test/benefits"},
           {"type": "offers_rewards", "url": "https://coffee.test/offers"}]


def _artwork() -> bytes:
    image = Image.new("RGB", (600, 900), (10, 120, 60))
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def _set_style(db: Database, club_id: int, **fields: Any) -> None:
    with db.transaction() as session:
        update_club(session, session.get(Club, club_id), fields)


def _files(app: Flask, db: Database, member_id: int) -> dict[str, bytes]:
    with app.app_context(), db.session() as session:
        return unzip(render_pkpass(session.get(Membership, member_id)))


@pytest.fixture
def member(db: Database) -> tuple[int, int]:
    club_id = make_club(db, featured_actions=ACTIONS, website="https://coffee.test")
    member_id = make_member(db, club_id, balance=1250, pending=40, tier="Gold", name="Anna Petrova")
    return club_id, member_id


def _check_fields(style: dict[str, Any], groups: set[str]) -> dict[str, dict[str, Any]]:
    assert set(style) <= groups
    keys = [f["key"] for group in style.values() for f in group]
    assert len(keys) == len(set(keys)), "field keys must be unique within the style"
    for group in style.values():
        for field in group:
            assert set(field) <= FIELD_KEYS and "value" in field and field["key"], field
    return {f["key"]: f for group in style.values() for f in group}


def test_a_poster_card_and_a_store_card_for_the_same_member(app: Flask, db: Database, member, dev_certs_dir: Path
                                                           ) -> None:
    club_id, member_id = member
    store_files = _files(app, db, member_id)
    _set_style(db, club_id, card_style="poster", artwork_png=_artwork())
    poster_files = _files(app, db, member_id)

    for files, sizes in ((store_files, STORE_IMAGES), (poster_files, POSTER_IMAGES)):
        assert set(files) == set(sizes) | {"pass.json", "manifest.json", "signature", "en.lproj/pass.strings",
                                           "ru.lproj/pass.strings"}
        for name, size in sizes.items():
            assert Image.open(io.BytesIO(files[name])).size == size, name
        assert manifest_problems(files) == []
        result = openssl_verify(files["signature"], files["manifest.json"], ca_bundle(dev_certs_dir))
        assert result.returncode == 0, result.stderr

    store, poster = json.loads(store_files["pass.json"]), json.loads(poster_files["pass.json"])
    for data in (store, poster):
        assert set(data) <= DOCUMENTED_TOP_LEVEL
        assert data["formatVersion"] == 1
    assert set(store) & STYLE_KEYS == {"storeCard"}
    # The poster style, and the store card beside it for phones before iOS 27.
    assert set(poster) & STYLE_KEYS == {"posterGeneric", "storeCard"}
    assert poster["storeCard"] == store["storeCard"]
    assert {k: v for k, v in poster.items() if k != "posterGeneric"} == store

    _check_fields(store["storeCard"], STORE_CARD_GROUPS)
    fields = _check_fields(poster["posterGeneric"], POSTER_GROUPS)
    card = poster["posterGeneric"]
    assert len(card["headerFields"]) <= 1 and len(card["primaryFields"]) <= 4 and len(card["footerFields"]) == 1
    # Balance in the header, the name as the bold title (no label), the tier next.
    assert [f["key"] for f in card["headerFields"]] == ["balance"]
    assert card["primaryFields"][0] == {"key": "member", "value": "Anna Petrova"}
    assert fields["tier"]["value"] == "Gold" and fields["tier"] in card["primaryFields"]
    assert card["footerFields"][0]["value"] == poster["barcodes"][0]["message"]
    # The same keys and change messages as the store card: a change says the same on either.
    store_fields = _check_fields(store["storeCard"], STORE_CARD_GROUPS)
    for key in ("balance", "tier", "news"):
        assert fields[key] == store_fields[key]
    assert {"terms", "contact"} <= set(fields)


def test_featured_actions_are_on_both_styles_in_the_brands_order(app: Flask, db: Database, member) -> None:
    club_id, member_id = member
    for style in ("store_card", "poster"):
        _set_style(db, club_id, card_style=style)
        data = json.loads(_files(app, db, member_id)["pass.json"])
        actions = data["featuredActions"]
        assert actions == [
            {"identifier": "membership_benefits", "type": "membershipBenefits", "url": "https://coffee.test/benefits"},
            {"identifier": "offers_rewards", "type": "viewOffersRewards", "url": "https://coffee.test/offers"},
        ]
        assert {a["type"] for a in actions} <= ACTION_TYPES
    _set_style(db, club_id, featured_actions=[])
    assert "featuredActions" not in json.loads(_files(app, db, member_id)["pass.json"])


def test_a_poster_without_artwork_shows_the_logo_on_the_clubs_colour(app: Flask, db: Database, member) -> None:
    club_id, member_id = member
    _set_style(db, club_id, card_style="poster", background_color="#102030")
    artwork = Image.open(io.BytesIO(_files(app, db, member_id)["artwork@2x.png"])).convert("RGB")
    assert artwork.size == (716, 896)
    assert artwork.getpixel((2, 2)) == (16, 32, 48)


def _photo() -> bytes:
    """A photograph's kind of picture: smooth light and grain, ~1 MB as PNG (the most a club stores)."""
    size = (1074, 1344)
    grain = Image.effect_noise(size, 24).filter(ImageFilter.GaussianBlur(1))
    picture = Image.merge("RGB", (grain, Image.linear_gradient("L").resize(size),
                                  Image.radial_gradient("L").resize(size)))
    out = io.BytesIO()
    picture.save(out, format="PNG", optimize=True)
    return out.getvalue()


def test_a_photo_as_artwork_travels_in_a_palette_and_keeps_its_look(app: Flask, db: Database, member) -> None:
    # Every phone downloads its card again after each change: the artwork's
    # three renditions are most of a poster pass's bytes.
    club_id, member_id = member
    photo = _photo()
    _set_style(db, club_id, card_style="poster", artwork_png=photo)
    files = _files(app, db, member_id)
    source = Image.open(io.BytesIO(photo)).convert("RGBA")
    sent = full = 0
    for scale in images.SCALES:
        name, size = images.rendition_name("artwork", scale), images.rendition_size("artwork", scale)
        artwork = Image.open(io.BytesIO(files[name]))
        assert artwork.mode == "P" and artwork.size == size, name
        expected = cover(source, size)
        sent, full = sent + len(files[name]), full + len(to_png(expected))
        # Error diffusion moves single pixels; what the eye averages stays.
        seen = [image.convert("RGB").filter(ImageFilter.BoxBlur(2)) for image in (artwork, expected)]
        assert max(ImageStat.Stat(ImageChops.difference(*seen)).mean) < 2.5, name
    assert sent < 0.65 * full


def test_a_picture_of_few_colours_keeps_them_exactly() -> None:
    picture = Image.new("RGBA", (300, 100), (10, 120, 60, 255))
    for x in range(100):
        picture.paste((x, 2 * x, 255 - x, 255), (x, 0, x + 1, 100))
    assert Image.open(io.BytesIO(to_picture_png(picture))).convert("RGBA").tobytes() == picture.tobytes()
    see_through = picture.copy()
    see_through.putpixel((0, 0), (0, 0, 0, 0))
    assert Image.open(io.BytesIO(to_picture_png(see_through))).mode == "RGBA"


def test_a_poster_pass_json_is_the_same_built_fast_or_in_full(app: Flask, db: Database, member) -> None:
    from wallet.apple.pkpass import pass_json

    club_id, member_id = member
    _set_style(db, club_id, card_style="poster", terms="Points are valid for one year.")
    with app.app_context(), db.session() as session:
        membership = session.get(Membership, member_id)
        full = pass_json(membership, settings_for())
        fast = json.loads(unzip(render_pkpass(membership))["pass.json"])
    assert fast == full
    assert full["posterGeneric"]["backFields"][-2:] == full["storeCard"]["backFields"][-2:]


def test_the_artwork_is_rendered_once_per_club_design(app: Flask, db: Database, member, monkeypatch) -> None:
    club_id, member_id = member
    _set_style(db, club_id, card_style="poster", artwork_png=_artwork())
    pass_files.clear_cache()
    calls = []
    real = images.render_artwork

    def counting(design: images.Design) -> dict[str, bytes]:
        calls.append(design)
        return real(design)

    monkeypatch.setattr(images, "render_artwork", counting)
    others = [make_member(db, club_id) for _ in range(3)]
    with app.app_context(), db.session() as session:
        settings = settings_for()
        for mid in [member_id, *others, member_id]:
            build_signed_pass(session.get(Membership, mid), settings)
    assert len(calls) == 1 and calls[0].poster
    _set_style(db, club_id, artwork_png=_artwork())
    with app.app_context(), db.session() as session:
        build_signed_pass(session.get(Membership, member_id), settings_for())
    # The same picture again is no change; a new colour is a new design.
    assert len(calls) == 1
    _set_style(db, club_id, background_color="#445566")
    with app.app_context(), db.session() as session:
        build_signed_pass(session.get(Membership, member_id), settings_for())
    assert len(calls) == 2


# -- Google ---------------------------------------------------------------------------


def test_google_shows_the_same_artwork_and_links(app: Flask, db: Database, client, member) -> None:
    club_id, _member_id = member
    _set_style(db, club_id, card_style="poster", artwork_png=_artwork())
    with app.app_context(), db.session() as session:
        club = session.get(Club, club_id)
        cls = loyalty_class("3388000000011111111", club, public_base_url="https://wallet.test")
        version = club.design_version
    assert problems("LoyaltyClass", cls) == []
    hero = cls["heroImage"]["sourceUri"]["uri"]
    assert hero == f"https://wallet.test/google/images/clubs/{club_id}/hero-{version}.png"
    links = cls["linksModuleData"]["uris"]
    assert [(u["uri"], u["description"]) for u in links[:2]] == [
        ("https://coffee.test/benefits", "Membership benefits"), ("https://coffee.test/offers", "Offers and rewards")]
    assert links[0]["localizedDescription"]["translatedValues"] == [
        {"language": "ru-RU", "value": "Привилегии участника"}]
    answer = client.get(f"/google/images/clubs/{club_id}/hero-{version}.png")
    assert answer.status_code == 200 and answer.mimetype == "image/png"
    picture = Image.open(io.BytesIO(answer.data)).convert("RGB")
    assert picture.size == (1032, 336) and picture.getpixel((516, 168)) == (10, 120, 60)
    assert client.get(f"/google/images/clubs/{club_id}/hero-{version - 1}.png").status_code == 404


def test_a_store_card_has_no_hero_image_on_google(app: Flask, db: Database, client, member) -> None:
    club_id, _member_id = member
    with app.app_context(), db.session() as session:
        club = session.get(Club, club_id)
        cls = loyalty_class("3388000000011111111", club, public_base_url="https://wallet.test")
        version = club.design_version
    assert "heroImage" not in cls
    assert client.get(f"/google/images/clubs/{club_id}/hero-{version}.png").status_code == 404


# -- the API --------------------------------------------------------------------------


def test_the_api_sets_the_style_and_featured_actions(client, db) -> None:
    api = Api(client, make_brand(db).key)
    club = api.post("/clubs", {"name": "Poster Club", "card_style": "poster", "featured_actions": ACTIONS}).get_json()
    assert (club["card_style"], club["featured_actions"]) == ("poster", ACTIONS)
    changed = api.patch(f"/clubs/{club['id']}", {"card_style": "store_card", "featured_actions": ACTIONS[:1]})
    assert changed.status_code == 200
    assert (changed.get_json()["card_style"], changed.get_json()["featured_actions"]) == ("store_card", ACTIONS[:1])
    assert changed.get_json()["design_version"] == club["design_version"] + 1
    for bad in ({"card_style": "banner"},
                {"featured_actions": [*ACTIONS, {"type": "shop", "url": "https://coffee.test/shop"}]},
                {"featured_actions": [ACTIONS[0], ACTIONS[0]]},
                {"featured_actions": [{"type": "call", "url": "https://coffee.test"}]},
                {"featured_actions": [{"type": "shop", "url": "javascript:alert(1)"}]},
                {"featured_actions": [{"type": "shop"}]},
                {"artwork_png": "iVBORw0KGgo="}):
        answer = api.patch(f"/clubs/{club['id']}", bad)
        assert answer.status_code == 422, bad
    assert api.get(f"/clubs/{club['id']}").get_json()["featured_actions"] == ACTIONS[:1]


def test_the_openapi_document_describes_the_new_fields(client) -> None:
    schemas = client.get("/api/v1/openapi.json").get_json()["components"]["schemas"]
    club = next(s for s in schemas.values() if "card_style" in s.get("properties", {})
                and "featured_actions" in s.get("properties", {}))
    assert club["properties"]["card_style"]["enum"] == ["store_card", "poster"]
    action = schemas["ClubFeaturedAction"]
    assert set(action["properties"]) == {"type", "url"}
    assert set(action["properties"]["type"]["enum"]) == {
        "membership_benefits", "offers_rewards", "add_to_balance", "order", "shop", "book_appointment"}
    assert all("artwork_png" not in s.get("properties", {}) for s in schemas.values())
