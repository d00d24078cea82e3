"""A member's .pkpass: signed so that openssl verifies it, every file in the
manifest with its SHA-1, pass.json with every key Apple and the brief need."""

from __future__ import annotations

import hashlib
import io
import json
import re
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from asn1crypto import cms
from flask import Flask
from PIL import Image

from tests.support.app import TEST_PASS_TYPE, TEST_TEAM
from tests.support.apple import (
    ca_bundle,
    make_club,
    make_member,
    manifest_problems,
    openssl_verify,
    unzip,
)
from wallet.apple.pkpass import build_pkpass, render_pkpass, settings_for
from wallet.apple.pkpass import files as pass_files
from wallet.apple.pkpass.signature import signer_for
from wallet.db import Database
from wallet.loyalty.clubs import update_club
from wallet.loyalty.locales import LOCALES as BOTH
from wallet.loyalty.models import Club, Membership

IMAGE_SIZES = {
    "icon.png": (29, 29), "icon@2x.png": (58, 58), "icon@3x.png": (87, 87),
    "logo.png": (160, 50), "logo@2x.png": (320, 100), "logo@3x.png": (480, 150),
    "strip.png": (375, 123), "strip@2x.png": (750, 246), "strip@3x.png": (1125, 369),
}


def _render(app: Flask, db: Database, member_id: int) -> bytes:
    with app.app_context(), db.session() as session:
        return render_pkpass(session.get(Membership, member_id))


def _pass_json(app: Flask, db: Database, member_id: int) -> dict[str, Any]:
    return json.loads(unzip(_render(app, db, member_id))["pass.json"])


def _strings(data: bytes) -> dict[str, str]:
    text = data.decode("utf-16")
    return dict(re.findall(r'^"([^"]+)"\s*=\s*"((?:[^"\\]|\\.)*)";', text, flags=re.M))


