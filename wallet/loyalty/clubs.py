"""Creating, changing and listing a brand's clubs.

The API and the brand portal both come through here, so every rule about
what a club may hold lives in one place and raises RuleViolation naming the
field. A change that the cards show re-renders every active member's card
(one set-based card change per member); a change to the artwork (colours,
logo, strip, icon) also bumps ``design_version`` so renderers rebuild their
cached artwork for the club.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import select
from sqlalchemy.orm import Session

from wallet.loyalty.cards import record_club_card_changes
from wallet.loyalty.contacts import normalize_country, normalize_email
from wallet.loyalty.errors import NotFound, RuleViolation
from wallet.loyalty.models import Brand, Club, Membership
from wallet.loyalty.money import is_currency
from wallet.loyalty.program import validate_program

BARCODE_FORMATS = ("qr", "pdf417", "aztec", "code128")
CATEGORIES = (
    "cafe", "restaurant", "grocery", "fashion", "beauty", "health", "sports", "electronics",
    "books", "kids", "pets", "travel", "fuel", "entertainment", "services", "other",
)
MAX_LOCATIONS = 10  # Apple Wallet shows at most 10 relevant locations
MAX_IMAGE_BYTES = 1024 * 1024
_COLOUR = re.compile(r"^#[0-9A-Fa-f]{6}$")
_PHONE = re.compile(r"^\+?[0-9 ()\-]{5,31}$")
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

# Fields a brand may set, with whether a change needs the card re-rendered
# and whether it changes the artwork (design_version).
FIELDS = (
    "name", "description", "category", "logo_text", "currency", "country", "foreground_color",
    "background_color", "label_color", "barcode_format", "terms", "contact_email",
    "contact_phone", "website", "locations", "program", "logo_png", "strip_png", "icon_png",
)
DESIGN_FIELDS = frozenset(
    {"foreground_color", "background_color", "label_color", "logo_png", "strip_png", "icon_png"}
)
# What the card itself does not show: changing it re-renders nothing.
OFF_CARD_FIELDS = frozenset({"description", "category", "country"})
# Once members hold money in the club's currency it cannot change meaning.
FROZEN_WITH_MEMBERS = frozenset({"currency"})


def _bad(field: str, message: str, code: str = "invalid_club") -> RuleViolation:
    return RuleViolation(f"{field}: {message}", code=code)


def _text(value: Any, field: str, *, max_len: int, required: bool = False) -> str | None:
    if value is None:
        if required:
            raise _bad(field, "is required")
        return None
    if not isinstance(value, str):
        raise _bad(field, "must be a string")
    value = value.strip()
    if required and not value:
        raise _bad(field, "must not be empty")
    if len(value) > max_len:
        raise _bad(field, f"may be at most {max_len} characters")
    if "\x00" in value:
        raise _bad(field, "must not contain NUL characters")
    return value


def _reworded(check: Any, value: Any, **kwargs: Any) -> Any:
    """A contacts check whose refusal carries this module's error code."""
    try:
        return check(value, **kwargs)
    except RuleViolation as exc:
        raise RuleViolation(exc.message, code="invalid_club") from None


def _colour(value: Any, field: str) -> str:
    if not isinstance(value, str) or not _COLOUR.match(value):
        raise _bad(field, "must be a colour #RRGGBB")
    return value.upper()


def _number(value: Any, field: str, *, low: float, high: float) -> float:
    # Coordinates are the one place a fraction is right: they are not money.
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value:
        raise _bad(field, "must be a number")
    if not low <= value <= high:
        raise _bad(field, f"must be between {low} and {high}")
    return float(value)


