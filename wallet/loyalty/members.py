"""Enrolling people into clubs, and the profile each club keeps of them.

What a brand or its till tells us (name, email, phone, birthday, locale) is
that membership's profile: another brand enrolling the same email or phone
gets a membership of its own and neither sees nor changes this one.
Enrolment de-duplicates within the club only: an email or a phone that an
active member of the club already has gives that member back, unchanged
(the enrolment form is public, so what it carries must never rewrite an
existing profile). Two tills enrolling the same person at the same moment
make one membership: the partial unique indexes on (club, email) and
(club, phone) of active memberships decide, and the loser of the race reads
the winner's row. Someone whose membership ended gets a new active card.

Joining memberships to a person across clubs needs proof; see
``wallet.loyalty.identity``.
"""

from __future__ import annotations

import secrets
import uuid
from datetime import date, datetime, timedelta
from typing import Any

import marshmallow as ma
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from wallet.db import utcnow
from wallet.loyalty.barcodes import new_card_number
from wallet.loyalty.cards import record_card_change, record_card_issued
from wallet.loyalty.contacts import MAX_EMAIL, MAX_PHONE_INPUT, normalize_email, normalize_phone
from wallet.loyalty.errors import NotFound, RuleViolation
from wallet.loyalty.fields import Checked, Problem, RuleSet, Text, clean_text, valid_text
from wallet.loyalty.identity import still_tied
from wallet.loyalty.ledger import grant_bonus, member_to_dict, set_tier, write_figures
from wallet.loyalty.locales import LOCALES
from wallet.loyalty.models import Club, Membership
from wallet.loyalty.program import Program
from wallet.loyalty.webhooks import emit_event

_REFERRAL_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I


def new_referral_code() -> str:
    return "".join(secrets.choice(_REFERRAL_ALPHABET) for _ in range(8))


def _birthday(value: Any) -> date | None:
    if value == "":
        return None
    if isinstance(value, datetime):
        value = value.date()
    if isinstance(value, date):
        parsed = value
    elif isinstance(value, str):
        try:
            parsed = date.fromisoformat(value.strip())
        except ValueError:
            raise ma.ValidationError(Problem("not_a_date", f"must be a date YYYY-MM-DD, not {value!r}")) from None
    else:
        raise ma.ValidationError(Problem("not_a_date", "must be a date YYYY-MM-DD"))
    if parsed.year < 1900 or parsed > date.today():
        raise ma.ValidationError(Problem("not_a_past_date", "must be a past date after 1900"))
    return parsed


def _locale(value: Any) -> str:
    if value == "":
        return LOCALES[0]
    if isinstance(value, str):
        language = value.strip().replace("_", "-").split("-")[0].lower()
        if language in LOCALES:
            return language
    raise ma.ValidationError(Problem("not_a_choice", f"must be one of {', '.join(LOCALES)}"))


def _email(value: Any) -> str | None:
    return normalize_email(value) if value != "" else None


