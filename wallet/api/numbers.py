"""The club's numbers under /api/v1: GET /clubs/{club_id}/numbers and, over
all the brand's clubs, GET /numbers, for a period of whole UTC days
(``from`` and ``to``, ISO dates; the last 90 days by default). The figures
are wallet.loyalty.numbers'; money is in minor units per currency."""

from __future__ import annotations

from typing import Any

import marshmallow as ma
from marshmallow import fields
from sqlalchemy import select

from wallet.api.auth import current_brand_id
from wallet.api.errors import ApiError
from wallet.api.schemas import Query
from wallet.api.views import bp
from wallet.db import utcnow
from wallet.extensions import get_read_session
from wallet.loyalty.clubs import get_club
from wallet.loyalty.errors import RuleViolation
from wallet.loyalty.models import Club
from wallet.loyalty.numbers import SOURCES, compute, period_of
from wallet.loyalty.numbers_models import CardWallet


class NumbersQuery(Query):
    start = fields.Date(data_key="from", metadata={"description": "first day (UTC), default 89 days before `to`"})
    end = fields.Date(data_key="to", metadata={"description": "last day (UTC), default today; at most 731 days"})


def _money() -> fields.Dict:
    return fields.Dict(keys=fields.String(), values=fields.Integer(), required=True,
                       metadata={"description": "minor units per ISO 4217 currency"})


def _share(description: str) -> fields.Float:
    return fields.Float(required=True, allow_none=True,
                        metadata={"description": f"{description}, 0 to 1 (null when nothing to divide by)"})


def _ints(*names: str) -> dict[str, fields.Field]:
    return {name: fields.Integer(required=True) for name in names}


def _date(description: str = "") -> fields.String:
    """A date (YYYY-MM-DD) the core already wrote as text."""
    return fields.String(required=True, metadata={"format": "date", **({"description": description} if description else {})})


def _schema(name: str, spec: dict[str, fields.Field]) -> type[ma.Schema]:
    return ma.Schema.from_dict(spec, name=name)


_Day = _schema("NumbersDay", {"date": _date(), **_ints("joined")})
_Week = _schema("NumbersWeek", {"week": _date("its Monday"),
                                **_ints("joined")})
_Members = _schema("NumbersMembers", {
    **_ints("joined", "total", "active"),
    "active_share": _share("active of total: bought in the 90 days up to the period's end"),
    "joined_per_day": fields.List(fields.Nested(_Day), required=True),
    "joined_per_week": fields.List(fields.Nested(_Week), required=True),
    "by_source": fields.Nested(_schema("NumbersSources", _ints(*SOURCES)), required=True),
})
_Wallet = _schema("NumbersWallet", _ints("installed", "removed", "on_phones"))
_Cards = _schema("NumbersCards", {
    "wallets": fields.Nested(_schema("NumbersWallets", {w.value: fields.Nested(_Wallet, required=True)
                                                         for w in CardWallet}), required=True),
    **_ints("installed", "removed", "on_phones", "members_with_card"),
    "members_with_card_share": _share("members with a card on a phone, of all members"),
})
_Points = _schema("NumbersPoints", {
    **_ints("issued", "redeemed", "expired", "reversed", "pending", "outstanding"),
    "liability": _money(),
    "breakage": _share("expired of issued in the period"),
})
_Tier = _schema("NumbersTierSpend", {"tier": fields.String(required=True, allow_none=True),
                                     "currency": fields.String(required=True), **_ints("buyers", "purchases", "spend")})
_Purchases = _schema("NumbersPurchases", {
    **_ints("buyers", "purchases", "repeat_buyers"),
    "repeat_rate": _share("buyers with a second purchase in the period, of all buyers"),
    "frequency": fields.Float(required=True, allow_none=True, metadata={"description": "purchases per buyer"}),
    "spend": _money(), "refunds": _money(),
    "average_purchase": fields.Dict(keys=fields.String(), values=fields.Integer(allow_none=True), required=True),
    "by_tier": fields.List(fields.Nested(_Tier), required=True),
})
_CohortMonth = _schema("NumbersCohortMonth", {"month": fields.String(required=True), **_ints("buyers"),
                                              "share": _share("of the cohort's members")})
_Cohort = _schema("NumbersCohort", {"month": fields.String(required=True, metadata={"description": "YYYY-MM joined"}),
                                    **_ints("members"),
                                    "months": fields.List(fields.Nested(_CohortMonth), required=True)})
_NPS_FIGURES = {**_ints("answers", "promoters", "passives", "detractors"),
                "nps": fields.Integer(required=True, allow_none=True,
                                      metadata={"description": "% promoters - % detractors, -100 to 100"})}
