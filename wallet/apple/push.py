"""Push every device registered for some passes, and clean up dead tokens.

Called by the outbox workers with the memberships whose cards changed; the
devices then fetch the new pass from the web service. Apple Wallet is
pushed through APNs, the Android wallet apps through their own push APIs
(wallet.apple.android). Returns which memberships are fully done, so the
caller can retry the rest.
"""

from __future__ import annotations

import logging
import threading
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import delete, select, text

from wallet.apple.android import AndroidPusher, push_api
from wallet.apple.apns import PushReport, client_for
from wallet.apple.models import DeviceRegistration, WalletApp
from wallet.db import Database, any_of, execute_core_all
from wallet.loyalty.card_events import record_card_changes
from wallet.loyalty.models import Membership

log = logging.getLogger(__name__)

# 403 is logged once per process until a push succeeds again, not per device
# or per batch: one broken certificate must not flood the log.
_certificate_problem_logged = threading.Event()


@dataclass
class MembershipPushResult:
    done: set[int] = field(default_factory=set)
    # Memberships with at least one device pushed (Apple Wallet or an Android app).
    reached: set[int] = field(default_factory=set)
    # membership id -> why some of its devices still need a push
    failed: dict[int, str] = field(default_factory=dict)
    pushes_sent: int = 0
    registrations_removed: int = 0
    # APNs answered 403: nothing more can be sent until an operator acts.
    certificate_error: str | None = None


def _android_pusher(app: Any, wallet_app: WalletApp) -> AndroidPusher:
    from wallet.apple.certs import get_identity
    from wallet.config import get_settings

    settings = get_settings(app)
    return AndroidPusher(push_api(settings, wallet_app), get_identity(app).pass_type_identifier,
                         max_retries=settings.apns_max_retries, backoff_base=settings.apns_backoff_base)


def _merge(report: PushReport, other: PushReport) -> None:
    report.sent.extend(other.sent)
    report.unregistered.extend(other.unregistered)
    report.failed.update(other.failed)
    report.not_attempted.extend(other.not_attempted)


def _remove_dead(session: Any, owners: list[int], dead: list[int]) -> None:
    """Drop the registrations a push service called unregistered, of these
    members, and log the wallets their cards left (the club's numbers count
    removals). The members are locked first, in ascending id order, as the
    web service locks one before changing its registrations."""
    members = session.scalars(select(Membership).where(Membership.id.in_(owners)).order_by(Membership.id)
                              .with_for_update(key_share=True)).all()

    def apps() -> dict[int, set[str]]:
        held: dict[int, set[str]] = defaultdict(set)
        for membership_id, wallet_app in session.execute(
                select(DeviceRegistration.membership_id, DeviceRegistration.app)
                .where(DeviceRegistration.membership_id.in_(owners)).distinct()):
            held[membership_id].add(WalletApp(wallet_app).value)
        return held

    before = apps()
    session.execute(delete(DeviceRegistration).where(DeviceRegistration.id.in_(dead),
                                                     DeviceRegistration.membership_id.in_(owners)))
    after = apps()
    for member in members:
        record_card_changes(session, member, before=before[member.id], after=after[member.id])


_NO_SEQ_SCAN = text("SET LOCAL enable_seqscan = off")
_REGISTRATIONS = select(DeviceRegistration.id, DeviceRegistration.membership_id, DeviceRegistration.push_token,
                        DeviceRegistration.app)
# PostgreSQL: a batch's cards as one array, the statement run on the driver
# (wallet.db.execute_core_all): through the session's execution and result
# the read cost the workers 8.5 us of CPU per card, on the driver 5.3.
_REGISTRATIONS_OF = _REGISTRATIONS.where(any_of(DeviceRegistration.membership_id, key="ids"))


def push_memberships(app: Any, db: Database, membership_ids: Iterable[int]) -> MembershipPushResult:
    """Push each device registered for these memberships (each token once).

    When APNs refuses our credentials the result's certificate_error says so
    and the memberships not yet pushed are in ``failed``.
    """
    ids = sorted(set(membership_ids))
    result = MembershipPushResult()
    if not ids:
        return result
    # PostgreSQL without statistics of the table (autovacuum off: no ANALYZE)
    # guesses that 200 cards hold a good share of it and reads every
    # registration (180 ms a batch at 300,000 cards, growing with them, where
    # their index takes 7 ms): told not to, in a transaction of its own (the
    # read session commits each statement, which would end a SET LOCAL), that
    # writes nothing and is rolled back.
    session = db.session() if db.is_sqlite else db.write_session()
    try:
        rows: list[tuple[int, int, str, WalletApp]] = []
        if not db.is_sqlite:
            session.execute(_NO_SEQ_SCAN)
            rows.extend(execute_core_all(session, _REGISTRATIONS_OF, {"ids": ids}))
        else:
            for start in range(0, len(ids), 1000):
                rows.extend(session.execute(
                    _REGISTRATIONS.where(DeviceRegistration.membership_id.in_(ids[start : start + 1000]))))
    finally:
        session.close()
    by_token: dict[str, list[tuple[int, int]]] = defaultdict(list)
    by_app: dict[WalletApp, set[str]] = defaultdict(set)
    for reg_id, membership_id, token, wallet_app in rows:
        by_token[token].append((reg_id, membership_id))
        by_app[WalletApp(wallet_app)].add(token)
    if not by_token:
        result.done.update(ids)
        return result

    report = PushReport()
    if by_app.get(WalletApp.APPLE):
        report = client_for(app).send(sorted(by_app[WalletApp.APPLE]))
    for wallet_app, tokens in by_app.items():
        if wallet_app is not WalletApp.APPLE:
            _merge(report, _android_pusher(app, wallet_app).send(wallet_app, sorted(tokens)))
    result.pushes_sent = len(report.sent)
    result.reached = {membership_id for token in report.sent for _reg, membership_id in by_token[token]}

    failed_memberships: dict[int, str] = {}
    for token, reason in report.failed.items():
        for _reg, membership_id in by_token[token]:
            failed_memberships[membership_id] = reason
    for token in report.not_attempted:
        for _reg, membership_id in by_token[token]:
            failed_memberships.setdefault(membership_id, report.certificate_error or "not attempted")

    if report.unregistered:
        dead = [reg for token in report.unregistered for reg, _m in by_token[token]]
        dead_of: dict[int, list[int]] = defaultdict(list)
        for token in report.unregistered:
            for reg, membership_id in by_token[token]:
                dead_of[membership_id].append(reg)
        owners = sorted(dead_of)
        with db.transaction() as tx:
            # At most 10 registrations a pass: 100 members name at most 1000 rows.
            for start in range(0, len(owners), 100):
                chunk = owners[start : start + 100]
                _remove_dead(tx, chunk, [reg for m in chunk for reg in dead_of[m]])
        result.registrations_removed = len(dead)
        log.info("removed %d registrations their push service called unregistered", len(dead))

    result.failed = failed_memberships
    result.done = {m for m in ids if m not in failed_memberships}

    if report.certificate_error is not None:
        if not _certificate_problem_logged.is_set():
            _certificate_problem_logged.set()
            log.error(
                "APNs refused our credentials (%s) for topic %s: pass updates stop until the "
                "Pass Type ID certificate (or APNs key) is fixed; see certs.example/README.md",
                report.certificate_error, client_for(app).settings.topic,
            )
        result.certificate_error = report.certificate_error
    elif report.sent:
        _certificate_problem_logged.clear()
    return result
