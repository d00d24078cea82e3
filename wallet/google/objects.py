"""Google Wallet LoyaltyClass and LoyaltyObject resources, as data.

Drawn from the same CardFacts as the Apple pass, and labelled with the same
words (passes/storeCard/<lang>.lproj/pass.strings, ``wallet.passtext``) in
the languages the club's card is written in, so both wallets show the same
figures in the same words. Field names and types are those of the walletobjects v1
discovery document (the tests validate every body against it): int64
values, such as Money.micros, travel as strings.
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

from wallet.loyalty.barcodes import LINEAR, encodable
from wallet.loyalty.cardfacts import CardFacts, card_languages
from wallet.loyalty.locales import expiring_text, format_percent
from wallet.loyalty.models import Club, Membership
from wallet.loyalty.money import to_micros
from wallet.loyalty.nps import survey_url
from wallet.passtext import labels

_ID_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")

# Google's language tags for our languages (BCP 47, as its examples write them).
LANGUAGE_TAGS = {"en": "en-US", "ru": "ru-RU"}
INT32_MAX = 2**31 - 1
# Google shows a text module's header in one line and cuts long bodies.
HEADER_MAX = 35
BODY_MAX = 500
ISSUER_NAME_MAX = 20
LOCATIONS_MAX = 10

# Barcode.type of the discovery document for each of the club's formats.
# Google's ITF is ITF_14, fourteen digits only: other numbers of an ITF club
# get Code 128, the linear code the Apple pass falls back to as well.
BARCODE_TYPES = {"qr": "QR_CODE", "pdf417": "PDF_417", "aztec": "AZTEC", "code128": "CODE_128",
                 "code39": "CODE_39", "codabar": "CODABAR", "ean13": "EAN_13", "itf": "ITF_14"}
ITF14_DIGITS = 14


def barcode_type(barcode_format: str, card_number: str) -> str:
    """The Google barcode type that carries ``card_number`` in the club's format."""
    if barcode_format == "itf" and not (len(card_number) == ITF14_DIGITS and card_number.isdigit()):
        return "CODE_128"
    if barcode_format in BARCODE_TYPES and encodable(barcode_format, card_number):
        return BARCODE_TYPES[barcode_format]
    return "CODE_128" if barcode_format in LINEAR and encodable("code128", card_number) else "QR_CODE"


def class_id(issuer_id: str, club_id: int) -> str:
    return f"{issuer_id}.club-{club_id}"


def object_id(issuer_id: str, membership: Membership) -> str:
    # Google allows only [A-Za-z0-9._-] after the issuer id.
    suffix = _ID_UNSAFE.sub("_", f"member-{membership.club_id}-{membership.serial_number}")
    return f"{issuer_id}.{suffix}"


