"""A club's members as CSV: the export (streamed, a thousand rows a query)
and the import of existing members with starting balances, booked in the
background (wallet.loyalty.imports) while its page shows the progress."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator

from flask import Response, abort, redirect, render_template, stream_with_context, url_for
from flask_babel import gettext as _
from sqlalchemy import select, true
from sqlalchemy.orm import Session

from wallet.extensions import get_db, get_read_session, get_session, transactional
from wallet.loyalty.errors import LoyaltyError
from wallet.loyalty.import_models import ImportStatus, MemberImport
from wallet.loyalty.imports import cell, error_report, start_import
from wallet.loyalty.messages import club_page
from wallet.loyalty.models import Club, Membership
from wallet.web.forms import MESSAGES, refuse
from wallet.web.portal import MANAGERS, bp, staff_roles
from wallet.web.portal.actions import submitted
from wallet.web.portal.auth import REFUSED
from wallet.web.portal.members_forms import ImportForm
from wallet.web.portal.scope import brand_club_or_404
from wallet.web.security import current_staff

EXPORT_COLUMNS = ("card_number", "name", "email", "phone", "birthday", "locale", "balance", "pending",
                  "cash_balance", "stamps", "tier", "status", "source", "created_at")
_MAX_ID = 2**63 - 1

# Why a row was refused, in the reader's language (the core's codes).
ROW_MESSAGES = {
    "invalid_balance": lambda: _("The balance must be a whole number of points, 0 or more."),
    "invalid_row": lambda: _("The row has more or fewer cells than the header."),
    "invalid_locale": lambda: _("The language must be en or ru."),
}
FILE_MESSAGES = {
    "invalid_csv": lambda: _("This is not a CSV file we can read. Save it from your spreadsheet as CSV (UTF-8) "
                             "and try again."),
    "invalid_csv_header": lambda: _("The first row must name the columns: name, email, phone, birthday, "
                                    "balance (email or phone at least)."),
}


def row_message(code: str, message: str) -> str:
    if code in ROW_MESSAGES:
        return ROW_MESSAGES[code]()
    return str(MESSAGES.get(code) or message)


def _export_rows(club_id: int) -> Iterator[str]:
    """The CSV text a page of the club's members at a time
    (``messages.club_page``, in id order through the club's index, never a
    sort of the club per page), in a session of its own: the response
    streams after the request's session is gone."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(EXPORT_COLUMNS)
    yield "\ufeff" + out.getvalue()  # the BOM makes spreadsheets read UTF-8
    session = get_db().session()
    try:
        after = 0
        while True:
            page = club_page(session, club_id, after, true())
            if not page:
                return
            batch = session.scalars(select(Membership).where(Membership.id.in_([member_id for member_id, _ in page]))
                                    .order_by(Membership.id)).all()
            out.seek(0)
            out.truncate()
            for m in batch:
                writer.writerow([cell(v) for v in (
                    m.card_number, m.name, m.email, m.phone, m.birthday.isoformat() if m.birthday else "",
                    m.locale, m.balance, m.pending, m.cash_balance, m.stamps, m.tier, m.status, m.source,
                    m.created_at.isoformat())])
            after = page[-1][0]
            session.expunge_all()
            yield out.getvalue()
    finally:
        session.close()


@bp.get("/clubs/<int:club_id>/members.csv")
@staff_roles(*MANAGERS)
def export_members(club_id: int) -> Response:
    club = brand_club_or_404(get_read_session(), club_id)
    response = Response(stream_with_context(_export_rows(club.id)), mimetype="text/csv")
    response.headers["Content-Disposition"] = f'attachment; filename="club-{club.id}-members.csv"'
    response.headers["Cache-Control"] = "private, no-store"
    return response


def _imports_page(session: Session, club: Club, form: ImportForm, status: int = 200) -> tuple[str, int]:
    recent = session.scalars(select(MemberImport).where(MemberImport.club_id == club.id)
                             .order_by(MemberImport.id.desc()).limit(20)).all()
    return render_template("portal/imports.html", club=club, form=form, imports=recent), status


@bp.get("/clubs/<int:club_id>/imports")
@staff_roles(*MANAGERS)
def imports(club_id: int) -> tuple[str, int]:
    session = get_read_session()
    return _imports_page(session, brand_club_or_404(session, club_id), ImportForm())


@bp.post("/clubs/<int:club_id>/imports")
@staff_roles(*MANAGERS)
@transactional
def start_members_import(club_id: int) -> Response | tuple[str, int]:
    session = get_session()
    club = brand_club_or_404(session, club_id)
    form = ImportForm()

    def refused(exc: LoyaltyError) -> None:
        wording = FILE_MESSAGES.get(exc.code)
        refuse(form, exc, {}, default="file", wording={exc.code: wording()} if wording else None)

    job = submitted(form, lambda: start_import(session, club, file_name=form.file.data.filename or "",
                                               content=form.file.data.read(), staff_user_id=current_staff().staff_id),
                    refused, refused_by=LoyaltyError)
    if job is None:
        return _imports_page(session, club, form, REFUSED)
    return redirect(url_for("portal.member_import", club_id=club.id, import_id=job.id))


def _import_of(session: Session, club_id: int, import_id: int) -> tuple[Club, MemberImport]:
    club = brand_club_or_404(session, club_id)
    if not 0 < import_id <= _MAX_ID:
        abort(404)
    job = session.scalar(select(MemberImport).where(MemberImport.id == import_id,
                                                    MemberImport.club_id == club.id))
    if job is None:
        abort(404)
    return club, job


def progress(job: MemberImport) -> dict[str, object]:
    """What the import's page shows, and what it polls for."""
    return {"status": job.status, "total_rows": job.total_rows, "rows_done": job.rows_done,
            "created": job.created, "existing": job.existing, "failed": len(job.errors or []),
            "points_booked": job.points_booked, "done": job.status == ImportStatus.DONE}


@bp.get("/clubs/<int:club_id>/imports/<int:import_id>")
@staff_roles(*MANAGERS)
def member_import(club_id: int, import_id: int) -> str:
    club, job = _import_of(get_read_session(), club_id, import_id)
    errors = [(e.get("row"), row_message(e.get("code", ""), e.get("message", ""))) for e in (job.errors or [])[:20]]
    return render_template("portal/import.html", club=club, job=job, progress=progress(job), errors=errors)


@bp.get("/clubs/<int:club_id>/imports/<int:import_id>/status")
@staff_roles(*MANAGERS)
def member_import_status(club_id: int, import_id: int) -> Response:
    _club, job = _import_of(get_read_session(), club_id, import_id)
    response = Response(render_template("portal/import_progress.html", progress=progress(job)))
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.get("/clubs/<int:club_id>/imports/<int:import_id>/errors.csv")
@staff_roles(*MANAGERS)
def member_import_errors(club_id: int, import_id: int) -> Response:
    club, job = _import_of(get_read_session(), club_id, import_id)
    response = Response("\ufeff" + error_report(job, row_message), mimetype="text/csv")
    response.headers["Content-Disposition"] = f'attachment; filename="import-{job.id}-errors.csv"'
    response.headers["Cache-Control"] = "private, no-store"
    return response
