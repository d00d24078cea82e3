"""Creating, changing and listing a brand's clubs.

The API and the brand portal both come through here, so every rule about
what a club may hold lives in one place, ``ClubFieldsSchema``, and a refusal
is one InvalidFields naming each bad field. A change that the cards show
re-renders every active member's card (one set-based card change per
member); a change to the artwork (colours, logo, strip, icon) also bumps
``design_version`` so renderers rebuild their cached artwork for the club.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

import marshmallow as ma
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from wallet.loyalty.barcodes import EAN13_DIGITS, FORMATS as BARCODE_FORMATS
from wallet.loyalty.cards import record_club_card_changes
from wallet.loyalty.contacts import normalize_country, normalize_email
from wallet.loyalty.errors import NotFound, RuleViolation
from wallet.loyalty.fields import (NOT_LIST, NOT_TEXT, Checked, Number, Problem, RuleSet, Section, Text, at_least_one,
                                   at_most, between, clean_text, one_of)
from wallet.loyalty.locales import LOCALES
from wallet.loyalty.models import Brand, Club, Membership
from wallet.loyalty.money import is_currency
from wallet.loyalty.program import ProgramSchema

CATEGORIES = (
    "cafe", "restaurant", "grocery", "fashion", "beauty", "health", "sports", "electronics",
    "books", "kids", "pets", "travel", "fuel", "entertainment", "services", "other",
)
MAX_LOCATIONS = 10  # Apple Wallet shows at most 10 relevant locations
# "store_card": today's card; "poster": a large artwork behind the fields
# (Apple's poster generic pass, iOS 27; older phones show the store card).
CARD_STYLES = ("store_card", "poster")
# Links shown under the card, at most two (Apple's Featured Actions). The
# kinds are those of Apple's list that open a link for a membership.
FEATURED_ACTION_TYPES = ("membership_benefits", "offers_rewards", "add_to_balance", "order", "shop",
                         "book_appointment")
MAX_FEATURED_ACTIONS = 2
MAX_IMAGE_BYTES = 1024 * 1024
_COLOUR = re.compile(r"^#[0-9A-Fa-f]{6}$")
_PHONE = re.compile(r"^\+?[0-9 ()\-]{5,31}$")
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

# Whether a change needs the card re-rendered and whether it changes the
# artwork (design_version).
DESIGN_FIELDS = frozenset(
    {"foreground_color", "background_color", "label_color", "logo_png", "strip_png", "icon_png", "artwork_png",
     "card_style"}
)
# What the card itself does not show: changing it re-renders nothing.
OFF_CARD_FIELDS = frozenset({"description", "category", "country"})
# Once members hold money in the club's currency it cannot change meaning.
FROZEN_WITH_MEMBERS = frozenset({"currency"})


def _currency(value: Any) -> str:
    if not is_currency(value):
        raise ma.ValidationError(Problem("not_currency", "must be an ISO 4217 currency code such as RUB or EUR"))
    return str(value).upper()


def _colour(value: Any) -> str:
    if not isinstance(value, str) or not _COLOUR.match(value):
        raise ma.ValidationError(Problem("not_colour", "must be a colour #RRGGBB"))
    return value.upper()


def _contact_email(value: Any) -> str | None:
    email = clean_text(value, max_len=320, allow_empty=True)
    return normalize_email(email, field="contact_email") if email else None


def _contact_phone(value: Any) -> str | None:
    phone = clean_text(value, max_len=32, allow_empty=True)
    if phone and not _PHONE.match(phone):
        raise ma.ValidationError(Problem("invalid_phone", "must be a phone number such as +7 495 123-45-67"))
    return phone or None


def _website(value: Any) -> str | None:
    text = clean_text(value, max_len=500, allow_empty=True)
    if not text:
        return None
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ma.ValidationError(Problem("not_url", "must be an http(s) URL"))
    return text


def _link(value: Any) -> str:
    text = _website(value)
    if text is None:
        raise ma.ValidationError(Problem("required", "must not be empty"))
    return text


def _png(value: Any) -> bytes | None:
    if not isinstance(value, (bytes, bytearray)) or not bytes(value).startswith(_PNG_SIGNATURE):
        raise ma.ValidationError(Problem("not_png", "must be a PNG image"))
    if len(value) > MAX_IMAGE_BYTES:
        raise ma.ValidationError(Problem("too_big", f"may be at most {MAX_IMAGE_BYTES} bytes", max=MAX_IMAGE_BYTES))
    return bytes(value)


def _colour_field(description: str, default: str) -> Checked:
    return Checked(_colour, metadata={"pattern": "^#[0-9A-Fa-f]{6}$", "description": description,
                                      "default": default, "example": default})


def _png_field(description: str) -> Checked:
    return Checked(_png, allow_none=True, json_type="string", metadata={"description": description})


class Languages(ma.fields.List):
    """Some of the languages cards are written in (``LOCALES``), at least
    one; kept in ``LOCALES``' order without repeats, so the first is the
    same whichever order a brand ticked them in."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(
            ma.fields.String(validate=one_of(LOCALES), error_messages={"invalid": NOT_TEXT}),
            validate=at_least_one("no_language", "must name at least one language"),
            error_messages={"invalid": NOT_LIST, "null": NOT_LIST}, **kwargs)

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> list[str]:
        chosen = set(super()._deserialize(value, attr, data, **kwargs))
        return [code for code in LOCALES if code in chosen]


