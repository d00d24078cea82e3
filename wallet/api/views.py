"""The point-of-sale API under /api/v1: clubs, members, transactions,
messages, API keys and webhooks.

Every view sees only the calling brand's rows: an id of another brand is
answered exactly like an unknown id (404), so ids reveal nothing. Views that
write run inside ``write_endpoint`` (transaction and Idempotency-Key).
"""

from __future__ import annotations

import logging
from typing import Any

import marshmallow as ma
from flask import Response, g
from flask_smorest import Blueprint
from sqlalchemy import inspect, select
from sqlalchemy.orm import Session, joinedload
from sqlalchemy.orm.attributes import set_committed_value
from werkzeug.exceptions import HTTPException

from wallet.api import examples as ex
from wallet.api import schemas as s
from wallet.api.answers import Dumper, JsonAnswer
from wallet.api.auth import authenticate, check_rate_limit, check_request, current_brand_id
from wallet.api.errors import ApiError, error_response, invalid_body, response_for
from wallet.api.idempotency import HEADER, AnswerRider, rechecks_api_key, write_endpoint
from wallet.api.pagination import listed, selected
from wallet.apple.links import apple_pass_url
from wallet.extensions import get_db, get_read_session, get_session, webhook_targets
from wallet.google.links import full_save_url, google_save_url, skinny_save_url
from wallet.loyalty import brands as brand_core
from wallet.loyalty import clubs as club_core
from wallet.loyalty import ledger
from wallet.loyalty import members as member_core
from wallet.loyalty import webhooks as webhook_core
from wallet.loyalty.errors import LoyaltyError
from wallet.logtext import printable
from wallet.loyalty.ledger.figures import locked_club
from wallet.loyalty.ledger.serialise import member_values, transaction_values
from wallet.loyalty.messages import send_club_message
from wallet.loyalty.ledger_models import LedgerTransaction
from wallet.loyalty.models import ApiKey, Club, Membership
from wallet.lru import LRU

log = logging.getLogger(__name__)

bp = Blueprint("api_v1", __name__, url_prefix="/api/v1", description="Point-of-sale API")


def idempotency_doc(required: bool) -> dict[str, Any]:
    """The Idempotency-Key header as an operation documents it."""
    return {"parameters": [{
        "in": "header", "name": HEADER, "required": required,
        "description": "a fresh unique value per operation; a retry with the same key and body "
                       "replays the first answer and books nothing",
        "schema": {"type": "string", "minLength": 1, "maxLength": 255, "pattern": "^[!-~]+$"},
    }]}


@bp.before_request
def _before() -> None:
    check_rate_limit()
    authenticate(rechecked=rechecks_api_key())
    check_request()


@bp.errorhandler(ApiError)
@bp.errorhandler(LoyaltyError)
@bp.errorhandler(HTTPException)
def _error(exc: Exception) -> Any:
    answer = response_for(exc)
    if answer is None:
        # Our fault, not the client's (Flask has logged the original error):
        # still answer in the API's format.
        log.error("API request failed: %s %s", exc.__class__.__name__, printable(exc))
        return error_response(500, "internal_error", "the server failed to answer; it has been logged")
    return answer


# --- loading with the tenant check ----------------------------------------------


def club_of_brand(session: Session, club_id: int) -> Club:
    """The signed-in brand's club; another brand's id is not found, like an unknown one."""
    return club_core.get_club(session, club_id, brand_id=current_brand_id())


def _member(session: Session, member_id: int) -> Membership:
    return member_core.get_membership(session, member_id, brand_id=current_brand_id())


def _actor() -> str:
    return f"api:{g.get('api_key_prefix', 'key')}"


def member_json(member: Membership, google_link: str | None = None) -> dict[str, Any]:
    """The member as the webhooks carry it, and where the member's cards
    are (``google_link``: the save link, if the caller has made it)."""
    return {**member_values(member), "apple_pass_url": apple_pass_url(member),
            "google_save_url": google_save_url(member) if google_link is None else google_link}


# --- clubs -------------------------------------------------------------------------


@bp.route("/clubs", methods=["POST"])
@write_endpoint("optional")
@bp.doc(**idempotency_doc(False))
@bp.arguments(s.ClubCreateSchema, example=ex.CLUB_CREATE)
@bp.response(201, s.ClubSchema, example=ex.CLUB)
def create_club(data: dict[str, Any]) -> Any:
    """Create a club"""
    return club_core.create_club(get_session(), current_brand_id(), data)


