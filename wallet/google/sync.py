"""Keeping Google's copy of the cards current, from the outbox workers.

For each membership whose card changed: the club's LoyaltyClass is written
when its body differs from what Google last accepted (inserted, or patched
when Google has it); the LoyaltyObject is inserted the first time, then
patched whenever its body changes; a new club message goes out through
addMessage. Google lets a pass notify its holder 3 times a day: changes of
the figures or the tier patch with NOTIFY_ON_UPDATE and messages go as
TEXT_AND_NOTIFY while today's count is under that, and silently after it,
so nothing is refused and nobody is spammed.

Google refusing a body (a 4xx) is recorded on the club's or the card's row
with Google's message, for the brand to see; trying again cannot help, so
the work counts as done. 429, 5xx and unreachable answers are retried by
the client, then the membership is reported failed and its outbox row
comes back later. Without a service account (development) the calls are
logged instead of made, and nothing is recorded as sent.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import httpx
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import joinedload

from wallet.config import get_settings, made_on_first_use
from wallet.db import Database, utcnow
from wallet.google.auth import ServiceAccountTokens
from wallet.google.client import WalletApi
from wallet.google.errors import GoogleApiError, GoogleAuthError, GoogleError
from wallet.google.identity import GoogleIdentity, get_identity
from wallet.google.links import stored_link
from wallet.google.models import GoogleClass, GoogleObject
from wallet.google.objects import (
    class_id,
    fingerprint,
    loyalty_class,
    loyalty_object,
    message_body,
    object_id,
)
from wallet.loyalty.cardfacts import CardFacts, card_facts
from wallet.loyalty.models import Club, Membership
from wallet.loyalty.segments import GOOGLE_NOTIFICATIONS_PER_DAY

log = logging.getLogger(__name__)

NOTIFICATIONS_PER_DAY = GOOGLE_NOTIFICATIONS_PER_DAY
CHUNK = 200


@dataclass
class SyncResult:
    done: set[int] = field(default_factory=set)
    # membership id -> why it must be tried again
    failed: dict[int, str] = field(default_factory=dict)
    calls: int = 0
    # Memberships whose message went to a Google Wallet holding the card:
    # with a notification, or silently (the day's notifications were spent).
    notified: set[int] = field(default_factory=set)
    silent: set[int] = field(default_factory=set)


def _make_api(app: Any) -> WalletApi:
    settings = get_settings(app)
    identity = get_identity(app)
    http = httpx.Client(timeout=httpx.Timeout(30.0, connect=10.0))
    return WalletApi(settings.google_wallet_api_url,
                     ServiceAccountTokens(identity, settings.google_token_url, http), http)


def api_for(app: Any) -> WalletApi:
    """The process's client of the Google Wallet API (one connection pool)."""
    return made_on_first_use(app, "wallet.google.api", lambda _settings: _make_api(app))


