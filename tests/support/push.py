"""A club with many members, each with a registered iPhone, inserted in bulk
(the kill-a-worker test and bench/push.py need from 10,000 to 1,000,000 of
them quickly): the rows are made by the database itself (INSERT ... SELECT
over a series), a chunk per statement, so nothing of their number is held in
Python."""

from __future__ import annotations

import secrets
from collections.abc import Iterator, Sequence
from typing import Any, overload

from sqlalchemy import BigInteger, Integer, String, cast, func, insert, literal, select
from sqlalchemy.sql.elements import ColumnElement

from wallet.apple.models import DeviceRegistration
from wallet.db import Database
from wallet.loyalty.models import Brand, Club, Membership

# Rows per INSERT ... SELECT.
CHUNK = 50_000


def push_token(n: int) -> str:
    return f"{n:064x}"


class PushTokens(Sequence[str]):
    """push_token(0) .. push_token(count - 1), made when asked for."""

    def __init__(self, count: int) -> None:
        self.count = count

    def __len__(self) -> int:
        return self.count

    @overload
    def __getitem__(self, index: int) -> str: ...
    @overload
    def __getitem__(self, index: slice) -> Sequence[str]: ...
    def __getitem__(self, index: int | slice) -> str | Sequence[str]:
        if isinstance(index, slice):
            return [push_token(i) for i in range(*index.indices(self.count))]
        if not -self.count <= index < self.count:
            raise IndexError(index)
        return push_token(index % self.count)

    def __iter__(self) -> Iterator[str]:
        return (push_token(i) for i in range(self.count))


def _padded(number: ColumnElement[Any], width: int, *, hexadecimal: bool = False, postgresql: bool) -> Any:
    """``number`` as text, zero-padded to ``width`` (in hexadecimal: a push token)."""
    if postgresql:
        text = func.to_hex(number, type_=String) if hexadecimal else cast(number, String)
        return func.lpad(text, width, "0", type_=String)
    return func.printf(f"%0{width}{'x' if hexadecimal else 'd'}", number, type_=String)


def _random_hex(postgresql: bool, n: ColumnElement[Any]) -> Any:
    """32 random hexadecimal digits per row."""
    if postgresql:
        return func.md5(cast(func.random(), String) + cast(n, String), type_=String)
    return func.lower(func.hex(func.randomblob(16)), type_=String)


def club_with_registered_devices(
    db: Database, count: int, *, pass_type: str, program: dict | None = None, brand_id: int | None = None
) -> tuple[int, int, Sequence[str]]:
    """Returns (brand id, club id, push tokens); member i has card number i
    and token push_token(i). A new brand owns the club unless ``brand_id``
    is given."""
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
    pg = not db.is_sqlite
    for start in range(0, count, CHUNK):
        stop = min(count, start + CHUNK)
        with db.transaction() as session:
            if pg:
                series = func.generate_series(start, stop - 1).table_valued("n").render_derived()
            else:
                series = _sqlite_series(start, stop)
            n = series.c.n
            members = select(
                literal(club_id).label("club_id"),
                ("c" + cast(n, String) + f"-{tag}@example.test").label("email"),
                literal("en").label("locale"),
                _padded(n, 12, postgresql=pg).label("card_number"),
                (f"{tag}-" + _padded(n, 8, postgresql=pg)).label("serial_number"),
                _random_hex(pg, n).label("auth_token"),
                (f"dl{tag}" + _padded(n, 8, postgresql=pg) + func.substr(_random_hex(pg, n), 1, 16, type_=String))
                .label("download_token"),
                ("Member " + cast(n, String)).label("name"),
            ).select_from(series)
            session.execute(insert(Membership).from_select(
                ["club_id", "email", "locale", "card_number", "serial_number", "auth_token", "download_token",
                 "name"], members))
            number = cast(Membership.card_number, BigInteger)
            registrations = select(
                ("device" + _padded(number, 8, postgresql=pg)).label("device_library_identifier"),
                literal(pass_type).label("pass_type_identifier"),
                Membership.id.label("membership_id"),
                _padded(number, 64, hexadecimal=True, postgresql=pg).label("push_token"),
            ).where(Membership.club_id == club_id, Membership.card_number >= f"{start:012d}",
                    Membership.card_number < f"{stop:012d}")
            session.execute(insert(DeviceRegistration).from_select(
                ["device_library_identifier", "pass_type_identifier", "membership_id", "push_token"], registrations))
    return brand_id, club_id, PushTokens(count)


def _sqlite_series(start: int, stop: int) -> Any:
    """Integers start .. stop - 1 as a table with column n (SQLite has no generate_series)."""
    numbers = select(literal(start, Integer).label("n")).cte("series", recursive=True)
    numbers = numbers.union_all(select(numbers.c.n + 1).where(numbers.c.n + 1 < stop))
    return numbers
