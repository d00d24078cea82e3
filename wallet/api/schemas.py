"""Request and response schemas: they validate requests and generate the
OpenAPI document, so the two cannot drift apart.

The rule sets (club fields with the program, member fields) are the core's
own schemas, so the API refuses what the core refuses with the same error;
answers are the core's shapes of a member and a ledger entry, and the
answer form of the club's rule set. Requests reject unknown fields (422).
Numbers that are money or points are strict integers with the core's
bounds; strings carry the column lengths.
"""

from __future__ import annotations

import copy
import re
from datetime import timezone
from typing import Any

import marshmallow as ma
from marshmallow import fields, validate

from wallet.api import examples
from wallet.api.loading import Loader
from wallet.db import MAX_ID
from wallet.loyalty.clubs import FIELDS as CLUB_FIELDS
from wallet.loyalty.clubs import ClubFieldsSchema, FeaturedActionSchema, LocationSchema
from wallet.loyalty.ledger import serialise
from wallet.loyalty.members import MemberFieldsSchema
from wallet.loyalty.program import (MAX_MONEY, MAX_POINTS, BonusRulesSchema, CashbackRulesSchema,
                                    DiscountRulesSchema, PointsRulesSchema, ProgramSchema, StampRulesSchema,
                                    TierLevelSchema, TierRulesSchema)
from wallet.loyalty.campaign_models import CampaignStatus
from wallet.loyalty.fields import RuleSet, Section
from wallet.loyalty.segments import SegmentRulesSchema
from wallet.loyalty.webhooks import EVENT_TYPES, DeliveryError

TRANSACTION_TYPES = ("purchase", "redeem", "refund", "adjust", "stamp")
_ASCII_INTEGER = re.compile(r"-?[0-9]{1,20}")


def _int(**kwargs: Any) -> fields.Integer:
    return fields.Integer(strict=True, **kwargs)


class Request(ma.Schema):
    class Meta:
        unknown = ma.RAISE


class QueryInteger(fields.Integer):
    """An integer in a query string: ASCII digits only. Python's int() also
    reads "\u0661\u0660", " 10 " and "1_0" as 10; a client sending those
    has a bug worth a 400, not a guess."""

    def _validated(self, value: Any) -> int:
        if isinstance(value, str) and not _ASCII_INTEGER.fullmatch(value):
            raise self.make_error("invalid")
        return super()._validated(value)


class Query(ma.Schema):
    # Unknown query parameters are ignored, as most HTTP APIs do.
    class Meta:
        unknown = ma.EXCLUDE


# --- errors --------------------------------------------------------------------


class ErrorDetailSchema(ma.Schema):
    code = fields.String(required=True, metadata={"description": "snake_case error code"})
    message = fields.String(required=True)


class ErrorSchema(ma.Schema):
    error = fields.Nested(ErrorDetailSchema, required=True)


# --- lists -----------------------------------------------------------------------


class ListQuery(Query):
    limit = QueryInteger(load_default=50, validate=validate.Range(1, 500))
    cursor = fields.String(validate=validate.Length(1, 200),
                           metadata={"description": "next_cursor of the previous page"})


class MemberListQuery(ListQuery):
    card_number = fields.String(validate=validate.Length(1, 64))
    email = fields.String(validate=validate.Length(1, 320))
    phone = fields.String(validate=validate.Length(1, 32))


def page_schema(item: type[ma.Schema], name: str) -> type[ma.Schema]:
    return ma.Schema.from_dict(
        {"items": fields.List(fields.Nested(item), required=True),
         "next_cursor": fields.String(allow_none=True, required=True)},
        name=name,
    )


# --- clubs -----------------------------------------------------------------------


IMAGE_FIELDS = ("logo_png", "strip_png", "icon_png", "artwork_png")


class ClubCreateSchema(ClubFieldsSchema):
    """The core's club rule set; pictures are uploaded in the portal."""

    class Meta(ClubFieldsSchema.Meta):
        exclude = IMAGE_FIELDS


class ClubUpdateSchema(ClubCreateSchema):
    """Any of the club's fields; those absent keep their values."""


