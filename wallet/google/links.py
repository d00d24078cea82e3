"""The "Add to Google Wallet" link: https://pay.google.com/gp/v/save/<JWT>."""

from __future__ import annotations

import json
import time
from functools import lru_cache

import jwt

from wallet.config import get_settings
from wallet.google.identity import GoogleIdentity, get_identity
from wallet.google.objects import loyalty_class, loyalty_object
from wallet.loyalty.cardfacts import card_facts
from wallet.loyalty.models import Membership

SAVE_URL_PREFIX = "https://pay.google.com/gp/v/save/"


def google_save_url(membership: Membership) -> str:
    """A save link carrying the member's LoyaltyObject (and its class), signed
    RS256 with the service account key, key id in the header."""
    identity = get_identity()
    base_url = get_settings().public_base_url
    facts = card_facts(membership)
    unsigned = {
        "iss": identity.client_email,
        "aud": "google",
        "typ": "savetowallet",
        "origins": [base_url],
        "payload": {
            "loyaltyClasses": [loyalty_class(identity.issuer_id, membership.club, public_base_url=base_url)],
            "loyaltyObjects": [loyalty_object(identity.issuer_id, membership, facts)],
        },
    }
    return SAVE_URL_PREFIX + _signed(identity, json.dumps(unsigned, sort_keys=True, ensure_ascii=False))


@lru_cache(maxsize=4096)
def _signed(identity: GoogleIdentity, claims_json: str) -> str:
    # Every member answer of the API carries a save link, a list page up to
    # 500 of them: sign each distinct card state once, not once per answer.
    claims = json.loads(claims_json)
    claims["iat"] = int(time.time())
    return jwt.encode(claims, identity.private_key, algorithm="RS256",
                      headers={"kid": identity.private_key_id})
