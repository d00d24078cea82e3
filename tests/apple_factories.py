"""Rows for the Apple tests, inserted with the models directly (no enrol())."""

from __future__ import annotations

import secrets
from typing import Any

from wallet.db import Database
from wallet.loyalty.models import Brand, Club, Customer, Membership

POINTS_TIERS_PROGRAM: dict[str, Any] = {
    "points": {"earn_points": 5, "per_amount": 10000, "redeem_value": 100, "expiry_days": 365},
    "tiers": {
        "window_days": 365,
        "review_days": 30,
        "levels": [
            {"name": "Silver", "min_spend": 0, "earn_points": 5, "discount_percent": None},
            {"name": "Gold", "min_spend": 3000000, "earn_points": 7, "discount_percent": "3"},
        ],
    },
    "cashback": {"percent": "2.5"},
}


def make_club(db: Database, **overrides: Any) -> int:
    with db.transaction() as session:
        brand = Brand(name=overrides.pop("brand_name", "Coffee & Co"),
                      email=f"{secrets.token_hex(6)}@brand.test")
        club = Club(brand=brand, name=overrides.pop("name", "Bean Club"),
                    program=overrides.pop("program", POINTS_TIERS_PROGRAM),
                    terms="Points are valid for one year.", contact_email="hello@coffee.test",
                    contact_phone="+7 900 000-00-00", **overrides)
        session.add(club)
        session.flush()
        return club.id


def make_member(db: Database, club_id: int, **overrides: Any) -> int:
    with db.transaction() as session:
        token = secrets.token_hex(4)
        customer = Customer(email=f"m{token}@example.test", name=overrides.pop("customer_name", "Anna"),
                            locale=overrides.pop("locale", "en"))
        membership = Membership(
            club_id=club_id,
            customer=customer,
            card_number=overrides.pop("card_number", str(secrets.randbelow(10**12)).zfill(12)),
            serial_number=secrets.token_hex(16),
            auth_token=secrets.token_urlsafe(24),
            download_token=secrets.token_urlsafe(24),
            name=overrides.pop("name", "Anna Petrova"),
            **overrides,
        )
        session.add(membership)
        session.flush()
        return membership.id
