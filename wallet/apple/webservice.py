"""The PassKit web service, under /apple/v1, as Apple documents it.

webServiceURL in every pass is PUBLIC_BASE_URL + "/apple", so a device calls
(Apple Wallet with ``Authorization: ApplePass <token>``; Android wallet apps
with their own scheme, see WalletApp, remembered per registration so their
pushes go through their own APIs):

- POST   /v1/devices/<device>/registrations/<passType>/<serial>  201 new, 200 known, 401
- DELETE /v1/devices/<device>/registrations/<passType>/<serial>  200, 401
- GET    /v1/devices/<device>/registrations/<passType>[?passesUpdatedSince=<tag>]  200, 204
- GET    /v1/passes/<passType>/<serial>  200 pkpass, 304, 401
- POST   /v1/log  200

What every phone holding a card asks after each push, the list of its
updated passes and then the pass, is answered from the WSGI environ before
Flask makes a request of it (wallet.http_rules.answer_directly; Flask's
routes give the same answers to what that declines).

The tag handed to devices comes from wallet.loyalty.cards (``changed_among``):
"changed since tag" never misses a change that committed late, and tagging a
change makes no two members' changes wait on each other. A pass fetch reads
one row and is signed once per card state (wallet.apple.serving). Anything a
device sends that does not match a pass of ours gets 401 (or 204 for the
unauthenticated list), never a 5xx: a phone retries errors forever and the
error says nothing useful to it.

A pass holds at most MAX_DEVICES_PER_PASS registrations: a new device beyond
that replaces the one that registered least recently (re-registering counts
as activity), so a leaked pass token cannot make one card change into
thousands of pushes.
"""

from __future__ import annotations

import functools
import hmac
import logging
import re
import time
from collections.abc import Callable
from typing import Any, cast
from urllib.parse import parse_qsl

from flask import Blueprint, Flask, current_app, request
from flask.json.provider import DefaultJSONProvider
from flask_limiter.util import get_remote_address
from limits import RateLimitItem
from limits.strategies import FixedWindowRateLimiter
from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError
from werkzeug.http import http_date, parse_date

from wallet.apple.certs import get_identity
from wallet.apple.models import DeviceLogEntry, DeviceRegistration, WalletApp
from wallet.apple.pkpass import MIME_TYPE, settings_for
from wallet.apple.serving import changed_passes, read_card, signed_pass
from wallet.config import get_settings
from wallet.db import utcnow
from wallet.extensions import get_db, get_session, limiter, transactional
from wallet.http_rules import Answer, App, Response, answer_directly, for_machines
from wallet.logtext import printable
from wallet.loyalty.card_events import record_card_changes
from wallet.loyalty.models import Club, Membership
from wallet.loyalty.webhooks import emit_event
from wallet.ratelimit import parse_limits
from wallet.schema import schema_first

bp = Blueprint("apple_webservice", __name__, url_prefix="/apple/v1", cli_group="apple")

log = logging.getLogger(__name__)
device_log = logging.getLogger("wallet.apple.device_log")

# Apple's device library identifiers and serials are short opaque strings;
# anything outside these shapes cannot be ours and is refused before the DB.
_DEVICE_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
_SERIAL = re.compile(r"[A-Za-z0-9._:-]{1,64}")
_PASS_TYPE = re.compile(r"[A-Za-z0-9.-]{1,255}")
# APNs device tokens are hex; the token goes into a URL path towards APNs.
_PUSH_TOKEN = re.compile(r"[0-9A-Fa-f]{8,200}")
# Firebase and Huawei push tokens (the Android apps') are longer, in base64url with ':'.
_APP_PUSH_TOKEN = re.compile(r"[A-Za-z0-9:_.\-]{8,255}")
SCHEMES = {
    "ApplePass": WalletApp.APPLE,
    "AndroidPass": WalletApp.WALLETPASSES,
    "WalletUnionPass": WalletApp.WALLETUNION,
    "WalletUnionHMSPass": WalletApp.WALLETUNION_HMS,
}

MAX_DEVICES_PER_PASS = 10