def club_update_schema() -> ClubUpdateSchema:
    # Listing the fields (not partial=True) keeps a program's own defaults
    # when a PATCH sends one, as the core does.
    return ClubUpdateSchema(partial=CLUB_FIELDS)


def answer_schema(schema: type[ma.Schema], name: str, *, required: bool = True,
                  names: dict[type[ma.Schema], str] | None = None) -> type[ma.Schema]:
    """The answer form of a rule set: the same fields, enums and bounds, each
    marked required (the core stores every key, defaults filled in) unless
    ``required`` is false, and rule sets within given their answer forms
    (named by ``names``) in turn."""
    names = names or {}
    out: dict[str, fields.Field] = {}
    for key, field in schema().fields.items():
        field = copy.deepcopy(field)
        if isinstance(field, fields.Nested):
            nested = field.nested if isinstance(field.nested, type) else type(field.schema)
            # A stored section is there or absent, never null.
            field = fields.Nested(answer_schema(nested, names[nested], names=names), metadata=field.metadata)
        elif isinstance(field, fields.List) and isinstance(field.inner, fields.Nested):
            inner = field.inner
            nested = inner.nested if isinstance(inner.nested, type) else type(inner.schema)
            field = fields.List(fields.Nested(answer_schema(nested, names[nested], names=names)),
                                metadata=field.metadata)
        field.required = required
        field.load_default = ma.missing
        out[key] = field
    return ma.Schema.from_dict(out, name=name)


_PROGRAM_NAMES = {
    ProgramSchema: "ClubProgram", DiscountRulesSchema: "ClubDiscountRules", PointsRulesSchema: "ClubPointsRules",
    TierRulesSchema: "ClubTierRules", TierLevelSchema: "ClubTierLevel", CashbackRulesSchema: "ClubCashbackRules",
    StampRulesSchema: "ClubStampRules", BonusRulesSchema: "ClubBonusRules",
}
# Sections a club does not run are absent; those it runs carry every key.
ProgramAnswerSchema = answer_schema(ProgramSchema, "ClubProgram", required=False, names=_PROGRAM_NAMES)
LocationAnswerSchema = answer_schema(LocationSchema, "ClubLocation")
FeaturedActionAnswerSchema = answer_schema(FeaturedActionSchema, "ClubFeaturedAction")


class ClubSchema(answer_schema(ClubCreateSchema, "ClubBase",  # type: ignore[misc]
                               names={**_PROGRAM_NAMES, LocationSchema: "ClubLocation",
                                      FeaturedActionSchema: "ClubFeaturedAction"})):
    """A club as its brand set it, with what the service adds."""

    id = fields.Integer(required=True)
    locations = fields.List(fields.Nested(LocationAnswerSchema), required=True)
    featured_actions = fields.List(fields.Nested(FeaturedActionAnswerSchema), required=True, metadata={
        "description": "at most 2 links shown under the card, in this order"})
    program = fields.Nested(ProgramAnswerSchema, required=True, metadata={
        "description": "the program rules, every key of each section the club runs (see Program)"})
    design_version = fields.Integer(required=True, metadata={"description": "grows when the artwork changes"})
    message = fields.String(required=True, allow_none=True, metadata={
        "description": "the message on every card (POST /clubs/{club_id}/messages)"})
    created_at = fields.DateTime(required=True)
    updated_at = fields.DateTime(required=True)


# --- members ---------------------------------------------------------------------


class EnrolSchema(MemberFieldsSchema):
    """The core's member rule set; the phone is read in the club's country."""


class MemberSchema(serialise.MemberSchema):
    apple_pass_url = fields.String(required=True, metadata={
        "format": "uri", "description": "the signed .pkpass: open it on an iPhone to add the card"})
    google_save_url = fields.String(required=True, metadata={
        "format": "uri", "description": "the Add to Google Wallet link"})


# --- transactions ------------------------------------------------------------------

def _type(kind: str) -> fields.String:
    return fields.String(required=True, validate=validate.OneOf([kind]))


def _amount(description: str) -> fields.Integer:
    return _int(required=True, validate=validate.Range(1, MAX_MONEY), metadata={"description": description})


class PurchaseRequestSchema(Request):
    type = _type("purchase")
    amount = _amount("money spent, in minor units of the club's currency")
    receipt_id = fields.String(validate=validate.Length(1, 100), allow_none=True,
                               metadata={"description": "the till's receipt id, unique per club"})


