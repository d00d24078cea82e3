"""A brand's existing members from a CSV file, with their starting balances.

The file is checked as a whole when it is uploaded (``start_import``): a
file that is not CSV text, lacks a header naming an email or phone column,
names a column we do not know, or has no rows is refused and nothing is
kept. A file that passes is stored with a job row and an outbox row; the
workers book it ``CHUNK`` rows at a time (``run_chunk``), each chunk in one
transaction with the job's progress, then queue the next chunk. A row that
breaks a rule (a bad email, a negative balance) is rolled back alone and
recorded for the error report; the rest of the file goes on.

Each row enrols its person (``members.enrol``: an email or phone the club
already has gives the existing member, unchanged) and books the row's
starting balance as a bonus with the dedupe key ``import:<member id>``: a
member gets a starting balance once, whatever file and however often it is
imported. So re-running a file books nothing twice.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import ClassVar

from sqlalchemy import select
from sqlalchemy.orm import Session

from wallet.db import utcnow
from wallet.loyalty.errors import LoyaltyError, RuleViolation
from wallet.loyalty.import_models import ImportStatus, MemberImport
from wallet.loyalty.ledger import apply_due, finish_booking, get_member_for_update, grant_bonus
from wallet.loyalty.members import enrol
from wallet.loyalty.models import Club, OutboxEvent
from wallet.loyalty.outbox import OutboxKind, OutboxPayload, require
from wallet.loyalty.program import MAX_POINTS, Program

SOURCE = "import"  # Membership.source of the cards an import made
ACTOR = "import"
CHUNK = 250  # rows per transaction: a chunk's bookings and the progress commit together
MAX_ROWS = 100_000
MAX_ERRORS_KEPT = 100_000

# Columns an import reads (with the names people also use for them), and
# the columns of our own export that it ignores, so an exported file
# imports again as it is.
COLUMNS = {
    "name": "name", "email": "email", "phone": "phone", "birthday": "birthday", "locale": "locale",
    "language": "locale", "balance": "balance", "points": "balance",
}
IGNORED = ("card_number", "pending", "cash_balance", "stamps", "tier", "status", "source", "created_at", "id")
_DELIMITERS = (",", ";", "\t")


@dataclass(frozen=True)
class ImportPayload(OutboxPayload):
    """An outbox row of kind member.import: book the rows of one import
    from ``start`` (the job's ``rows_done`` when the row was queued)."""

    kind: ClassVar[OutboxKind] = OutboxKind.MEMBER_IMPORT

    import_id: int
    start: int

    def __post_init__(self) -> None:
        require(self.import_id, int, "import_id")
        require(self.start, int, "start")


@dataclass(frozen=True)
class Row:
    number: int  # the line's row number in the file, the header being row 1
    values: dict[str, str]


def _bad_file(message: str) -> RuleViolation:
    return RuleViolation(message, code="invalid_csv")


def _text(content: bytes) -> str:
    """UTF-8 (with or without the BOM spreadsheets write), else Windows-1251,
    which Russian spreadsheets still save by default."""
    if b"\x00" in content:
        raise _bad_file("the file is not CSV text (it has NUL bytes)")
    try:
        return content.decode("utf-8-sig")
    except UnicodeDecodeError:
        pass
    try:
        return content.decode("cp1251")
    except UnicodeDecodeError:
        raise _bad_file("the file is neither UTF-8 nor Windows-1251 text") from None


def _reader(text: str) -> Iterator[list[str]]:
    first = text.split("\n", 1)[0]
    delimiter = max(_DELIMITERS, key=first.count)
    return csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)


def _header(names: list[str]) -> list[str | None]:
    """What each column holds (None: ignored); RuleViolation for a header
    we cannot read."""
    columns: list[str | None] = []
    for raw in names:
        name = raw.strip().lower().replace(" ", "_")
        if name in COLUMNS:
            if COLUMNS[name] in columns:
                raise _bad_file(f"the column {raw!r} appears twice")
            columns.append(COLUMNS[name])
        elif name in IGNORED or not name:
            columns.append(None)
        else:
            raise RuleViolation(
                f"unknown column {raw[:40]!r}: the header may name {', '.join(sorted(set(COLUMNS)))}",
                code="invalid_csv_header",
            )
    if "email" not in columns and "phone" not in columns:
        raise RuleViolation("the first row must be a header naming an email or a phone column",
                            code="invalid_csv_header")
    return columns


def read_rows(content: bytes) -> list[Row]:
    """The file's rows; RuleViolation when the file as a whole is unusable.
    A row with the wrong number of cells is kept, to be refused alone."""
    try:
        lines = _reader(_text(content))
        header = next(lines, None)
        if header is None:
            raise _bad_file("the file is empty")
        columns = _header(header)
        rows: list[Row] = []
        for cells in lines:
            if not any(cell.strip() for cell in cells):
                continue  # blank lines, as spreadsheets leave at the end
            if len(rows) >= MAX_ROWS:
                raise _bad_file(f"the file has more than {MAX_ROWS} rows: split it")
            values = {"_cells": str(len(cells))} if len(cells) != len(columns) else {}
            values.update({col: cell.strip() for col, cell in zip(columns, cells, strict=False) if col})
            rows.append(Row(lines.line_num, values))  # type: ignore[attr-defined]
    except csv.Error as exc:
        raise _bad_file(f"the file is not valid CSV: {exc}") from None
    if not rows:
        raise _bad_file("the file has a header but no rows")
    return rows


