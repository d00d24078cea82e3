"""The "Add to Google Wallet" link: https://pay.google.com/gp/v/save/<JWT>.

Two forms. Once the workers have inserted the member's LoyaltyObject (and
its class), the JWT names only their ids: the "skinny" form, short enough
for any browser, mail client or QR code (under 1,800 characters). Until
then it carries the whole class and object, which Google inserts itself
when the member saves the card.

The skinny link is signed by the worker that inserts the object and stored
on its row (``google_objects.save_link``), so an answer that shows a card
reads it rather than signing it: an RSA signature is 0.2 to 0.35 ms of
CPU, where a purchase through the API costs about 1.5 ms in all, and a
process keeps only a few thousand links (``_skinny_links``), where a
platform has millions of cards.
"""

from __future__ import annotations

import hashlib
import json
import time
from functools import lru_cache
from typing import Any

import jwt
from sqlalchemy import bindparam, inspect, select
from sqlalchemy.orm import object_session

from wallet.config import get_settings
from wallet.google.identity import GoogleIdentity, get_identity
from wallet.google.models import GoogleObject
from wallet.google.objects import class_id, loyalty_class, loyalty_object, object_id
from wallet.loyalty.cardfacts import card_facts
from wallet.loyalty.models import Club, Membership
from wallet.lru import LRU

SAVE_URL_PREFIX = "https://pay.google.com/gp/v/save/"

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
# Google Wallet carries one. A link is most of a kilobyte, and 100,000 of
# them were near 100 MB in every worker: past these, a card's link is read
# from its row.
_skinny_links: LRU[str] = LRU(4096)

_STORED = select(GoogleObject.inserted_at, GoogleObject.save_link, GoogleObject.save_link_for).where(
    GoogleObject.membership_id == bindparam("member_id"))


def google_save_url(membership: Membership) -> str:
    """The member's save link, signed RS256 with the service account key,
    key id in the header. Without a service account (development) nothing
    is ever inserted, so the link is always the full form."""
    return skinny_save_url(membership) or full_save_url(membership)


def skinny_save_url(membership: Membership) -> str | None:
    """The member's save link when Google has the card: it names the
    object's ids and reads nothing of the club, and is the one stored when
    the object was inserted. None when the link is the full form
    (``full_save_url``)."""
    identity = get_identity()
    session = object_session(membership)
    if identity.development or session is None or membership.id is None:
        return None
    public_base_url = get_settings().public_base_url
    kept = (identity, membership.club_id, membership.serial_number, public_base_url)
    link = _skinny_links.get(kept)
    if link is None:
        row = session.execute(_STORED, {"member_id": membership.id}).first()
        if row is None or row.inserted_at is None:
            return None  # not kept: the workers may insert it any moment
        # A row made before links were stored, or for another key or
        # address, gets one signed here until the card's next sync stores it.
        link = stored_link(identity, membership, public_base_url, row).get("save_link", row.save_link)
        _skinny_links.put(kept, link)
    return link


def stored_link(identity: GoogleIdentity, membership: Membership, public_base_url: str,
                row: Any) -> dict[str, str]:
    """The columns of a card's row (``GoogleObject``) that store its skinny
    link, signed now, when ``row`` (the card's GoogleObject or a row of its
    columns, None for none) has none for this identity and address; {} when
    its link is current. For a card Google has (or is being given)."""
    made_for = link_made_for(identity, public_base_url)
    if row is not None and row.save_link is not None and row.save_link_for == made_for:
        return {}
    return {"save_link": skinny_link(identity, membership, public_base_url), "save_link_for": made_for}


def skinny_link(identity: GoogleIdentity, membership: Membership, public_base_url: str) -> str:
    """The skinny link of a card, signed now."""
    return _link(identity, save_claims(identity, membership, public_base_url=public_base_url, skinny=True))


@lru_cache(maxsize=16)
def link_made_for(identity: GoogleIdentity, public_base_url: str) -> str:
    """What a stored link was made for, as a digest: the issuer, the service
    account and its key, and the address that may open it (the JWT's
    origins). A link made for another is signed anew."""
    made_of = [identity.issuer_id, identity.client_email, identity.private_key_id, public_base_url]
    return hashlib.sha256(json.dumps(made_of).encode()).hexdigest()


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
