"""pass.json of a member's card, from the card facts.

A club's card is a store card, or a poster card: Apple's poster generic pass
("Creating a poster generic pass", iOS and watchOS 27) in ``posterGeneric``
with the store card beside it in ``storeCard``, which Wallet shows where it
cannot show the poster ("Ensure backward compatibility"). Both carry the
club's featured actions (up to two links under the card, iOS 27).

Labels and change messages are keys of pass.strings (passes/storeCard/*.lproj)
so the phone shows them in its own language. Values that mix numbers and
words ("350 points expire on 1 Dec") cannot be localised by Wallet, so they
are written in the card's language for the customer (``CardFacts.language``). Every field a member sees change
carries a changeMessage, which Wallet shows on the lock screen.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from decimal import Decimal
from functools import lru_cache
from operator import itemgetter
from typing import Any

from wallet.artwork import parse_hex_color
from wallet.config import PROJECT_ROOT
from wallet.loyalty.barcodes import CHECKED_FORMATS, NEW_IN_IOS_27, encodable
from wallet.loyalty.cardfacts import CardFacts
from wallet.loyalty.locales import expiring_text, format_percent
from wallet.loyalty.money import format_money

SKELETON_PATH = PROJECT_ROOT / "passes" / "storeCard" / "pass.json"

# Pass.Barcodes "format" (Wallet Passes reference): Interleaved 2 of 5 (ITF)
# is PKBarcodeFormatI2of5.
BARCODE_FORMATS = {
    "qr": "PKBarcodeFormatQR",
    "pdf417": "PKBarcodeFormatPDF417",
    "aztec": "PKBarcodeFormatAztec",
    "code128": "PKBarcodeFormatCode128",
    "code39": "PKBarcodeFormatCode39",
    "codabar": "PKBarcodeFormatCodabar",
    "ean13": "PKBarcodeFormatEAN13",
    "itf": "PKBarcodeFormatI2of5",
}
# What the legacy single "barcode" key (iOS 8 and older) can hold.
LEGACY_FORMATS = ("qr", "pdf417", "aztec")
MAX_LOCATIONS = 10
# Apple shows about this much of a front field before truncating it itself;
# cutting here keeps the cut visible ("…") and predictable.
FRONT_VALUE_MAX = 28
LOGO_TEXT_MAX = 24
BACK_VALUE_MAX = 2000
# A store card shows at most four secondary and auxiliary fields together.
FRONT_SLOTS = 4
# A poster generic pass shows a header field, up to four primary fields (the
# first without a label is drawn as a bold title) and one footer field.
POSTER_PRIMARY_SLOTS = 4

# Our featured action kinds (wallet.loyalty.clubs.FEATURED_ACTION_TYPES) as
# Apple's action types (Wallet Passes, "Add Featured Actions").
FEATURED_ACTION_TYPES = {
    "membership_benefits": "membershipBenefits",
    "offers_rewards": "viewOffersRewards",
    "add_to_balance": "addToBalance",
    "order": "order",
    "shop": "shop",
    "book_appointment": "bookAppointment",
}

DEFAULT_COLORS = {
    "foregroundColor": (255, 255, 255),
    "backgroundColor": (31, 41, 55),
    "labelColor": (209, 213, 219),
}


# English text of every label and message. It is also the key Wallet looks up
# in <lang>.lproj/pass.strings (passes/storeCard), so pass.json reads well as
# it is and every language maps the same keys.
TEXT = {
    "label_points": "Points",
    "label_cash": "Cashback balance",
    "label_stamps": "Stamps",
    "label_discount": "Discount",
    "label_cashback": "Cashback",
    "label_tier": "Level",
    "label_pending": "Pending points",
    "label_expiring": "Expiring",
    "label_member": "Member",
    "label_card_number": "Card number",
    "label_news": "Latest news",
    "label_survey": "How likely are you to recommend us?",
    "label_terms": "Terms",
    "label_contact": "Contact",
    "label_reward": "Reward",
    "label_status": "Status",
    "status_ended": "This card is no longer valid",
    "change_points": "Points balance: %@",
    "change_cash": "Cashback balance: %@",
    "change_stamps": "Stamps collected: %@",
    "change_discount": "Your discount is now %@",
    "change_cashback": "Your cashback rate is now %@",
    "change_tier": "Your level is now %@",
    "change_pending": "Pending points: %@",
    "change_expiring": "%@",
    "change_news": "%@",
}


@dataclass(frozen=True)
class ClubContext:
    """What pass.json needs besides the card facts: the club's settings and
    the service's identity, the same for every member of the club."""

    pass_type_identifier: str
    team_identifier: str
    web_service_url: str
    organization_name: str
    logo_text: str | None
    description: str
    foreground_color: str | None
    background_color: str | None
    label_color: str | None
    barcode_format: str
    locations: list[dict[str, Any]]
    card_style: str = "store_card"
    featured_actions: tuple[tuple[str, str], ...] = ()

    @property
    def poster(self) -> bool:
        return self.card_style == "poster"


