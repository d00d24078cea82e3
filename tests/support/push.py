"""A club with many members, each with a registered iPhone, inserted in bulk
(the kill-a-worker test and bench/push.py need 10,000 of them quickly)."""

from __future__ import annotations

import secrets

from sqlalchemy import insert, select

from wallet.apple.models import DeviceRegistration
from wallet.db import Database
from wallet.loyalty.models import Brand, Club, Membership


def push_token(n: int) -> str:
    return f"{n:064x}"


def club_with_registered_devices(
    db: Database, count: int, *, pass_type: str, program: dict | None = None, brand_id: int | None = None
) -> tuple[int, int, list[str]]:
    """Returns (brand id, club id, push tokens); member i has token push_token(i).
    A new brand owns the club unless ``brand_id`` is given."""
    tag = secrets.token_hex(4)
    with db.transaction() as session:
        if brand_id is None:
            brand = Brand(name="Bulk Brand", email=f"bulk-{tag}@brand.test")
            session.add(brand)
            session.flush()
            brand_id = brand.id
        club = Club(brand_id=brand_id, name="Bulk Club", program=program or {"discount": {"percent": "5"}})
        session.add(club)
        session.flush()
        club_id = club.id
        for start in range(0, count, 2000):
            session.execute(
                insert(Membership),
                [
                    {
                        "club_id": club_id,
                        "email": f"c{i}-{tag}@example.test",
                        "locale": "en",
                        "card_number": f"{i:012d}",
                        "serial_number": f"{tag}-{i:08d}",
                        "auth_token": secrets.token_urlsafe(24),
                        "download_token": f"dl{tag}{i:08d}{secrets.token_hex(8)}",
                        "name": f"Member {i}",
                    }
                    for i in range(start, min(count, start + 2000))
                ],
            )
        members = list(session.scalars(
            select(Membership.id).where(Membership.club_id == club_id).order_by(Membership.card_number)
        ))
        tokens = [push_token(i) for i in range(count)]
        for start in range(0, count, 2000):
            session.execute(
                insert(DeviceRegistration),
                [
                    {
                        "device_library_identifier": f"device{i:08d}",
                        "pass_type_identifier": pass_type,
                        "membership_id": members[i],
                        "push_token": tokens[i],
                    }
                    for i in range(start, min(count, start + 2000))
                ],
            )
    return brand_id, club_id, tokens