def _digest(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


def _figures_of(facts: CardFacts) -> str:
    # What a notifying update is about: the figures and the tier.
    return _digest([facts.balance if facts.has_points else None, facts.cash_balance if facts.has_cashback else None,
                    facts.stamps if facts.has_stamps else None, facts.tier])


class _Run:
    """One batch of memberships against one client."""

    def __init__(self, app: Any, db: Database, api: WalletApi, identity: GoogleIdentity) -> None:
        self.app = app
        self.db = db
        self.api = api
        self.identity = identity
        self.base_url = get_settings(app).public_base_url
        self.result = SyncResult()
        # Classes written (or refused) in this batch: club id -> refused?
        self.classes: dict[int, bool] = {}

    # -- classes -----------------------------------------------------------
    def ensure_class(self, club: Club) -> bool:
        """Writes the club's class if Google's copy differs; False when
        Google refused it (its objects cannot be written either)."""
        if club.id in self.classes:
            return not self.classes[club.id]
        body = loyalty_class(self.identity.issuer_id, club, public_base_url=self.base_url)
        accepted = fingerprint(body)
        session = self.db.session()
        try:
            row = session.get(GoogleClass, club.id)
            known = row is not None and row.synced_at is not None
            unchanged = row is not None and row.fingerprint == accepted
        finally:
            session.close()
        if unchanged:
            self.classes[club.id] = False
            return True
        try:
            self._write(body, known, insert=self.api.insert_class,
                        patch=lambda: self.api.patch_class(body["id"], body))
        except GoogleApiError as exc:
            if exc.retryable:
                raise
            self._record_class(club, error=exc.message)
            self.classes[club.id] = True
            return False
        self._record_class(club, fingerprint_=accepted)
        self.classes[club.id] = False
        return True

    def _write(self, body: dict[str, Any], known: bool, *, insert: Any, patch: Any) -> None:
        """Insert, or patch what Google has: a 409 on insert (Google has it,
        from a save link or a worker that died after the call) patches, a 404
        on patch (Google lost it) inserts."""
        self.result.calls += 1
        if not known:
            try:
                insert(body)
            except GoogleApiError as exc:
                if exc.status != 409:
                    raise
                self.result.calls += 1
                patch()
            return
        try:
            patch()
        except GoogleApiError as exc:
            if exc.status != 404:
                raise
            self.result.calls += 1
            insert(body)

    def _record_class(self, club: Club, *, fingerprint_: str | None = None, error: str | None = None) -> None:
        now = utcnow()

        def apply(row: GoogleClass) -> None:
            if error is None:
                row.fingerprint, row.synced_at, row.last_error, row.last_error_at = fingerprint_, now, None, None
            else:
                row.last_error, row.last_error_at = error, now

        self._upsert(GoogleClass, club.id, lambda: GoogleClass(club_id=club.id,
                                                              class_id=class_id(self.identity.issuer_id, club.id)),
                     apply)

    def _upsert(self, model: Any, key: int, make: Any, apply: Any) -> None:
        with self.db.transaction() as session:
            row = session.get(model, key, with_for_update=True)
            if row is None:
                row = make()
                try:
                    with session.begin_nested():
                        session.add(row)
                        session.flush()
                except IntegrityError:  # another worker made it first
                    row = session.get(model, key, with_for_update=True, populate_existing=True)
            apply(row)

    # -- objects -----------------------------------------------------------
    def sync(self, membership: Membership) -> None:
        facts = card_facts(membership)
        session = self.db.session()
        try:
            state = session.get(GoogleObject, membership.id)
            if state is not None:
                session.expunge(state)
        finally:
            session.close()
        inserted = state is not None and state.inserted_at is not None
        if not inserted and not facts.active:
            return  # never in a wallet and ended: nothing to tell Google
        if not self.ensure_class(membership.club):
            return
        body = loyalty_object(self.identity.issuer_id, membership, facts, public_base_url=self.base_url)
        shown = fingerprint(body)
        figures = _figures_of(facts)
        message = _digest(facts.message) if facts.message else None
        now = utcnow()
        count = state.notify_count if state is not None and state.notify_day == now.date() else 0
        changes: dict[str, Any] = {}
        try:
            if not inserted:
                if facts.message:
                    body["messages"] = [{**message_body(facts.message, facts.languages), "id": f"msg-{message[:20]}",
                                         "messageType": "TEXT"}]
                self._write(body, False, insert=self.api.insert_object,
                            patch=lambda: self.api.patch_object(body["id"], body))
                changes.update(inserted_at=now, fingerprint=shown, sent_figures=figures, sent_message=message,
                               **stored_link(self.identity, membership, self.base_url, state))
            else:
                assert state is not None
                # Signed once here, not by every answer that shows the card.
                changes.update(stored_link(self.identity, membership, self.base_url, state))
                if shown != state.fingerprint:
                    notify = figures != state.sent_figures and count < NOTIFICATIONS_PER_DAY
                    sent = {**body, "notifyPreference": "NOTIFY_ON_UPDATE"} if notify else body
                    self._write(sent, True, insert=self.api.insert_object,
                                patch=lambda: self.api.patch_object(body["id"], sent))
                    count += 1 if notify else 0
                    changes.update(fingerprint=shown, sent_figures=figures)
                if message is not None and message != state.sent_message:
                    notify = count < NOTIFICATIONS_PER_DAY
                    self.result.calls += 1
                    self.api.add_message(body["id"], {**message_body(facts.message or "", facts.languages),
                                                      "id": f"msg-{message[:20]}",
                                                      "messageType": "TEXT_AND_NOTIFY" if notify else "TEXT"})
                    count += 1 if notify else 0
                    changes.update(sent_message=message)
                    if state.installed:
                        (self.result.notified if notify else self.result.silent).add(membership.id)
        except GoogleApiError as exc:
            if exc.retryable:
                # What Google took before the failure is recorded, so the
                # retry neither sends it again nor notifies twice.
                if changes:
                    self._record_object(membership, {**changes, "notify_day": now.date(), "notify_count": count})
                raise
            changes.update(last_error=exc.message, last_error_at=now)
        else:
            changes.update(last_error=None, last_error_at=None)
        changes.update(notify_day=now.date(), notify_count=count)
        self._record_object(membership, changes)

    def _record_object(self, membership: Membership, changes: dict[str, Any]) -> None:
        def apply(row: GoogleObject) -> None:
            for name, value in changes.items():
                setattr(row, name, value)

        self._upsert(GoogleObject, membership.id,
                     lambda: GoogleObject(membership_id=membership.id, club_id=membership.club_id,
                                          object_id=object_id(self.identity.issuer_id, membership)),
                     apply)


def _memberships(db: Database, ids: list[int]) -> list[Membership]:
    session = db.session()
    try:
        rows = list(session.scalars(
            select(Membership).where(Membership.id.in_(ids))
            .options(joinedload(Membership.club).joinedload(Club.brand)).order_by(Membership.id)
        ))
        session.expunge_all()
        return rows
    finally:
        session.close()


def _log_development(db: Database, identity: GoogleIdentity, ids: list[int]) -> None:
    if not log.isEnabledFor(logging.INFO):
        return  # nobody reads it: spare the workers the memberships' load
    for membership in _memberships(db, ids):
        log.info("Google Wallet (development, no service account): would write loyaltyClass %s and "
                 "loyaltyObject %s (version %s) to the REST API",
                 class_id(identity.issuer_id, membership.club_id), object_id(identity.issuer_id, membership),
                 membership.version)


def sync_memberships(app: Any, db: Database, membership_ids: list[int]) -> SyncResult:
    """Bring Google's copy of these cards up to date; see the module docstring."""
    identity = get_identity(app)
    ids = sorted(set(membership_ids))
    result = SyncResult()
    if not ids:
        return result
    if identity.development:
        _log_development(db, identity, ids)
        result.done.update(ids)
        return result
    run = _Run(app, db, api_for(app), identity)
    for start in range(0, len(ids), CHUNK):
        chunk = ids[start:start + CHUNK]
        found = _memberships(db, chunk)
        result.done.update(set(chunk) - {m.id for m in found})  # deleted meanwhile: nothing to show
        for membership in found:
            try:
                run.sync(membership)
            except GoogleAuthError as exc:
                # No token, no call: the rest of the batch waits for the next try.
                log.error("Google Wallet: %s", exc)
                result.failed.update({m: str(exc)[:500] for m in ids if m not in result.done})
                result.calls = run.result.calls
                return result
            except GoogleError as exc:
                log.warning("Google Wallet update of membership %s failed: %s", membership.id, exc)
                result.failed[membership.id] = str(exc)[:500]
                continue
            result.done.add(membership.id)
    result.calls = run.result.calls
    result.notified, result.silent = run.result.notified, run.result.silent
    return result


def class_error(db: Database, club_id: int) -> tuple[str, datetime] | None:
    """What Google last said when it refused the club's class, and when."""
    session = db.session()
    try:
        row = session.get(GoogleClass, club_id)
        if row is None or row.last_error is None or row.last_error_at is None:
            return None
        return row.last_error, row.last_error_at
    finally:
        session.close()
