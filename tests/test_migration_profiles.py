"""Migration 0005 splits the shared customer records into per-membership
profiles on a database that holds them: every card, point, ledger row and
device registration survives, each membership keeps a copy of what its
brand was told, and the unproven customer links are gone until proven.
On SQLite and PostgreSQL."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.util import CommandError
from sqlalchemy import Connection, MetaData, create_engine, select, text

from tests.support.app import PG_URL, pg_schema
from tests.support.ledger import cached_figures, recompute_figures
from wallet.db import Database
from wallet.loyalty import identity
from wallet.loyalty.members import enrol
from wallet.loyalty.models import Club, Membership
from wallet.schema import alembic_config

BEFORE = "0004"
T = datetime(2026, 6, 1, 12, 0, tzinfo=timezone.utc)


@pytest.fixture(params=["sqlite"] + (["postgresql"] if PG_URL else []))
def empty_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'old.sqlite3'}"
        return
    with pg_schema("m") as url:
        yield url


class OldShape:
    """Rows written the way the schema before 0005 held them."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.tables = MetaData()
        self.tables.reflect(conn)
        self.sqlite = conn.dialect.name == "sqlite"

    def moment(self, value: datetime) -> datetime:
        return value.replace(tzinfo=None) if self.sqlite else value

    def add(self, table: str, **values: Any) -> int:
        values = {k: self.moment(v) if isinstance(v, datetime) else v for k, v in values.items()}
        result = self.conn.execute(self.tables.tables[table].insert().values(**values))
        return result.inserted_primary_key[0]

    def brand(self, name: str) -> int:
        return self.add("brands", name=name, email=f"{name.lower()}@brand.test", created_at=T)

    def club(self, brand_id: int, name: str, program: dict[str, Any]) -> int:
        return self.add("clubs", brand_id=brand_id, name=name, description="", category="cafe", currency="RUB",
                        foreground_color="#FFFFFF", background_color="#000000", label_color="#CCCCCC",
                        barcode_format="qr", design_version=1, terms="", locations=[], program=program,
                        created_at=T, updated_at=T)

    def customer(self, **values: Any) -> int:
        return self.add("customers", **{"name": "", "locale": "en", "created_at": T, **values})

    def membership(self, club_id: int, customer_id: int, n: int, **values: Any) -> int:
        return self.add("memberships", **{
            "club_id": club_id, "customer_id": customer_id, "card_number": f"40000000000{n}",
            "serial_number": f"serial-{n}", "auth_token": f"auth-token-{n:08d}", "download_token": f"dl-{n:012d}",
            "name": "", "status": "active", "balance": 0, "pending": 0, "cash_balance": 0, "stamps": 0,
            "expiring_points": 0, "version": 1, "change_seq": 0, "card_modified_at": T, "created_at": T,
            "referral_code": f"REF{n:05d}", **values})

    def purchase(self, membership_id: int, club_id: int, points: int, amount: int) -> None:
        txn = self.add("ledger_transactions", membership_id=membership_id, club_id=club_id, type="purchase",
                       points=points, balance_delta=points, pending_delta=0, cash_delta=0, stamps_delta=0,
                       amount=amount, currency="RUB", refunded_amount=0, actor="till", details={},
                       created_at=T)
        self.add("point_lots", membership_id=membership_id, source_id=txn, points=points, remaining=points,
                 earned_at=T, spendable_at=T, released=True, exhausted=False)

    def registration(self, membership_id: int, device: str) -> None:
        self.add("apple_registrations", device_library_identifier=device, pass_type_identifier="pass.test",
                 membership_id=membership_id, push_token=device * 4, created_at=T, updated_at=T)


def snapshot(db: Database) -> dict[str, Any]:
    """Everything that must come through the migration untouched."""
    with db.session() as s:
        rows = {}
        for table in ("ledger_transactions", "point_lots"):
            rows[table] = [tuple(r) for r in s.execute(text(f"SELECT * FROM {table} ORDER BY id"))]
        # The columns a registration had then (later migrations add others).
        rows["apple_registrations"] = [tuple(r) for r in s.execute(text(
            "SELECT id, device_library_identifier, pass_type_identifier, membership_id, push_token, created_at, "
            "updated_at FROM apple_registrations ORDER BY id"))]
        rows["cards"] = [tuple(r) for r in s.execute(text(
            "SELECT id, club_id, card_number, serial_number, auth_token, download_token, status, balance, "
            "pending, version, referral_code FROM memberships ORDER BY id"))]
        return rows


