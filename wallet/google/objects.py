"""Google Wallet LoyaltyClass and LoyaltyObject resources, as data.

Drawn from the same CardFacts as the Apple pass, so both wallets show the
same figures.
"""

from __future__ import annotations

import re
from typing import Any

from wallet.loyalty.cardfacts import CardFacts
from wallet.loyalty.models import Club, Membership
from wallet.loyalty.money import to_micros

_ID_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")


def class_id(issuer_id: str, club: Club) -> str:
    return f"{issuer_id}.club-{club.id}"


def object_id(issuer_id: str, membership: Membership) -> str:
    # Google allows only [A-Za-z0-9._-] after the issuer id.
    suffix = _ID_UNSAFE.sub("_", f"member-{membership.club_id}-{membership.serial_number}")
    return f"{issuer_id}.{suffix}"


def _localized(en: str, ru: str | None = None) -> dict[str, Any]:
    value: dict[str, Any] = {"defaultValue": {"language": "en-US", "value": en}}
    if ru:
        value["translatedValues"] = [{"language": "ru-RU", "value": ru}]
    return value


def loyalty_class(issuer_id: str, club: Club, *, public_base_url: str) -> dict[str, Any]:
    resource: dict[str, Any] = {
        "id": class_id(issuer_id, club),
        "issuerName": club.brand.name[:20] or club.name[:20],
        "programName": club.name,
        "hexBackgroundColor": club.background_color,
        # Google approves classes itself; writes must never claim APPROVED.
        "reviewStatus": "UNDER_REVIEW",
        "programLogo": {
            "sourceUri": {"uri": f"{public_base_url}/google/images/clubs/{club.id}/logo-{club.design_version}.png"}
        },
        "callbackOptions": {"url": f"{public_base_url}/google/callback"},
        "localizedProgramName": _localized(club.name),
    }
    if club.locations:
        resource["locations"] = [
            {"latitude": loc["latitude"], "longitude": loc["longitude"]} for loc in club.locations[:10]
        ]
    if club.website:
        resource["linksModuleData"] = {"uris": [{"uri": club.website, "description": "Website"}]}
    return resource


_BARCODE_TYPES = {"qr": "QR_CODE", "pdf417": "PDF_417", "aztec": "AZTEC", "code128": "CODE_128"}


def loyalty_object(issuer_id: str, membership: Membership, facts: CardFacts) -> dict[str, Any]:
    club = membership.club
    resource: dict[str, Any] = {
        "id": object_id(issuer_id, membership),
        "classId": class_id(issuer_id, club),
        "state": "ACTIVE" if facts.active else "INACTIVE",
        "accountId": facts.card_number,
        "accountName": facts.member_name or facts.card_number,
        "barcode": {
            "type": _BARCODE_TYPES.get(club.barcode_format, "QR_CODE"),
            "value": facts.card_number,
            "alternateText": facts.card_number,
        },
    }
    if facts.has_points:
        resource["loyaltyPoints"] = {
            "label": "Points",
            "localizedLabel": _localized("Points", "Баллы"),
            "balance": {"int": facts.balance},
        }
    if facts.has_cashback:
        resource["secondaryLoyaltyPoints"] = {
            "label": "Cashback",
            "localizedLabel": _localized("Cashback", "Кешбэк"),
            "balance": {"money": {"micros": to_micros(facts.cash_balance, facts.currency),
                                   "currencyCode": facts.currency}},
        }
    elif facts.has_stamps:
        resource["secondaryLoyaltyPoints"] = {
            "label": "Stamps",
            "localizedLabel": _localized("Stamps", "Штампы"),
            "balance": {"int": facts.stamps},
        }
    if facts.tier:
        resource["rewardsTier"] = facts.tier
    modules = []
    if facts.expiring_points and facts.expiring_on:
        modules.append(
            {
                "id": "expiring",
                "header": "Points expiring",
                "body": f"{facts.expiring_points} points expire on {facts.expiring_on.isoformat()}",
            }
        )
    if facts.terms:
        modules.append({"id": "terms", "header": "Terms", "body": facts.terms[:1000]})
    if modules:
        resource["textModulesData"] = modules
    return resource