@bp.route("/clubs", methods=["GET"])
@bp.arguments(s.ListQuery, location="query")
@bp.response(200, s.page_schema(s.ClubSchema, "ClubPage"), example=ex.page(ex.CLUB))
def list_clubs(query: dict[str, Any]) -> Any:
    """The brand's clubs"""
    return listed(query, lambda count, after: club_core.list_clubs(get_read_session(), current_brand_id(),
                                                                   limit=count, after_id=after), lambda c: c)


@bp.route("/clubs/<int:club_id>", methods=["GET"])
@bp.response(200, s.ClubSchema, example=ex.CLUB)
def get_club(club_id: int) -> Any:
    """One club"""
    return club_of_brand(get_read_session(), club_id)


@bp.route("/clubs/<int:club_id>", methods=["PATCH"])
@write_endpoint("optional")
@bp.arguments(s.club_update_schema(), example=ex.CLUB_UPDATE)
@bp.response(200, s.ClubSchema, example=ex.CLUB)
def update_club(data: dict[str, Any], club_id: int) -> Any:
    """Change a club; cards re-render when what they show changes"""
    session = get_session()
    return club_core.update_club(session, club_of_brand(session, club_id), data)


# --- members -----------------------------------------------------------------------


@bp.route("/clubs/<int:club_id>/members", methods=["POST"])
@write_endpoint("optional")
@bp.doc(**idempotency_doc(False))
@bp.arguments(s.EnrolSchema, example=ex.ENROL)
@bp.response(201, s.MemberSchema, description="enrolled", example=ex.MEMBER)
@bp.alt_response(200, schema=s.MemberSchema, description="already a member: the existing member",
                 example=ex.MEMBER)
def enrol(data: dict[str, Any], club_id: int) -> Any:
    """Enrol a customer (by email or phone) into a club"""
    session = get_session()
    club = club_of_brand(session, club_id)
    member, created = member_core.enrol(
        session, club, email=data.get("email"), phone=data.get("phone"), name=data.get("name") or "",
        birthday=data.get("birthday"), locale=data.get("locale"), referral_code=data.get("referral_code"),
        actor=_actor(), source="api",
    )
    session.flush()
    return member_json(member), 201 if created else 200


@bp.route("/clubs/<int:club_id>/members", methods=["GET"])
@bp.arguments(s.MemberListQuery, location="query")
@bp.response(200, s.page_schema(s.MemberSchema, "MemberPage"), example=ex.page(ex.MEMBER))
def list_members(query: dict[str, Any], club_id: int) -> Any:
    """A club's members, optionally found by card_number, email or phone"""
    session = get_read_session()
    club = club_of_brand(session, club_id)
    try:
        stmt = member_core.find_members(club, card_number=query.get("card_number") or None,
                                        email=query.get("email") or None, phone=query.get("phone") or None)
    except LoyaltyError as exc:
        raise ApiError(400, "invalid_query", exc.message) from None
    return selected(session, stmt.options(joinedload(Membership.club)), Membership.id, query, member_json)


@bp.route("/members/<int:member_id>", methods=["GET"])
@bp.response(200, s.MemberSchema, example=ex.MEMBER)
def get_member(member_id: int) -> Any:
    """One member with balance, tier and card links"""
    return member_json(_member(get_read_session(), member_id))


# The tills' answer, dumped as its schema would dump it (wallet.api.answers).
_TRANSACTION_RESULT = Dumper(s.TransactionResultSchema)

# Clubs with their brands as a booking's answer shows them (its Google save
# link), kept per process, detached, by club id with the updated_at that
# every change of a club's columns moves (as the core keeps a club's rules:
# wallet.loyalty.ledger.club_rules).
_answer_clubs: LRU[Club] = LRU(4096)


def _lend_club(session: Session, member: Membership) -> bool:
    """Gives ``member`` (locked in this transaction without its club) the
    kept club and brand in the state the lock read, without a statement
    while that state is kept; True when it did (the caller takes them back
    with ``_take_club``). Loading them with the lock, as ORM objects, kept
    the lock off the driver (wallet.loyalty.ledger.figures): the ORM's lock
    was about a quarter of an API purchase's CPU. A state not kept is read
    apart (the transaction's own connection is busy with the booking); one
    that differs from the lock's leaves ``member.club`` to load in the
    transaction, as before.

    The kept objects are lent as they are, detached (only the answer reads
    them: their columns and the brand are loaded), not merged into the
    session: copying their attributes into session objects (merge) cost a
    purchase more than the answer's member fields without the Google link.
    Lent only while the answer is built, so no later add or cascade in the
    request can take them into its session."""
    if "club" not in inspect(member).unloaded:
        return False
    updated_at = locked_club(session, member).updated_at
    kept = _answer_clubs.get(member.club_id)
    if kept is None or kept.updated_at != updated_at:
        with get_db().session() as reading:
            kept = reading.get(Club, member.club_id, options=[joinedload(Club.brand)])
        if kept is None:
            return False
        _answer_clubs.put(member.club_id, kept)
    if kept.updated_at != updated_at:
        return False
    set_committed_value(member, "club", kept)
    return True


