"""The customer across clubs, joined to memberships only on proof.

A membership's profile (name, email, phone, birthday) is what one brand was
told, and anyone can type any email into a join form, so nothing joins two
memberships on an email or phone alone. A person proves control of an email
by opening a sign-in link sent to it, or of a phone by typing a code sent to
it; only then is the ``Customer`` tied to every membership whose profile
carries that email or phone, in any club. Memberships enrolled later with a
proven email or phone are tied the next time the person signs in, never
silently at enrolment.

The pages (``/me``) live elsewhere; this is their API:

- ``request_email_sign_in(db, email, link_for=...)``: email a single-use
  sign-in link; ``link_for(token)`` is the caller's URL for the token.
- ``verify_email_sign_in(db, token) -> Customer``: the link was opened.
- ``request_phone_code(db, phone)``: text a 6-digit code.
- ``verify_phone_code(db, phone, code) -> Customer``: the code was typed.
- ``memberships_of(session, customer_id)``: every card tied to the customer.
- ``send_card_link(session, member, card_url=...)``: someone joined again
  with an email or phone the club already has: the existing member gets
  the link to their card, and the joiner learns nothing.

The sign-in functions own their transaction (they take the ``Database``):
a wrong code must count against its attempts even though the call fails,
which a caller's rolled-back transaction would undo. Pass ``customer`` (the
signed-in customer) to add a second email or phone to the same person; an
email or phone already proven by another customer record joins the two,
since one person has now proven both.

Secrets are never stored: a link token is 32 random bytes kept as its
SHA-256 (a lookup by hash reveals nothing by timing), a code is kept as an
argon2 hash (six digits are few enough to guess from a plain hash). Links
last 20 minutes, codes 10 and 5 wrong tries; each email or phone gets at
most 5 links or codes an hour, and each member 3 card links an hour, so
nobody can flood a stranger's inbox or phone through the forms.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable
from datetime import datetime, timedelta

from passlib.context import CryptContext
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from wallet.db import Database, utcnow
from wallet.loyalty.contacts import normalize_email, normalize_phone
from wallet.loyalty.errors import NotAuthenticated, RateLimited
from wallet.loyalty.models import Customer, CustomerIdentifier, IdentifierKind, Membership, SignInChallenge
from wallet.loyalty.notifications import Channel, queue_email, queue_sms, recent_notifications

EMAIL_LINK_LIFETIME = timedelta(minutes=20)
PHONE_CODE_LIFETIME = timedelta(minutes=10)
CODE_DIGITS = 6
MAX_CODE_ATTEMPTS = 5
MAX_CHALLENGES_PER_HOUR = 5
MAX_CARD_LINKS_PER_HOUR = 3
_HOUR = timedelta(hours=1)
_codes = CryptContext(schemes=["argon2"], deprecated="auto")

TEXTS: dict[str, dict[str, str]] = {
    "en": {
        "sign_in_subject": "Your sign-in link for Wallet Clubs",
        "sign_in_body": "Open this link to see all your club cards:\n\n{link}\n\n"
                        "It works once, within 20 minutes. If you did not ask for it, ignore this email.",
        "code_sms": "Wallet Clubs code: {code}. It expires in 10 minutes. Do not share it.",
        "card_subject": "Your {club} card",
        "card_body": "Someone tried to join {club} with this email address. You are already a member; "
                     "here is your card:\n\n{link}\n\nIf it was not you, nothing has changed.",
        "card_sms": "You are already a member of {club}. Your card: {link}",
    },
    "ru": {
        "sign_in_subject": "Ссылка для входа в Wallet Clubs",
        "sign_in_body": "Откройте ссылку, чтобы увидеть все ваши клубные карты:\n\n{link}\n\n"
                        "Она действует один раз в течение 20 минут. Если вы не запрашивали вход, "
                        "просто удалите это письмо.",
        "code_sms": "Код Wallet Clubs: {code}. Действует 10 минут. Никому его не сообщайте.",
        "card_subject": "Ваша карта {club}",
        "card_body": "Кто-то пытался вступить в {club} с этим адресом почты. Вы уже участник; "
                     "вот ваша карта:\n\n{link}\n\nЕсли это были не вы, ничего не изменилось.",
        "card_sms": "Вы уже участник {club}. Ваша карта: {link}",
    },
}


def _text(locale: str | None, key: str, **values: str) -> str:
    table = TEXTS.get(locale or "en") or TEXTS["en"]
    return table[key].format(**values)


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def _check_quota(session: Session, kind: IdentifierKind, target: str, now: datetime) -> None:
    C = SignInChallenge
    recent = list(session.scalars(
        select(C.created_at).where(C.kind == kind, C.target == target, C.created_at > now - _HOUR)
        .order_by(C.created_at)
    ))
    if len(recent) >= MAX_CHALLENGES_PER_HOUR:
        wait = int((recent[0] + _HOUR - now).total_seconds()) + 1
        raise RateLimited(f"too many sign-in requests for this {kind.value}; try again in "
                          f"{(wait + 59) // 60} minutes", retry_after=wait, code="too_many_sign_in_requests")


def _new_challenge(session: Session, kind: IdentifierKind, target: str, secret_hash: str,
                   lifetime: timedelta, now: datetime) -> None:
    # A new code or link replaces the ones still waiting: only the latest
    # works, so the attempts a person has are those of one code.
    session.execute(
        update(SignInChallenge)
        .where(SignInChallenge.kind == kind, SignInChallenge.target == target, SignInChallenge.used_at.is_(None))
        .values(used_at=now)
        .execution_options(synchronize_session=False)
    )
    session.add(SignInChallenge(kind=kind, target=target, secret_hash=secret_hash, attempts=0,
                                expires_at=now + lifetime, created_at=now))


def request_email_sign_in(db: Database, email: str, *, link_for: Callable[[str], str], locale: str = "en",
                          now: datetime | None = None) -> None:
    """Email a sign-in link to ``email``. The same whether or not any club
    knows the address, so the answer tells nothing about who is a member.
    RuleViolation for a bad address, RateLimited past the hourly quota."""
    address = normalize_email(email)
    now = now or utcnow()
    token = secrets.token_urlsafe(32)
    with db.transaction() as session:
        _check_quota(session, IdentifierKind.EMAIL, address, now)
        _new_challenge(session, IdentifierKind.EMAIL, address, _token_hash(token), EMAIL_LINK_LIFETIME, now)
        queue_email(session, to=address, subject=_text(locale, "sign_in_subject"),
                    body=_text(locale, "sign_in_body", link=link_for(token)))


def request_phone_code(db: Database, phone: str, *, country: str | None = None, locale: str = "en",
                       now: datetime | None = None) -> None:
    """Text a sign-in code to ``phone`` (read in ``country`` when it has
    no "+"). RuleViolation for a bad number, RateLimited past the quota."""
    number = normalize_phone(phone, country=country)
    now = now or utcnow()
    code = "".join(secrets.choice("0123456789") for _ in range(CODE_DIGITS))
    with db.transaction() as session:
        _check_quota(session, IdentifierKind.PHONE, number, now)
        _new_challenge(session, IdentifierKind.PHONE, number, _codes.hash(code), PHONE_CODE_LIFETIME, now)
        queue_sms(session, to=number, body=_text(locale, "code_sms", code=code))


def verify_email_sign_in(db: Database, token: str, *, customer_id: int | None = None,
                         now: datetime | None = None) -> Customer:
    """The customer who proved the email a link was sent to; the link is
    spent. NotAuthenticated for an unknown, used or expired link.

    Open it from a POST (a button on the page the link shows), not from the
    GET itself: mail scanners fetch links in messages and would spend it."""
    now = now or utcnow()
    if not isinstance(token, str) or not 20 <= len(token) <= 100:
        raise NotAuthenticated("this sign-in link is not valid; ask for a new one", code="sign_in_link_invalid")
    with db.transaction() as session:
        challenge = session.scalar(
            select(SignInChallenge)
            .where(SignInChallenge.kind == IdentifierKind.EMAIL, SignInChallenge.secret_hash == _token_hash(token))
            .with_for_update()
        )
        if challenge is None or challenge.used_at is not None:
            raise NotAuthenticated("this sign-in link has been used or is not valid; ask for a new one",
                                   code="sign_in_link_invalid")
        if challenge.expires_at <= now:
            raise NotAuthenticated("this sign-in link has expired; ask for a new one", code="sign_in_link_expired")
        challenge.used_at = now
        return _signed_in(session, IdentifierKind.EMAIL, challenge.target, customer_id, now)


def verify_phone_code(db: Database, phone: str, code: str, *, country: str | None = None,
                      customer_id: int | None = None, now: datetime | None = None) -> Customer:
    """The customer who proved ``phone`` with the code texted to it.
    NotAuthenticated for a wrong code (it counts: after 5 the code is
    spent), an expired one, or none waiting."""
    number = normalize_phone(phone, country=country)
    now = now or utcnow()
    with db.transaction() as session:
        challenge = session.scalar(
            select(SignInChallenge)
            .where(SignInChallenge.kind == IdentifierKind.PHONE, SignInChallenge.target == number,
                   SignInChallenge.used_at.is_(None), SignInChallenge.expires_at > now)
            .order_by(SignInChallenge.id.desc()).limit(1)
            .with_for_update()
        )
        if challenge is None:
            raise NotAuthenticated("no code is waiting for this number, or it has expired; ask for a new one",
                                   code="phone_code_expired")
        typed = code.strip() if isinstance(code, str) else ""
        if typed.isascii() and typed.isdigit() and len(typed) == CODE_DIGITS and _codes.verify(
                typed, challenge.secret_hash):
            challenge.used_at = now
            return _signed_in(session, IdentifierKind.PHONE, number, customer_id, now)
        challenge.attempts += 1
        if challenge.attempts >= MAX_CODE_ATTEMPTS:
            challenge.used_at = now
        left = MAX_CODE_ATTEMPTS - challenge.attempts
    # Committed above: the wrong try counts.
    if left <= 0:
        raise NotAuthenticated("wrong code, and no tries are left; ask for a new one", code="phone_code_spent")
    raise NotAuthenticated(f"wrong code; {left} tries left", code="phone_code_wrong")


def _signed_in(session: Session, kind: IdentifierKind, value: str, customer_id: int | None,
               now: datetime) -> Customer:
    customer = _prove(session, kind, value, customer_id, now)
    customer.last_sign_in_at = now
    tie_memberships(session, customer.id)
    session.flush()
    return customer


def _prove(session: Session, kind: IdentifierKind, value: str, customer_id: int | None,
           now: datetime) -> Customer:
    """The customer that now holds the proven ``value``: its earlier owner,
    the signed-in customer (joined with the earlier owner if both exist),
    or a new one."""
    signed_in = session.get(Customer, customer_id) if customer_id is not None else None
    for _ in range(3):
        known = session.scalar(
            select(CustomerIdentifier).where(CustomerIdentifier.kind == kind, CustomerIdentifier.value == value)
        )
        if known is not None:
            known.verified_at = now
            if signed_in is None or signed_in.id == known.customer_id:
                return session.get_one(Customer, known.customer_id)
            _join(session, keep=signed_in, gone_id=known.customer_id)
            return signed_in
        try:
            with session.begin_nested():
                owner = signed_in or Customer(created_at=now)
                session.add(owner)
                session.flush()
                session.add(CustomerIdentifier(customer_id=owner.id, kind=kind, value=value, verified_at=now))
                session.flush()
            return owner
        except IntegrityError:
            continue  # proven at the same moment elsewhere: read it
    raise NotAuthenticated("could not sign in; try again", code="sign_in_conflict")


def _join(session: Session, *, keep: Customer, gone_id: int) -> None:
    """One person proved what two customer records hold: keep one."""
    for model in (CustomerIdentifier, Membership):
        session.execute(
            update(model).where(model.customer_id == gone_id).values(customer_id=keep.id)
            .execution_options(synchronize_session=False)
        )
    gone = session.get(Customer, gone_id)
    if gone is not None:
        session.delete(gone)
    session.flush()


def tie_memberships(session: Session, customer_id: int) -> int:
    """Tie every untied membership whose profile carries an email or phone
    the customer has proven; returns how many were tied. A membership
    already tied to someone else stays theirs."""
    tied = 0
    identifiers = session.execute(
        select(CustomerIdentifier.kind, CustomerIdentifier.value).where(CustomerIdentifier.customer_id == customer_id)
    ).all()
    for kind, value in identifiers:
        column = Membership.email if kind == IdentifierKind.EMAIL else Membership.phone
        result = session.execute(
            update(Membership).where(column == value, Membership.customer_id.is_(None))
            .values(customer_id=customer_id).execution_options(synchronize_session=False)
        )
        tied += result.rowcount or 0
    return tied


def still_tied(session: Session, member: Membership) -> bool:
    """Whether the member's profile still carries an email or phone that
    its customer proved (a brand may have changed it since)."""
    if member.customer_id is None:
        return False
    proven = set(proven_identifiers(session, member.customer_id))
    return (IdentifierKind.EMAIL.value, member.email) in proven or (IdentifierKind.PHONE.value, member.phone) in proven


def memberships_of(session: Session, customer_id: int) -> list[Membership]:
    """Every card tied to the customer, active ones first, newest first."""
    return list(session.scalars(
        select(Membership).where(Membership.customer_id == customer_id)
        .order_by((Membership.status == "active").desc(), Membership.id.desc())
    ))


def proven_identifiers(session: Session, customer_id: int) -> list[tuple[str, str]]:
    """(kind, value) of every email and phone the customer has proven."""
    return [(kind.value, value) for kind, value in session.execute(
        select(CustomerIdentifier.kind, CustomerIdentifier.value)
        .where(CustomerIdentifier.customer_id == customer_id).order_by(CustomerIdentifier.id)
    )]


def send_card_link(session: Session, member: Membership, *, card_url: str, channel: Channel | None = None,
                   now: datetime | None = None) -> Channel | None:
    """Send ``member`` the link to their card, by ``channel`` (default:
    email when the profile has one, else SMS), in the caller's
    transaction. Returns the channel used, or None when the profile has no
    address for it or the member already got MAX_CARD_LINKS_PER_HOUR links
    this hour; callers show the same answer either way."""
    if channel is None:
        channel = Channel.EMAIL if member.email else Channel.SMS
    to = member.email if channel == Channel.EMAIL else member.phone
    if not to or recent_notifications(session, member.id, within=_HOUR, now=now) >= MAX_CARD_LINKS_PER_HOUR:
        return None
    club = member.club.name
    if channel == Channel.EMAIL:
        queue_email(session, to=to, subject=_text(member.locale, "card_subject", club=club),
                    body=_text(member.locale, "card_body", club=club, link=card_url),
                    brand_id=member.club.brand_id, membership_id=member.id)
    else:
        queue_sms(session, to=to, body=_text(member.locale, "card_sms", club=club, link=card_url),
                  brand_id=member.club.brand_id, membership_id=member.id)
    return channel
