"""The "Add to Google Wallet" link and the images Google fetches for it."""

from __future__ import annotations

import io
import time

import jwt
from PIL import Image

from tests.support.apple import make_club, make_member
from wallet.google.identity import get_identity
from wallet.google.links import SAVE_URL_PREFIX, google_save_url
from wallet.loyalty.models import Club, Membership


def _claims(app, url):
    token = url.removeprefix(SAVE_URL_PREFIX)
    identity = get_identity(app)
    header = jwt.get_unverified_header(token)
    assert header["alg"] == "RS256"
    assert header["kid"] == identity.private_key_id
    return jwt.decode(token, identity.private_key.public_key(), algorithms=["RS256"], audience="google")


def test_save_link_is_a_signed_jwt_carrying_the_members_loyalty_object(app, db):
    member_id = make_member(db, make_club(db))
    with db.transaction() as session:
        member = session.get(Membership, member_id)
        member.balance = 1250
        session.flush()
        with app.test_request_context():
            url = google_save_url(member)
            claims = _claims(app, url)
    assert url.startswith("https://pay.google.com/gp/v/save/")
    assert claims["typ"] == "savetowallet"
    assert claims["origins"] == ["https://wallet.test"]
    issuer = get_identity(app).issuer_id
    obj = claims["payload"]["loyaltyObjects"][0]
    cls = claims["payload"]["loyaltyClasses"][0]
    assert obj["id"].startswith(issuer + ".") and obj["classId"] == cls["id"]
    assert all(ch.isalnum() or ch in "._-" for ch in obj["id"])
    assert obj["loyaltyPoints"]["balance"] == {"int": 1250}
    assert obj["barcode"]["value"] == member.card_number
    assert cls["reviewStatus"] == "UNDER_REVIEW"
    assert cls["callbackOptions"]["url"] == "https://wallet.test/google/callback"


def test_program_logo_is_served_square_at_a_versioned_url(app, db, client):
    club_id = make_club(db)
    with db.transaction() as session:
        version = session.get(Club, club_id).design_version
    response = client.get(f"/google/images/clubs/{club_id}/logo-{version}.png")
    assert response.status_code == 200
    assert response.mimetype == "image/png"
    assert Image.open(io.BytesIO(response.data)).size == (660, 660)
    assert client.get(f"/google/images/clubs/{club_id}/logo-{version + 1}.png").status_code == 404
    assert client.get("/google/images/clubs/999999/logo-1.png").status_code == 404


def test_one_card_state_is_signed_once_and_a_change_gets_a_new_link(app, db):
    member_id = make_member(db, make_club(db))
    with db.transaction() as session:
        member = session.get(Membership, member_id)
        with app.test_request_context():
            first = google_save_url(member)
            assert google_save_url(member) == first
            member.balance += 10
            changed = google_save_url(member)
            assert changed != first
            assert _claims(app, changed)["payload"]["loyaltyObjects"][0]["loyaltyPoints"]["balance"]["int"] == (
                member.balance
            )


def test_the_token_is_a_standard_jwt_with_its_claims_unicode_intact(app, db):
    member_id = make_member(db, make_club(db, brand_name="Café Ünter"), name="Zoë Åberg")
    with db.transaction() as session:
        member = session.get(Membership, member_id)
        with app.test_request_context():
            before = int(time.time())
            url = google_save_url(member)
    token = url.removeprefix(SAVE_URL_PREFIX)
    assert jwt.get_unverified_header(token) == {"alg": "RS256", "kid": get_identity(app).private_key_id,
                                                "typ": "JWT"}
    claims = _claims(app, url)
    assert before <= claims["iat"] <= time.time()
    assert set(claims) == {"iss", "aud", "typ", "origins", "payload", "iat"}
    assert claims["payload"]["loyaltyClasses"][0]["issuerName"] == "Café Ünter"
    assert claims["payload"]["loyaltyObjects"][0]["accountName"] == "Zoë Åberg"