def test_shared_customers_become_per_membership_profiles_and_nothing_else_moves(empty_url: str) -> None:
    config = alembic_config(empty_url)
    command.upgrade(config, BEFORE)
    engine = create_engine(empty_url)
    with engine.begin() as conn:
        old = OldShape(conn)
        coffee_brand, book_brand = old.brand("Coffee"), old.brand("Books")
        coffee = old.club(coffee_brand, "Coffee", {"points": {"earn_points": 5, "per_amount": 10000},
                                                   "bonuses": {"birthday_points": 300}})
        books = old.club(book_brand, "Books", {"discount": {"percent": "10"}})
        # Ann told Coffee her phone and birthday; Books reads them back today.
        ann = old.customer(email="ann@example.com", phone="+79161234567", name="Ann", birthday=date(1990, 1, 5),
                           locale="ru")
        bob = old.customer(email="bob@example.com")
        ann_coffee = old.membership(coffee, ann, 1, balance=75)
        ann_books = old.membership(books, ann, 2, name="Anna at Books")
        bob_coffee = old.membership(coffee, bob, 3, status="ended")
        old.purchase(ann_coffee, coffee, 50, 100_000)
        old.purchase(ann_coffee, coffee, 25, 50_000)
        old.registration(ann_coffee, "a1b2c3d4")
        old.registration(ann_books, "e5f6a7b8")
    engine.dispose()
    db = Database(empty_url)
    try:
        before = snapshot(db)
        command.upgrade(config, "head")
        assert snapshot(db) == before
        command.check(config)  # the migrated schema is exactly the models'

        with db.session() as s:
            profiles = {m.id: (m.name, m.email, m.phone, m.birthday, m.locale, m.customer_id)
                        for m in s.scalars(select(Membership))}
            assert profiles == {
                ann_coffee: ("Ann", "ann@example.com", "+79161234567", date(1990, 1, 5), "ru", None),
                ann_books: ("Anna at Books", "ann@example.com", "+79161234567", date(1990, 1, 5), "ru", None),
                bob_coffee: ("", "bob@example.com", None, None, "en", None),
            }
            assert s.execute(text("SELECT count(*) FROM customers")).scalar() == 0
            m = s.get(Membership, ann_coffee)
            assert cached_figures(m) == recompute_figures(s, m)

        # After the split each brand changes only its own copy.
        with db.transaction() as s:
            s.get(Membership, ann_books).phone = "+79160000000"
        with db.session() as s:
            assert s.get(Membership, ann_coffee).phone == "+79161234567"

        # De-duplication within a club still holds on migrated rows, and an
        # ended card makes way for a new one.
        with db.transaction() as s:
            again, created = enrol(s, s.get(Club, coffee), email="ANN@example.com")
            assert (again.id, created) == (ann_coffee, False)
            returning, created = enrol(s, s.get(Club, coffee), email="bob@example.com")
            assert created and returning.id != bob_coffee

        # The old links were unproven: cards join a customer again only on proof.
        identity.request_email_sign_in(db, "ann@example.com", link_for=lambda t: f"https://w.test/{t}")
        with db.session() as s:
            body = s.execute(text("SELECT payload FROM outbox ORDER BY id DESC")).scalar()
        token = (body if isinstance(body, dict) else json.loads(body))["body"].split("https://w.test/")[1].split()[0]
        customer = identity.verify_email_sign_in(db, token)
        with db.session() as s:
            assert {m.id for m in identity.memberships_of(s, customer.id)} == {ann_coffee, ann_books}
    finally:
        db.dispose()


def test_the_split_cannot_be_undone_by_a_downgrade(empty_url: str) -> None:
    config = alembic_config(empty_url)
    command.upgrade(config, "head")
    with pytest.raises((RuntimeError, CommandError)) as err:
        command.downgrade(config, BEFORE)
    assert "backup" in str(err.value)