def start_import(session: Session, club: Club, *, file_name: str, content: bytes,
                 staff_user_id: int | None = None) -> MemberImport:
    """Check the file and queue its import into ``club``; RuleViolation
    (nothing kept) when the file is unusable."""
    rows = read_rows(content)
    job = MemberImport(brand_id=club.brand_id, club_id=club.id, staff_user_id=staff_user_id,
                       file_name=(file_name or "members.csv")[:255], content=content,
                       status=ImportStatus.QUEUED.value, total_rows=len(rows), rows_done=0, created=0, existing=0,
                       points_booked=0, errors=[])
    session.add(job)
    session.flush()
    _queue(session, job)
    return job


def _queue(session: Session, job: MemberImport) -> None:
    session.add(OutboxEvent.carrying(ImportPayload(import_id=job.id, start=job.rows_done),
                                     brand_id=job.brand_id, club_id=job.club_id))


def _balance(value: str) -> int:
    text = value.replace(" ", "").replace("\u00a0", "")
    if not text:
        return 0
    if not text.isascii() or not text.isdigit() or len(text) > 10 or int(text) > MAX_POINTS:
        raise RuleViolation(f"balance must be a whole number of points from 0 to {MAX_POINTS}",
                            code="invalid_balance")
    return int(text)


def _book_row(session: Session, club: Club, program: Program, row: Row, now: datetime) -> tuple[bool, int]:
    """Enrol one row's person and book its starting balance; returns
    (a new member, points booked)."""
    values = row.values
    if "_cells" in values:
        raise RuleViolation(f"the row has {values['_cells']} cells where the header has another number",
                            code="invalid_row")
    points = _balance(values.get("balance", ""))
    name = values.get("name", "")
    if name.startswith("'"):
        name = name[1:]  # our export's guard against spreadsheet formulas
    member, created = enrol(session, club, email=values.get("email") or None, phone=values.get("phone") or None,
                            name=name, birthday=values.get("birthday") or None,
                            locale=values.get("locale") or None, actor=ACTOR, now=now, source=SOURCE)
    if points == 0:
        return created, 0
    booked = []
    if not created:  # a new member is this transaction's own: nothing to lock, nothing due yet
        member = get_member_for_update(session, member.id)
        booked = apply_due(session, member, program, now)
    bonus = grant_bonus(session, member, points, kind=SOURCE, dedupe_key=f"import:{member.id}", actor=ACTOR,
                        program=program, now=now)
    if bonus is not None:
        booked.append(bonus)
    if booked:
        finish_booking(session, member, club, booked, new_card=created)
    return created, points if bonus is not None else 0


def run_chunk(session: Session, payload: ImportPayload, *, now: datetime | None = None) -> MemberImport | None:
    """Book the chunk of rows the payload names, record what became of each,
    and queue the next chunk (or finish the job), all in the caller's
    transaction. A payload whose chunk is already booked (a worker died
    after committing it) does nothing. Returns the job, None if it is gone."""
    job = session.scalar(select(MemberImport).where(MemberImport.id == payload.import_id).with_for_update())
    if job is None or job.status == ImportStatus.DONE or job.rows_done != payload.start:
        return job
    club = session.get(Club, job.club_id)
    if club is None:
        return None
    now = now or utcnow()
    program = Program.of(club)
    rows = read_rows(job.content)[job.rows_done: job.rows_done + CHUNK]
    errors = list(job.errors or [])
    for row in rows:
        try:
            with session.begin_nested():
                created, points = _book_row(session, club, program, row, now)
        except LoyaltyError as exc:
            if len(errors) < MAX_ERRORS_KEPT:
                errors.append({"row": row.number, "code": exc.code, "message": exc.message,
                               "values": {k: v for k, v in row.values.items() if not k.startswith("_")}})
            continue
        job.created += int(created)
        job.existing += int(not created)
        job.points_booked += points
    job.errors = errors
    job.rows_done += len(rows)
    if job.rows_done >= job.total_rows:
        job.status = ImportStatus.DONE.value
        job.finished_at = utcnow()
    else:
        job.status = ImportStatus.RUNNING.value
        _queue(session, job)
    return job


_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def cell(value: object) -> str:
    """A CSV cell a spreadsheet will not run: text that could start a
    formula gets a leading apostrophe (which an import takes off names)."""
    text = "" if value is None else str(value)
    if text.startswith(_FORMULA_START) and not _is_phone(text):
        return "'" + text
    return text


def _is_phone(text: str) -> bool:
    return text.startswith("+") and text[1:].isascii() and text[1:].isdigit()


REPORT_COLUMNS = ("name", "email", "phone", "birthday", "locale", "balance")


def error_report(job: MemberImport, wording: Callable[[str, str], str]) -> str:
    """The refused rows as CSV: the row's number in the file, why it was
    refused (``wording(code, core message)``, in the reader's language), and
    the row's values as they were."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["row", "error", *REPORT_COLUMNS])
    for entry in job.errors or []:
        values = entry.get("values") or {}
        writer.writerow([entry.get("row"), cell(wording(entry.get("code", ""), entry.get("message", ""))),
                         *(cell(values.get(k, "")) for k in REPORT_COLUMNS)])
    return out.getvalue()
