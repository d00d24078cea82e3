"""What each kind of outbox row means: a registry of handlers by kind.

A handler takes every claimed row of its kind in a batch, so it can coalesce
(ten changes of one card are one push), and says which rows are done and
which failed. ``card.changed`` runs each of CARD_PUSHERS (APNs and the
Android wallet apps' pushes, Google's LoyaltyObject) over the changed
memberships: a row is done when every pusher is done with its membership.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import update

from wallet.db import Database, utcnow
from wallet.jobs.outbox import Claimed
from wallet.logtext import printable
from wallet.loyalty.models import OutboxEvent
from wallet.loyalty.outbox import OutboxKind

log = logging.getLogger(__name__)


@dataclass
class Outcome:
    done: set[int] = field(default_factory=set)
    failed: dict[int, str] = field(default_factory=dict)

    def merge(self, other: Outcome) -> None:
        self.done |= other.done
        self.failed.update(other.failed)


Handler = Callable[[Any, Database, list[Claimed]], Outcome]


@dataclass
class PusherResult:
    """Per membership: done, or failed with a reason; and whether the
    wallet holding the card was told with a notification (``reached``) or
    only silently (``silent``: Google's daily limit)."""

    done: set[int] = field(default_factory=set)
    failed: dict[int, str] = field(default_factory=dict)
    reached: set[int] = field(default_factory=set)
    silent: set[int] = field(default_factory=set)


# (app, db, membership ids) -> PusherResult
CardPusher = Callable[[Any, Database, list[int]], PusherResult]


def apple_pusher(app: Any, db: Database, membership_ids: list[int]) -> PusherResult:
    from wallet.apple.push import push_memberships

    result = push_memberships(app, db, membership_ids)
    return PusherResult(done=result.done, failed=result.failed, reached=result.reached)


def google_pusher(app: Any, db: Database, membership_ids: list[int]) -> PusherResult:
    from wallet.google.sync import sync_memberships

    result = sync_memberships(app, db, membership_ids)
    return PusherResult(done=result.done, failed=result.failed, reached=result.notified, silent=result.silent)


CARD_PUSHERS: list[CardPusher] = [apple_pusher, google_pusher]


def handle_card_changed(app: Any, db: Database, events: list[Claimed]) -> Outcome:
    outcome = Outcome()
    by_membership: dict[int, list[int]] = defaultdict(list)
    for event in events:
        if event.membership_id is None:
            outcome.done.add(event.id)  # the card is gone; nothing to show
        else:
            by_membership[event.membership_id].append(event.id)
    membership_ids = sorted(by_membership)
    failed: dict[int, str] = {}
    reached: set[int] = set()
    silent: set[int] = set()
    for pusher in CARD_PUSHERS:
        try:
            result = pusher(app, db, membership_ids)
        except Exception as exc:  # one broken pusher must not stop the others
            log.exception("card pusher %s failed", getattr(pusher, "__name__", pusher))
            result = PusherResult(failed={m: f"{type(exc).__name__}: {exc}" for m in membership_ids})
        for membership_id, reason in result.failed.items():
            failed.setdefault(membership_id, reason)
        reached |= result.reached
        silent |= result.silent
    for membership_id, event_ids in by_membership.items():
        if membership_id in failed:
            outcome.failed.update({event_id: failed[membership_id] for event_id in event_ids})
        else:
            outcome.done.update(event_ids)
    _record_deliveries(db, events, failed, reached, silent)
    return outcome


def _record_deliveries(db: Database, events: list[Claimed], failed: dict[int, str], reached: set[int],
                       silent: set[int]) -> None:
    """For the rows that deliver a message (a campaign's, an automatic
    one's): what the wallets did with it, per card."""
    from wallet.loyalty.campaign_models import DeliveryStatus
    from wallet.loyalty.campaigns import record_outcomes
    from wallet.loyalty.cards import CardChange
    from wallet.loyalty.outbox import MalformedPayload

    outcomes: dict[tuple[int, str], DeliveryStatus] = {}
    for event in events:
        if event.membership_id is None or not event.payload:
            continue
        try:
            occasions = CardChange.of(event).occasions
        except MalformedPayload as exc:
            log.warning("card.changed outbox row %s: %s", event.id, exc)
            continue
        m = event.membership_id
        status = (DeliveryStatus.FAILED if m in failed else DeliveryStatus.REACHED if m in reached
                  else DeliveryStatus.SILENT if m in silent else DeliveryStatus.NO_WALLET)
        outcomes.update({(m, occasion): status for occasion in occasions})
    if not outcomes:
        return
    try:
        with db.transaction() as session:
            record_outcomes(session, outcomes)
    except Exception:  # the cards were pushed: a lost count must not push them again
        log.exception("could not record what the wallets did with %d messages", len(outcomes))


def handle_webhook(app: Any, db: Database, events: list[Claimed]) -> Outcome:
    from wallet.extensions import webhook_targets
    from wallet.jobs.webhook_delivery import deliver

    targets = webhook_targets(app)
    outcome = Outcome()
    for event in events:
        try:
            deliver(db, event, targets=targets)
        except Exception as exc:
            log.warning("webhook delivery of outbox row %s failed: %s", event.id, printable(exc))
            outcome.failed[event.id] = f"{type(exc).__name__}: {exc}"
            continue
        outcome.done.add(event.id)
    return outcome


def handle_notification(app: Any, _db: Database, events: list[Claimed]) -> Outcome:
    from wallet.jobs.notify import deliver_notifications

    delivered = deliver_notifications(app, events)
    return Outcome(done=delivered.done, failed=delivered.failed)


def _step_by_step(db: Database, events: list[Claimed], payload_type: Any, run: Callable[[Any, Any], object],
                  what: str) -> Outcome:
    """Each row does one step of a long job (a chunk of an import, a page
    of a campaign) in a transaction of its own, which also queues the next
    step: the job goes on between other work, and a worker that dies loses
    at most its uncommitted step. The row is marked done in the step's own
    transaction, so a step whose commit a dead worker could not report (or
    that two workers hold, one's lease having run out) is not done again.
    A row whose payload does not fit is dropped."""
    from wallet.loyalty.outbox import MalformedPayload

    outcome = Outcome()
    for event in events:
        try:
            payload = payload_type.of(event)
        except MalformedPayload as exc:
            log.warning("%s outbox row %s dropped: %s", what, event.id, exc)
            outcome.done.add(event.id)
            continue
        try:
            with db.transaction() as session:
                # Locks the row (PostgreSQL) until the step commits.
                claimed = session.execute(
                    update(OutboxEvent).where(OutboxEvent.id == event.id, OutboxEvent.done_at.is_(None))
                    .values(done_at=utcnow(), locked_until=None, last_error=None)
                    .execution_options(synchronize_session=False)
                ).rowcount
                if claimed:
                    run(session, payload)
        except Exception as exc:
            log.exception("%s step %s failed", what, payload)
            outcome.failed[event.id] = f"{type(exc).__name__}: {exc}"
            continue
        outcome.done.add(event.id)
    return outcome


def handle_member_import(_app: Any, db: Database, events: list[Claimed]) -> Outcome:
    """Each row books one chunk of an import (wallet.loyalty.imports)."""
    from wallet.loyalty.imports import ImportPayload, run_chunk

    return _step_by_step(db, events, ImportPayload, run_chunk, "member import")


def handle_campaign(_app: Any, db: Database, events: list[Claimed]) -> Outcome:
    """Each row writes one page of a campaign's segment (wallet.loyalty.campaigns)."""
    from wallet.loyalty.campaigns import CampaignPayload, run_campaign_page

    return _step_by_step(db, events, CampaignPayload, run_campaign_page, "campaign")


def handle_club_message(_app: Any, db: Database, events: list[Claimed]) -> Outcome:
    """Each row puts a club message on one page of its members (wallet.loyalty.messages)."""
    from wallet.loyalty.messages import ClubMessagePayload, run_message_page

    return _step_by_step(db, events, ClubMessagePayload, run_message_page, "club message")


# One handler for every kind (tests/test_outbox.py checks that none is missing).
HANDLERS: dict[str, Handler] = {
    OutboxKind.CARD_CHANGED: handle_card_changed,
    OutboxKind.WEBHOOK: handle_webhook,
    OutboxKind.NOTIFICATION: handle_notification,
    OutboxKind.MEMBER_IMPORT: handle_member_import,
    OutboxKind.CAMPAIGN: handle_campaign,
    OutboxKind.CLUB_MESSAGE: handle_club_message,
}


def dispatch(app: Any, db: Database, events: Iterable[Claimed]) -> Outcome:
    by_kind: dict[str, list[Claimed]] = defaultdict(list)
    for event in events:
        by_kind[event.kind].append(event)
    outcome = Outcome()
    for kind, group in by_kind.items():
        handler = HANDLERS.get(kind)
        if handler is None:
            # Left for a newer worker that knows the kind, retried with back-off.
            outcome.failed.update({e.id: f"no handler for outbox kind {kind!r}" for e in group})
            continue
        try:
            outcome.merge(handler(app, db, group))
        except Exception as exc:
            log.exception("outbox handler for %s failed", kind)
            outcome.failed.update({e.id: f"{type(exc).__name__}: {exc}" for e in group})
    # A row neither done nor failed by its handler is retried.
    for event in (e for group in by_kind.values() for e in group):
        if event.id not in outcome.done and event.id not in outcome.failed:
            outcome.failed[event.id] = "handler gave no outcome"
    return outcome
