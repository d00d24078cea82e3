"""Campaigns: a message to a segment of a club, now or at a set time, and
what became of it in each wallet.

``create_campaign`` stores the campaign and queues an outbox row of kind
``campaign.send`` that becomes due at the campaign's time (the outbox's
``available_at``: the workers poll, so nothing else has to wake up). Its
handler (wallet.jobs.dispatch) calls ``run_campaign_page``: the segment's
members among the club's next page of members by id (``messages.club_page``)
get the message on their cards (``messages.put_message``), a
``MessageDelivery`` row each and their pushes queued, all in one
transaction that also queues the next page. A worker that dies mid-page
leaves nothing of that page; the next one starts again from the
campaign's ``after_id``.

The pushes are the cards' ordinary ``card.changed`` rows, carrying the
delivery's occasion; when the workers have told every wallet, they record
per card (``record_outcomes``): reached (a wallet holding the card was
told, with a notification), silent (only Google holds it and its 3
notifications of the day were spent), failed (tried again by the outbox),
or no wallet. ``results`` counts them.

Automatic messages (wallet.loyalty.automessages) deliver through the same
``deliver``: one ``MessageDelivery`` per member and occasion, unique in
the database, so each goes once.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, ClassVar, TypeVar

from sqlalchemy import and_, func, insert, select, update
from sqlalchemy.orm import Session

from wallet.db import utcnow
from wallet.loyalty.campaign_models import Campaign, CampaignStatus, DeliveryStatus, MessageDelivery, SavedSegment
from wallet.loyalty.errors import Conflict, NotFound, RuleViolation
from wallet.loyalty.fields import valid_text
from wallet.loyalty.messages import MAX_MESSAGE, PAGE, club_page, put_message
from wallet.loyalty.models import Club, Membership, OutboxEvent
from wallet.loyalty.outbox import OutboxKind, OutboxPayload, require
from wallet.loyalty.segments import Segment, count_segment, segment_filter, wallet_counts

# How far ahead a campaign may be scheduled.
MAX_AHEAD = timedelta(days=366)
CAMPAIGN = "campaign"
T = TypeVar("T")


@dataclass(frozen=True)
class CampaignPayload(OutboxPayload):
    """An outbox row of kind campaign.send: the page of the campaign's
    segment after membership id ``after_id``."""

    kind: ClassVar[OutboxKind] = OutboxKind.CAMPAIGN

    campaign_id: int
    after_id: int

    def __post_init__(self) -> None:
        require(self.campaign_id, int, "campaign_id")
        require(self.after_id, int, "after_id")


def _queue(session: Session, campaign: Campaign, available_at: datetime) -> None:
    row = OutboxEvent.carrying(CampaignPayload(campaign_id=campaign.id, after_id=campaign.after_id),
                               club_id=campaign.club_id)
    row.available_at = available_at
    session.add(row)


def save_segment(session: Session, club: Club, *, name: str, segment: Segment,
                 saved: SavedSegment | None = None) -> SavedSegment:
    """A named segment of the club (a new one, or ``saved`` changed)."""
    name = valid_text(name, "name", max_len=100, code="invalid_name")
    clash = session.scalar(select(SavedSegment.id).where(SavedSegment.club_id == club.id, SavedSegment.name == name))
    if clash is not None and (saved is None or clash != saved.id):
        raise RuleViolation(f"the club has a segment named {name!r} already", code="duplicate_name")
    if saved is None:
        saved = SavedSegment(club_id=club.id)
        session.add(saved)
    saved.name, saved.rules = name, segment.to_json()
    session.flush()
    return saved


def _of_club(session: Session, model: type[T], club: Club, row_id: int, what: str) -> T:
    """The club's row ``row_id`` of ``model``; NotFound ("<what>_not_found")
    for an unknown id or another club's."""
    row = session.get(model, row_id)
    if row is None or row.club_id != club.id:  # type: ignore[attr-defined]
        raise NotFound(f"no such {what}", code=f"{what}_not_found")
    return row


def club_segment(session: Session, club: Club, segment_id: int) -> SavedSegment:
    return _of_club(session, SavedSegment, club, segment_id, "segment")