def fingerprint(resource: dict[str, Any]) -> str:
    """What a body is, for "has Google already got exactly this?"."""
    return hashlib.sha256(json.dumps(resource, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


def word(key: str, lang: str) -> str:
    """One of the pass's labels in ``lang``."""
    return labels(lang).get(key, key)


def label(key: str, languages: tuple[str, ...]) -> dict[str, Any]:
    """A LocalizedString of one of the pass's labels in each of ``languages``."""
    return localized({lang: word(key, lang) for lang in languages})


def localized(values: dict[str, str]) -> dict[str, Any]:
    """A LocalizedString of ``values`` by language: the first one's text is
    the default."""
    first, *others = values
    result: dict[str, Any] = {"defaultValue": {"language": LANGUAGE_TAGS[first], "value": values[first]}}
    translated = [{"language": LANGUAGE_TAGS[lang], "value": values[lang]} for lang in others
                  if values.get(lang) and values[lang] != values[first]]
    if translated:
        result["translatedValues"] = translated
    return result


def _cut(text: str, limit: int) -> str:
    text = text.strip()
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _text_module(module_id: str, header_key: str, body: str, languages: tuple[str, ...], *,
                 localized_body: dict[str, str] | None = None) -> dict[str, Any]:
    module: dict[str, Any] = {
        "id": module_id,
        "header": _cut(word(header_key, languages[0]), HEADER_MAX),
        "localizedHeader": label(header_key, languages),
        "body": _cut(body, BODY_MAX),
    }
    if localized_body:
        module["localizedBody"] = localized({k: _cut(v, BODY_MAX) for k, v in localized_body.items()})
    return module


def logo_url(public_base_url: str, club: Club) -> str:
    # Versioned: a new logo gets a new URL, so Google's cache never serves the old one.
    return f"{public_base_url}/google/images/clubs/{club.id}/logo-{club.design_version}.png"


def hero_url(public_base_url: str, club: Club) -> str:
    return f"{public_base_url}/google/images/clubs/{club.id}/hero-{club.design_version}.png"


# The featured actions' words on the Google card (the Apple pass's own words
# are Wallet's), in pass.strings with the card's other labels.
ACTION_LABELS = {
    "membership_benefits": "Membership benefits",
    "offers_rewards": "Offers and rewards",
    "add_to_balance": "Add to balance",
    "order": "Order",
    "shop": "Shop",
    "book_appointment": "Book an appointment",
}


def _action_links(club: Club, languages: tuple[str, ...]) -> list[dict[str, Any]]:
    links = []
    for action in (club.featured_actions or [])[:2]:
        key = ACTION_LABELS.get(action.get("type", ""))
        if key:
            links.append({"id": f"action-{action['type']}", "uri": action["url"],
                          "description": word(key, languages[0]), "localizedDescription": label(key, languages)})
    return links


def loyalty_class(issuer_id: str, club: Club, *, public_base_url: str) -> dict[str, Any]:
    """The club's LoyaltyClass. Google approves classes itself: a write says
    UNDER_REVIEW, never APPROVED."""
    issuer_name = _cut(club.brand.name or club.name, ISSUER_NAME_MAX)
    languages = card_languages(club)
    resource: dict[str, Any] = {
        "id": class_id(issuer_id, club.id),
        "issuerName": issuer_name,
        "localizedIssuerName": localized({lang: issuer_name for lang in languages}),
        "programName": club.name,
        "localizedProgramName": localized({lang: club.name for lang in languages}),
        "programLogo": {
            "sourceUri": {"uri": logo_url(public_base_url, club)},
            "contentDescription": localized({lang: club.name for lang in languages}),
        },
        "hexBackgroundColor": club.background_color.lower(),
        "reviewStatus": "UNDER_REVIEW",
        "accountNameLabel": word("Member", languages[0]),
        "localizedAccountNameLabel": label("Member", languages),
        "accountIdLabel": word("Card number", languages[0]),
        "localizedAccountIdLabel": label("Card number", languages),
        "callbackOptions": {"url": f"{public_base_url}/google/callback"},
    }
    if club.country:
        resource["countryCode"] = club.country
    locations = [{"latitude": float(loc["latitude"]), "longitude": float(loc["longitude"])}
                 for loc in (club.locations or [])[:LOCATIONS_MAX]]
    if locations:
        resource["locations"] = locations
    if club.card_style == "poster":
        # The poster card's artwork as the banner across the card.
        resource["heroImage"] = {
            "sourceUri": {"uri": hero_url(public_base_url, club)},
            "contentDescription": localized({lang: club.name for lang in languages}),
        }
    # The featured actions first, as the Apple card shows them under the card.
    links = _action_links(club, languages)
    if club.website:
        links.append({"id": "website", "uri": club.website, "description": club.website})
    if club.contact_email:
        links.append({"id": "email", "uri": f"mailto:{club.contact_email}", "description": club.contact_email})
    if club.contact_phone:
        phone = re.sub(r"[^0-9+]", "", club.contact_phone)
        links.append({"id": "phone", "uri": f"tel:{phone}", "description": club.contact_phone})
    if links:
        resource["linksModuleData"] = {"uris": links}
    return resource


def _balance_int(value: int) -> dict[str, Any]:
    # LoyaltyPointsBalance.int is an int32; a larger figure is shown as text.
    return {"int": value} if -INT32_MAX <= value <= INT32_MAX else {"string": str(value)}


def _figure(key: str, balance: dict[str, Any], languages: tuple[str, ...]) -> dict[str, Any]:
    return {"label": word(key, languages[0]), "localizedLabel": label(key, languages), "balance": balance}


def _points(facts: CardFacts) -> dict[str, Any]:
    return _figure("Points", _balance_int(facts.balance), facts.languages)


def _cash(facts: CardFacts) -> dict[str, Any]:
    money = {"micros": str(to_micros(facts.cash_balance, facts.currency)), "currencyCode": facts.currency}
    return _figure("Cashback", {"money": money}, facts.languages)


def _stamps(facts: CardFacts) -> dict[str, Any]:
    return _figure("Stamps", _balance_int(facts.stamps), facts.languages)


def message_body(text: str, languages: tuple[str, ...]) -> dict[str, Any]:
    """A club message as a Google Message (addMessage), headed in the card's
    ``languages``."""
    return {"header": word("Latest news", languages[0]), "localizedHeader": label("Latest news", languages),
            "body": _cut(text, BODY_MAX)}


def loyalty_object(issuer_id: str, membership: Membership, facts: CardFacts, *,
                   public_base_url: str) -> dict[str, Any]:
    """The member's LoyaltyObject: state, account, figures, barcode, the
    text modules of the tier, the expiring points and the terms, and a link
    to the members' survey. The tier is the member's, so it is a text
    module: rewardsTier belongs to the class."""
    club = membership.club
    resource: dict[str, Any] = {
        "id": object_id(issuer_id, membership),
        "classId": class_id(issuer_id, club.id),
        "state": "ACTIVE" if facts.active else "EXPIRED",
        "accountId": facts.card_number,
        "accountName": facts.member_name or facts.card_number,
        "barcode": {
            "type": barcode_type(club.barcode_format, facts.card_number),
            "value": facts.card_number,
            "alternateText": facts.card_number,
        },
    }
    # Points are the card's figure; the cash balance (else the stamps) its second.
    if facts.has_points:
        resource["loyaltyPoints"] = _points(facts)
    if facts.has_cashback:
        resource["secondaryLoyaltyPoints"] = _cash(facts)
    elif facts.has_stamps:
        resource["secondaryLoyaltyPoints"] = _stamps(facts)
    modules = []
    languages = facts.languages
    if facts.tier:
        modules.append(_text_module("tier", "Level", facts.tier, languages))
    if facts.has_stamps and facts.has_cashback:
        modules.append(_text_module("stamps", "Stamps", str(facts.stamps), languages))
    if facts.discount_percent is not None:
        modules.append(_text_module(
            "discount", "Discount", format_percent(facts.discount_percent, languages[0]), languages,
            localized_body={lang: format_percent(facts.discount_percent, lang) for lang in languages}))
    if facts.has_points and facts.expiring_points > 0 and facts.expiring_on:
        modules.append(_text_module(
            "expiring", "Expiring", expiring_text(facts.expiring_points, facts.expiring_on, languages[0]),
            languages,
            localized_body={lang: expiring_text(facts.expiring_points, facts.expiring_on, lang)
                            for lang in languages}))
    if facts.terms:
        modules.append(_text_module("terms", "Terms", facts.terms, languages))
    if modules:
        resource["textModulesData"] = modules
    if facts.active:
        question = "How likely are you to recommend us?"
        resource["linksModuleData"] = {"uris": [{
            "id": "survey", "uri": survey_url(public_base_url, membership), "description": word(question, languages[0]),
            "localizedDescription": label(question, languages)}]}
    return resource