class Phone(ma.fields.String):
    """A phone number as typed. Loaded by a schema that knows the club's
    country (``MemberFieldsSchema(country=...)``) it becomes E.164; a schema
    without one (the API's, which has no club yet) checks only the text."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(metadata={"maxLength": MAX_PHONE_INPUT, **kwargs.pop("metadata", {})}, **kwargs)

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str | None:
        text = clean_text(value, max_len=MAX_PHONE_INPUT, allow_empty=True)
        country = getattr(self.parent, "country", _NO_CLUB)
        if not text or country is _NO_CLUB:
            return text or None
        try:
            return normalize_phone(text, country=country)
        except RuleViolation as exc:
            raise ma.ValidationError(Problem(exc.code, exc.message.removeprefix("phone: "))) from None


_NO_CLUB = object()


class MemberFieldsSchema(RuleSet):
    """What a member is enrolled with and what the brand may change: the
    API's enrolment, ``enrol``, ``update_profile`` and the portal's forms
    load through this. Each field answers its own error code."""

    error_code = "invalid_member"
    field_codes = {"name": "invalid_name", "email": "invalid_email", "phone": "invalid_phone",
                   "birthday": "invalid_birthday", "locale": "invalid_locale",
                   "referral_code": "invalid_referral_code", "_schema": "email_or_phone_required"}
    unknown_code = "unknown_field"

    email = Checked(_email, allow_none=True, metadata={
        "format": "email", "maxLength": MAX_EMAIL, "example": "ann@example.com",
        "description": "kept lowercased; an email or a phone is required"})
    phone = Phone(allow_none=True, metadata={
        "example": "+7 916 123-45-67",
        "description": "kept in E.164; without + it is read in the club's country"})
    name = Text(max_len=200, allow_none=True, metadata={"example": "Ann Lee", "default": ""})
    birthday = Checked(_birthday, allow_none=True, metadata={"format": "date", "example": "1990-01-05"})
    locale = Checked(_locale, allow_none=True, metadata={
        "enum": list(LOCALES), "default": LOCALES[0], "description": "language of the card and of messages"})
    referral_code = Text(max_len=32, allow_none=True, empty=None, metadata={
        "description": "another member's referral_code: the new member was referred by them"})

    def __init__(self, *args: Any, country: Any = _NO_CLUB, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.country = country

    @ma.validates_schema
    def _email_or_phone(self, data: dict[str, Any], partial: Any = None, **_: Any) -> None:
        if not partial and not data.get("email") and not data.get("phone"):
            raise ma.ValidationError(Problem("email_or_phone_required", "give an email or a phone"))

    @ma.post_load
    def _filled(self, data: dict[str, Any], **_: Any) -> dict[str, Any]:
        if "name" in data:
            data["name"] = data["name"] or ""
        if "locale" in data:
            data["locale"] = data["locale"] or LOCALES[0]
        return data


def _active_with(session: Session, club_id: int, email: str | None, phone: str | None) -> Membership | None:
    """The club's active member with this email, else with this phone."""
    for column, value in ((Membership.email, email), (Membership.phone, phone)):
        if value:
            found = session.scalar(
                select(Membership).where(Membership.club_id == club_id, Membership.status == "active",
                                         column == value)
            )
            if found is not None:
                return found
    return None


def find_members(club: Club, *, email: str | None = None, phone: str | None = None,
                 card_number: str | None = None) -> Any:
    """A select of the club's memberships (active and ended) matching every
    criterion given, found in the club's own profiles only."""
    query = select(Membership).where(Membership.club_id == club.id)
    if card_number is not None:
        card_number = valid_text(card_number, "card_number", max_len=32, code="invalid_card_number")
        query = query.where(Membership.card_number == card_number)
    if email is not None:
        query = query.where(Membership.email == normalize_email(email))
    if phone is not None:
        query = query.where(Membership.phone == normalize_phone(phone, country=club.country))
    return query


def find_membership(session: Session, club: Club, *, email: str | None = None, phone: str | None = None,
                    card_number: str | None = None) -> Membership | None:
    """The club's member by card number, email or phone: the active one
    when there is one, else the latest that ended."""
    query = find_members(club, email=email, phone=phone, card_number=card_number)
    return session.scalar(query.order_by((Membership.status == "active").desc(), Membership.id.desc()).limit(1))