class LocationSchema(RuleSet):
    """A shop where the card comes up on the lock screen."""

    error_code = "invalid_club"

    name = Text(max_len=100, allow_none=True, metadata={"example": "Main St"})
    latitude = Number(required=True, validate=between(-90, 90), metadata={"example": 55.7558})
    longitude = Number(required=True, validate=between(-180, 180), metadata={"example": 37.6173})
    relevant_text = Text(max_len=200, allow_none=True, empty=None, metadata={
        "description": "what the lock screen says near the shop", "example": "Coffee is ready"})

    @ma.post_load
    def _filled(self, data: dict[str, Any], **_: Any) -> dict[str, Any]:
        return {"name": data.get("name") or "", "latitude": data["latitude"], "longitude": data["longitude"],
                "relevant_text": data.get("relevant_text")}


class FeaturedActionSchema(RuleSet):
    """A link under the card: what it does (its icon and words are the
    wallet's) and the page it opens."""

    error_code = "invalid_club"

    type = ma.fields.String(required=True, validate=one_of(FEATURED_ACTION_TYPES),
                            error_messages={"invalid": NOT_TEXT, "required": Problem("required", "is required")},
                            metadata={"example": "membership_benefits"})
    url = Checked(_link, required=True, metadata={"format": "uri", "example": "https://example.com/benefits"})


def _distinct_types(actions: list[dict[str, Any]]) -> None:
    kinds = [a["type"] for a in actions]
    if len(set(kinds)) != len(kinds):
        raise ma.ValidationError(Problem("repeated_action", "each featured action must be of its own type"))


class ClubFieldsSchema(RuleSet):
    """What a brand may set on a club: the API's bodies, the portal's club
    form and ``create_club``/``update_club`` all load through this."""

    error_code = "invalid_club"
    field_codes = {"program": "invalid_program"}
    unknown_code = "unknown_field"

    name = Text(max_len=64, allow_empty=False, required=True, metadata={"example": "Morning Beans"})
    description = Text(max_len=2000, multiline=True, metadata={"description": "for the club catalogue",
                                                                "default": ""})
    category = ma.fields.String(validate=one_of(CATEGORIES), error_messages={"invalid": NOT_TEXT},
                                metadata={"default": "other"})
    logo_text = Text(max_len=64, allow_none=True, empty=None, metadata={
        "description": "text beside the logo on the card; null: the club's name"})
    currency = Checked(_currency, metadata={"description": "ISO 4217 code; money is in its minor units",
                                            "pattern": "^[A-Za-z]{3}$", "default": "RUB", "example": "EUR"})
    country = Checked(normalize_country, allow_none=True, metadata={
        "description": "ISO 3166-1 alpha-2; members' phone numbers written without + are read in "
                       "this country", "pattern": "^[A-Za-z]{2}$", "example": "RU"})
    foreground_color = _colour_field("colour of the card's values", "#FFFFFF")
    background_color = _colour_field("colour of the card", "#1F2937")
    label_color = _colour_field("colour of the card's labels", "#D1D5DB")
    barcode_format = ma.fields.String(validate=one_of(BARCODE_FORMATS),
                                      error_messages={"invalid": NOT_TEXT}, metadata={
        "default": "qr",
        "description": "the card's barcode, as Apple Wallet draws it. code39, codabar, ean13 and itf are drawn "
                       "by iOS 27 and later; the pass carries Code 128 and QR after them for older phones "
                       "and the watch. An ean13 club's new members get 13-digit numbers with the EAN check "
                       "digit; a club whose members already hold other numbers cannot switch to ean13 (nor, "
                       "with 13-digit numbers, to itf)"})
    terms = Text(max_len=10000, multiline=True, metadata={"default": ""})
    contact_email = Checked(_contact_email, allow_none=True, metadata={"format": "email"})
    contact_phone = Checked(_contact_phone, allow_none=True, metadata={"example": "+7 495 123-45-67"})
    website = Checked(_website, allow_none=True, metadata={"format": "uri", "example": "https://example.com"})
    locations = ma.fields.List(
        Section(LocationSchema), allow_none=True,
        validate=at_most(MAX_LOCATIONS, "too_many_locations", f"at most {MAX_LOCATIONS} locations"),
        error_messages={"invalid": NOT_LIST, "null": NOT_LIST},
        metadata={"description": f"at most {MAX_LOCATIONS}, as Apple Wallet shows no more"})
    languages = Languages(metadata={
        "description": "the languages the card is written in; the first is the card's language for a "
                       "member whose own is not among them", "default": list(LOCALES), "example": ["en", "ru"]})
    program = Section(ProgramSchema, allow_none=True, metadata={
        "description": "the program rules; null or absent: none"})
    logo_png = _png_field("the logo, a PNG")
    strip_png = _png_field("the picture across the card, a PNG")
    icon_png = _png_field("the icon on the lock screen, a PNG")
    card_style = ma.fields.String(validate=one_of(CARD_STYLES), error_messages={"invalid": NOT_TEXT},
                                  metadata={"default": "store_card", "description": (
                                      "store_card, or poster: Apple's poster card (iOS 27) with the club's "
                                      "artwork behind the fields, the store card on older phones, and the "
                                      "artwork as Google Wallet's hero image")})
    artwork_png = _png_field("the poster card's artwork, a PNG")
    featured_actions = ma.fields.List(
        Section(FeaturedActionSchema), allow_none=True,
        validate=[at_most(MAX_FEATURED_ACTIONS, "too_many_actions", f"at most {MAX_FEATURED_ACTIONS} featured actions"),
                  _distinct_types],
        error_messages={"invalid": NOT_LIST, "null": NOT_LIST},
        metadata={"description": f"at most {MAX_FEATURED_ACTIONS} links shown under the card (Apple Wallet's "
                                 "featured actions, iOS 27) and on the Google card, in this order"})

    @ma.post_load
    def _empty_as_none(self, data: dict[str, Any], **_: Any) -> dict[str, Any]:
        if "locations" in data and data["locations"] is None:
            data["locations"] = []
        if "featured_actions" in data and data["featured_actions"] is None:
            data["featured_actions"] = []
        if "program" in data and data["program"] is None:
            data["program"] = {}
        return data


