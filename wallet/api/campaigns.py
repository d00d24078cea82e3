"""Campaigns under /api/v1: a message to a segment of a club, now or at a
set time, and what became of it per card (wallet.loyalty.campaigns). The
segment's rules are the core's rule set (wallet.loyalty.segments), so the
API refuses what the portal refuses, with the same error."""

from __future__ import annotations

from typing import Any

from wallet.api import examples as ex
from wallet.api import schemas as s
from wallet.api.auth import current_brand_id
from wallet.api.idempotency import write_endpoint
from wallet.api.pagination import decode_cursor, page
from wallet.api.views import bp, club_of_brand, idempotency_doc
from wallet.extensions import get_read_session, get_session
from wallet.loyalty import campaigns as core
from wallet.loyalty.segments import Segment


@bp.route("/clubs/<int:club_id>/campaigns", methods=["POST"])
@write_endpoint("optional")
@bp.doc(**idempotency_doc(False))
@bp.arguments(s.CampaignCreateSchema, example=ex.CAMPAIGN_CREATE)
@bp.response(202, s.CampaignSchema, example=ex.CAMPAIGN)
def create_campaign(data: dict[str, Any], club_id: int) -> Any:
    """Send a message to a segment of the club's members, now or at send_at"""
    session = get_session()
    club = club_of_brand(session, club_id)
    campaign = core.create_campaign(session, club, text=data["text"], segment=Segment.load(data.get("segment")),
                                    send_at=data.get("send_at"), created_by="api")
    return core.campaign_to_dict(session, campaign)


@bp.route("/clubs/<int:club_id>/campaigns", methods=["GET"])
@bp.arguments(s.ListQuery, location="query")
@bp.response(200, s.page_schema(s.CampaignSchema, "CampaignPage"), example=ex.page(ex.CAMPAIGN))
def list_campaigns(query: dict[str, Any], club_id: int) -> Any:
    """The club's campaigns, newest first"""
    session = get_read_session()
    club = club_of_brand(session, club_id)
    limit = query["limit"]
    rows = core.list_campaigns(session, club.id, limit=limit + 1, before_id=decode_cursor(query.get("cursor")))
    counts = core.results_of(session, [c.id for c in rows])
    return page(rows, limit, lambda c: core.campaign_to_dict(session, c, counts[c.id]), lambda c: c.id)


@bp.route("/campaigns/<int:campaign_id>", methods=["GET"])
@bp.response(200, s.CampaignSchema, example=ex.CAMPAIGN)
def get_campaign(campaign_id: int) -> Any:
    """One campaign, with what became of it per card"""
    session = get_read_session()
    return core.campaign_to_dict(session, core.brand_campaign(session, campaign_id, brand_id=current_brand_id()))


@bp.route("/campaigns/<int:campaign_id>", methods=["DELETE"])
@write_endpoint("optional")
@bp.response(200, s.CampaignSchema, example={**ex.CAMPAIGN, "status": "cancelled", "cards": 0,
                                             "results": {**ex.CAMPAIGN["results"], "reached": 0, "silent": 0,
                                                         "no_wallet": 0}})
def cancel_campaign(campaign_id: int) -> Any:
    """Cancel a scheduled campaign before it starts; kept, with status cancelled (409 campaign_started after)"""
    session = get_session()
    campaign = core.brand_campaign(session, campaign_id, brand_id=current_brand_id())
    return core.campaign_to_dict(session, core.cancel_or_conflict(session, campaign))