class RedeemRequestSchema(Request):
    type = _type("redeem")
    points = _int(required=True, validate=validate.Range(1, MAX_POINTS),
                  metadata={"description": "points to spend, at most the balance"})


class RefundRequestSchema(Request):
    type = _type("refund")
    refund_of = _int(required=True, validate=validate.Range(1, MAX_ID),
                     metadata={"description": "id of the purchase refunded"})
    amount = _amount("money refunded, at most what is left of the purchase")


class AdjustRequestSchema(Request):
    type = _type("adjust")
    points = _int(required=True, validate=validate.Range(-MAX_POINTS, MAX_POINTS),
                  metadata={"description": "signed change of the balance (not 0)"})
    reason = fields.String(required=True, validate=validate.Length(1, 500))


class StampRequestSchema(Request):
    """A stamp without a purchase (a club that runs stamps; a purchase gives one too)."""

    type = _type("stamp")


TRANSACTION_REQUESTS: dict[str, type[Request]] = {
    "purchase": PurchaseRequestSchema,
    "redeem": RedeemRequestSchema,
    "refund": RefundRequestSchema,
    "adjust": AdjustRequestSchema,
    "stamp": StampRequestSchema,
}


def transaction_request_doc() -> dict[str, Any]:
    """The request body as oneOf the types (a discriminated union),
    which marshmallow cannot express but clients and fuzzers need."""
    names = {kind: f"{kind.capitalize()}Request" for kind in TRANSACTION_REQUESTS}
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": {
        "oneOf": [{"$ref": f"#/components/schemas/{n}"} for n in names.values()],
        "discriminator": {"propertyName": "type",
                          "mapping": {k: f"#/components/schemas/{n}" for k, n in names.items()}},
    }, "examples": {kind: {"value": body} for kind, body in examples.TRANSACTION_REQUESTS.items()}}}}}


# One instance per type, made on first use: a schema's construction copies
# its fields, which costs more than loading a body.
_REQUEST_LOADERS: dict[str, Request] = {}
# A till's purchase, recognised without marshmallow when plainly valid
# (wallet.api.loading); any other body is marshmallow's to load or refuse.
_PLAIN_PURCHASE = Loader(PurchaseRequestSchema)


def load_transaction_request(body: Any) -> dict[str, Any]:
    """Validate a transaction body by its type; ma.ValidationError if not."""
    if not isinstance(body, dict):
        raise ma.ValidationError("the body must be a JSON object")
    kind = body.get("type")
    if kind == "purchase":
        plain = _PLAIN_PURCHASE(body)
        if plain is not None:
            return plain
    schema = TRANSACTION_REQUESTS.get(kind) if isinstance(kind, str) else None
    if schema is None:
        raise ma.ValidationError({"type": [f"must be one of: {', '.join(TRANSACTION_TYPES)}"]})
    loader = _REQUEST_LOADERS.get(kind)
    if loader is None:
        loader = _REQUEST_LOADERS[kind] = schema()
    return loader.load(body)


TransactionSchema = serialise.TransactionSchema


class TransactionResultSchema(ma.Schema):
    transaction = fields.Nested(TransactionSchema, required=True)
    member = fields.Nested(MemberSchema, required=True)


# --- messages --------------------------------------------------------------------------


class MessageRequestSchema(Request):
    text = fields.String(required=True, validate=validate.Length(1, 500), metadata={
        "description": "shown on the card's back and announced on the lock screen"})
    tier = fields.String(validate=validate.Length(1, 64), allow_none=True, metadata={
        "description": "only members in this tier; absent or null: every member"})


class MessageResultSchema(ma.Schema):
    cards = fields.Integer(required=True, metadata={"description": "cards that will show the message"})


# --- campaigns --------------------------------------------------------------------------


class CampaignCreateSchema(RuleSet):
    """A request whose segment answers invalid_segment, as the core's rule set does."""

    error_code = "validation_error"
    field_codes = {"segment": "invalid_segment"}

    text = fields.String(required=True, validate=validate.Length(1, 500), metadata={
        "description": "shown on the card's back and announced on the lock screen"})
    segment = Section(SegmentRulesSchema, metadata={
        "description": "which members: every rule narrows; absent or {}: every member"})
    send_at = fields.AwareDateTime(default_timezone=timezone.utc, allow_none=True, metadata={
        "description": "when to send (at most a year ahead); absent or null: now"})