def _take_club(session: Session, member: Membership) -> None:
    """Takes back what ``_lend_club`` lent: ``member.club`` loads in the
    session again if anything reads it later."""
    session.expire(member, ["club"])


def _full_save_url(member: Membership) -> str:
    """``full_save_url`` of a member of the request's session, its club lent."""
    session = get_session()
    lent = _lend_club(session, member)
    try:
        return full_save_url(member)
    finally:
        if lent:
            _take_club(session, member)


@bp.route("/members/<int:member_id>/transactions", methods=["POST"])
@write_endpoint("required")
@bp.doc(**idempotency_doc(True))
@bp.doc(**s.transaction_request_doc())
@bp.response(201, s.TransactionResultSchema, example=ex.TRANSACTION_RESULT)
def create_transaction(member_id: int) -> Any:
    """Book a purchase, redemption, refund, adjustment or stamp"""
    return book_transaction(member_id, g.get("api_json", {}))


def book_transaction(member_id: int, body: Any, rider: AnswerRider | None = None) -> Any:
    """``create_transaction``'s work and answer, in the request's unit of
    work; a till's purchase answered before Flask does the same
    (wallet.api.direct), its Idempotency-Key's row made to ride with the
    purchase's last statement (``rider``, made with ``transaction_json``)
    where the purchase allows."""
    try:
        data = s.load_transaction_request(body)
    except ma.ValidationError as exc:
        raise invalid_body(exc.messages) from None
    session = get_session()
    kind, actor = data["type"], _actor()
    # Locked in one statement; the core finds it locked.
    member = ledger.get_member_for_update(session, member_id, brand_id=current_brand_id(),
                                          with_referrer=kind == "purchase")
    if kind == "purchase":
        txn = ledger.purchase(session, member, amount=data["amount"], receipt_id=data.get("receipt_id"),
                              actor=actor, rider=rider)
    elif kind == "redeem":
        txn = ledger.redeem(session, member, points=data["points"], actor=actor)
    elif kind == "refund":
        txn = ledger.refund(session, member, refund_of=data["refund_of"], amount=data["amount"], actor=actor)
    elif kind == "adjust":
        txn = ledger.adjust(session, member, points=data["points"], reason=data["reason"], actor=actor)
    else:
        txn = ledger.stamp(session, member, actor=actor)
    session.flush()
    if rider is not None and rider.written:
        return rider.response
    return transaction_answer(member, txn)


def transaction_answer(member: Membership, txn: LedgerTransaction | Any) -> Response:
    """The answer to a booking of ``txn`` (the entry, or its columns as
    attributes) that leaves ``member`` as it is."""
    return transaction_json(member, txn).response()


def transaction_json(member: Membership, txn: LedgerTransaction | Any) -> JsonAnswer:
    """``transaction_answer`` before its Response is made (AnswerRider fills
    in the entry's id first)."""
    # A card Google has gets the skinny save link, which reads nothing of
    # the club: only the full one needs the club lent.
    link = skinny_save_url(member)
    answer = {"transaction": transaction_values(txn),
              "member": member_json(member, link if link is not None else _full_save_url(member))}
    return JsonAnswer(_TRANSACTION_RESULT, answer, 201)


@bp.route("/members/<int:member_id>/transactions", methods=["GET"])
@bp.arguments(s.ListQuery, location="query")
@bp.response(200, s.page_schema(s.TransactionSchema, "TransactionPage"), example=ex.page(ex.TRANSACTION))
def list_transactions(query: dict[str, Any], member_id: int) -> Any:
    """A member's ledger, newest first"""
    session = get_read_session()
    member = _member(session, member_id)
    return listed(query, lambda count, before: ledger.list_transactions(session, member.id, limit=count,
                                                                        before_id=before), transaction_values)


# --- messages ------------------------------------------------------------------------


@bp.route("/clubs/<int:club_id>/messages", methods=["POST"])
@write_endpoint("optional")
@bp.doc(**idempotency_doc(False))
@bp.arguments(s.MessageRequestSchema, example=ex.MESSAGE)
@bp.response(202, s.MessageResultSchema, example=ex.MESSAGE_RESULT)
def send_message(data: dict[str, Any], club_id: int) -> Any:
    """Show a message on every member's card (or one tier's)"""
    session = get_session()
    club = club_of_brand(session, club_id)
    return {"cards": send_club_message(session, club, text=data["text"], tier=data.get("tier"))}


