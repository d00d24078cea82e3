"""Demo data for a fresh machine: one brand, two clubs, a few members.

Running it again keeps the data and issues the demo brand a fresh API key,
so the printed JSON is always usable.
"""

from __future__ import annotations

from typing import Any

from flask import Flask
from sqlalchemy import select

from wallet.apple.links import apple_pass_url
from wallet.demo_history import load_history
from wallet.extensions import get_db
from wallet.google.links import google_save_url
from wallet.loyalty.brands import create_api_key, create_brand
from wallet.loyalty.ledger import purchase
from wallet.loyalty.members import enrol
from wallet.loyalty.models import Brand, Club, Membership
from wallet.loyalty.program import validate_program

DEMO_EMAIL = "demo@walletclubs.example"
DEMO_PASSWORD = "demo-password"

POINTS_CLUB: dict[str, Any] = {
    "name": "Bean & Leaf Rewards",
    "description": "Earn points on every coffee and tea over 100.00 RUB; climb to Gold and Platinum.",
    "category": "cafe",
    "logo_text": "Bean & Leaf",
    "currency": "RUB",
    "country": "RU",
    "background_color": "#3B2F2F",
    "foreground_color": "#FFFFFF",
    "label_color": "#E8C39E",
    "barcode_format": "qr",
    "terms": "5 points per 100.00 RUB on purchases of 100.00 RUB or more. "
    "1 point = 1.00 RUB off. Points expire 365 days after they are earned.",
    "contact_email": "hello@beanleaf.example",
    "contact_phone": "+7 495 000-00-00",
    "website": "https://beanleaf.example",
    "locations": [
        {"name": "Bean & Leaf Tverskaya", "latitude": 55.7652, "longitude": 37.6050,
         "relevant_text": "Bean & Leaf is around the corner: show your card"},
        {"name": "Bean & Leaf Arbat", "latitude": 55.7494, "longitude": 37.5917,
         "relevant_text": "Bean & Leaf Arbat: your points are waiting"},
    ],
    "program": {
        "points": {"earn_points": 5, "per_amount": 10000, "rounding": "down", "min_purchase": 10000,
                   "redeem_value": 100, "expiry_days": 365, "pending_days": 0, "warning_days": 14},
        "tiers": {"window_days": 365, "review_days": 30, "levels": [
            {"name": "Silver", "min_spend": 0, "earn_points": 5},
            {"name": "Gold", "min_spend": 3000000, "earn_points": 7, "discount_percent": "3"},
            {"name": "Platinum", "min_spend": 10000000, "earn_points": 10, "discount_percent": "5"},
        ]},
        "bonuses": {"welcome_points": 100, "referral_points": 200, "birthday_points": 300},
    },
}

DISCOUNT_CLUB: dict[str, Any] = {
    "name": "Page Turner Club",
    "description": "10% off every book for members.",
    "category": "books",
    "logo_text": "Page Turner",
    "currency": "RUB",
    "country": "RU",
    "background_color": "#1E3A5F",
    "foreground_color": "#FFFFFF",
    "label_color": "#A7C7E7",
    "barcode_format": "code128",
    "terms": "Show the card at the till for 10% off. Not combinable with other offers.",
    "contact_email": "club@pageturner.example",
    "program": {"discount": {"percent": "10"}},
}

# Each membership keeps the profile its club was told: Anna gave the cafe her
# birthday and phone, the bookshop only her email. Phones without "+" are
# read in the club's country.
MEMBERS = [
    (0, {"email": "anna@example.com", "phone": "8 (916) 000-00-07", "name": "Anna Petrova",
         "birthday": "1990-03-14", "locale": "ru"}, [250000, 45000]),
    (0, {"email": "ivan@example.com", "name": "Ivan Smirnov"}, [3200000]),
    (0, {"phone": "+79160000001", "name": "Maria Ivanova", "locale": "ru"}, []),
    (1, {"email": "anna@example.com", "name": "Anna P."}, []),
    (1, {"email": "oleg@example.com", "name": "Oleg Kuznetsov"}, []),
]


def _club(brand: Brand, spec: dict[str, Any]) -> Club:
    data = dict(spec)
    data["program"] = validate_program(data["program"])
    return Club(brand_id=brand.id, **data)


def load_demo(app: Flask, *, history: bool = False) -> dict[str, Any]:
    """The demo brand, made once; ``history`` also gives its points club a
    generated history (wallet.demo_history), once."""
    db = get_db(app)
    answer = _load_demo(app)
    if history:
        load_history(db, answer["club_ids"][0])
    return answer


def _load_demo(app: Flask) -> dict[str, Any]:
    db = get_db(app)
    with db.transaction() as session:
        brand = session.scalar(select(Brand).where(Brand.email == DEMO_EMAIL))
        if brand is None:
            brand, api_key = create_brand(session, name="Demo Brands Ltd", email=DEMO_EMAIL,
                                          password=DEMO_PASSWORD)
            clubs = [_club(brand, POINTS_CLUB), _club(brand, DISCOUNT_CLUB)]
            session.add_all(clubs)
            session.flush()
            for club_index, person, purchases in MEMBERS:
                member, _created = enrol(session, clubs[club_index], actor="demo", source="demo", **person)
                for number, amount in enumerate(purchases, start=1):
                    purchase(session, member, amount=amount, receipt_id=f"demo-{member.id}-{number}",
                             actor="demo")
        else:
            _key, api_key = create_api_key(session, brand, name="demo")
        clubs = session.scalars(select(Club).where(Club.brand_id == brand.id).order_by(Club.id)).all()
        members = session.scalars(
            select(Membership).where(Membership.club_id.in_([c.id for c in clubs])).order_by(Membership.id)
        ).all()
        with app.test_request_context():
            return {
                "brand_id": brand.id,
                "api_key": api_key,
                "club_ids": [club.id for club in clubs],
                "members": [
                    {
                        "id": m.id,
                        "club_id": m.club_id,
                        "card_number": m.card_number,
                        "apple_pass_url": apple_pass_url(m),
                        "google_save_url": google_save_url(m),
                    }
                    for m in members
                ],
            }