# Fields a brand may set.
FIELDS = tuple(ClubFieldsSchema().fields)
_CLUB = ClubFieldsSchema()


def clean_club_fields(data: dict[str, Any], *, creating: bool) -> dict[str, Any]:
    """The normalized values of the fields given (all of ``FIELDS`` are
    optional except ``name`` on creation); InvalidFields naming each bad one."""
    # Listing the fields (not partial=True) keeps a program's own defaults
    # when a PATCH sends one.
    return _CLUB.load(data, partial=None if creating else FIELDS)


def create_club(session: Session, brand: Brand | int, data: dict[str, Any]) -> Club:
    """A new club of ``brand`` from ``data`` (see ``FIELDS``)."""
    brand_id = brand if isinstance(brand, int) else brand.id
    values = clean_club_fields(data, creating=True)
    club = Club(brand_id=brand_id, design_version=1,
                **{"locations": [], "program": {}, "featured_actions": [], "card_style": "store_card", **values})
    session.add(club)
    session.flush()
    return club


def update_club(session: Session, club: Club, data: dict[str, Any]) -> Club:
    """Apply the fields given. A change that cards show re-renders every
    active member's card in this transaction; an artwork change also bumps
    ``design_version``."""
    values = clean_club_fields(data, creating=False)
    changed = {k for k, v in values.items() if getattr(club, k) != v}
    if not changed:
        return club
    if changed & FROZEN_WITH_MEMBERS and session.scalar(
        select(Membership.id).where(Membership.club_id == club.id).limit(1)
    ) is not None:
        raise RuleViolation("currency cannot change once the club has members", code="currency_locked")
    if "barcode_format" in changed:
        _check_card_numbers_fit(session, club, values["barcode_format"])
    for key in changed:
        setattr(club, key, values[key])
    if changed & DESIGN_FIELDS:
        club.design_version = (club.design_version or 1) + 1
    session.flush()
    if changed - OFF_CARD_FIELDS:
        ids = session.scalars(
            select(Membership.id)
            .where(Membership.club_id == club.id, Membership.status == "active")
            .order_by(Membership.id)
        ).all()
        record_club_card_changes(session, ids)
    return club


def _check_card_numbers_fit(session: Session, club: Club, barcode_format: str) -> None:
    """A barcode carries the card number, so a format must encode the
    numbers the club's members already hold: EAN-13 only the 13-digit ones
    an EAN-13 club hands out, ITF only numbers of an even digit count."""
    length = func.length(Membership.card_number)
    misfit = {"ean13": length != EAN13_DIGITS, "itf": length % 2 == 1}.get(barcode_format)
    if misfit is not None and session.scalar(
        select(Membership.id).where(Membership.club_id == club.id, misfit).limit(1)
    ) is not None:
        raise RuleViolation(f"barcode_format: members already hold card numbers that {barcode_format} cannot "
                            "encode", code="barcode_format_locked")


def get_club(session: Session, club_id: int, *, brand_id: int | None = None) -> Club:
    """A club by id; NotFound for an unknown id or another brand's."""
    club = session.get(Club, club_id) if 0 < club_id < 2**63 else None
    if club is None or (brand_id is not None and club.brand_id != brand_id):
        raise NotFound(f"no club {club_id}", code="club_not_found")
    return club


def list_clubs(session: Session, brand_id: int, *, limit: int = 50, after_id: int | None = None) -> list[Club]:
    """The brand's clubs, oldest first, keyset-paginated by id."""
    query = select(Club).where(Club.brand_id == brand_id)
    if after_id is not None:
        query = query.where(Club.id > after_id)
    return list(session.scalars(query.order_by(Club.id).limit(limit)))
