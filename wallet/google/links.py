"""The "Add to Google Wallet" link: https://pay.google.com/gp/v/save/<JWT>.

Two forms. Once the workers have inserted the member's LoyaltyObject (and
its class), the JWT names only their ids: the "skinny" form, short enough
for any browser, mail client or QR code (under 1,800 characters). Until
then it carries the whole class and object, which Google inserts itself
when the member saves the card.
"""

from __future__ import annotations

import json
import time
from functools import lru_cache
from typing import Any

import jwt
from sqlalchemy import inspect, select
from sqlalchemy.orm import object_session

from wallet.config import get_settings
from wallet.google.identity import GoogleIdentity, get_identity
from wallet.google.models import GoogleObject
from wallet.google.objects import class_id, loyalty_class, loyalty_object, object_id
from wallet.loyalty.cardfacts import card_facts
from wallet.loyalty.models import Club, Membership
from wallet.lru import LRU

SAVE_URL_PREFIX = "https://pay.google.com/gp/v/save/"

# The cards whose LoyaltyObject Google has, as (issuer, member id, serial
# number): inserted_at is set once and never cleared, so a card found
# inserted stays skinny and its answers read nothing more (the read was a
# statement of every API answer that shows a member, a purchase's among
# them). The serial number tells a card from a later one given the same id
# (SQLite may reuse the highest).
_known_inserted: LRU[bool] = LRU(100_000)


def _inserted(identity: GoogleIdentity, membership: Membership) -> bool:
    session = object_session(membership)
    if session is None or membership.id is None:
        return False
    known = (identity.issuer_id, membership.id, membership.serial_number)
    if _known_inserted.get(known):
        return True
    inserted = session.scalar(
        select(GoogleObject.inserted_at.is_not(None)).where(GoogleObject.membership_id == membership.id)
    ) is True
    if inserted:
        _known_inserted.put(known, True)
    return inserted


# LoyaltyClasses as the full links carry them, by issuer, club id, the club's
# updated_at (which every change of its columns moves), its brand's name and
# the base URL: a booking's answer signs a new link for every purchase, its
# class unchanged.
_classes: LRU[dict[str, Any]] = LRU(4096)


def _loyalty_class(issuer_id: str, club: Club, public_base_url: str) -> dict[str, Any]:
    """``loyalty_class`` of a club as stored (kept while its state is), in
    a session or detached (the API's answers lend a kept club: wallet.api.
    views); a draft or a club with changes not yet written is built afresh.
    The class is only read (dumped into the token), never changed."""
    state = inspect(club)
    if not (state.persistent or state.detached) or state.modified:
        return loyalty_class(issuer_id, club, public_base_url=public_base_url)
    key = (issuer_id, club.id, club.updated_at, club.brand.name, public_base_url)
    found = _classes.get(key)
    if found is None:
        found = loyalty_class(issuer_id, club, public_base_url=public_base_url)
        _classes.put(key, found)
    return found


def save_claims(identity: GoogleIdentity, membership: Membership, *, public_base_url: str,
                skinny: bool) -> dict[str, Any]:
    """The JWT's claims but ``iat``: iss, aud, typ, origins and the payload."""
    if skinny:
        payload: dict[str, Any] = {"loyaltyObjects": [{
            "id": object_id(identity.issuer_id, membership),
            "classId": class_id(identity.issuer_id, membership.club_id),
        }]}
    else:
        payload = {
            "loyaltyClasses": [_loyalty_class(identity.issuer_id, membership.club, public_base_url)],
            "loyaltyObjects": [loyalty_object(identity.issuer_id, membership, card_facts(membership),
                                              public_base_url=public_base_url)],
        }
    return {"iss": identity.client_email, "aud": "google", "typ": "savetowallet", "origins": [public_base_url],
            "payload": payload}


# Skinny links by what their claims are made of (the identity, the card's
# club and serial number, the base URL): every API answer of a card in
# Google Wallet carries one, and building and dumping its claims to find
# the signed token cost as much again as the rest of the member's fields.
# As many as ``_signed`` keeps: a link is most of a kilobyte, and 100,000 of
# them were near 100 MB in every worker.
_skinny_links: LRU[str] = LRU(4096)


def google_save_url(membership: Membership) -> str:
    """The member's save link, signed RS256 with the service account key,
    key id in the header. Without a service account (development) nothing
    is ever inserted, so the link is always the full form."""
    return skinny_save_url(membership) or full_save_url(membership)


def skinny_save_url(membership: Membership) -> str | None:
    """The member's save link when Google has the card: it names the
    object's ids and reads nothing of the club. None when the link is the
    full form (``full_save_url``)."""
    identity = get_identity()
    if identity.development or not _inserted(identity, membership):
        return None
    public_base_url = get_settings().public_base_url
    kept = (identity, membership.club_id, membership.serial_number, public_base_url)
    link = _skinny_links.get(kept)
    if link is None:
        link = _link(identity, save_claims(identity, membership, public_base_url=public_base_url, skinny=True))
        _skinny_links.put(kept, link)
    return link


def full_save_url(membership: Membership) -> str:
    """The link that carries the whole class and object (the club's and
    the card's fields), for a card Google does not have yet."""
    identity = get_identity()
    return _link(identity, save_claims(identity, membership, public_base_url=get_settings().public_base_url,
                                       skinny=False))


def _link(identity: GoogleIdentity, claims: dict[str, Any]) -> str:
    return SAVE_URL_PREFIX + _signed(identity, json.dumps(claims, sort_keys=True, ensure_ascii=False,
                                                          separators=(",", ":")))


# PyJWT's JWS layer signs the claims as we serialised them: jwt.encode would
# parse and dump them again around the signature (a third of the link's cost
# beyond the RSA signature).
_JWS = jwt.PyJWS(algorithms=["RS256"])


@lru_cache(maxsize=4096)
def _signed(identity: GoogleIdentity, claims_json: str) -> str:
    # Every member answer of the API carries a save link, a list page up to
    # 500 of them: sign each distinct card state once, not once per answer.
    payload = f'{claims_json[:-1]},"iat":{int(time.time())}}}'.encode()
    return _JWS.encode(payload, identity.private_key, algorithm="RS256", headers={"kid": identity.private_key_id})