@lru_cache(maxsize=1)
def _skeleton() -> dict[str, Any]:
    return json.loads(SKELETON_PATH.read_text(encoding="utf-8"))


def club_keys(facts: CardFacts, ctx: ClubContext) -> dict[str, Any]:
    """Top-level keys that are the same for every member of the club."""
    # A shallow copy is enough: every nested value is replaced, never mutated.
    data: dict[str, Any] = {k: v for k, v in _skeleton().items()
                            if k not in ("serialNumber", "authenticationToken", "barcodes", "storeCard")}
    data.update(
        organizationName=cut(ctx.organization_name or facts.brand_name, 64),
        description=cut(ctx.description, 120),
        passTypeIdentifier=ctx.pass_type_identifier,
        teamIdentifier=ctx.team_identifier,
        webServiceURL=ctx.web_service_url,
        logoText=cut(ctx.logo_text or facts.club_name, LOGO_TEXT_MAX),
    )
    for key, value in (("foregroundColor", ctx.foreground_color),
                       ("backgroundColor", ctx.background_color),
                       ("labelColor", ctx.label_color)):
        data[key] = rgb(value, DEFAULT_COLORS[key])
    locations = _locations(ctx.locations, facts.club_name)
    if locations:
        data["locations"] = locations
    actions = featured_actions(ctx.featured_actions)
    if actions:
        data["featuredActions"] = actions
    return data


def featured_actions(actions: tuple[tuple[str, str], ...]) -> list[dict[str, str]]:
    """Pass.featuredActions: a unique identifier, Apple's action type and
    the URL it opens, in the brand's order; at most two."""
    return [{"identifier": kind, "type": FEATURED_ACTION_TYPES[kind], "url": url}
            for kind, url in actions[:2] if kind in FEATURED_ACTION_TYPES]


def club_back_fields(facts: CardFacts) -> list[dict[str, Any]]:
    """Back fields that are the same for every member, after the member's own."""
    back = []
    if facts.terms:
        back.append(_field("terms", TEXT["label_terms"], cut(facts.terms, BACK_VALUE_MAX, multiline=True)))
    contact = "\n".join(x for x in (facts.contact_phone, facts.contact_email, facts.website) if x)
    if contact:
        back.append(_field("contact", TEXT["label_contact"], contact))
    return back


def member_keys(facts: CardFacts, *, authentication_token: str, barcode_format: str,
                poster: bool = False, survey_url: str | None = None) -> dict[str, Any]:
    """Top-level keys of one member; storeCard (and a poster card's
    posterGeneric) hold the member's fields, the club's back fields follow
    them. ``survey_url`` opens the members' survey (a link on the back of an
    active card)."""
    def value(slot: str) -> Any:
        return _slot_value(slot, facts, authentication_token, survey_url)

    return _member_layout(facts, value, barcode_chain(facts.card_number, barcode_format),
                          poster=poster, survey=bool(survey_url))


def _member_layout(facts: CardFacts, value: Callable[[str], Any], chain: list[str], *,
                   poster: bool, survey: bool) -> dict[str, Any]:
    """The member's keys laid out by what the facts say is on the card, each
    value the member sees taken from ``value(slot)`` (see ``_SLOTS``)."""
    data: dict[str, Any] = {
        "serialNumber": value("serial"),
        "authenticationToken": value("token"),
    }
    data["barcodes"], data["barcode"] = _barcodes(chain, value("card_number"))
    if not facts.active:
        data["voided"] = True
        data["expirationDate"] = value("expiration")
    store_card = _fields(facts, value)
    if survey and facts.active:
        store_card["backFields"].append(_field("survey", TEXT["label_survey"], value("survey")))
    if poster:
        data["posterGeneric"] = _poster_fields(store_card, facts, value)
    data["storeCard"] = store_card
    return data