def create_campaign(session: Session, club: Club, *, text: str, segment: Segment, send_at: datetime | None = None,
                    saved: SavedSegment | None = None, created_by: str = "", now: datetime | None = None) -> Campaign:
    """A message to the club's members in ``segment``, at ``send_at``
    (timezone-aware; None: now). RuleViolation for an empty or too long
    text, or a time in the past or more than a year ahead."""
    text = valid_text(text, "text", max_len=MAX_MESSAGE, code="invalid_text", multiline=True)
    now = now or utcnow()
    if send_at is None:
        send_at = now
    elif send_at.tzinfo is None:
        raise ValueError("send_at must be timezone-aware")
    elif send_at < now - timedelta(minutes=1) or send_at > now + MAX_AHEAD:
        raise RuleViolation("send_at must be from now to a year ahead", code="invalid_send_at")
    if segment.tiers:
        _known_tiers(club, segment)
    campaign = Campaign(club_id=club.id, segment_id=saved.id if saved else None, segment_name=saved.name if saved else None,
                        rules=segment.to_json(), text=text, send_at=max(send_at, now),
                        status=CampaignStatus.SCHEDULED.value, after_id=0, targeted=0, created_by=created_by[:200])
    session.add(campaign)
    session.flush()
    _queue(session, campaign, campaign.send_at)
    return campaign


def _known_tiers(club: Club, segment: Segment) -> None:
    from wallet.loyalty.program import Program

    tiers = Program.of(club).tiers
    unknown = [t for t in segment.tiers if tiers is None or tiers.rank(t) < 0]
    if unknown:
        raise RuleViolation(f"the club has no tier {unknown[0]!r}", code="unknown_tier")


def cancel_campaign(session: Session, campaign: Campaign) -> bool:
    """Stop a campaign that has not started; False once it has."""
    locked = session.scalar(select(Campaign).where(Campaign.id == campaign.id).with_for_update()
                            .execution_options(populate_existing=True))
    if locked is None or locked.status != CampaignStatus.SCHEDULED:
        return False
    locked.status = CampaignStatus.CANCELLED.value
    locked.finished_at = utcnow()
    return True


def deliver(session: Session, club_id: int, membership_ids: list[int], *, text: str, kind: str, occasion: str,
            campaign_id: int | None = None, now: datetime) -> list[int]:
    """Put ``text`` on the cards of these members that have not had this
    occasion's message yet, with a delivery row each; returns their ids."""
    if not membership_ids:
        return []
    had = set(session.scalars(select(MessageDelivery.membership_id).where(
        MessageDelivery.membership_id.in_(membership_ids), MessageDelivery.occasion == occasion)))
    fresh = [m for m in membership_ids if m not in had]
    if not fresh:
        return []
    session.execute(insert(MessageDelivery), [
        {"club_id": club_id, "membership_id": m, "campaign_id": campaign_id, "kind": kind, "occasion": occasion,
         "status": DeliveryStatus.QUEUED.value, "created_at": now, "updated_at": now} for m in fresh])
    put_message(session, fresh, text=text, now=now, occasion=occasion)
    return fresh


def run_campaign_page(session: Session, payload: CampaignPayload, *, now: datetime | None = None) -> Campaign | None:
    """Write the page the payload names and queue the next (or finish the
    campaign), in the caller's transaction. A page already written (a
    worker died after committing it) or a cancelled campaign does nothing."""
    campaign = session.scalar(select(Campaign).where(Campaign.id == payload.campaign_id).with_for_update())
    if campaign is None or campaign.status in (CampaignStatus.SENT, CampaignStatus.CANCELLED):
        return campaign
    if campaign.after_id != payload.after_id:
        return campaign
    now = now or utcnow()
    if campaign.status == CampaignStatus.SCHEDULED:
        campaign.status = CampaignStatus.SENDING.value
        campaign.started_at = now
    in_segment = and_(*segment_filter(campaign.club_id, Segment.load(campaign.rules), now))
    page = club_page(session, campaign.club_id, campaign.after_id, in_segment)
    ids = [member_id for member_id, targeted in page if targeted]
    sent = deliver(session, campaign.club_id, ids, text=campaign.text, kind=CAMPAIGN,
                   occasion=f"{CAMPAIGN}:{campaign.id}", campaign_id=campaign.id, now=now)
    campaign.targeted += len(sent)
    if len(page) == PAGE:
        campaign.after_id = page[-1][0]
        _queue(session, campaign, now)
    else:
        campaign.status = CampaignStatus.SENT.value
        campaign.finished_at = now
    return campaign


