"""The "Add to Google Wallet" link: https://pay.google.com/gp/v/save/<JWT>."""

from __future__ import annotations

import time

import jwt
from flask import current_app

from wallet.google.identity import get_identity
from wallet.google.objects import loyalty_class, loyalty_object
from wallet.loyalty.cardfacts import card_facts
from wallet.loyalty.models import Membership

SAVE_URL_PREFIX = "https://pay.google.com/gp/v/save/"


def google_save_url(membership: Membership) -> str:
    """A save link carrying the member's LoyaltyObject (and its class), signed
    RS256 with the service account key, key id in the header."""
    identity = get_identity()
    base_url = current_app.config["PUBLIC_BASE_URL"]
    facts = card_facts(membership)
    claims = {
        "iss": identity.client_email,
        "aud": "google",
        "typ": "savetowallet",
        "iat": int(time.time()),
        "origins": [base_url],
        "payload": {
            "loyaltyClasses": [loyalty_class(identity.issuer_id, membership.club, public_base_url=base_url)],
            "loyaltyObjects": [loyalty_object(identity.issuer_id, membership, facts)],
        },
    }
    token = jwt.encode(claims, identity.private_key, algorithm="RS256",
                       headers={"kid": identity.private_key_id})
    return SAVE_URL_PREFIX + token