def styles_of(data: dict[str, Any]) -> list[dict[str, Any]]:
    """The style dictionaries a pass.json carries, the one Wallet prefers first."""
    return [data[key] for key in ("posterGeneric", "storeCard") if key in data]


def build_pass_json(facts: CardFacts, ctx: ClubContext, *, authentication_token: str,
                    survey_url: str | None = None) -> dict[str, Any]:
    """The whole pass.json of one member as a dictionary."""
    data = club_keys(facts, ctx)
    data.update(member_keys(facts, authentication_token=authentication_token,
                            barcode_format=ctx.barcode_format, poster=ctx.poster,
                            survey_url=survey_url))
    for style in styles_of(data):
        style["backFields"].extend(club_back_fields(facts))
    return data


_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))
# How _ENCODER writes a string (ensure_ascii=False).
_encode_string: Callable[[str], str] = json.encoder.encode_basestring  # type: ignore[attr-defined]


def dumps(data: dict[str, Any]) -> bytes:
    return _ENCODER.encode(data).encode("utf-8")


@dataclass(frozen=True)
class _Template:
    """pass.json of one card shape split around the member's values: text,
    value, text, ..., text (the values' places, at odd indices, left empty),
    the functions of the values it shows (each once, however often the card
    shows it) and which of them goes in each place."""

    layout: list[str]
    values: tuple[Callable[[CardFacts, str, str | None], Any], ...]
    places: Callable[[list[str]], tuple[str, ...]]


@dataclass(frozen=True)
class ClubJson:
    """The club's part of pass.json, already serialized: the top-level keys
    (without braces) and the club's back fields (without brackets)."""

    keys: str
    back: str
    barcode_format: str
    poster: bool = False
    # pass.json templates by card shape (``_shape``), made on first use.
    templates: dict[Hashable, _Template] = field(default_factory=dict)


def club_json(facts: CardFacts, ctx: ClubContext) -> ClubJson:
    return ClubJson(
        keys=_ENCODER.encode(club_keys(facts, ctx))[1:-1],
        back=",".join(_ENCODER.encode(field) for field in club_back_fields(facts)),
        barcode_format=ctx.barcode_format,
        poster=ctx.poster,
    )


# The club's back fields go last in each style's backFields; this marker
# holds their place while the member's part is serialized in one call.
_CLUB_BACK = "\ufdd0club-back\ufdd0"
# As an array's last element: inside a JSON string a quote is escaped, so
# this text can only be the marker itself, never a member's value.
_CLUB_BACK_ITEM = f',"{_CLUB_BACK}"]'


def pass_json_bytes(facts: CardFacts, club: ClubJson, *, authentication_token: str,
                    survey_url: str | None = None) -> bytes:
    """pass.json of one member: the same JSON as ``dumps(build_pass_json())``
    up to key order. The text is a template of the club's part and the
    member's layout, made once per club state and card shape (what the
    card shows, not the values), with the member's values spliced in."""
    chain = barcode_chain(facts.card_number, club.barcode_format)
    shape = _shape(facts, chain, bool(survey_url))
    template = club.templates.get(shape)
    if template is None:
        template = club.templates[shape] = _template(facts, club, chain, bool(survey_url))
    found = [value(facts, authentication_token, survey_url) for value in template.values]
    parts = template.layout.copy()
    # As the encoder writes them: ints as numbers, everything else is text.
    parts[1::2] = template.places([str(v) if type(v) is int else _encode_string(v) for v in found])
    return "".join(parts).encode("utf-8")


def _shape(facts: CardFacts, chain: list[str], survey: bool) -> Hashable:
    """Everything ``_member_layout`` decides on besides the club's design:
    two cards of one design with the same shape differ only in values."""
    return (facts.active, bool(facts.tier), facts.discount_percent is not None, facts.has_points,
            facts.has_cashback, facts.has_stamps, facts.cashback_percent is not None,
            bool(facts.expiring_points > 0 and facts.expiring_on), facts.pending > 0, bool(facts.member_name),
            bool(facts.stamp_reward), survey, tuple(chain))


