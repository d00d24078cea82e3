"""Importing a brand's existing members from CSV (wallet.loyalty.imports):
booked in chunks by the outbox workers, each chunk with the job's progress,
so nothing is booked twice: not by a file imported again, not by a chunk
whose worker died before or after its commit."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from tests.support.ledger import assert_consistent
from wallet.db import Database
from wallet.jobs.outbox import drain
from wallet.loyalty.brands import register_brand
from wallet.loyalty.clubs import create_club
from wallet.loyalty.errors import RuleViolation
from wallet.loyalty.import_models import MemberImport
from wallet.loyalty.imports import CHUNK, ImportPayload, read_rows, run_chunk, start_import
from wallet.loyalty.ledger_models import LedgerTransaction
from wallet.loyalty.members import enrol
from wallet.loyalty.models import Club, Membership, OutboxEvent

ROWS = CHUNK + 50  # two chunks


def _club(db: Database) -> int:
    with db.transaction() as session:
        brand, _owner = register_brand(session, name="Bean", email="owner@bean.test", password="correct horse")
        club = create_club(session, brand, {"name": "Bean Club", "country": "RU",
                                            "program": {"points": {"earn_points": 1, "per_amount": 100}}})
        return club.id


def _file(balance: int = 7) -> bytes:
    lines = ["email;name;balance"] + [f"p{i}@example.com;Person {i};{balance}" for i in range(ROWS)]
    return ("\r\n".join(lines) + "\r\n").encode()


def _start(db: Database, club_id: int, content: bytes) -> int:
    with db.transaction() as session:
        job = start_import(session, session.get(Club, club_id), file_name="members.csv", content=content)
        session.flush()
        return job.id


def _job(db: Database, job_id: int) -> MemberImport:
    with db.session() as session:
        job = session.get(MemberImport, job_id)
        session.expunge(job)
        return job  # type: ignore[return-value]


def _entries(db: Database) -> int:
    with db.session() as session:
        return session.scalar(select(func.count(LedgerTransaction.id))) or 0


def test_a_file_imported_again_books_nothing_twice(app, db: Database) -> None:
    club_id = _club(db)
    first = _start(db, club_id, _file())
    drain(app)
    job = _job(db, first)
    assert (job.status, job.rows_done, job.created, job.existing, job.points_booked) == ("done", ROWS, ROWS, 0, 7 * ROWS)
    booked = _entries(db)

    again = _start(db, club_id, _file(balance=9))  # the same people, other balances
    drain(app)
    job = _job(db, again)
    assert (job.status, job.created, job.existing, job.points_booked, job.errors) == ("done", 0, ROWS, 0, [])
    assert _entries(db) == booked
    with db.session() as session:
        assert set(session.scalars(select(Membership.balance))) == {7}
        assert set(session.scalars(select(Membership.source))) == {"import"}
        member_ids = list(session.scalars(select(Membership.id)))
    for member_id in member_ids[:: 25]:
        assert_consistent(db, member_id)


def test_someone_already_in_the_club_keeps_the_card_and_gets_the_starting_balance_once(app, db: Database) -> None:
    club_id = _club(db)
    with db.transaction() as session:
        member, _ = enrol(session, session.get(Club, club_id), email="p3@example.com", name="Already Here")
        session.flush()
        member_id, card = member.id, member.card_number
    _start(db, club_id, _file())
    drain(app)
    with db.session() as session:
        kept = session.get(Membership, member_id)
        assert (kept.name, kept.card_number, kept.balance, kept.source) == ("Already Here", card, 7, None)


def test_a_chunk_whose_worker_died_is_booked_again_and_one_already_committed_is_not(app, db: Database) -> None:
    club_id = _club(db)
    job_id = _start(db, club_id, _file())
    with pytest.raises(RuntimeError):
        with db.transaction() as session:
            run_chunk(session, ImportPayload(import_id=job_id, start=0))
            raise RuntimeError("the worker died before its commit")
    assert _job(db, job_id).rows_done == 0 and _entries(db) == 0
    drain(app)
    assert _job(db, job_id).rows_done == ROWS
    booked = _entries(db)
    # The first chunk's outbox row again, as if its worker died after the
    # commit but before marking the row done.
    with db.transaction() as session:
        run_chunk(session, ImportPayload(import_id=job_id, start=0))
    assert _entries(db) == booked
    with db.session() as session:
        assert session.scalar(select(func.count(Membership.id))) == ROWS
        pending = session.scalar(select(func.count(OutboxEvent.id)).where(
            OutboxEvent.kind == "member.import", OutboxEvent.done_at.is_(None)))
        assert pending == 0


def test_bad_rows_are_reported_and_the_rest_is_booked(app, db: Database) -> None:
    club_id = _club(db)
    content = ("\ufeffName,Email,Phone,Birthday,Points\n"
               "Ann,ann@example.com,,1990-01-05,10\n"
               "Bad,not-an-email,,,5\n"
               "Phone,,8 916 123-45-67,,\n"
               "Short,short@example.com\n"
               ",,,,\n"
               "Minus,minus@example.com,,,-1\n"
               "'=Formula,formula@example.com,,,1\n").encode()
    job_id = _start(db, club_id, content)
    drain(app)
    job = _job(db, job_id)
    assert [(e["row"], e["code"]) for e in job.errors] == [
        (3, "invalid_email"), (5, "invalid_row"), (7, "invalid_balance")]
    assert (job.created, job.points_booked) == (3, 11)
    with db.session() as session:
        assert session.scalar(select(Membership.phone).where(Membership.name == "Phone")) == "+79161234567"
        assert session.scalar(select(Membership.name).where(Membership.email == "formula@example.com")) == "=Formula"


@pytest.mark.parametrize("content, code", [
    (b"", "invalid_csv"),
    (b"email\n", "invalid_csv"),
    (b"name,balance\nAnn,5\n", "invalid_csv_header"),
    (b"email,colour\na@example.com,red\n", "invalid_csv_header"),
    (b"email,email\na@example.com,b@example.com\n", "invalid_csv"),
    (b"\x89PNG\r\n\x1a\n\x00\x00", "invalid_csv"),
    (b'email\n"a@example.com\n', "invalid_csv"),
])
def test_a_file_that_cannot_be_read_is_refused_whole(content: bytes, code: str) -> None:
    with pytest.raises(RuleViolation) as refused:
        read_rows(content)
    assert refused.value.code == code


def test_a_spreadsheet_saved_in_windows_1251_is_read() -> None:
    [row] = read_rows("имя;email\nАнна;anna@example.com\n".replace("имя", "name").encode("cp1251"))
    assert row.values == {"name": "Анна", "email": "anna@example.com"}