def _locations(value: Any) -> list[dict[str, Any]]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise _bad("locations", "must be a list")
    if len(value) > MAX_LOCATIONS:
        raise _bad("locations", f"at most {MAX_LOCATIONS} locations")
    out = []
    for i, item in enumerate(value):
        where = f"locations[{i}]"
        if not isinstance(item, dict):
            raise _bad(where, "must be an object")
        unknown = sorted(set(item) - {"name", "latitude", "longitude", "relevant_text"})
        if unknown:
            raise _bad(f"{where}.{unknown[0]}", "unknown field")
        if "latitude" not in item or "longitude" not in item:
            raise _bad(where, "latitude and longitude are required")
        out.append(
            {
                "name": _text(item.get("name"), f"{where}.name", max_len=100) or "",
                "latitude": _number(item["latitude"], f"{where}.latitude", low=-90, high=90),
                "longitude": _number(item["longitude"], f"{where}.longitude", low=-180, high=180),
                "relevant_text": _text(item.get("relevant_text"), f"{where}.relevant_text", max_len=200),
            }
        )
    return out


def _website(value: Any) -> str | None:
    text = _text(value, "website", max_len=500)
    if not text:
        return None
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise _bad("website", "must be an http(s) URL")
    return text


def _png(value: Any, field: str) -> bytes | None:
    if value is None:
        return None
    if not isinstance(value, (bytes, bytearray)) or not bytes(value).startswith(_PNG_SIGNATURE):
        raise _bad(field, "must be a PNG image")
    if len(value) > MAX_IMAGE_BYTES:
        raise _bad(field, f"may be at most {MAX_IMAGE_BYTES} bytes")
    return bytes(value)


def clean_club_fields(data: dict[str, Any], *, creating: bool) -> dict[str, Any]:
    """The normalized values of the fields given (all of ``FIELDS`` are
    optional except ``name`` on creation); RuleViolation on the first bad one."""
    if not isinstance(data, dict):
        raise RuleViolation("a club must be an object", code="invalid_club")
    unknown = sorted(set(data) - set(FIELDS))
    if unknown:
        raise _bad(unknown[0], "unknown field", code="unknown_field")
    out: dict[str, Any] = {}
    if creating or "name" in data:
        out["name"] = _text(data.get("name"), "name", max_len=64, required=True)
    for field, max_len in (("description", 2000), ("terms", 10000)):
        if field in data:
            out[field] = _text(data[field], field, max_len=max_len) or ""
    if "logo_text" in data:
        out["logo_text"] = _text(data["logo_text"], "logo_text", max_len=64) or None
    if "category" in data:
        category = data["category"]
        if category not in CATEGORIES:
            raise _bad("category", f"must be one of {', '.join(CATEGORIES)}")
        out["category"] = category
    if "currency" in data:
        currency = data["currency"]
        if not is_currency(currency):
            raise _bad("currency", "must be an ISO 4217 currency code such as RUB or EUR")
        out["currency"] = currency.upper()
    if "country" in data:
        out["country"] = _reworded(normalize_country, data["country"])
    for field in ("foreground_color", "background_color", "label_color"):
        if field in data:
            out[field] = _colour(data[field], field)
    if "barcode_format" in data:
        if data["barcode_format"] not in BARCODE_FORMATS:
            raise _bad("barcode_format", f"must be one of {', '.join(BARCODE_FORMATS)}")
        out["barcode_format"] = data["barcode_format"]
    if "contact_email" in data:
        email = _text(data["contact_email"], "contact_email", max_len=320)
        out["contact_email"] = _reworded(normalize_email, email, field="contact_email") if email else None
    if "contact_phone" in data:
        phone = _text(data["contact_phone"], "contact_phone", max_len=32)
        if phone and not _PHONE.match(phone):
            raise _bad("contact_phone", "must be a phone number such as +7 495 123-45-67")
        out["contact_phone"] = phone or None
    if "website" in data:
        out["website"] = _website(data["website"])
    if "locations" in data:
        out["locations"] = _locations(data["locations"])
    if "program" in data:
        out["program"] = validate_program(data["program"])
    for field in ("logo_png", "strip_png", "icon_png"):
        if field in data:
            out[field] = _png(data[field], field)
    return out


def create_club(session: Session, brand: Brand | int, data: dict[str, Any]) -> Club:
    """A new club of ``brand`` from ``data`` (see ``FIELDS``)."""
    brand_id = brand if isinstance(brand, int) else brand.id
    values = clean_club_fields(data, creating=True)
    club = Club(brand_id=brand_id, design_version=1, **{"locations": [], "program": {}, **values})
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