# A value's place in a template: a JSON string no member value can be written
# as (noncharacters around the slot's name; member values are never in the
# template's text, they are spliced in after it is split).
_SLOT_MARK = "\ufdd0"
_SLOT_RE = re.compile(f'"{_SLOT_MARK}([a-z_]+){_SLOT_MARK}"')


def _template(facts: CardFacts, club: ClubJson, chain: list[str], survey: bool) -> _Template:
    """pass.json's UTF-8 split around the member's values: the layout is
    text, value, text, ..., text, with the values' places (odd indices)
    left empty for ``slots`` (and ``unique``, the same once each); the
    club's keys and back fields are in the texts."""
    member = _member_layout(facts, lambda slot: f"{_SLOT_MARK}{slot}{_SLOT_MARK}", chain,
                            poster=club.poster, survey=survey)
    styles = styles_of(member)
    for style in styles:
        style["backFields"].append(_CLUB_BACK)
    text = _ENCODER.encode(member)
    if text.count(_CLUB_BACK_ITEM) != len(styles):
        raise AssertionError("unexpected pass.json layout")
    # Slots are looked for in the member's layout alone: the club's text
    # could hold anything, a placeholder's look too.
    pieces = _SLOT_RE.split(text)
    texts, slots = pieces[0::2], pieces[1::2]
    club_back = ("," + club.back if club.back else "") + "]"
    texts = [piece.replace(_CLUB_BACK_ITEM, club_back) for piece in texts]
    texts[0] = "".join(("{", club.keys, ",", texts[0][1:]))
    layout = [""] * len(pieces)
    layout[0::2] = texts
    unique = list(dict.fromkeys(slots))
    at = [unique.index(slot) for slot in slots]
    # itemgetter of one index returns the item itself, not a 1-tuple.
    places = itemgetter(*at) if len(at) > 1 else (lambda values: (values[at[0]],))
    return _Template(layout, tuple(_SLOTS[slot] for slot in unique), places)


def _slot_value(slot: str, facts: CardFacts, authentication_token: str, survey_url: str | None) -> Any:
    return _SLOTS[slot](facts, authentication_token, survey_url)


def _percent(value: Decimal | None, locale: str) -> str:
    return format_percent(value, locale) if value is not None else ""


# What the member sees, by slot: one place for each value, used by the plain
# layout and by the template alike. Each takes the card facts, the pass's
# authentication token and the survey's URL; texts are in the card's language.
_SLOTS: dict[str, Callable[[CardFacts, str, str | None], Any]] = {
    "token": lambda f, token, survey: token,
    "survey": lambda f, token, survey: survey,
    "serial": lambda f, token, survey: f.serial_number,
    "card_number": lambda f, token, survey: f.card_number,
    "expiration": lambda f, token, survey: w3c_datetime(f.ended_at or datetime.now(timezone.utc)),
    "balance": lambda f, token, survey: f.balance,
    "pending": lambda f, token, survey: f.pending,
    "cash": lambda f, token, survey: format_money(f.cash_balance, f.currency, f.language),
    "stamps": lambda f, token, survey: _stamps_text(f),
    "discount": lambda f, token, survey: _percent(f.discount_percent, f.language),
    "cashback": lambda f, token, survey: _percent(f.cashback_percent, f.language),
    "tier": lambda f, token, survey: cut(f.tier, FRONT_VALUE_MAX),
    "expiring": lambda f, token, survey: (expiring_text(f.expiring_points, f.expiring_on, f.language)
                                          if f.expiring_on else ""),
    "member": lambda f, token, survey: cut(f.member_name, FRONT_VALUE_MAX),
    "member_or_number": lambda f, token, survey: cut(f.member_name, FRONT_VALUE_MAX) or f.card_number,
    "member_name": lambda f, token, survey: cut(f.member_name, 200) or "-",
    "news": lambda f, token, survey: cut(f.message or "", BACK_VALUE_MAX, multiline=True) or " ",
    "reward": lambda f, token, survey: cut(f.stamp_reward, BACK_VALUE_MAX, multiline=True),
}