MAX_LOG_LINES_PER_REQUEST = 50
MAX_LOG_LINE = 1000
MAX_LOG_ROWS = 10_000


def _log_limit() -> str:
    return get_settings().apple_log_limit


# The answers without a body, with the headers Flask's empty Response has.
_HTML = "text/html; charset=utf-8"
_UNAUTHORIZED = Answer(401, [("Content-Type", _HTML), ("Content-Length", "0")])
# werkzeug sends a 304 without entity headers (Last-Modified among them),
# a 204 without Content-Length.
_NOT_MODIFIED = Answer(304, [])
_NO_CONTENT = Answer(204, [("Content-Type", _HTML)])


# One budget of failed authentications per client address, shared by every
# authenticated endpoint and spent only by 401s: a device that knows its
# token never meets it, someone guessing tokens is stopped after a few tries
# (and then refused before the token is looked at, so a right guess is
# refused too). The counters are Flask-Limiter's, in its storage
# (RATELIMIT_STORAGE_URI, Redis in scale mode, shared by every gunicorn
# worker), under the key its shared limit "apple-auth-failures" used. They
# are read and spent here directly: Flask-Limiter's per-request machinery
# cost a pass fetch more than its database read.
_AUTH_FAILURES = "apple-auth-failures"


def _auth_failure_limits(app: Flask | None) -> tuple[RateLimitItem, ...]:
    return parse_limits(get_settings(app).apple_auth_failure_limit)


@functools.lru_cache(maxsize=4096)
def _budget_keys(limits: tuple[RateLimitItem, ...], address: str) -> tuple[tuple[RateLimitItem, str], ...]:
    """Each limit with the key of this address's counter under it."""
    return tuple((item, item.key_for(address, _AUTH_FAILURES)) for item in limits)


def _budget_spent(address: str, app: Flask | None) -> RateLimitItem | None:
    """The limit this address has used up, if any; None too when the
    storage cannot answer (the limiter's errors are swallowed, as
    RATELIMIT_SWALLOW_ERRORS says)."""
    try:
        strategy = limiter.limiter
        fixed = isinstance(strategy, FixedWindowRateLimiter)
        for item, key in _budget_keys(_auth_failure_limits(app), address):
            # FixedWindowRateLimiter.test with the counter's key kept: making
            # it (limits' key_for) was most of the check on every pass fetch.
            if strategy.storage.get(key) >= item.amount if fixed else not strategy.test(item, address, _AUTH_FAILURES):
                return item
    except Exception as exc:  # noqa: BLE001 - the storage's own errors, whatever its client
        log.warning("rate limit storage failed, the request goes on unlimited: %s", exc)
    return None


def _spend_budget(address: str, app: Flask | None) -> None:
    try:
        strategy = limiter.limiter
        for item in _auth_failure_limits(app):
            strategy.hit(item, address, _AUTH_FAILURES)
    except Exception as exc:  # noqa: BLE001
        log.warning("rate limit storage failed, a failed authentication was not counted: %s", exc)


def _too_many(item: RateLimitItem, address: str) -> Answer:
    try:
        reset_at = limiter.limiter.get_window_stats(item, address, _AUTH_FAILURES).reset_time
        retry_after = str(max(1, int(reset_at - time.time()) + 1))
    except Exception:  # noqa: BLE001
        retry_after = str(item.get_expiry())
    return Answer(429, [("Content-Type", _HTML), ("Retry-After", retry_after), ("Content-Length", "0")])


def _refused_by_budget(address: str, app: Flask | None = None) -> Answer | None:
    """429 for an address that used up its budget of failed authentications
    (``app`` default: the current one)."""
    if not limiter.enabled:
        return None
    spent = _budget_spent(address, app)
    return None if spent is None else _too_many(spent, address)


def _counted(address: str, status: int, app: Flask | None = None) -> None:
    """A 401 is spent from the address's budget."""
    if status == 401 and limiter.enabled:
        _spend_budget(address, app)


