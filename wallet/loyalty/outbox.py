"""What the outbox carries: the kinds of its rows and the payload of each.

An outbox row (``models.OutboxEvent``) is work that must happen after the
commit that wrote it. Its ``kind`` names the handler that does it
(wallet.jobs.dispatch) and is one of ``OutboxKind``: the database refuses any
other (a CHECK constraint on ``outbox.kind``). Its ``payload`` is the JSON of
that kind's ``OutboxPayload`` dataclass, written by ``OutboxEvent.carrying``
and read back by ``Payload.of(row)``; a row whose payload does not fit raises
``MalformedPayload``, and its handler drops it with a warning, since no retry
could ever do it. A kind that needs nothing beyond the row's membership, club
or brand id has no payload.

Adding a kind: a member of ``OutboxKind``; its payload dataclass, if it
carries data; its handler in wallet/jobs/dispatch.py; and a migration that
puts the value into the ``kind`` CHECK constraint (tests/test_outbox.py fails
until it does).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from enum import StrEnum
from typing import Any, ClassVar, Protocol, Self, TypeVar

from wallet.loyalty.errors import LoyaltyError


class OutboxRow(Protocol):
    """What a payload reads of an outbox row: the model's object, or the
    row as a worker claimed it (wallet.jobs.outbox.Claimed)."""

    @property
    def id(self) -> int: ...
    @property
    def kind(self) -> str: ...
    @property
    def payload(self) -> Any: ...


class OutboxKind(StrEnum):
    # A card to render again and push to every wallet holding it (membership_id).
    CARD_CHANGED = "card.changed"
    # An event for one of a brand's webhooks (brand_id; WebhookPayload).
    WEBHOOK = "webhook"
    # An email or a text message to a person (NotificationPayload).
    NOTIFICATION = "notification"
    # The next chunk of a brand's member import (ImportPayload, wallet.loyalty.imports).
    MEMBER_IMPORT = "member.import"
    # The next page of a campaign's segment to put its message on (CampaignPayload,
    # wallet.loyalty.campaigns); ``available_at`` is the campaign's time.
    CAMPAIGN = "campaign.send"
    # The next page of a club's members to put a club message on (ClubMessagePayload,
    # wallet.loyalty.messages).
    CLUB_MESSAGE = "club.message"


class MalformedPayload(LoyaltyError):
    """An outbox row's payload does not fit its kind: nothing can deliver it."""

    default_code = "malformed_outbox_payload"


@dataclass(frozen=True)
class OutboxPayload:
    """Base of the payload of one kind: plain data, JSON in and out."""

    kind: ClassVar[OutboxKind]

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: Any) -> Self:
        """The payload from its JSON; MalformedPayload when it does not fit.
        Keys this version does not know are ignored."""
        return from_fields(cls, data)

    @classmethod
    def of(cls, row: OutboxRow) -> Self:
        """The payload of an outbox row of this kind."""
        if row.kind != cls.kind:
            raise MalformedPayload(f"outbox row {row.id} is a {row.kind}, not a {cls.kind}")
        return cls.from_json(row.payload)


T = TypeVar("T")


def from_fields(cls: type[T], data: Any) -> T:
    """A dataclass (a payload or a part of one) from a JSON object: the keys
    it knows, checked by its __post_init__; MalformedPayload when they do not
    fit. Keys it does not know (a newer version's) are ignored."""
    if not isinstance(data, dict):
        raise MalformedPayload(f"{cls.__name__} must be a JSON object, not {type(data).__name__}")
    try:
        return cls(**{f.name: data[f.name] for f in fields(cls) if f.name in data})  # type: ignore[arg-type]
    except (TypeError, ValueError) as exc:
        raise MalformedPayload(f"not a {cls.__name__}: {exc}") from exc


def require(value: Any, expected: type | tuple[type, ...], name: str) -> None:
    """For payloads' __post_init__: refuse a field of the wrong type, as JSON
    from another version or a hand-edited row could carry. No field is a
    boolean, so True is not taken for 1."""
    if isinstance(value, bool) or not isinstance(value, expected):
        raise ValueError(f"{name} has the wrong type ({type(value).__name__})")


__all__ = ["MalformedPayload", "OutboxKind", "OutboxPayload", "from_fields", "require"]
