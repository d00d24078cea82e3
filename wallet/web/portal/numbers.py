"""The club's numbers in the portal: /portal/clubs/<id>/numbers for one club,
/portal/numbers for all the brand's clubs, over a period chosen on the page
(?from=&to=, the last 90 days by default). Each chart is server-drawn SVG
(wallet.web.charts) with its figures beside it and a CSV of them at
.../numbers/<table>.csv. The figures are wallet.loyalty.numbers'."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Sequence
from datetime import date, timedelta
from typing import Any

from flask import Response, abort, render_template, request, url_for
from flask_babel import format_decimal, format_percent
from flask_babel import lazy_gettext as _l
from sqlalchemy import select

from wallet.db import utcnow
from wallet.extensions import get_read_session
from wallet.loyalty.errors import RuleViolation
from wallet.loyalty.imports import cell
from wallet.loyalty.models import Club
from wallet.loyalty.numbers import DEFAULT_PERIOD_DAYS, SOURCES, Period, compute, period_of
from wallet.loyalty.numbers_models import CardWallet
from wallet.web import charts
from wallet.web.filters import money
from wallet.web.portal import MANAGERS, bp, staff_roles
from wallet.web.portal.scope import brand_club_or_404
from wallet.web.security import current_staff

SOURCE_NAMES = {"join_page": _l("Join page"), "api": _l("API"), "import": _l("Import"),
                "referral": _l("Referral"), "other": _l("Other")}
WALLET_NAMES = {CardWallet.APPLE: _l("Apple Wallet"), CardWallet.GOOGLE: _l("Google Wallet"),
                CardWallet.WALLETPASSES: _l("WalletPasses (Android)"),
                CardWallet.WALLETUNION: _l("WalletUnion (Android)"),
                CardWallet.WALLETUNION_HMS: _l("WalletUnion (Huawei)")}
assert set(SOURCE_NAMES) == set(SOURCES) and set(WALLET_NAMES) == set(CardWallet)


def _rows_of(pairs: Sequence[tuple[str, Any]]) -> list[list[Any]]:
    return [[name, value] for name, value in pairs]


def _money_rows(prefix: str, amounts: dict[str, int | None]) -> list[tuple[str, Any]]:
    return [(f"{prefix}_{currency}", value) for currency, value in amounts.items()]


# Each CSV: its columns and its rows from the numbers (wallet.loyalty.numbers.Numbers.to_dict()).
TABLES: dict[str, tuple[tuple[str, ...], Callable[[dict[str, Any]], list[list[Any]]]]] = {
    "members": (("figure", "value"), lambda n: _rows_of([
        ("total", n["members"]["total"]), ("active", n["members"]["active"]),
        ("active_share", n["members"]["active_share"]), ("joined", n["members"]["joined"]),
        ("members_with_card", n["cards"]["members_with_card"]),
        ("members_with_card_share", n["cards"]["members_with_card_share"])])),
    "joined_daily": (("date", "joined"), lambda n: [[d["date"], d["joined"]] for d in n["members"]["joined_per_day"]]),
    "joined_weekly": (("week", "joined"), lambda n: [[w["week"], w["joined"]] for w in n["members"]["joined_per_week"]]),
    "sources": (("source", "joined"), lambda n: _rows_of(list(n["members"]["by_source"].items()))),
    "wallets": (("wallet", "installed", "removed", "on_phones"), lambda n: [
        [wallet, w["installed"], w["removed"], w["on_phones"]] for wallet, w in n["cards"]["wallets"].items()]),
    "points": (("figure", "value"), lambda n: _rows_of([
        *((key, n["points"][key]) for key in ("issued", "redeemed", "expired", "reversed", "pending",
                                              "outstanding", "breakage")),
        *_money_rows("liability", n["points"]["liability"])])),
    "purchases": (("figure", "value"), lambda n: _rows_of([
        *((key, n["purchases"][key]) for key in ("buyers", "purchases", "repeat_buyers", "repeat_rate",
                                                 "frequency")),
        *_money_rows("spend", n["purchases"]["spend"]), *_money_rows("refunds", n["purchases"]["refunds"]),
        *_money_rows("average_purchase", n["purchases"]["average_purchase"])])),
    "tiers": (("tier", "currency", "buyers", "purchases", "spend"), lambda n: [
        [t["tier"], t["currency"], t["buyers"], t["purchases"], t["spend"]] for t in n["purchases"]["by_tier"]]),
    "cohorts": (("cohort", "members", "month", "buyers", "share"), lambda n: [
        [c["month"], c["members"], m["month"], m["buyers"], m["share"]] for c in n["cohorts"] for m in c["months"]]),
    "nps": (("month", "answers", "promoters", "passives", "detractors", "nps"), lambda n: [
        [m["month"], m["answers"], m["promoters"], m["passives"], m["detractors"], m["nps"]]
        for m in n["nps"]["trend"]]),
    "nps_tiers": (("tier", "answers", "promoters", "passives", "detractors", "nps"), lambda n: [
        [t["tier"], t["answers"], t["promoters"], t["passives"], t["detractors"], t["nps"]]
        for t in n["nps"]["by_tier"]]),
    "nps_comments": (("answered_at", "score", "tier", "comment", "member_id"), lambda n: [
        [c["answered_at"], c["score"], c["tier"], c["comment"], c["member_id"]] for c in n["nps"]["comments"]]),
}


def _period() -> tuple[Period, str | None]:
    """The period the page asks for, or the default one and what was wrong."""
    today = utcnow().date()
    try:
        return period_of(request.args.get("from"), request.args.get("to"), today=today), None
    except RuleViolation as exc:
        return period_of(None, None, today=today), exc.code


def _brand_clubs() -> list[Club]:
    return list(get_read_session().scalars(
        select(Club).where(Club.brand_id == current_staff().brand_id).order_by(Club.created_at, Club.id)))


def _share(value: float | None) -> str:
    return "–" if value is None else format_percent(value, "#,##0.#%")


def _charts(n: dict[str, Any]) -> dict[str, Any]:
    """The pictures of the numbers, labelled in the page's language."""
    members, cards, points, purchases = n["members"], n["cards"], n["points"], n["purchases"]
    cohort_months = max((len(c["months"]) for c in n["cohorts"]), default=0)
    return {
        "joined_daily": charts.columns(str(_l("Members joined per day")), [
            (d["date"][5:], d["joined"]) for d in members["joined_per_day"]]),
        "joined_weekly": charts.columns(str(_l("Members joined per week")), [
            (w["week"][5:], w["joined"]) for w in members["joined_per_week"]]),
        "sources": charts.rows(str(_l("Members joined by source")), [
            (str(SOURCE_NAMES[key]), value, format_decimal(value)) for key, value in members["by_source"].items()]),
        "wallets": charts.rows(str(_l("Cards on phones by wallet")), [
            (str(WALLET_NAMES[CardWallet(key)]), w["on_phones"], format_decimal(w["on_phones"]))
            for key, w in cards["wallets"].items()]),
        "points": charts.rows(str(_l("Points in the period")), [
            (str(name), points[key], format_decimal(points[key])) for key, name in (
                ("issued", _l("Issued")), ("redeemed", _l("Redeemed")), ("expired", _l("Expired")),
                ("reversed", _l("Taken back")))]),
        "tiers": charts.rows(str(_l("Spend per tier")), [
            (t["tier"] or str(_l("No tier")), t["spend"], money(t["spend"], t["currency"]))
            for t in purchases["by_tier"]]),
        "cohorts": charts.grid(
            str(_l("Share of each month's new members who bought, by month since joining")),
            [c["month"] for c in n["cohorts"]], [f"+{i}" for i in range(cohort_months)],
            [[m["share"] for m in c["months"]] for c in n["cohorts"]],
            [[format_percent(m["share"] or 0, "#,##0%") for m in c["months"]] for c in n["cohorts"]]),
        "nps": charts.columns(str(_l("NPS per month")), [
            (m["month"], m["nps"]) for m in n["nps"]["trend"]], signed=True),
    }


