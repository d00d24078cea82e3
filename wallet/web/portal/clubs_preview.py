"""The live preview of a club's card beside the club form.

It is drawn from what the pass itself is made of: a sample member's
``card_facts`` under the club as the form describes it, turned into
pass.json by the Apple renderer (``build_pass_json``), with the artwork
renditions Apple's pass carries (logo and strip @2x) and the labels of the
page's language (if the card is written in it, else the card's first) from
the pass's own pass.strings. The template lays that
out the way Wallet shows a store card (logo and logo text, header fields,
the strip with the primary field, secondary and auxiliary fields, barcode)
and a poster card (the artwork with the primary logo and header field on
top, the name as a bold title, the other primary fields, the barcode and the
footer below; iOS 27), the club's style first, with its featured actions
under each; the pass.json is that of a poster card, which carries both.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass, replace
from functools import lru_cache
from typing import Any

from flask_babel import get_locale
from flask_babel import gettext as _

from wallet.apple.images import Design, render_artwork
from wallet.apple.passdata import build_pass_json
from wallet.apple.pkpass import club_context, settings_for
from wallet.loyalty.barcodes import ean13_check_digit
from wallet.loyalty.cardfacts import card_facts
from wallet.loyalty.clubs import FIELDS
from wallet.loyalty.models import Brand, Club, Membership
from wallet.loyalty.program import Program
from wallet.passtext import labels
from wallet.web.barcodes import barcode_png
from wallet.web.portal.clubs_form import FEATURED_ACTION_NAMES

# A sample number of the kind the club hands out (see wallet.loyalty.barcodes).
SAMPLE_CARD_NUMBER = "400012345678"
SAMPLE_EAN13_BODY = "200012345678"


# The renditions the preview shows: @2x but for the poster's artwork, whose
# @1x (358 x 448) is already larger than the preview draws it.
SHOWN = ("logo@2x.png", "strip@2x.png", "artwork.png", "primaryLogo@2x.png")


@lru_cache(maxsize=16)
def _artwork(digest: str, design: Design) -> tuple[str, ...]:
    del digest  # the cache key: Design's bytes compare slowly
    files = render_artwork(design)
    return tuple(base64.b64encode(files[name]).decode("ascii") for name in SHOWN)


def artwork(background: str, logo: bytes | None, strip: bytes | None,
            poster_artwork: bytes | None = None) -> tuple[str, ...]:
    """Base64 PNGs of the logo, strip, poster artwork and primary logo as
    the pass shows them."""
    digest = hashlib.sha256(b"|".join((background.encode(), logo or b"", b"|", strip or b"", b"|",
                                       poster_artwork or b""))).hexdigest()
    return _artwork(digest, Design(background_color=background, logo=logo, strip=strip, poster=True,
                                   artwork=poster_artwork))


def draft_club(values: dict[str, Any], brand_name: str, base: Club | None) -> Club:
    """A club that is never saved: ``base``'s fields (if any) with the
    core-cleaned ``values`` over them."""
    fields = {key: getattr(base, key) for key in FIELDS} if base is not None else {}
    draft = Club(**{"locations": [], "program": {}, "currency": "RUB", "foreground_color": "#FFFFFF",
                    "background_color": "#1F2937", "label_color": "#D1D5DB", "barcode_format": "qr",
                    "terms": "", "card_style": "store_card", "featured_actions": [], **fields, **values})
    draft.id = base.id if base is not None else 0
    draft.brand = Brand(name=brand_name)
    return draft


def sample_member(club: Club) -> Membership:
    """A member as the brand would see one early on: a few purchases in."""
    program = Program.of(club)
    return Membership(
        name=_("Anna Smith"), card_number=sample_card_number(club.barcode_format), serial_number="preview",
        status="active",
        balance=120 if program.points else 0, pending=0, cash_balance=(500 if program.cashback_percent else 0),
        stamps=min(3, program.stamps_required - 1) if program.stamps_required else 0,
        tier=program.initial_tier(), expiring_points=0, version=1, locale=_language(),
    )


def sample_card_number(barcode_format: str) -> str:
    if barcode_format == "ean13":
        return SAMPLE_EAN13_BODY + ean13_check_digit(SAMPLE_EAN13_BODY)
    return SAMPLE_CARD_NUMBER


def _language() -> str:
    locale = get_locale()
    return locale.language if locale else "en"


@dataclass(frozen=True)
class Preview:
    pass_json: dict[str, Any]
    logo: str
    strip: str
    artwork: str
    primary_logo: str
    barcode: str
    barcode_format: str
    labels: dict[str, str]
    card_style: str
    # (the words the wallet shows, the page it opens) of each featured action
    actions: tuple[tuple[str, str], ...]


def preview(club: Club) -> Preview:
    facts = card_facts(sample_member(club), club)
    context = replace(club_context(club, settings_for()), card_style="poster")
    data = build_pass_json(facts, context, authentication_token="preview" * 4)
    logo, strip, poster, primary_logo = artwork(club.background_color, club.logo_png, club.strip_png,
                                                club.artwork_png)
    barcode = base64.b64encode(barcode_png(facts.card_number, club.barcode_format)).decode("ascii")
    actions = tuple((str(FEATURED_ACTION_NAMES[a["identifier"]]), a["url"]) for a in data.get("featuredActions", []))
    return Preview(pass_json=data, logo=logo, strip=strip, artwork=poster, primary_logo=primary_logo,
                   barcode=barcode, barcode_format=club.barcode_format, labels=labels(facts.language),
                   card_style=club.card_style or "store_card", actions=actions)