# --- API keys --------------------------------------------------------------------------


def _key_json(row: ApiKey) -> dict[str, Any]:
    return {"id": row.id, "name": row.name, "prefix": row.prefix, "created_at": row.created_at,
            "last_used_at": row.last_used_at, "revoked_at": row.revoked_at}


@bp.route("/api-keys", methods=["POST"])
@write_endpoint("optional")
@bp.doc(**idempotency_doc(False))
@bp.arguments(s.ApiKeyCreateSchema, example=ex.API_KEY_CREATE)
@bp.response(201, s.ApiKeyCreatedSchema, example=ex.API_KEY_CREATED)
def create_api_key(data: dict[str, Any]) -> Any:
    """A new API key for the brand (shown once)"""
    session = get_session()
    brand = session.get(brand_core.Brand, current_brand_id())
    row, key = brand_core.create_api_key(session, brand, data.get("name") or "default")
    return {**_key_json(row), "key": key}


@bp.route("/api-keys", methods=["GET"])
@bp.arguments(s.ListQuery, location="query")
@bp.response(200, s.page_schema(s.ApiKeySchema, "ApiKeyPage"), example=ex.page(ex.API_KEY))
def list_api_keys(query: dict[str, Any]) -> Any:
    """The brand's API keys (never the keys themselves)"""
    return selected(get_read_session(), select(ApiKey).where(ApiKey.brand_id == current_brand_id()), ApiKey.id,
                    query, _key_json)


@bp.route("/api-keys/<int:key_id>", methods=["DELETE"])
@write_endpoint("optional")
@bp.response(204)
def revoke_api_key(key_id: int) -> Any:
    """Revoke an API key"""
    session = get_session()
    brand = session.get(brand_core.Brand, current_brand_id())
    brand_core.revoke_api_key(session, brand, key_id)
    return None


# --- webhooks ----------------------------------------------------------------------------


def _hook_json(hook: webhook_core.Webhook) -> dict[str, Any]:
    return {"id": hook.id, "url": hook.url, "events": list(hook.events or []), "created_at": hook.created_at}


@bp.route("/webhooks", methods=["POST"])
@write_endpoint("optional")
@bp.doc(**idempotency_doc(False))
@bp.arguments(s.WebhookCreateSchema, example=ex.WEBHOOK_CREATE)
@bp.response(201, s.WebhookCreatedSchema, example=ex.WEBHOOK_CREATED)
def create_webhook(data: dict[str, Any]) -> Any:
    """Register an endpoint for events (the signing secret is shown once)"""
    hook = webhook_core.create_webhook(get_session(), current_brand_id(), url=data["url"],
                                       events=data.get("events"), targets=webhook_targets())
    return {**_hook_json(hook), "secret": hook.secret}


@bp.route("/webhooks", methods=["GET"])
@bp.arguments(s.ListQuery, location="query")
@bp.response(200, s.page_schema(s.WebhookSchema, "WebhookPage"), example=ex.page(ex.WEBHOOK))
def list_webhooks(query: dict[str, Any]) -> Any:
    """The brand's webhook endpoints"""
    return listed(query, lambda count, after: webhook_core.list_webhooks(
        get_read_session(), current_brand_id(), limit=count, after_id=after), _hook_json)


@bp.route("/webhooks/<int:webhook_id>", methods=["GET"])
@bp.response(200, s.WebhookSchema, example=ex.WEBHOOK)
def get_webhook(webhook_id: int) -> Any:
    """One webhook endpoint"""
    return _hook_json(webhook_core.get_webhook(get_read_session(), webhook_id, brand_id=current_brand_id()))


@bp.route("/webhooks/<int:webhook_id>", methods=["DELETE"])
@write_endpoint("optional")
@bp.response(204)
def delete_webhook(webhook_id: int) -> Any:
    """Remove a webhook endpoint"""
    webhook_core.delete_webhook(get_session(), webhook_id, brand_id=current_brand_id())
    return None


@bp.route("/webhooks/<int:webhook_id>/deliveries", methods=["GET"])
@bp.arguments(s.ListQuery, location="query")
@bp.response(200, s.page_schema(s.WebhookDeliverySchema, "WebhookDeliveryPage"),
             example=ex.page(ex.WEBHOOK_DELIVERY))
def list_webhook_deliveries(query: dict[str, Any], webhook_id: int) -> Any:
    """Every delivery attempt to one endpoint, newest first"""
    session = get_read_session()
    hook = webhook_core.get_webhook(session, webhook_id, brand_id=current_brand_id())
    D = webhook_core.WebhookDelivery
    return selected(session, select(D).where(D.webhook_id == hook.id), D.id, query, lambda d: d, newest_first=True)