# --------------------------------------------------------------------------
# Fields
# --------------------------------------------------------------------------


def _field(key: str, label: str, value: Any, change: str | None = None) -> dict[str, Any]:
    if change:
        return {"key": key, "label": label, "value": value, "changeMessage": change}
    return {"key": key, "label": label, "value": value}


def _fields(facts: CardFacts, value: Callable[[str], Any]) -> dict[str, list[dict[str, Any]]]:
    front: list[dict[str, Any]] = []

    # The primary field is the figure the program is about.
    if facts.has_points:
        primary = _field("balance", TEXT["label_points"], value("balance"), TEXT["change_points"])
    elif facts.has_cashback:
        primary = _field("cash", TEXT["label_cash"], value("cash"), TEXT["change_cash"])
    elif facts.has_stamps:
        primary = _field("stamps", TEXT["label_stamps"], value("stamps"), TEXT["change_stamps"])
    elif facts.discount_percent is not None:
        primary = _field("discount", TEXT["label_discount"], value("discount"), TEXT["change_discount"])
    else:
        primary = _field("member", TEXT["label_member"], value("member_or_number"))
    used = {primary["key"]}

    def add(field: dict[str, Any]) -> None:
        if field["key"] not in used:
            used.add(field["key"])
            front.append(field)

    if facts.tier:
        add(_field("tier", TEXT["label_tier"], value("tier"), TEXT["change_tier"]))
    if facts.discount_percent is not None:
        add(_field("discount", TEXT["label_discount"], value("discount"), TEXT["change_discount"]))
    if facts.cashback_percent is not None:
        add(_field("cashback", TEXT["label_cashback"], value("cashback"), TEXT["change_cashback"]))
    if facts.has_points and facts.expiring_points > 0 and facts.expiring_on:
        add(_field("expiring", TEXT["label_expiring"], value("expiring"), TEXT["change_expiring"]))
    if facts.has_cashback:
        add(_field("cash", TEXT["label_cash"], value("cash"), TEXT["change_cash"]))
    if facts.has_stamps:
        add(_field("stamps", TEXT["label_stamps"], value("stamps"), TEXT["change_stamps"]))
    if facts.has_points and facts.pending > 0:
        add(_field("pending", TEXT["label_pending"], value("pending"), TEXT["change_pending"]))

    if facts.member_name and len(front) < FRONT_SLOTS:
        add(_field("member", TEXT["label_member"], value("member")))

    shown, overflow = front[:FRONT_SLOTS], front[FRONT_SLOTS:]
    back: list[dict[str, Any]] = []
    if not facts.active:
        back.append(_field("status", TEXT["label_status"], TEXT["status_ended"]))
    # The news field is what club messages change; its changeMessage puts the
    # text on the lock screen. Always present so a first message is a change.
    back.append(_field("news", TEXT["label_news"], value("news"), TEXT["change_news"]))
    back.extend(overflow)
    if facts.has_stamps and facts.stamp_reward:
        back.append(_field("reward", TEXT["label_reward"], value("reward")))
    if "member" not in used:
        back.append(_field("member_name", TEXT["label_member"], value("member_name")))
    back.append(_field("card_number", TEXT["label_card_number"], value("card_number")))
    return {
        "primaryFields": [primary],
        "secondaryFields": shown[:2],
        "auxiliaryFields": shown[2:],
        "backFields": back,
    }


def _poster_fields(card: dict[str, list[dict[str, Any]]], facts: CardFacts,
                   value: Callable[[str], Any]) -> dict[str, list[dict[str, Any]]]:
    """The poster's fields from the store card's, with the same keys so a
    change shows the same message: the program's figure in the header, the
    member's name as the bold title and then the tier and the other figures,
    the card number in the footer (Apple: show the credential so a till can
    type it where the barcode does not scan)."""
    figure = card["primaryFields"][0]
    header = [figure] if figure["key"] != "member" else []
    primary: list[dict[str, Any]] = []
    if facts.member_name:
        primary.append({"key": "member", "value": value("member")})
    shown = [f for f in card["secondaryFields"] + card["auxiliaryFields"] if f["key"] != "member"]
    room = POSTER_PRIMARY_SLOTS - len(primary)
    primary.extend(shown[:room])
    footer = [_field("card_number", TEXT["label_card_number"], value("card_number"))]
    dropped = {"card_number"} | ({"member_name"} if facts.member_name else set())
    back = [f for f in card["backFields"] if f["key"] not in dropped]
    # What the poster has no room for goes to the back, after the news.
    after_news = next(i for i, f in enumerate(back) if f["key"] == "news") + 1
    back[after_news:after_news] = shown[room:]
    return {"headerFields": header, "primaryFields": primary, "footerFields": footer, "backFields": back}