def _auth_failures(view: Callable[..., Response]) -> Callable[..., Response]:
    """A view that authenticates a pass, under the failed-authentication budget."""

    @functools.wraps(view)
    def run(*args: Any, **kwargs: Any) -> Response:
        address = get_remote_address()
        refused = _refused_by_budget(address)
        if refused is not None:
            return cast(App, current_app).response_of(refused)
        response = view(*args, **kwargs)
        _counted(address, response.status_code)
        return response

    return run


class _Unauthorized(Exception):
    pass


def _empty(status: int) -> Response:
    return Response(status=status)


def _unauthorized() -> Response:
    return _empty(401)


def _our_pass_type(pass_type: str, app: Flask | None = None) -> bool:
    return hmac.compare_digest(pass_type.encode(), get_identity(app).pass_type_identifier.encode())


def _authorization() -> str:
    return request.headers.get("Authorization", "")


def _presented(header: str) -> tuple[WalletApp, str] | None:
    """The app the Authorization scheme names, and the pass's token."""
    scheme, _, token = header.partition(" ")
    app = SCHEMES.get(scheme)
    if app is None or not token.strip():
        return None
    return app, token.strip()


def _valid_push_token(app: WalletApp, token: object) -> bool:
    pattern = _PUSH_TOKEN if app is WalletApp.APPLE else _APP_PUSH_TOKEN
    return isinstance(token, str) and pattern.fullmatch(token) is not None


def _authenticated_membership(session: Any, pass_type: str, serial: str, *, lock: bool = False) -> Membership:
    """The pass named in the path, if the request carries its token.

    ``lock`` holds the membership row until commit (PostgreSQL; SQLite's
    write transaction already is the lock), so two devices registering the
    same pass at once agree on which of them was first."""
    presented = _presented(_authorization())
    if presented is None or not _PASS_TYPE.fullmatch(pass_type) or not _SERIAL.fullmatch(serial):
        raise _Unauthorized
    token = presented[1]
    if not _our_pass_type(pass_type):
        raise _Unauthorized
    query = select(Membership).where(Membership.serial_number == serial)
    if lock:
        query = query.with_for_update()
    membership = session.scalar(query)
    if not _token_matches(token, membership.auth_token if membership is not None else None) or membership is None:
        raise _Unauthorized
    return membership


def _token_matches(token: str, expected: str | None) -> bool:
    # Compare against a dummy when the serial is unknown, so timing does not
    # tell which serials exist.
    return hmac.compare_digest(token.encode(), (expected or "x" * 32).encode()) and expected is not None


def _json_body() -> dict[str, Any] | None:
    data = request.get_json(silent=True, force=True)
    return data if isinstance(data, dict) else None


DeviceView = Callable[[Any, Membership, WalletApp, str, str], Response]


def _device_of_the_pass(view: DeviceView) -> Callable[..., Response]:
    """A device's route about one pass: the pass authenticated and its row
    locked, then ``view(session, membership, wallet_app, device_id,
    pass_type)``; 401
    for a wrong pass or token."""

    @functools.wraps(view)
    def run(device_id: str, pass_type: str, serial: str) -> Response:
        session = get_session()
        try:
            membership = _authenticated_membership(session, pass_type, serial, lock=True)
        except _Unauthorized:
            return _unauthorized()
        presented = _presented(_authorization())
        assert presented is not None  # authenticated above
        return view(session, membership, presented[0], device_id, pass_type)

    return run