def _page(clubs: list[Club], club: Club | None) -> tuple[str, int]:
    period, error = _period()
    numbers = compute(get_read_session(), clubs, period).to_dict()
    today = utcnow().date()
    year, month = (today.year, today.month - 11) if today.month == 12 else (today.year - 1, today.month + 1)
    presets = [(_l("Last 30 days"), today - timedelta(days=29)),
               (_l("Last %(num)s days", num=DEFAULT_PERIOD_DAYS), today - timedelta(days=DEFAULT_PERIOD_DAYS - 1)),
               (_l("Last 12 months"), date(year, month, 1))]
    return render_template(
        "portal/numbers.html", club=club, clubs=clubs, period=period, error=error, n=numbers,
        charts=_charts(numbers), share=_share, presets=presets, today=today,
        sources=SOURCE_NAMES, wallets={w.value: name for w, name in WALLET_NAMES.items()},
        csv_url=lambda table: _csv_url(club, table, period),
    ), 422 if error else 200


def _csv_url(club: Club | None, table: str, period: Period) -> str:
    args = {"table": table, "from": period.start.isoformat(), "to": period.end.isoformat()}
    if club is None:
        return url_for("portal.brand_numbers_csv", **args)
    return url_for("portal.club_numbers_csv", club_id=club.id, **args)


def _csv(clubs: list[Club], table: str, name: str) -> Response:
    if table not in TABLES:
        abort(404)
    period, _error = _period()
    columns, rows = TABLES[table]
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(columns)
    for row in rows(compute(get_read_session(), clubs, period).to_dict()):
        # Text (tiers, comments) is guarded against spreadsheet formulas; numbers stay numbers.
        writer.writerow([cell(value) if isinstance(value, str) else "" if value is None else value for value in row])
    response = Response("\ufeff" + out.getvalue(), mimetype="text/csv")
    response.headers["Content-Disposition"] = (
        f'attachment; filename="{name}-{table}-{period.start.isoformat()}-{period.end.isoformat()}.csv"')
    return response


@bp.get("/clubs/<int:club_id>/numbers")
@staff_roles(*MANAGERS)
def club_numbers(club_id: int) -> tuple[str, int]:
    club = brand_club_or_404(get_read_session(), club_id)
    return _page([club], club)


@bp.get("/clubs/<int:club_id>/numbers/<table>.csv")
@staff_roles(*MANAGERS)
def club_numbers_csv(club_id: int, table: str) -> Response:
    club = brand_club_or_404(get_read_session(), club_id)
    return _csv([club], table, f"club-{club.id}")


@bp.get("/numbers")
@staff_roles(*MANAGERS)
def brand_numbers() -> tuple[str, int]:
    return _page(_brand_clubs(), None)


@bp.get("/numbers/<table>.csv")
@staff_roles(*MANAGERS)
def brand_numbers_csv(table: str) -> Response:
    return _csv(_brand_clubs(), table, "brand")