class CampaignResultsSchema(ma.Schema):
    queued = fields.Integer(required=True, metadata={"description": "on the card, the wallets not told yet"})
    reached = fields.Integer(required=True, metadata={"description": "a wallet holding the card notified"})
    silent = fields.Integer(required=True, metadata={
        "description": "only Google Wallet holds the card and it had its 3 notifications that day"})
    failed = fields.Integer(required=True, metadata={"description": "a wallet could not be told yet; retried"})
    no_wallet = fields.Integer(required=True, metadata={"description": "the card is in no wallet"})


class CampaignSchema(ma.Schema):
    id = fields.Integer(required=True)
    club_id = fields.Integer(required=True)
    text = fields.String(required=True)
    segment = fields.Nested(SegmentRulesSchema, required=True, metadata={"description": "the rules it was sent by"})
    segment_name = fields.String(required=True, allow_none=True)
    send_at = fields.DateTime(required=True)
    status = fields.String(required=True, validate=validate.OneOf([c.value for c in CampaignStatus]))
    cards = fields.Integer(required=True, metadata={"description": "cards the message was put on so far"})
    results = fields.Nested(CampaignResultsSchema, required=True)
    created_at = fields.DateTime(required=True)


# --- API keys ----------------------------------------------------------------------


class ApiKeyCreateSchema(Request):
    name = fields.String(validate=validate.Length(1, 100))


class ApiKeySchema(ma.Schema):
    id = fields.Integer(required=True)
    name = fields.String(required=True)
    prefix = fields.String(required=True, metadata={"description": "the key's first characters"})
    created_at = fields.DateTime(required=True)
    last_used_at = fields.DateTime(required=True, allow_none=True, metadata={"description": "to the minute"})
    revoked_at = fields.DateTime(required=True, allow_none=True)


class ApiKeyCreatedSchema(ApiKeySchema):
    key = fields.String(required=True, metadata={"description": "shown once; store it now"})


# --- webhooks --------------------------------------------------------------------------


class WebhookCreateSchema(Request):
    url = fields.String(required=True, validate=validate.Length(1, 2000), metadata={"description": (
        "http(s) URL of a public endpoint, without user name or password; a host that is or "
        "resolves to a loopback, private, link-local, shared, multicast, reserved or unspecified "
        "address is refused (422 private_address), and checked again before each delivery")})
    events = fields.List(fields.String(validate=validate.OneOf(EVENT_TYPES)),
                         validate=validate.Length(0, len(EVENT_TYPES)),
                         metadata={"description": "event types to receive; empty or absent: all"})


class WebhookSchema(ma.Schema):
    id = fields.Integer(required=True)
    url = fields.String(required=True, metadata={"format": "uri"})
    events = fields.List(fields.String(validate=validate.OneOf(EVENT_TYPES)), required=True,
                         metadata={"description": "event types it receives; empty: all"})
    created_at = fields.DateTime(required=True)


class WebhookCreatedSchema(WebhookSchema):
    secret = fields.String(required=True, metadata={
        "description": "signs deliveries: Wallet-Signature t=<unix>,v1=hex(HMAC-SHA256(secret, "
                       "'<t>.<body>')); shown once"})


class WebhookDeliverySchema(ma.Schema):
    id = fields.Integer(required=True)
    event_id = fields.String(required=True)
    event_type = fields.String(required=True, validate=validate.OneOf(EVENT_TYPES))
    attempt = fields.Integer(required=True)
    url = fields.String(required=True, metadata={"format": "uri"})
    response_status = fields.Integer(required=True, allow_none=True, metadata={"description": "null: no HTTP answer"})
    error = fields.Enum(DeliveryError, by_value=True, required=True, allow_none=True,
                        metadata={"description": "why no HTTP answer came; null when one came"})
    succeeded = fields.Boolean(required=True)
    duration_ms = fields.Integer(required=True)
    created_at = fields.DateTime(required=True)