_Comment = _schema("NpsComment", {**_ints("score", "member_id"), "comment": fields.String(required=True),
                                  "tier": fields.String(required=True, allow_none=True),
                                  "answered_at": fields.String(required=True, metadata={"format": "date-time"})})
_Nps = _schema("NumbersNps", {
    **_NPS_FIGURES,
    "trend": fields.List(fields.Nested(_schema("NpsMonth", {"month": fields.String(required=True), **_NPS_FIGURES})),
                         required=True),
    "by_tier": fields.List(fields.Nested(_schema("NpsTier", {"tier": fields.String(required=True, allow_none=True),
                                                             **_NPS_FIGURES})), required=True),
    "comments": fields.List(fields.Nested(_Comment), required=True),
})
NumbersSchema = _schema("Numbers", {
    "period": fields.Nested(_schema("NumbersPeriod", {"from": _date(), "to": _date()}), required=True),
    "club_ids": fields.List(fields.Integer(), required=True),
    "members": fields.Nested(_Members, required=True),
    "cards": fields.Nested(_Cards, required=True),
    "points": fields.Nested(_Points, required=True),
    "purchases": fields.Nested(_Purchases, required=True),
    "cohorts": fields.List(fields.Nested(_Cohort), required=True),
    "nps": fields.Nested(_Nps, required=True),
})

_NPS_EXAMPLE = {"answers": 40, "promoters": 22, "passives": 10, "detractors": 8, "nps": 35}
EXAMPLE: dict[str, Any] = {
    "period": {"from": "2026-11-01", "to": "2026-11-30"},
    "club_ids": [12],
    "members": {"joined": 3, "total": 1250, "active": 610, "active_share": 0.488,
                "joined_per_day": [{"date": "2026-11-01", "joined": 2}, {"date": "2026-11-02", "joined": 1}],
                "joined_per_week": [{"week": "2026-10-27", "joined": 3}],
                "by_source": {"join_page": 1, "api": 1, "import": 0, "referral": 1, "other": 0}},
    "cards": {"wallets": {w.value: {"installed": 0, "removed": 0, "on_phones": 0} for w in CardWallet}
              | {"apple": {"installed": 40, "removed": 3, "on_phones": 700},
                 "google": {"installed": 25, "removed": 2, "on_phones": 310}},
              "installed": 65, "removed": 5, "on_phones": 1010, "members_with_card": 990,
              "members_with_card_share": 0.792},
    "points": {"issued": 52000, "redeemed": 21000, "expired": 1300, "reversed": 400, "pending": 800,
               "outstanding": 164000, "liability": {"RUB": 16400000}, "breakage": 0.025},
    "purchases": {"buyers": 610, "purchases": 1480, "repeat_buyers": 402, "repeat_rate": 0.659, "frequency": 2.43,
                  "spend": {"RUB": 251600000}, "refunds": {"RUB": 1200000}, "average_purchase": {"RUB": 170000},
                  "by_tier": [{"tier": "Gold", "currency": "RUB", "buyers": 120, "purchases": 420,
                               "spend": 98000000}]},
    "cohorts": [{"month": "2026-11", "members": 3, "months": [{"month": "2026-11", "buyers": 2, "share": 0.6667}]}],
    "nps": {**_NPS_EXAMPLE, "trend": [{"month": "2026-11", **_NPS_EXAMPLE}],
            "by_tier": [{"tier": "Gold", **_NPS_EXAMPLE}],
            "comments": [{"score": 9, "comment": "Friendly staff", "tier": "Gold", "member_id": 7,
                          "answered_at": "2026-11-20T10:15:00+00:00"}]},
}


def _numbers(clubs: list[Club], query: dict[str, Any]) -> dict[str, Any]:
    try:
        period = period_of(query.get("start"), query.get("end"), today=utcnow().date())
    except RuleViolation as exc:
        raise ApiError(400, "invalid_query", exc.message) from None
    return compute(get_read_session(), clubs, period).to_dict()


@bp.route("/clubs/<int:club_id>/numbers", methods=["GET"])
@bp.arguments(NumbersQuery, location="query")
@bp.response(200, NumbersSchema, example=EXAMPLE)
def club_numbers(query: dict[str, Any], club_id: int) -> Any:
    """The club's numbers over a period: members, cards on phones, points, purchases, cohorts, NPS"""
    return _numbers([get_club(get_read_session(), club_id, brand_id=current_brand_id())], query)


@bp.route("/numbers", methods=["GET"])
@bp.arguments(NumbersQuery, location="query")
@bp.response(200, NumbersSchema, example={**EXAMPLE, "club_ids": [12, 14]})
def brand_numbers(query: dict[str, Any]) -> Any:
    """The numbers of all the brand's clubs together over a period"""
    clubs = list(get_read_session().scalars(select(Club).where(Club.brand_id == current_brand_id())
                                            .order_by(Club.id)))
    return _numbers(clubs, query)