def record_outcomes(session: Session, outcomes: dict[tuple[int, str], DeliveryStatus]) -> None:
    """What the workers did with each (membership id, occasion) delivery.
    Only a queued or failed one changes: a later change of the card (which
    carries no occasion) or a retry never undoes a delivery."""
    now = utcnow()
    by_status: dict[DeliveryStatus, list[tuple[int, str]]] = {}
    for key, status in outcomes.items():
        by_status.setdefault(status, []).append(key)
    for status, keys in by_status.items():
        for occasion in {o for _m, o in keys}:
            members = sorted(m for m, o in keys if o == occasion)
            for start in range(0, len(members), 1000):
                session.execute(
                    update(MessageDelivery)
                    .where(MessageDelivery.occasion == occasion,
                           MessageDelivery.membership_id.in_(members[start : start + 1000]),
                           MessageDelivery.status.in_([DeliveryStatus.QUEUED.value, DeliveryStatus.FAILED.value]))
                    .values(status=status.value, updated_at=now)
                    .execution_options(synchronize_session=False)
                )


def results(session: Session, campaign_id: int) -> dict[str, int]:
    """How many of the campaign's cards are in each DeliveryStatus."""
    return results_of(session, [campaign_id])[campaign_id]


def results_of(session: Session, campaign_ids: list[int]) -> dict[int, dict[str, int]]:
    """``results`` of several campaigns in one query."""
    out = {cid: {status.value: 0 for status in DeliveryStatus} for cid in campaign_ids}
    if campaign_ids:
        for cid, status, count in session.execute(
            select(MessageDelivery.campaign_id, MessageDelivery.status, func.count(MessageDelivery.id))
            .where(MessageDelivery.campaign_id.in_(campaign_ids))
            .group_by(MessageDelivery.campaign_id, MessageDelivery.status)
        ).tuples():
            if cid is not None:
                out[cid][status] = int(count)
    return out


@dataclass(frozen=True)
class Preview:
    """What a message to a segment will do, wallet by wallet, before it is sent."""

    members: int
    apple: int
    google: int
    android: int
    none: int
    # Google cards that had their 3 notifications today: the message arrives silently.
    google_silent: int
    # Apple shows a lock-screen message only when the card's text changes.
    unchanged_text: int


def preview(session: Session, club: Club, segment: Segment, text: str | None = None,
            now: datetime | None = None) -> Preview:
    now = now or utcnow()
    counts = wallet_counts(session, club.id, segment, now)
    unchanged = 0
    if text and text.strip():
        # Cards already showing this text: Wallet sees no change of the
        # news field, so no lock-screen message.
        same = Membership.message == text.strip()
        if club.message == text.strip():
            same = same | Membership.message.is_(None)
        unchanged = session.scalar(select(func.count(Membership.id))
                                   .where(*segment_filter(club.id, segment, now), same)) or 0
    return Preview(members=count_segment(session, club.id, segment, now), unchanged_text=unchanged, **counts)


def list_campaigns(session: Session, club_id: int, *, limit: int = 50, before_id: int | None = None) -> list[Campaign]:
    """The club's campaigns, newest first, keyset-paginated by id."""
    query = select(Campaign).where(Campaign.club_id == club_id)
    if before_id is not None:
        query = query.where(Campaign.id < before_id)
    return list(session.scalars(query.order_by(Campaign.id.desc()).limit(limit)))


def campaign_to_dict(session: Session, campaign: Campaign, counts: dict[str, int] | None = None) -> dict[str, Any]:
    """A campaign's one shape (the API's): what, to whom, when, and what
    became of it per card (``counts``: its ``results``, when read already)."""
    return {"id": campaign.id, "club_id": campaign.club_id, "text": campaign.text, "segment": campaign.rules,
            "segment_name": campaign.segment_name, "send_at": campaign.send_at, "status": campaign.status,
            "cards": campaign.targeted, "results": counts if counts is not None else results(session, campaign.id),
            "created_at": campaign.created_at}


def brand_campaign(session: Session, campaign_id: int, *, brand_id: int) -> Campaign:
    """A campaign of one of the brand's clubs; NotFound for another brand's."""
    campaign = session.scalar(select(Campaign).join(Club, Club.id == Campaign.club_id)
                              .where(Campaign.id == campaign_id, Club.brand_id == brand_id))
    if campaign is None:
        raise NotFound("no such campaign", code="campaign_not_found")
    return campaign


def cancel_or_conflict(session: Session, campaign: Campaign) -> Campaign:
    if not cancel_campaign(session, campaign) and campaign.status != CampaignStatus.CANCELLED:
        raise Conflict("the campaign has started; it cannot be cancelled", code="campaign_started")
    session.flush()
    return campaign


def club_campaign(session: Session, club: Club, campaign_id: int) -> Campaign:
    return _of_club(session, Campaign, club, campaign_id, "campaign")
