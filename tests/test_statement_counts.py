"""What the hottest paths cost the database, counted: the statements and
commits of one purchase through the core and through the API, and of a
phone's pass fetch. An ORM change that adds round trips (a lazy load, an
early autoflush, a second commit) fails here instead of slowing every till
and every phone."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import event, func, select
from sqlalchemy.orm import Session

from tests.support.api import Api, make_brand
from tests.support.app import TEST_PASS_TYPE
from tests.support.apple import make_club, make_member
from tests.support.ledger import set_program
from wallet.api.models import DONE, IdempotencyKey
from wallet.db import Database
from wallet.loyalty import ledger
from wallet.loyalty.ledger_models import LedgerTransaction, PointLot
from wallet.loyalty.models import Membership, OutboxEvent

# Points with tiers (the rolling-spend query), cashback and stamps: every
# figure a purchase moves. Statements of a purchase, by backend: SQLite also
# takes its change counter (cards.py).
PROGRAM = {
    "points": {"earn_points": 5, "per_amount": 10000, "expiry_days": 365},
    "tiers": {"levels": [{"name": "Silver", "min_spend": 0},
                         {"name": "Gold", "min_spend": 300_000_000, "earn_points": 7}]},
    "cashback": {"percent": "1"},
    "stamps": {"required": 10, "reward": "Free coffee"},
}
# lock the member (its row only, with its club's updated_at: the club's rules
# are kept per process; whether the brand has webhooks: it has none, and when
# its first lot falls due: none is) / ledger entry and its lot, returning the
# rolling spend before it (one statement on PostgreSQL; three on SQLite: the
# spend, the entry, the lot) / the member's figures and
# version with its outbox row (one statement on PostgreSQL, the UPDATE as a
# CTE; two on SQLite).
CORE = {"postgresql": 3, "sqlite": 7}
# With no higher tier within reach (the top tier, or a club without tiers)
# nothing waits for the entry's id or the spend: on PostgreSQL the entry and
# its lot go with the card change, one statement (ledger.booking.book_and_finish).
CORE_NO_TIER_IN_REACH = {"postgresql": 2, "sqlite": 6}
# The API adds the key lookup (on PostgreSQL only for a key this process has
# not seen live, which the warm-up purchase below makes this one: the
# Idempotency-Key's row checks the key itself) and the Idempotency-Key's row
# with its answer: on PostgreSQL it rides with the card change's statement
# (wallet.api.idempotency.AnswerRider), on SQLite it is inserted after the
# work. The answer's club and brand are kept per club state (wallet.api.views),
# read by the warm-up.
HTTP = {"postgresql": 3, "sqlite": 9}
# With no higher tier within reach the entry goes with the card change too:
# the member's lock and that one statement.
HTTP_NO_TIER_IN_REACH = {"postgresql": 2, "sqlite": 8}


@dataclass
class Counted:
    statements: list[str] = field(default_factory=list)
    commits: int = 0


@contextmanager
def counting(db: Database) -> Iterator[Counted]:
    counted = Counted()
    engines = {db.engine, db.write_engine}

    def on_statement(_conn, _cursor, statement, *_args) -> None:  # noqa: ANN001
        if not statement.lstrip().upper().startswith("BEGIN"):
            counted.statements.append(statement.split("\n")[0][:100])

    def on_commit(_conn) -> None:  # noqa: ANN001
        counted.commits += 1

    for engine in engines:
        event.listen(engine, "before_cursor_execute", on_statement)
        event.listen(engine, "commit", on_commit)
    try:
        yield counted
    finally:
        for engine in engines:
            event.remove(engine, "before_cursor_execute", on_statement)
            event.remove(engine, "commit", on_commit)


def _member(api: Api) -> int:
    club = api.club(program=PROGRAM)
    member = api.member(club["id"])
    api.purchase(member["id"], 250_000)  # the key's use is recorded, caches are warm
    return member["id"]


def test_a_purchase_in_the_core_costs_its_statements_and_one_commit(client: FlaskClient, db: Database,
                                                                      backend: str) -> None:
    member_id = _member(Api(client, make_brand(db).key))
    with counting(db) as counted, db.transaction() as session:
        member = ledger.get_member_for_update(session, member_id)
        txn = ledger.purchase(session, member, amount=250_000, actor="till")
    assert txn.points == 125
    assert len(counted.statements) == CORE[backend], "\n".join(counted.statements)
    assert counted.commits == 1


def test_a_purchase_with_no_tier_in_reach_writes_its_entry_with_the_card_change(
        client: FlaskClient, db: Database, backend: str) -> None:
    api = Api(client, make_brand(db).key)
    club_id = api.club(program={key: rules for key, rules in PROGRAM.items() if key != "tiers"})["id"]
    member_id = api.member(club_id)["id"]
    api.purchase(member_id, 250_000)
    with db.session() as s:
        version, queued = s.get(Membership, member_id).version, _queued(s, member_id)
    with counting(db) as counted, db.transaction() as session:
        member = ledger.get_member_for_update(session, member_id)
        txn = ledger.purchase(session, member, amount=250_000, actor="till")
    assert len(counted.statements) == CORE_NO_TIER_IN_REACH[backend], "\n".join(counted.statements)
    assert counted.commits == 1
    # The entry, its lot and the card are all written, as by a purchase in reach of a tier.
    with db.session() as s:
        entry = s.get(LedgerTransaction, txn.id)
        lot = s.scalars(select(PointLot).where(PointLot.source_id == txn.id)).one()
        card = s.get(Membership, member_id)
        assert _queued(s, member_id) == queued + 1
    assert (entry.points, entry.amount, lot.points, lot.remaining) == (125, 250_000, 125, 125)
    assert (card.balance, card.stamps, card.cash_balance, card.version) == (250, 2, 5000, version + 1)


def _queued(session: Session, member_id: int) -> int:
    return len(session.scalars(select(OutboxEvent.id).where(OutboxEvent.membership_id == member_id)).all())


def test_a_purchase_through_the_api_costs_its_statements_and_one_commit(app: Flask, client: FlaskClient,
                                                                          db: Database, backend: str) -> None:
    api = Api(client, make_brand(db).key)
    member_id = _member(api)
    with counting(db) as counted:
        answer = api.purchase(member_id, 250_000)
    assert answer["transaction"]["points"] == 125
    assert len(counted.statements) == HTTP[backend], "\n".join(counted.statements)
    assert counted.commits == 1


@pytest.mark.parametrize("tiers", [False, True], ids=["no tier in reach", "a tier in reach"])
def test_a_purchase_through_the_api_writes_its_key_with_the_card_change(
        client: FlaskClient, db: Database, backend: str, tiers: bool) -> None:
    brand = make_brand(db)
    api = Api(client, brand.key)
    club_id = api.club(program={key: rules for key, rules in PROGRAM.items() if tiers or key != "tiers"})["id"]
    member_id = api.member(club_id)["id"]
    api.purchase(member_id, 250_000)  # the key's use is recorded, caches are warm
    body = {"type": "purchase", "amount": 250_000}
    with counting(db) as counted:
        answer = api.post(f"/members/{member_id}/transactions", body, key="till-7-sale-1")
    assert answer.status_code == 201
    assert len(counted.statements) == (HTTP if tiers else HTTP_NO_TIER_IN_REACH)[backend], \
        "\n".join(counted.statements)
    assert counted.commits == 1
    # The key's row holds the answer as sent, the entry's id in it.
    with db.session() as s:
        row = s.scalars(select(IdempotencyKey).where(IdempotencyKey.brand_id == brand.id,
                                                     IdempotencyKey.key == "till-7-sale-1")).one()
        entry = s.get(LedgerTransaction, answer.get_json()["transaction"]["id"])
    assert (row.state, row.response_status, row.response_body) == (DONE, 201, answer.get_data(as_text=True))
    assert row.completed_at is not None and (entry.membership_id, entry.amount) == (member_id, 250_000)
    replayed = api.post(f"/members/{member_id}/transactions", body, key="till-7-sale-1")
    assert replayed.data == answer.data and replayed.headers["Idempotent-Replayed"] == "true"
    with db.session() as s:
        assert s.scalar(select(func.count()).select_from(LedgerTransaction)
                        .where(LedgerTransaction.membership_id == member_id,
                               LedgerTransaction.amount.is_not(None))) == 2


def test_a_pass_fetch_reads_one_row_and_signs_once_per_card_state(client: FlaskClient, db: Database) -> None:
    member_id = make_member(db, make_club(db))
    with db.session() as s:
        m = s.get(Membership, member_id)
        path, headers = f"/apple/v1/passes/{TEST_PASS_TYPE}/{m.serial_number}", {
            "Authorization": f"ApplePass {m.auth_token}"}
    first = client.get(path, headers=headers)
    assert first.status_code == 200
    with counting(db) as counted:
        again = client.get(path, headers=headers)
        unchanged = client.get(path, headers={**headers, "If-Modified-Since": first.headers["Last-Modified"]})
    # The same card state: the same signed bytes, not a new signature.
    assert again.status_code == 200 and again.data == first.data
    assert unchanged.status_code == 304
    assert len(counted.statements) == 2, counted.statements  # one read each
    # A change the card shows: a new pass, signed anew (a bare version bump
    # could sign the same bytes within the same second).
    with db.transaction() as s:
        ledger.adjust(s, ledger.get_member_for_update(s, member_id), points=7, reason="Welcome gift", actor="test")
    changed = client.get(path, headers={**headers, "If-Modified-Since": first.headers["Last-Modified"]})
    assert changed.status_code == 200 and changed.data != first.data
    # Dated a second after the first version, but Last-Modified never runs
    # ahead of the clock (wallet.http_rules): within the first fetch's second
    # it may repeat the first date, and that date still fetches this version.
    assert parsedate_to_datetime(changed.headers["Last-Modified"]) >= parsedate_to_datetime(first.headers["Last-Modified"])


def test_a_purchase_reads_its_clubs_rules_once_per_club_state(client: FlaskClient, db: Database) -> None:
    """The lock reads the club's updated_at, not the club: its rules are
    kept per process and read again (one statement more) only after the
    club changed, and the booking then earns at the new rules."""
    api = Api(client, make_brand(db).key)
    club_id = api.club(program=PROGRAM)["id"]
    member_id = api.member(club_id)["id"]

    def purchase() -> tuple[int, int]:
        with counting(db) as counted, db.transaction() as session:
            txn = ledger.purchase(session, ledger.get_member_for_update(session, member_id), amount=250_000,
                                  actor="till")
        return txn.points, len(counted.statements)

    purchase()
    points, kept = purchase()
    assert points == 125
    set_program(db, club_id, {**PROGRAM, "points": {**PROGRAM["points"], "earn_points": 10}})
    assert purchase() == (250, kept + 1)
    assert purchase() == (250, kept)
