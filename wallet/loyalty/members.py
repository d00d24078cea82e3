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

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from wallet.db import utcnow
from wallet.loyalty.contacts import normalize_email, normalize_phone
from wallet.loyalty.errors import NotFound, RuleViolation
from wallet.loyalty.identity import still_tied
from wallet.loyalty.ledger import grant_bonus, member_figures, set_tier
from wallet.loyalty.cards import record_card_change, record_card_issued
from wallet.loyalty.models import Club, Membership
from wallet.loyalty.fields import valid_text
from wallet.loyalty.program import Program
from wallet.loyalty.webhooks import emit_event

LOCALES = ("en", "ru")  # the languages cards and messages are written in
PROFILE_FIELDS = ("name", "email", "phone", "birthday", "locale")
_REFERRAL_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I
CARD_DIGITS = 12  # 11 random digits and a Luhn check digit


def luhn_check_digit(digits: str) -> str:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2 == 0:  # doubled: the rightmost payload digit sits next to the check digit
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return str((10 - total % 10) % 10)


def luhn_valid(number: str) -> bool:
    return number.isdigit() and len(number) > 1 and luhn_check_digit(number[:-1]) == number[-1]


def new_card_number() -> str:
    body = str(1 + secrets.randbelow(9)) + "".join(str(secrets.randbelow(10)) for _ in range(CARD_DIGITS - 2))
    return body + luhn_check_digit(body)


def new_referral_code() -> str:
    return "".join(secrets.choice(_REFERRAL_ALPHABET) for _ in range(8))


def _parse_birthday(value: Any) -> date | None:
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        value = value.date()
    if isinstance(value, date):
        parsed = value
    elif isinstance(value, str):
        try:
            parsed = date.fromisoformat(value.strip())
        except ValueError:
            raise RuleViolation(f"birthday must be a date YYYY-MM-DD, not {value!r}", code="invalid_birthday") from None
    else:
        raise RuleViolation("birthday must be a date YYYY-MM-DD", code="invalid_birthday")
    if parsed.year < 1900 or parsed > date.today():
        raise RuleViolation("birthday must be a past date after 1900", code="invalid_birthday")
    return parsed


def _clean_locale(value: Any) -> str:
    if value is None or value == "":
        return LOCALES[0]
    if isinstance(value, str):
        language = value.strip().replace("_", "-").split("-")[0].lower()
        if language in LOCALES:
            return language
    raise RuleViolation(f"locale must be one of {', '.join(LOCALES)}", code="invalid_locale")


def _clean_name(value: Any) -> str:
    return valid_text("" if value is None else value, "name", max_len=200, code="invalid_name", allow_empty=True)


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
) -> tuple[Membership, bool]:
    """Enrol someone into ``club``; returns (membership, created). An
    active member of the club with the same email (or else phone) is
    returned as it is, with created False."""
    if not email and not phone:
        raise RuleViolation("give an email or a phone", code="email_or_phone_required")
    norm_email = normalize_email(email) if email else None
    norm_phone = normalize_phone(phone, country=club.country) if phone else None
    name = _clean_name(name)
    born = _parse_birthday(birthday)
    language = _clean_locale(locale)
    if referral_code is not None:
        referral_code = valid_text(referral_code, "referral_code", max_len=32, code="invalid_referral_code",
                                   allow_empty=True) or None
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
            card_number=new_card_number(),
            serial_number=uuid.uuid4().hex,
            auth_token=secrets.token_urlsafe(24),
            download_token=secrets.token_urlsafe(24),
            referral_code=new_referral_code(),
            referred_by_id=referrer.id if referrer else None,
            name=name, email=norm_email, phone=norm_phone, birthday=born, locale=language,
            status="active",
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
    grant_bonus(session, member, program.welcome_points, kind="welcome", dedupe_key=f"welcome:{member.id}",
                actor=actor, program=program, now=now)
    # No card change is recorded: the card did not exist before this
    # transaction, and its first render already shows all of the above.
    record_card_issued(session, member)
    emit_event(session, brand_id=club.brand_id, event_type="member.enrolled",
               data={"member": member_figures(member), **profile_of(member)})
    return member, True


def profile_of(member: Membership) -> dict[str, Any]:
    """What the member's brand was told: the member's profile as data."""
    return {
        "name": member.name,
        "email": member.email,
        "phone": member.phone,
        "birthday": member.birthday.isoformat() if member.birthday else None,
        "locale": member.locale,
    }


def update_profile(session: Session, member: Membership, data: dict[str, Any]) -> Membership:
    """Change the fields of ``PROFILE_FIELDS`` given in ``data`` (None
    clears email, phone or birthday; a member keeps an email or a phone).
    The brand's own edit, from its portal: RuleViolation when another
    active member of the club has the email or phone. A change the card
    shows (name, language) re-renders it; a tie to a customer that no
    longer matches a proven email or phone is undone."""
    unknown = sorted(set(data) - set(PROFILE_FIELDS))
    if unknown:
        raise RuleViolation(f"{unknown[0]}: unknown field", code="unknown_field")
    values: dict[str, Any] = {}
    if "name" in data:
        values["name"] = _clean_name(data["name"])
    if "email" in data:
        values["email"] = normalize_email(data["email"]) if data["email"] else None
    if "phone" in data:
        values["phone"] = normalize_phone(data["phone"], country=member.club.country) if data["phone"] else None
    if "birthday" in data:
        values["birthday"] = _parse_birthday(data["birthday"])
    if "locale" in data:
        values["locale"] = _clean_locale(data["locale"])
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