def _stamps_text(facts: CardFacts) -> str:
    if facts.stamps_required:
        return f"{facts.stamps} / {facts.stamps_required}"
    return str(facts.stamps)


# --------------------------------------------------------------------------
# Barcodes, locations, colours
# --------------------------------------------------------------------------


def barcode_chain(card_number: str, fmt: str) -> list[str]:
    """The club's format and its fallbacks, in the priority order of the
    barcodes array; Wallet draws the first one the device can.

    Apple (Pass.Barcodes; WWDC26 "What's new in Wallet"): iOS 26 and older
    draw no Code 39, Codabar, EAN-13 or ITF, and a pass with only one of them
    shows no barcode there, so these are followed by Code 128 (a linear code
    the same tills read, drawn since iOS 9) and QR; Code 128 is not drawn on
    watchOS, so it is followed by QR. Formats that cannot encode this card
    number are left out.
    """
    chain, any_latin1 = _chain_of(fmt)
    # Those formats encode any Latin-1 text, and ASCII is Latin-1: every
    # ASCII card number keeps the whole chain without a check each.
    if any_latin1 and card_number and card_number.isascii():
        return list(chain)
    return [f for f in chain if encodable(f, card_number)] or ["qr"]


@lru_cache(maxsize=64)
def _chain_of(fmt: str | None) -> tuple[tuple[str, ...], bool]:
    """The formats ``barcode_chain`` tries for a club's format, and whether
    each of them encodes any Latin-1 text (``encodable``)."""
    fmt = (fmt or "qr").lower()
    if fmt not in BARCODE_FORMATS:
        fmt = "qr"
    chain = [fmt]
    if fmt in NEW_IN_IOS_27:
        chain.append("code128")
    if fmt in NEW_IN_IOS_27 or fmt == "code128":
        chain.append("qr")
    return tuple(chain), CHECKED_FORMATS.isdisjoint(chain)


def _barcodes(chain: list[str], card_number: Any) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    def barcode(name: str) -> dict[str, Any]:
        return {"format": BARCODE_FORMATS[name], "message": card_number,
                "messageEncoding": "iso-8859-1", "altText": card_number}

    legacy = next((f for f in chain if f in LEGACY_FORMATS), "qr")
    return [barcode(f) for f in chain], barcode(legacy)


def _locations(raw: list[dict[str, Any]] | None, club_name: str) -> list[dict[str, Any]]:
    result: list[dict[str, Any]] = []
    for item in raw or []:
        if len(result) == MAX_LOCATIONS:
            break
        try:
            lat = float(item["latitude"])
            lon = float(item["longitude"])
        except (KeyError, TypeError, ValueError):
            continue
        if not (-90 <= lat <= 90 and -180 <= lon <= 180):
            continue
        text = item.get("relevant_text") or item.get("relevantText") or (
            f"{club_name}: {item['name']}" if item.get("name") else club_name
        )
        result.append({"latitude": lat, "longitude": lon, "relevantText": cut(str(text), 100)})
    return result


def rgb(value: str | None, default: tuple[int, int, int]) -> str:
    r, g, b = parse_hex_color(value) or default
    return f"rgb({r}, {g}, {b})"


# --------------------------------------------------------------------------
# Text helpers
# --------------------------------------------------------------------------


def cut(text: str | None, limit: int, *, multiline: bool = False) -> str:
    """Cuts knowingly: an ellipsis shows that something was left out."""
    if not text:
        return ""
    text = text.strip() if multiline else " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def w3c_datetime(value: datetime) -> str:
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    return value.astimezone(timezone.utc).replace(microsecond=0).isoformat().replace("+00:00", "Z")