@bp.post("/devices/<device_id>/registrations/<pass_type>/<serial>")
@_auth_failures
@transactional
@_device_of_the_pass
def register(session: Any, membership: Membership, wallet_app: WalletApp, device_id: str,
             pass_type: str) -> Response:
    body = _json_body()
    push_token = body.get("pushToken") if body else None
    if not _DEVICE_ID.fullmatch(device_id) or not _valid_push_token(wallet_app, push_token):
        return _empty(400)
    existing = session.scalar(
        select(DeviceRegistration).where(
            DeviceRegistration.device_library_identifier == device_id,
            DeviceRegistration.membership_id == membership.id,
        )
    )
    if existing is not None:
        existing.push_token = push_token
        existing.app = wallet_app
        existing.updated_at = utcnow()  # the device is active: it keeps its place
        return _empty(200)
    held = _registrations_newest_first(session, membership.id)
    apps_before = _apps_holding(session, membership.id)
    first = not held
    stale = held[MAX_DEVICES_PER_PASS - 1 :]
    if stale:
        session.execute(delete(DeviceRegistration).where(DeviceRegistration.id.in_(stale)))
    try:
        with session.begin_nested():
            session.add(
                DeviceRegistration(
                    device_library_identifier=device_id,
                    pass_type_identifier=pass_type,
                    membership_id=membership.id,
                    push_token=push_token,
                    app=wallet_app,
                )
            )
    except IntegrityError:
        # The same device registered the same pass concurrently (PostgreSQL;
        # SQLite write sessions are serialised): the other request created
        # it, so this one is the "already registered" case.
        session.execute(
            DeviceRegistration.__table__.update()
            .where(
                DeviceRegistration.device_library_identifier == device_id,
                DeviceRegistration.membership_id == membership.id,
            )
            .values(push_token=push_token, app=wallet_app, updated_at=utcnow())
        )
        return _empty(200)
    record_card_changes(session, membership, before=apps_before, after=_apps_holding(session, membership.id))
    if first:
        _emit_card_event(session, membership, "card.installed", wallet_app)
    return _empty(201)


def _apps_holding(session: Any, membership_id: int) -> set[str]:
    """The wallet apps (WalletApp values) with the pass registered now."""
    return {app.value for app in session.scalars(
        select(DeviceRegistration.app).where(DeviceRegistration.membership_id == membership_id).distinct())}


def _registrations_newest_first(session: Any, membership_id: int) -> list[int]:
    return list(
        session.scalars(
            select(DeviceRegistration.id)
            .where(DeviceRegistration.membership_id == membership_id)
            .order_by(DeviceRegistration.updated_at.desc(), DeviceRegistration.id.desc())
        )
    )


@bp.delete("/devices/<device_id>/registrations/<pass_type>/<serial>")
@_auth_failures
@transactional
@_device_of_the_pass
def unregister(session: Any, membership: Membership, wallet_app: WalletApp, device_id: str,
               _pass_type: str) -> Response:
    apps_before = _apps_holding(session, membership.id)
    removed = session.execute(
        delete(DeviceRegistration).where(
            DeviceRegistration.device_library_identifier == device_id,
            DeviceRegistration.membership_id == membership.id,
        )
    ).rowcount
    if removed:
        record_card_changes(session, membership, before=apps_before, after=_apps_holding(session, membership.id))
    if removed and not _registrations_newest_first(session, membership.id):
        _emit_card_event(session, membership, "card.removed", wallet_app)
    # Apple documents 200 for a successful unregistration; a device that was
    # not registered has nothing left to undo, which is the same outcome.
    return _empty(200)


def _emit_card_event(session: Any, membership: Membership, event_type: str, wallet_app: WalletApp) -> None:
    brand_id = session.scalar(select(Club.brand_id).where(Club.id == membership.club_id))
    emit_event(
        session,
        brand_id=brand_id,
        event_type=event_type,
        data={
            "member_id": membership.id,
            "club_id": membership.club_id,
            "serial_number": membership.serial_number,
            "platform": "apple",
            "wallet": wallet_app.value,
        },
    )


@bp.get("/devices/<device_id>/registrations/<pass_type>")
def updated_passes(device_id: str, pass_type: str) -> Response:
    """What ``_listing_fetch`` declined."""
    app = cast(App, current_app._get_current_object())
    return app.response_of(_updated_passes(app, device_id, pass_type, request.args.get("passesUpdatedSince")))


_DEVICES = f"{bp.url_prefix}/devices/"
_REGISTRATIONS = "registrations"
_TAG = "passesUpdatedSince"


