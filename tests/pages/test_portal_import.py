"""Members in and out as CSV, in a real browser: a 10,000-row file imports
in the background with its progress on the page, bad rows go to an error
report and sink nothing else, a file that is not a members CSV is refused,
and the export streams every member."""

from __future__ import annotations

import csv
import io
import re

import pytest
from sqlalchemy import func, select

from tests.pages.test_portal_members import _brand, _member, _sign_in
from wallet.db import Database
from wallet.jobs.outbox import drain
from wallet.loyalty.import_models import MemberImport
from wallet.loyalty.models import Membership

ROWS = 10_000
BAD = {  # row index (0-based, after the header) -> the mistake
    99: ("Broken Email", "not-an-email", "", "", "10"),
    4999: ("Negative", "neg@example.com", "", "", "-5"),
    6999: ("Bad Birthday", "born@example.com", "", "1850-01-01", "0"),
    8999: ("Nobody", "", "", "", "3"),
}


def _file(existing_email: str) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["Name", "Email", "Phone", "Birthday", "Balance"])
    for i in range(ROWS):
        if i in BAD:
            writer.writerow(BAD[i])
        elif i == 10:
            writer.writerow(["Ann Again", existing_email, "", "", "40"])
        elif i % 1000 == 1:
            writer.writerow([f"Phone Person {i}", "", f"+7916{i:07d}", "1990-02-03", str(i % 500)])
        else:
            writer.writerow([f"Person {i}", f"person{i}@example.com", "", "", str(i % 500)])
    return out.getvalue().encode("utf-8-sig")


def _upload(page, club_id: int, name: str, content: bytes, mime: str = "text/csv") -> None:  # type: ignore[no-untyped-def]
    page.goto(f"/portal/clubs/{club_id}/imports")
    page.get_by_label("CSV file", exact=True).set_input_files(files=[{"name": name, "mimeType": mime, "buffer": content}])
    page.get_by_role("button", name="Import", exact=True).click()


def _figure(page, name: str) -> int:  # type: ignore[no-untyped-def]
    return int(re.sub(r"\D", "", page.locator(f"[data-figure={name}]").inner_text()))


# Booking 10,000 members takes minutes on a busy machine; re-running a file
# is tested on a smaller one (tests/test_member_imports.py).
@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_a_10000_row_file_imports_with_progress_and_an_error_report(
    new_page, shoot, db: Database, live_server
) -> None:
    _brand_id, club_id = _brand(db, "owner@bean.test", "Bean Club")
    ann = _member(db, club_id, "Ann Lee", "ann@example.com")
    content = _file("ANN@example.com")
    expected_points = sum(i % 500 for i in range(ROWS) if i not in BAD and i != 10) + 40

    page = new_page("laptop")
    _sign_in(page, "owner@bean.test")
    page.goto(f"/portal/clubs/{club_id}/members")
    page.get_by_role("link", name="Import CSV").click()
    shoot(page, "portal-imports")
    _upload(page, club_id, "members.csv", content)
    assert page.get_by_role("heading", level=1).inner_text() == "Import of members.csv"
    assert "0 of 10,000 rows" in page.locator(".import-count").inner_text()
    shoot(page, "portal-import-queued")

    drain(live_server.app, max_batches=2)  # the first chunks, as a worker would take them
    page.wait_for_function("document.querySelector('#import-bar').value > 0")
    assert 0 < int(page.locator("#import-bar").get_attribute("value") or 0) < ROWS
    shoot(page, "portal-import-running")
    drain(live_server.app)
    page.get_by_text("Import finished").wait_for(timeout=30_000)
    assert page.locator(".import-count").inner_text() == "10,000 of 10,000 rows"
    assert _figure(page, "created") == ROWS - len(BAD) - 1
    assert _figure(page, "existing") == 1
    assert _figure(page, "failed") == len(BAD)
    assert _figure(page, "points") == expected_points
    shoot(page, "portal-import-done")
    phone = new_page("phone")
    _sign_in(phone, "owner@bean.test")
    phone.goto(page.url)
    shoot(phone, "portal-import-done")

    with page.expect_download() as download:
        page.get_by_role("link", name="Download the error report (CSV)").click()
    report = list(csv.DictReader(io.StringIO(download.value.path().read_text("utf-8-sig"))))
    assert [int(row["row"]) for row in report] == [i + 2 for i in sorted(BAD)]  # the header is row 1
    assert [row["name"] for row in report] == [BAD[i][0] for i in sorted(BAD)]
    assert "email address" in report[0]["error"] and "whole number" in report[1]["error"]

    with db.session() as session:
        imported = session.scalar(select(func.count(Membership.id)).where(Membership.source == "import"))
        assert imported == ROWS - len(BAD) - 1
        assert session.scalar(select(func.count(Membership.id)).where(Membership.club_id == club_id)) == ROWS - len(BAD)
        assert session.get(Membership, ann.id).balance == 40  # type: ignore[union-attr]
        assert session.scalar(select(Membership.phone).where(Membership.name == "Phone Person 1")) == "+79160000001"

    page.goto(f"/portal/clubs/{club_id}/members")
    with page.expect_download() as download:
        page.get_by_role("link", name="Export CSV").click()
    exported = list(csv.DictReader(io.StringIO(download.value.path().read_text("utf-8-sig"))))
    assert len(exported) == ROWS - len(BAD)
    assert sum(int(row["balance"]) for row in exported) == expected_points
    assert {row["card_number"] for row in exported} >= {ann.card_number}


def test_a_file_that_is_not_a_members_csv_is_refused_with_a_message_and_nothing_is_kept(
    new_page, shoot, db: Database
) -> None:
    _brand_id, club_id = _brand(db, "owner@bean.test", "Bean Club")
    page = new_page("phone")
    _sign_in(page, "owner@bean.test")
    for name, content, message in (
        ("logo.png", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "not a CSV file we can read"),
        ("empty.csv", b"", "not a CSV file we can read"),
        ("header.csv", b"name,email\n", "not a CSV file we can read"),
        ("columns.csv", b"name,mail,balance\nAnn,ann@example.com,5\n", "first row must name the columns"),
        ("quotes.csv", b'email,name\n"ann@example.com,"An"n\n', "not a CSV file we can read"),
    ):
        _upload(page, club_id, name, content)
        field = page.get_by_label("CSV file", exact=True)
        assert field.get_attribute("aria-invalid") == "true", name
        error = page.locator("#file-error").inner_text()
        assert message in error, (name, error)
    shoot(page, "portal-import-refused")
    with db.session() as session:
        assert session.scalar(select(func.count(MemberImport.id))) == 0