def _all_fields(store_card: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {f["key"]: f for group in store_card.values() for f in group}


@pytest.fixture
def member(db: Database) -> int:
    club_id = make_club(db, locations=[
        {"name": f"Shop {i}", "latitude": 55.7 + i / 100, "longitude": 37.6,
         **({"relevant_text": "Coffee is ready"} if i == 0 else {})}
        for i in range(12)
    ])
    return make_member(db, club_id, balance=1250, pending=40, tier="Gold", cash_balance=12345,
                       expiring_points=350, expiring_on=date(date.today().year, 12, 1))


# -- signature and manifest ----------------------------------------------------


def test_pass_verifies_with_openssl_and_manifest_is_complete(
    app: Flask, db: Database, member: int, dev_certs_dir: Path
) -> None:
    files = unzip(_render(app, db, member))
    assert set(files) == set(IMAGE_SIZES) | {
        "pass.json", "manifest.json", "signature", "en.lproj/pass.strings", "ru.lproj/pass.strings",
    }
    assert manifest_problems(files) == []
    result = openssl_verify(files["signature"], files["manifest.json"], ca_bundle(dev_certs_dir))
    assert result.returncode == 0, result.stderr


def test_signature_is_detached_sha256_with_signing_time_and_both_certificates(
    app: Flask, db: Database, member: int
) -> None:
    files = unzip(_render(app, db, member))
    info = cms.ContentInfo.load(files["signature"])
    assert info["content_type"].native == "signed_data"
    signed = info["content"]
    assert signed["encap_content_info"]["content"].native is None  # detached
    subjects = {c.chosen.subject.native.get("common_name") for c in signed["certificates"]}
    assert subjects == {f"Pass Type ID: {TEST_PASS_TYPE}",
                        "Apple Worldwide Developer Relations Certification Authority"}
    signer = signed["signer_infos"][0]
    assert signer["digest_algorithm"]["algorithm"].native == "sha256"
    attrs = {a["type"].native: a["values"][0].native for a in signer["signed_attrs"]}
    assert attrs["message_digest"] == hashlib.sha256(files["manifest.json"]).digest()
    assert abs(attrs["signing_time"] - datetime.now(timezone.utc)) < timedelta(minutes=5)


def test_changed_pass_json_fails_the_manifest_check(app: Flask, db: Database, member: int) -> None:
    files = unzip(_render(app, db, member))
    files["pass.json"] = files["pass.json"].replace(b'"value":1250', b'"value":9999')
    assert manifest_problems(files) == ["pass.json has the wrong SHA-1 in the manifest"]


def test_changed_manifest_fails_openssl(
    app: Flask, db: Database, member: int, dev_certs_dir: Path
) -> None:
    files = unzip(_render(app, db, member))
    # Someone edits pass.json and puts its new SHA-1 into the manifest: the
    # manifest no longer matches what was signed.
    forged_json = files["pass.json"].replace(b'"value":1250', b'"value":9999')
    manifest = json.loads(files["manifest.json"])
    manifest["pass.json"] = hashlib.sha1(forged_json).hexdigest()
    forged_manifest = json.dumps(manifest).encode()
    result = openssl_verify(files["signature"], forged_manifest, ca_bundle(dev_certs_dir))
    assert result.returncode != 0
    assert "verification failure" in (result.stderr + result.stdout).lower() or result.stderr


def test_signature_from_another_chain_fails(
    app: Flask, db: Database, member: int, tmp_path: Path
) -> None:
    from wallet.apple.certs import write_dev_chain

    other = write_dev_chain(tmp_path / "other", pass_type_identifier=TEST_PASS_TYPE, team_identifier=TEST_TEAM)
    files = unzip(_render(app, db, member))
    assert openssl_verify(files["signature"], files["manifest.json"], other["ca_bundle"]).returncode != 0


def test_each_pass_is_signed_afresh(app: Flask, db: Database, member: int, dev_certs_dir: Path) -> None:
    with app.app_context(), db.session() as session:
        membership = session.get(Membership, member)
        settings = settings_for()
        first = unzip(build_pkpass(membership, settings, now=datetime(2026, 1, 1, tzinfo=timezone.utc)))
        membership.balance = 7
        second = unzip(build_pkpass(membership, settings, now=datetime(2026, 1, 2, tzinfo=timezone.utc)))
    assert first["signature"] != second["signature"]
    for files in (first, second):
        assert manifest_problems(files) == []
        assert openssl_verify(files["signature"], files["manifest.json"], ca_bundle(dev_certs_dir)).returncode == 0


# -- images ------------------------------------------------------------------


def test_images_have_apples_exact_sizes(app: Flask, db: Database, member: int) -> None:
    files = unzip(_render(app, db, member))
    for name, size in IMAGE_SIZES.items():
        with Image.open(io.BytesIO(files[name])) as image:
            assert (image.format, image.size) == ("PNG", size), name


def test_brand_logo_is_used(app: Flask, db: Database) -> None:
    out = io.BytesIO()
    Image.new("RGBA", (400, 100), (250, 0, 0, 255)).save(out, format="PNG")
    member = make_member(db, make_club(db, logo_png=out.getvalue()))
    files = unzip(_render(app, db, member))
    with Image.open(io.BytesIO(files["logo@2x.png"])) as logo:
        assert logo.convert("RGBA").getpixel((10, 50)) == (250, 0, 0, 255)
        assert logo.size == (320, 100)


def test_design_artwork_is_rendered_once_and_redone_when_design_changes(
    app: Flask, db: Database, member: int
) -> None:
    with db.session() as session:
        club_id = session.get(Membership, member).club_id
    other = make_member(db, club_id)
    with app.app_context(), db.session() as session:
        membership = session.get(Membership, member)
        first = pass_files.static_files_for(membership.club, BOTH)
        assert pass_files.static_files_for(membership.club, BOTH) is first
        assert pass_files.static_files_for(session.get(Membership, other).club, BOTH) is first
    with db.transaction() as session:
        club = session.get(Club, membership.club_id)
        club.background_color = "#FF0000"
        club.design_version += 1
    with app.app_context(), db.session() as session:
        club = session.get(Club, membership.club_id)
        changed = pass_files.static_files_for(club, BOTH)
    assert changed is not first
    assert dict(changed.files)["strip.png"] != dict(first.files)["strip.png"]


def test_artwork_entries_are_stored_uncompressed(app: Flask, db: Database, member: int) -> None:
    import zipfile

    with zipfile.ZipFile(io.BytesIO(_render(app, db, member))) as archive:
        assert {i.compress_type for i in archive.infolist()} == {zipfile.ZIP_STORED}


# -- pass.json ---------------------------------------------------------------


REQUIRED_KEYS = {
    "formatVersion", "organizationName", "description", "serialNumber", "passTypeIdentifier",
    "teamIdentifier", "authenticationToken", "webServiceURL", "foregroundColor",
    "backgroundColor", "labelColor", "logoText", "barcodes", "barcode", "storeCard", "locations",
}


def test_pass_json_has_every_key(app: Flask, db: Database, member: int) -> None:
    data = _pass_json(app, db, member)
    assert REQUIRED_KEYS <= set(data)
    with db.session() as session:
        membership = session.get(Membership, member)
        assert data["serialNumber"] == membership.serial_number
        assert data["authenticationToken"] == membership.auth_token
        assert len(data["authenticationToken"]) >= 16
        card_number = membership.card_number
    assert data["formatVersion"] == 1
    assert data["passTypeIdentifier"] == TEST_PASS_TYPE
    assert data["teamIdentifier"] == TEST_TEAM
    assert data["webServiceURL"] == "https://wallet.test/apple"
    assert data["organizationName"] == "Coffee & Co"
    assert data["logoText"] == "Bean Club"
    for key in ("foregroundColor", "backgroundColor", "labelColor"):
        assert re.fullmatch(r"rgb\(\d{1,3}, \d{1,3}, \d{1,3}\)", data[key])
    assert data["backgroundColor"] == "rgb(31, 41, 55)"
    assert data["barcodes"][0]["message"] == card_number
    assert "voided" not in data and "expirationDate" not in data


def test_fields_show_the_program(app: Flask, db: Database, member: int) -> None:
    card = _pass_json(app, db, member)["storeCard"]
    primary = card["primaryFields"][0]
    assert (primary["key"], primary["value"]) == ("balance", 1250)
    fields = _all_fields(card)
    assert fields["tier"]["value"] == "Gold"
    assert fields["discount"]["value"] == "3%"  # Gold's discount
    assert fields["cashback"]["value"] == "2.5%"
    # English writes the code before the amount (CLDR), the Russian card "₽" after it.
    assert fields["cash"]["value"] == "RUB\u00a0123.45"
    assert fields["pending"]["value"] == 40
    assert fields["expiring"]["value"] == "350 points expire on Dec 1"
    assert len(card["secondaryFields"]) + len(card["auxiliaryFields"]) <= 4
    back = {f["key"]: f for f in card["backFields"]}
    assert back["terms"]["value"] == "Points are valid for one year."
    assert "hello@coffee.test" in back["contact"]["value"]
    assert "news" in back
    # The members' survey: the card page's private address, a link on the back.
    with db.session() as session:
        token = session.get(Membership, member).download_token
    assert back["survey"]["label"] == "How likely are you to recommend us?"
    assert back["survey"]["value"] == f"https://wallet.test/cards/{token}/survey"


def test_changing_fields_carry_a_change_message_with_placeholder(
    app: Flask, db: Database, member: int
) -> None:
    files = unzip(_render(app, db, member))
    card = json.loads(files["pass.json"])["storeCard"]
    fields = _all_fields(card)
    for key in ("balance", "tier", "discount", "cash", "pending", "expiring", "news"):
        assert "%@" in fields[key]["changeMessage"], key
    assert fields["balance"]["changeMessage"] == "Points balance: %@"
    assert fields["balance"]["label"] == "Points"
    for lang in ("en", "ru"):
        strings = _strings(files[f"{lang}.lproj/pass.strings"])
        for field in fields.values():
            assert field["label"] in strings, (lang, field["label"])
            if "changeMessage" in field:
                assert "%@" in strings[field["changeMessage"]], (lang, field["key"])


def test_strings_are_utf16_and_both_languages_have_the_same_keys(
    app: Flask, db: Database, member: int
) -> None:
    files = unzip(_render(app, db, member))
    en, ru = (files[f"{lang}.lproj/pass.strings"] for lang in ("en", "ru"))
    assert en[:2] in (b"\xff\xfe", b"\xfe\xff") and ru[:2] in (b"\xff\xfe", b"\xfe\xff")
    assert set(_strings(en)) == set(_strings(ru))
    assert _strings(ru)["Points"] == "Баллы"
    assert _strings(ru)["Points balance: %@"] == "Баланс баллов: %@"


def test_a_club_written_in_one_language_carries_only_its_strings(app: Flask, db: Database) -> None:
    club = make_club(db, languages=["ru"])
    member = make_member(db, club, locale="en", balance=10, expiring_points=22,
                         expiring_on=date(date.today().year, 3, 5))
    files = unzip(_render(app, db, member))
    assert [name for name in files if name.endswith(".lproj/pass.strings")] == ["ru.lproj/pass.strings"]
    manifest = json.loads(files["manifest.json"])
    assert "ru.lproj/pass.strings" in manifest and "en.lproj/pass.strings" not in manifest
    # The English-speaking member's card is in the card's own language.
    fields = _all_fields(json.loads(files["pass.json"])["storeCard"])
    assert "сгор" in fields["expiring"]["value"]


def test_changing_a_clubs_languages_changes_its_passes_strings(app: Flask, db: Database, member: int) -> None:
    assert {"en.lproj/pass.strings", "ru.lproj/pass.strings"} <= set(unzip(_render(app, db, member)))
    with db.transaction() as session:
        update_club(session, session.get(Membership, member).club, {"languages": ["en"]})
    names = set(unzip(_render(app, db, member)))
    assert "en.lproj/pass.strings" in names and "ru.lproj/pass.strings" not in names


def test_russian_member_sees_russian_values(app: Flask, db: Database) -> None:
    club = make_club(db)
    member = make_member(db, club, locale="ru", balance=10, expiring_points=22, cash_balance=123456,
                         expiring_on=date(date.today().year, 3, 5))
    fields = _all_fields(_pass_json(app, db, member)["storeCard"])
    assert fields["expiring"]["value"] == "22 балла сгорят 5 мар."
    assert fields["cash"]["value"] == "1\u00a0234,56\u00a0₽"


def test_club_message_is_the_news_field(app: Flask, db: Database, member: int) -> None:
    with db.transaction() as session:
        club = session.get(Membership, member).club
        club.message = "Double points this weekend!"
        club.message_at = datetime.now(timezone.utc)
    news = _all_fields(_pass_json(app, db, member)["storeCard"])["news"]
    assert news["value"] == "Double points this weekend!"
    assert news["changeMessage"] == "%@"


@pytest.mark.parametrize(
    ("fmt", "apple", "legacy"),
    [
        ("qr", ["PKBarcodeFormatQR"], "PKBarcodeFormatQR"),
        ("pdf417", ["PKBarcodeFormatPDF417"], "PKBarcodeFormatPDF417"),
        ("aztec", ["PKBarcodeFormatAztec"], "PKBarcodeFormatAztec"),
        # Code 128 is drawn neither by the legacy key nor on watchOS: QR follows.
        ("code128", ["PKBarcodeFormatCode128", "PKBarcodeFormatQR"], "PKBarcodeFormatQR"),
    ],
)
def test_barcode_format_follows_the_club(app: Flask, db: Database, fmt: str, apple: list[str], legacy: str) -> None:
    # Every format, the new ones and their fallbacks: tests/test_barcodes.py.
    member = make_member(db, make_club(db, barcode_format=fmt), card_number="000123456789")
    data = _pass_json(app, db, member)
    assert [b["format"] for b in data["barcodes"]] == apple
    assert data["barcodes"][0]["message"] == "000123456789"
    assert data["barcodes"][0]["messageEncoding"] == "iso-8859-1"
    assert data["barcode"]["format"] == legacy


def test_at_most_ten_locations_with_relevant_text(app: Flask, db: Database, member: int) -> None:
    locations = _pass_json(app, db, member)["locations"]
    assert len(locations) == 10
    assert locations[0]["relevantText"] == "Coffee is ready"
    assert all(loc["relevantText"] for loc in locations)
    assert locations[1] == {"latitude": 55.71, "longitude": 37.6, "relevantText": "Bean Club: Shop 1"}


def test_ended_membership_is_voided_with_expiration_date(app: Flask, db: Database, member: int) -> None:
    ended = datetime(2026, 5, 4, 3, 2, 1, tzinfo=timezone.utc)
    with db.transaction() as session:
        membership = session.get(Membership, member)
        membership.status = "ended"
        membership.ended_at = ended
    data = _pass_json(app, db, member)
    assert data["voided"] is True
    assert data["expirationDate"] == "2026-05-04T03:02:01Z"
    assert "survey" not in {f["key"] for f in data["storeCard"]["backFields"]}


def test_discount_only_club_shows_the_discount_first(app: Flask, db: Database) -> None:
    member = make_member(db, make_club(db, program={"discount": {"percent": "5"}}))
    card = _pass_json(app, db, member)["storeCard"]
    assert card["primaryFields"][0]["key"] == "discount"
    assert card["primaryFields"][0]["value"] == "5%"
    assert "balance" not in _all_fields(card)
    # The front is not left empty: the member's name fills a free slot.
    assert [f["key"] for f in card["secondaryFields"]] == ["member"]
    assert card["secondaryFields"][0]["value"] == "Anna Petrova"


def test_stamps_club_shows_progress(app: Flask, db: Database) -> None:
    member = make_member(db, make_club(db, program={"stamps": {"required": 10, "reward": "Free coffee"}}),
                         stamps=3)
    fields = _all_fields(_pass_json(app, db, member)["storeCard"])
    assert fields["stamps"]["value"] == "3 / 10"
    assert fields["reward"]["value"] == "Free coffee"


def test_text_too_long_for_the_front_is_cut_visibly(app: Flask, db: Database) -> None:
    member = make_member(db, make_club(db), tier="Platinum Plus Diamond Elite Member Level")
    tier = _all_fields(_pass_json(app, db, member)["storeCard"])["tier"]["value"]
    assert len(tier) <= 28 and tier.endswith("…")


def test_signer_is_built_once_per_identity(app: Flask) -> None:
    with app.app_context():
        identity = settings_for().identity
        assert signer_for(identity) is signer_for(identity)


@pytest.mark.parametrize(
    "club_settings",
    [
        {},
        {"terms": "", "contact_email": None, "contact_phone": None, "locations": []},
        {"program": {"stamps": {"required": 5, "reward": "Cake"}}, "website": "https://x.test"},
    ],
    ids=["full", "bare", "stamps"],
)
def test_fast_pass_json_equals_the_plain_one(app: Flask, db: Database, club_settings: dict[str, Any]) -> None:
    from wallet.apple.pkpass import pass_json

    member = make_member(db, make_club(db, **club_settings), status="ended",
                         ended_at=datetime(2026, 1, 1, tzinfo=timezone.utc))
    with app.app_context(), db.session() as session:
        membership = session.get(Membership, member)
        plain = pass_json(membership, settings_for())
    assert _pass_json(app, db, member) == plain


def test_club_edits_show_on_the_next_pass(app: Flask, db: Database, member: int) -> None:
    assert _all_fields(_pass_json(app, db, member)["storeCard"])["terms"]["value"] == (
        "Points are valid for one year."
    )
    with db.transaction() as session:
        club = session.get(Membership, member).club
        club.terms = "New terms."
        club.name = "Bean Club Plus"
    data = _pass_json(app, db, member)
    assert _all_fields(data["storeCard"])["terms"]["value"] == "New terms."
    assert data["logoText"] == "Bean Club Plus"


def test_signing_time_is_the_utc_instant(app: Flask, dev_certs_dir: Path) -> None:
    from datetime import timedelta as td

    moscow = datetime(2026, 3, 4, 5, 6, 7, tzinfo=timezone(td(hours=3)))
    with app.app_context():
        signature = signer_for(settings_for().identity).sign(b"{}", moscow)
    signer = cms.ContentInfo.load(signature)["content"]["signer_infos"][0]
    attrs = {a["type"].native: a["values"][0].native for a in signer["signed_attrs"]}
    assert attrs["signing_time"] == datetime(2026, 3, 4, 2, 6, 7, tzinfo=timezone.utc)
    assert openssl_verify(signature, b"{}", ca_bundle(dev_certs_dir)).returncode == 0


def test_signing_time_is_each_pass_own_second(app: Flask) -> None:
    # The signer keeps the last second's UTCTime: passes of the same second
    # share it, any other instant (a zone's, a naive UTC one) gets its own.
    def signing_time(moment: datetime) -> datetime:
        with app.app_context():
            signature = signer_for(settings_for().identity).sign(b"{}", moment)
        signer = cms.ContentInfo.load(signature)["content"]["signer_infos"][0]
        return {a["type"].native: a["values"][0].native for a in signer["signed_attrs"]}["signing_time"]

    base = datetime(2026, 3, 4, 5, 6, 7, 100, tzinfo=timezone.utc)
    assert signing_time(base) == base.replace(microsecond=0)
    assert signing_time(base.replace(microsecond=999_999)) == base.replace(microsecond=0)
    assert signing_time(base + timedelta(seconds=1)) == base.replace(second=8, microsecond=0)
    assert signing_time(base.astimezone(timezone(timedelta(hours=-5)))) == base.replace(microsecond=0)
    assert signing_time(datetime(2026, 3, 4, 5, 6, 8)) == base.replace(second=8, microsecond=0)
    assert signing_time(datetime(2026, 3, 4, 5, 6, 7)) == base.replace(microsecond=0)
    assert signing_time(base.replace(minute=7)) == base.replace(minute=7, microsecond=0)
    with pytest.raises(ValueError):
        signing_time(datetime(2050, 1, 1, tzinfo=timezone.utc))


def test_every_label_and_message_is_translated() -> None:
    from wallet.apple.passdata import TEXT

    for lang in ("en", "ru"):
        strings = _strings(dict(pass_files.strings_files(BOTH))[f"{lang}.lproj/pass.strings"])
        missing = {text for text in TEXT.values() if text not in strings}
        assert not missing, (lang, missing)
        for text in TEXT.values():
            assert ("%@" in text) == ("%@" in strings[text]), (lang, text)