def _listing_fetch(app: Flask, environ: dict[str, Any]) -> Answer | None:
    """GET (or HEAD) /apple/v1/devices/<device>/registrations/<pass_type>,
    answered from the environ as Flask's route would; None for what Flask
    routes itself (another method or path, one werkzeug must decode)."""
    method = environ.get("REQUEST_METHOD")
    path = environ.get("PATH_INFO", "")
    query = environ.get("QUERY_STRING", "")
    if (method != "GET" and method != "HEAD") or not path.isascii() or not query.isascii():
        return None
    device_id, slash, rest = path[len(_DEVICES):].partition("/")
    registrations, slash_, pass_type = rest.partition("/")
    if not device_id or not slash or registrations != _REGISTRATIONS or not slash_ or not pass_type or "/" in pass_type:
        return None
    return _updated_passes(app, device_id, pass_type, _tag_of(query))


def _tag_of(query: str) -> str | None:
    """request.args.get(_TAG): werkzeug's parsing of the query (urllib's
    parse_qsl), its first value. A phone's query is one field with nothing
    escaped: parse_qsl gives that field as it is, split at its first "=",
    without urllib's steps for each field (a few per cent of the request)."""
    if not query:
        return None
    if "&" not in query and "%" not in query and "+" not in query:
        name, _, value = query.partition("=")
        return value if name == _TAG else None
    return next((value for name, value in parse_qsl(query, keep_blank_values=True, errors="werkzeug.url_quote")
                 if name == _TAG), None)


def _updated_passes(app: Flask, device_id: str, pass_type: str, tag: str | None) -> Answer:
    if not _DEVICE_ID.fullmatch(device_id) or not _PASS_TYPE.fullmatch(pass_type):
        return _NO_CONTENT
    found = changed_passes(get_db(app), device_id, pass_type, tag)
    if not found.serials:
        return _NO_CONTENT
    return _json(app, {"serialNumbers": found.serials, "lastUpdated": found.tag})


def _json(app: Flask, data: dict[str, Any]) -> Answer:
    """``jsonify(**data)``'s answer: Flask's JSON provider, compact unless
    the app debugs, and a newline."""
    provider = cast(DefaultJSONProvider, app.json)  # wallet.http_rules.JSONProvider
    dump_args: dict[str, Any] = {"indent": 2} if provider.compact is False or (
        provider.compact is None and app.debug) else {"separators": (",", ":")}
    body = f"{provider.dumps(data, **dump_args)}\n".encode()
    return Answer(200, [("Content-Type", provider.mimetype), ("Content-Length", str(len(body)))], (body,))


@bp.get("/passes/<pass_type>/<serial>")
def latest_pass(pass_type: str, serial: str) -> Response:
    """What ``_pass_fetch`` declined (a request with a Transfer-Encoding, a
    path werkzeug must decode, or one whose direct answer failed)."""
    app = cast(App, current_app._get_current_object())
    return app.response_of(_latest_pass(app, pass_type, serial, _authorization(),
                                        request.headers.get("If-Modified-Since"), get_remote_address()))


_PASSES = f"{bp.url_prefix}/passes/"

# HTTP dates, read and written through email.utils, were a tenth of a 304's
# CPU. The cards of a club message change within a few seconds of each
# other, and a phone sends back the date it was given: a few thousand
# dates, kept as werkzeug reads and writes them.
_date_of = functools.lru_cache(maxsize=4096)(parse_date)
_http_date = functools.lru_cache(maxsize=4096)(http_date)


def _pass_fetch(app: Flask, environ: dict[str, Any]) -> Answer | None:
    """GET (or HEAD) /apple/v1/passes/<pass_type>/<serial>, answered from
    the environ as Flask's route would (its rule's ``string`` converters
    take anything but "/"); None for what Flask routes itself."""
    method = environ.get("REQUEST_METHOD")
    path = environ.get("PATH_INFO", "")
    if (method != "GET" and method != "HEAD") or not path.isascii():
        return None
    pass_type, slash, serial = path[len(_PASSES):].partition("/")
    if not pass_type or not slash or not serial or "/" in serial:
        return None
    # Flask's request.remote_addr, get_remote_address's fallback included.
    address = environ.get("REMOTE_ADDR") or "127.0.0.1"
    return _latest_pass(app, pass_type, serial, environ.get("HTTP_AUTHORIZATION", ""),
                        environ.get("HTTP_IF_MODIFIED_SINCE"), address)


