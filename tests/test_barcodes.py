"""Every barcode format a club can choose: the card numbers it encodes (EAN-13
with its check digit), the barcodes array of the Apple pass with the
fallbacks Apple documents for phones before iOS 27, the Google object's
barcode type, and the barcode our own pages draw, read back by a scanner."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest
import zxingcpp
from flask import Flask
from PIL import Image

from tests.support.api import Api, make_brand
from tests.support.apple import make_club, make_member, unzip
from tests.support.discovery import discovery, problems
from wallet.apple.pkpass import render_pkpass
from wallet.db import Database
from wallet.google.objects import loyalty_object
from wallet.loyalty.barcodes import (
    FORMATS,
    ean13_check_digit,
    ean13_valid,
    encodable,
    luhn_valid,
    new_card_number,
)
from wallet.loyalty.cardfacts import card_facts
from wallet.loyalty.clubs import ClubFieldsSchema
from wallet.loyalty.models import Membership
from wallet.web.barcodes import barcode_png

EAN = "4006381333931"  # a printed EAN-13 (GS1's own examples use 5901234123457 too)
CARD = "400012345678"  # a 12-digit card number as clubs have always had

# The club's format -> the formats of pass.json's barcodes array, in order,
# and the legacy single "barcode" key (iOS 8 and older: QR, PDF417, Aztec).
APPLE = {
    "qr": (["PKBarcodeFormatQR"], "PKBarcodeFormatQR"),
    "pdf417": (["PKBarcodeFormatPDF417"], "PKBarcodeFormatPDF417"),
    "aztec": (["PKBarcodeFormatAztec"], "PKBarcodeFormatAztec"),
    # Code 128 is not drawn on watchOS: QR follows it.
    "code128": (["PKBarcodeFormatCode128", "PKBarcodeFormatQR"], "PKBarcodeFormatQR"),
    # iOS 26 and older draw none of these: Code 128, then QR, follow each.
    "code39": (["PKBarcodeFormatCode39", "PKBarcodeFormatCode128", "PKBarcodeFormatQR"], "PKBarcodeFormatQR"),
    "codabar": (["PKBarcodeFormatCodabar", "PKBarcodeFormatCode128", "PKBarcodeFormatQR"], "PKBarcodeFormatQR"),
    "ean13": (["PKBarcodeFormatEAN13", "PKBarcodeFormatCode128", "PKBarcodeFormatQR"], "PKBarcodeFormatQR"),
    "itf": (["PKBarcodeFormatI2of5", "PKBarcodeFormatCode128", "PKBarcodeFormatQR"], "PKBarcodeFormatQR"),
}
GOOGLE = {"qr": "QR_CODE", "pdf417": "PDF_417", "aztec": "AZTEC", "code128": "CODE_128", "code39": "CODE_39",
          "codabar": "CODABAR", "ean13": "EAN_13", "itf": "CODE_128"}
ZXING = {"qr": "QRCode", "pdf417": "PDF417", "aztec": "Aztec", "code128": "Code128", "code39": "Code39",
         "codabar": "Codabar", "ean13": "EAN13", "itf": "ITF"}


def _number(fmt: str) -> str:
    return EAN if fmt == "ean13" else CARD


# -- card numbers ----------------------------------------------------------------------


@pytest.mark.parametrize(("body", "digit"), [("400638133393", "1"), ("590123412345", "7"),
                                             ("000000000000", "0"), ("978014300723", "4")])
def test_ean13_check_digits(body: str, digit: str) -> None:
    assert ean13_check_digit(body) == digit
    assert ean13_valid(body + digit)
    wrong = str((int(digit) + 1) % 10)
    assert not ean13_valid(body + wrong)


@pytest.mark.parametrize("text", ["400638133393", "40063813339312", "400638133393X", "４００６３８１３３３９３１", ""])
def test_only_thirteen_digits_with_their_check_digit_are_ean13(text: str) -> None:
    assert not ean13_valid(text)
    assert not encodable("ean13", text)
    with pytest.raises(ValueError):
        ean13_check_digit(text[:11] or "1")


def test_an_ean13_club_hands_out_valid_ean13_numbers_in_the_in_store_range() -> None:
    numbers = {new_card_number("ean13") for _ in range(300)}
    assert len(numbers) == 300
    assert all(ean13_valid(n) and n.startswith("2") for n in numbers)


@pytest.mark.parametrize("fmt", [f for f in FORMATS if f != "ean13"])
def test_other_formats_keep_twelve_digit_luhn_numbers_they_all_encode(fmt: str) -> None:
    for _ in range(50):
        number = new_card_number(fmt)
        assert len(number) == 12 and luhn_valid(number) and encodable(fmt, number)


def test_what_each_format_encodes() -> None:
    assert encodable("itf", "1234") and not encodable("itf", "123")
    assert encodable("code39", "AB-12 $/+%.") and not encodable("code39", "ab")
    assert encodable("codabar", "12-34$:/.+") and not encodable("codabar", "12A")
    assert encodable("code128", "any text ±") and not encodable("qr", "текст")


def test_the_club_schema_offers_every_format_apple_draws() -> None:
    assert set(FORMATS) == set(APPLE)
    field = ClubFieldsSchema().fields["barcode_format"]
    assert set(field.validate.choices) == set(FORMATS)


# -- the Apple pass ---------------------------------------------------------------------


@pytest.mark.parametrize("fmt", FORMATS)
def test_the_pass_leads_with_the_clubs_format_and_falls_back_as_apple_documents(
        app: Flask, db: Database, fmt: str) -> None:
    number = _number(fmt)
    member_id = make_member(db, make_club(db, barcode_format=fmt), card_number=number)
    with app.app_context(), db.session() as session:
        data = json.loads(unzip(render_pkpass(session.get(Membership, member_id)))["pass.json"])
    formats, legacy = APPLE[fmt]
    assert [b["format"] for b in data["barcodes"]] == formats
    assert all(b == {"format": b["format"], "message": number, "messageEncoding": "iso-8859-1", "altText": number}
               for b in data["barcodes"])
    assert data["barcode"]["format"] == legacy and data["barcode"]["message"] == number


def test_a_number_the_format_cannot_encode_leaves_it_out_rather_than_show_a_broken_code(
        app: Flask, db: Database) -> None:
    member_id = make_member(db, make_club(db, barcode_format="ean13"), card_number=CARD)
    with app.app_context(), db.session() as session:
        data = json.loads(unzip(render_pkpass(session.get(Membership, member_id)))["pass.json"])
    assert [b["format"] for b in data["barcodes"]] == ["PKBarcodeFormatCode128", "PKBarcodeFormatQR"]


# -- the Google object --------------------------------------------------------------------


def test_googles_barcode_types_include_ours() -> None:
    allowed = set(discovery()["schemas"]["Barcode"]["properties"]["type"]["enum"])
    assert set(GOOGLE.values()) | {"ITF_14"} <= allowed


@pytest.mark.parametrize("fmt", FORMATS)
def test_the_google_object_carries_the_same_format_where_google_has_it(app, db, fmt: str) -> None:
    number = _number(fmt)
    member_id = make_member(db, make_club(db, barcode_format=fmt), card_number=number)
    with app.app_context(), db.session() as session:
        membership = session.get(Membership, member_id)
        obj = loyalty_object("3388000000011111111", membership, card_facts(membership),
                              public_base_url="https://wallet.test")
    assert obj["barcode"] == {"type": GOOGLE[fmt], "value": number, "alternateText": number}
    assert problems("LoyaltyObject", obj) == []


def test_googles_itf_is_fourteen_digits_so_such_a_number_gets_itf14(app, db) -> None:
    member_id = make_member(db, make_club(db, barcode_format="itf"), card_number="12345678901231")
    with app.app_context(), db.session() as session:
        membership = session.get(Membership, member_id)
        obj = loyalty_object("3388000000011111111", membership, card_facts(membership),
                              public_base_url="https://wallet.test")
    assert obj["barcode"]["type"] == "ITF_14"


# -- what our pages draw -------------------------------------------------------------------


@pytest.mark.parametrize("fmt", FORMATS)
def test_the_drawn_barcode_scans_back_as_the_card_number(fmt: str) -> None:
    number = _number(fmt)
    image = Image.open(io.BytesIO(barcode_png(number, fmt))).convert("L")
    image = image.resize((image.width * 4, image.height * 4), Image.Resampling.NEAREST)
    found = zxingcpp.read_barcodes(image)
    assert [r.format.name for r in found] == [ZXING[fmt]]
    # Codabar is drawn between the usual A guards, which a scanner passes on.
    assert found[0].text == (f"A{number}A" if fmt == "codabar" else number)


# -- the API --------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", FORMATS)
def test_the_api_takes_every_format_and_an_ean13_club_enrols_ean13_numbers(client, db, fmt: str) -> None:
    api = Api(client, make_brand(db).key)
    club = api.post("/clubs", {"name": "Till Club", "barcode_format": fmt}).get_json()
    assert club["barcode_format"] == fmt
    member = api.post(f"/clubs/{club['id']}/members", {"email": "ann@example.test", "name": "Ann"}).get_json()
    number = member["card_number"]
    assert ean13_valid(number) if fmt == "ean13" else (len(number) == 12 and luhn_valid(number))


def test_a_club_whose_members_hold_other_numbers_cannot_switch_to_ean13_or_odd_itf(client, db) -> None:
    api = Api(client, make_brand(db).key)
    club = api.post("/clubs", {"name": "Old Club"}).get_json()
    api.post(f"/clubs/{club['id']}/members", {"email": "ann@example.test", "name": "Ann"})
    refused = api.patch(f"/clubs/{club['id']}", {"barcode_format": "ean13"})
    assert refused.status_code == 422
    assert refused.get_json()["error"]["code"] == "barcode_format_locked"
    assert api.patch(f"/clubs/{club['id']}", {"barcode_format": "itf"}).status_code == 200

    ean_club = api.post("/clubs", {"name": "EAN Club", "barcode_format": "ean13"}).get_json()
    api.post(f"/clubs/{ean_club['id']}/members", {"email": "bob@example.test", "name": "Bob"})
    refused = api.patch(f"/clubs/{ean_club['id']}", {"barcode_format": "itf"})
    assert refused.get_json()["error"]["code"] == "barcode_format_locked"
    assert api.patch(f"/clubs/{ean_club['id']}", {"barcode_format": "code39"}).status_code == 200


def _openapi_barcode(client) -> dict[str, Any]:
    doc = client.get("/api/v1/openapi.json").get_json()
    for schema in doc["components"]["schemas"].values():
        prop = schema.get("properties", {}).get("barcode_format")
        if prop and "enum" in prop:
            return prop
    raise AssertionError("no barcode_format in the OpenAPI document")


def test_the_openapi_document_lists_every_format(client) -> None:
    assert set(_openapi_barcode(client)["enum"]) == set(FORMATS)