def enrol(
    session: Session,
    club: Club,
    *,
    email: str | None = None,
    phone: str | None = None,
    name: str | None = "",
    birthday: date | str | None = None,
    locale: str | None = None,
    referral_code: str | None = None,
    actor: str = "api",
    now: datetime | None = None,
    source: str | None = None,
) -> tuple[Membership, bool]:
    """Enrol someone into ``club``; returns (membership, created). An
    active member of the club with the same email (or else phone) is
    returned as it is, with created False. ``source`` records where the
    card was made (Membership.source)."""
    values = MemberFieldsSchema(country=club.country).load({
        "email": email, "phone": phone, "name": name, "birthday": birthday, "locale": locale,
        "referral_code": referral_code})
    norm_email, norm_phone, referral_code = values["email"], values["phone"], values["referral_code"]
    name, born, language = values["name"], values["birthday"], values["locale"]
    now = now or utcnow()

    existing = _active_with(session, club.id, norm_email, norm_phone)
    if existing is not None:
        return existing, False

    referrer: Membership | None = None
    if referral_code:
        referrer = session.scalar(
            select(Membership).where(
                Membership.club_id == club.id, Membership.referral_code == referral_code.strip().upper()
            )
        )
        if referrer is None:
            raise RuleViolation(f"no member of this club has referral code {referral_code!r}",
                                code="unknown_referral_code")

    program = Program.of(club)
    member: Membership | None = None
    for _ in range(5):
        candidate = Membership(
            club_id=club.id,
            card_number=new_card_number(club.barcode_format),
            serial_number=uuid.uuid4().hex,
            auth_token=secrets.token_urlsafe(24),
            download_token=secrets.token_urlsafe(24),
            referral_code=new_referral_code(),
            referred_by_id=referrer.id if referrer else None,
            name=name, email=norm_email, phone=norm_phone, birthday=born, locale=language,
            status="active", source=source,
            balance=0, pending=0, cash_balance=0, stamps=0, expiring_points=0,
            version=1, change_seq=0,
            card_modified_at=now.replace(microsecond=0),
            created_at=now,
            tier_review_at=now + timedelta(days=program.tiers.review_days) if program.tiers else None,
        )
        try:
            with session.begin_nested():
                session.add(candidate)
                session.flush()
            member = candidate
            break
        except IntegrityError:
            # Either the same person was enrolled concurrently (return theirs),
            # or a random card number / code collided (draw again).
            existing = _active_with(session, club.id, norm_email, norm_phone)
            if existing is not None:
                return existing, False
    if member is None:
        raise RuleViolation("could not allocate a card number; try again", code="card_number_conflict")

    if program.tiers:
        set_tier(session, member, program.tiers.levels[0].name, actor=actor, now=now, reason="enrolled")
    welcome = grant_bonus(session, member, program.welcome_points, kind="welcome", dedupe_key=f"welcome:{member.id}",
                          actor=actor, program=program, now=now)
    if program.tiers or welcome is not None:
        write_figures(session, member)
    # No card change is recorded: the card did not exist before this
    # transaction, and its first render already shows all of the above.
    record_card_issued(session, member)
    shown = member_to_dict(member)
    # The profile also at the top, where receivers of this event first read it.
    emit_event(session, brand_id=club.brand_id, event_type="member.enrolled",
               data={"member": shown, **{key: shown[key] for key in PROFILE_FIELDS}})
    return member, True


class ProfileSchema(MemberFieldsSchema):
    """The fields of a member's profile: what the brand may change."""

    class Meta(MemberFieldsSchema.Meta):
        exclude = ("referral_code",)


PROFILE_FIELDS = tuple(ProfileSchema().fields)


def update_profile(session: Session, member: Membership, data: dict[str, Any]) -> Membership:
    """Change the fields of ``PROFILE_FIELDS`` given in ``data`` (None
    clears email, phone or birthday; a member keeps an email or a phone).
    The brand's own edit, from its portal: RuleViolation when another
    active member of the club has the email or phone. A change the card
    shows (name, language) re-renders it; a tie to a customer that no
    longer matches a proven email or phone is undone."""
    values = ProfileSchema(country=member.club.country, partial=True).load(data)
    if not values.get("email", member.email) and not values.get("phone", member.phone):
        raise RuleViolation("a member keeps an email or a phone", code="email_or_phone_required")
    changed = {key for key, value in values.items() if getattr(member, key) != value}
    if not changed:
        return member
    for key in ("email", "phone"):
        if key in changed and values[key] and member.status == "active":
            column = Membership.email if key == "email" else Membership.phone
            taken = session.scalar(select(Membership.id).where(
                Membership.club_id == member.club_id, Membership.status == "active", column == values[key],
                Membership.id != member.id))
            if taken is not None:
                raise RuleViolation(f"another member of this club has this {key}", code=f"{key}_taken")
    for key in changed:
        setattr(member, key, values[key])
    try:
        with session.begin_nested():
            session.flush()
    except IntegrityError:
        raise RuleViolation("another member of this club has this email or phone; nothing was changed",
                            code="contact_taken") from None
    if changed & {"email", "phone"} and member.customer_id is not None and not still_tied(session, member):
        member.customer_id = None
    if changed & {"name", "locale"}:
        record_card_change(session, member)
    return member


def get_membership(session: Session, membership_id: int, *, brand_id: int | None = None) -> Membership:
    """A membership by id; NotFound for an unknown id or another brand's."""
    member = session.get(Membership, membership_id)
    if member is None or (brand_id is not None and member.club.brand_id != brand_id):
        raise NotFound(f"no member {membership_id}", code="member_not_found")
    return member


def end_membership(session: Session, membership: Membership, *, now: datetime | None = None) -> bool:
    """The member leaves the club: the card is voided on the phone (a card
    change, so it is pushed) and the ledger keeps its history; joining
    again later gives a new card. Returns False when it had already ended."""
    if membership.status == "ended":
        return False
    membership.status = "ended"
    membership.ended_at = now or utcnow()
    record_card_change(session, membership)
    return True