def _latest_pass(app: Flask, pass_type: str, serial: str, authorization: str, if_modified_since: str | None,
                 address: str) -> Answer:
    refused = _refused_by_budget(address, app)
    if refused is not None:
        return refused
    answer = _pass_of(app, pass_type, serial, authorization, if_modified_since)
    _counted(address, answer.status, app)
    return answer


def _pass_of(app: Flask, pass_type: str, serial: str, authorization: str, if_modified_since: str | None) -> Answer:
    presented = _presented(authorization)
    if presented is None or not _PASS_TYPE.fullmatch(pass_type) or not _SERIAL.fullmatch(serial):
        return _UNAUTHORIZED
    if not _our_pass_type(pass_type, app):
        return _UNAUTHORIZED
    db = get_db(app)
    state = read_card(db, serial)
    if not _token_matches(presented[1], state.auth_token if state is not None else None) or state is None:
        return _UNAUTHORIZED
    # Decided by one date, from the one read.
    modified = state.modified_at.replace(microsecond=0)
    since = _date_of(if_modified_since) if if_modified_since else None
    if since is not None and modified <= since:
        return _NOT_MODIFIED
    signed = signed_pass(db, state, settings_for(app))
    if signed is None:
        return _UNAUTHORIZED  # the pass was deleted meanwhile
    # Last-Modified within Date (wallet.http_rules): the server writes Date
    # when it sends the answer, later than now.
    shown = min(modified, utcnow().replace(microsecond=0))
    return Answer(200, [("Content-Type", MIME_TYPE), ("Content-Length", str(len(signed))),
                        ("Last-Modified", _http_date(shown)),
                        # The pass carries the member's authentication token: no shared caches.
                        ("Cache-Control", "no-store")], signed.parts)


@bp.post("/log")
@limiter.limit(_log_limit)
@transactional
def device_logs() -> Response:
    body = _json_body()
    logs = body.get("logs") if body else None
    if not isinstance(logs, list):
        return _empty(400)
    # Kept and logged escaped: a device's text never starts a log line of its
    # own, drives the terminal of whoever reads it, or carries NUL to the DB.
    lines = [printable(line[:MAX_LOG_LINE]) for line in logs[:MAX_LOG_LINES_PER_REQUEST] if isinstance(line, str)]
    if lines:
        remote = printable(request.remote_addr or "")[:64] or None
        for line in lines:
            device_log.warning("device %s: %s", remote, line)
        session = get_session()
        session.add_all(DeviceLogEntry(message=line, remote_addr=remote) for line in lines)
        session.flush()
        _trim_logs(session)
    return _empty(200)


def _trim_logs(session: Any) -> None:
    # Devices decide how much they log; keep only the newest MAX_LOG_ROWS.
    # Trimming in steps of a hundred rows keeps the delete off most requests.
    oldest, newest = session.execute(select(func.min(DeviceLogEntry.id), func.max(DeviceLogEntry.id))).one()
    if newest is not None and newest - oldest >= MAX_LOG_ROWS + 100:
        session.execute(delete(DeviceLogEntry).where(DeviceLogEntry.id <= newest - MAX_LOG_ROWS))


@bp.cli.command("device-logs")
@schema_first
def show_device_logs() -> None:
    """Print the newest messages devices sent to /apple/v1/log."""
    import click

    from wallet.extensions import get_db

    session = get_db().session()
    try:
        rows = session.scalars(select(DeviceLogEntry).order_by(DeviceLogEntry.id.desc()).limit(200)).all()
        for row in reversed(rows):
            click.echo(f"{row.created_at.isoformat()} {row.remote_addr or '-'} {row.message}")
    finally:
        session.close()


def init_app(app: Flask) -> None:
    # No cookies, sessions, sign-ins, CSRF nor Flask-Limiter's generic check:
    # the device log applies its own limit, the rest their own budget.
    for_machines(app, bp)
    answer_directly(app, _PASSES, _pass_fetch)
    answer_directly(app, _DEVICES, _listing_fetch)
