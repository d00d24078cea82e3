"""Brands, the people who sign in for them, and their API keys.

Staff passwords are argon2 (through passlib, which also re-hashes old
parameters at the next sign-in). A failed sign-in says nothing of which half
was wrong, and an unknown email costs the same argon2 check as a wrong
password, so neither the answer nor its timing tells which emails exist.

An API key is "wc_live_" plus 32 random bytes (URL-safe). Only its SHA-256 is
stored: with that much entropy a slow hash adds latency and no safety, and a
lookup by hash compares nothing in Python, so timing reveals nothing.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta
from typing import NamedTuple

from passlib.context import CryptContext
from sqlalchemy import bindparam, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from wallet.db import utcnow
from wallet.loyalty import contacts
from wallet.loyalty.errors import Conflict, NotAuthenticated, NotFound, RuleViolation
from wallet.loyalty.models import ApiKey, Brand, StaffRole, StaffUser
from wallet.loyalty.fields import valid_text

KEY_PREFIX = "wc_live_"
MIN_PASSWORD = 8
MAX_PASSWORD = 1024
_passwords = CryptContext(schemes=["argon2"], deprecated="auto")
_DUMMY_HASH: str | None = None


class BrandError(RuleViolation):
    default_code = "invalid_brand"


def normalize_email(email: str) -> str:
    try:
        return contacts.normalize_email(email)
    except RuleViolation as exc:
        raise BrandError(exc.message, code=exc.code) from None


def _text(value: object, field: str, max_len: int, code: str) -> str:
    try:
        return valid_text(value, field, max_len=max_len, code=code)
    except RuleViolation as exc:
        raise BrandError(exc.message, code=exc.code) from None


def hash_password(password: str) -> str:
    return _passwords.hash(password)


def check_new_password(password: object) -> str:
    """``password`` if it may be set; BrandError (code invalid_password) otherwise."""
    if not isinstance(password, str) or len(password) < MIN_PASSWORD:
        raise BrandError(f"password must be at least {MIN_PASSWORD} characters", code="invalid_password")
    if len(password) > MAX_PASSWORD:
        raise BrandError(f"password may be at most {MAX_PASSWORD} characters", code="invalid_password")
    return password


def verify_password(staff: StaffUser, password: object) -> bool:
    if not staff.password_hash or not isinstance(password, str) or not password:
        return False
    return _passwords.verify(password, staff.password_hash)


def session_fingerprint(staff: StaffUser) -> str:
    """Changes whenever the password does, so a new password signs out every
    session opened with the old one."""
    return hashlib.sha256(staff.password_hash.encode("utf-8")).hexdigest()[:16]


def add_staff_user(session: Session, brand: Brand, *, email: str, password: str, role: StaffRole,
                   name: str = "") -> StaffUser:
    """A new person who signs in to ``brand`` with ``role``; BrandError
    when the email already signs in somewhere (code email_taken)."""
    email = normalize_email(email)
    name = valid_text(name or "", "name", max_len=200, code="invalid_name", allow_empty=True)
    password = check_new_password(password)
    taken = BrandError(f"{email} already signs in to a brand", code="email_taken")
    if session.scalar(select(StaffUser.id).where(StaffUser.email == email)) is not None:
        raise taken
    staff = StaffUser(brand_id=brand.id, email=email, name=name, role=role, password_hash=hash_password(password))
    _add_unique(session, staff, taken)
    return staff


def _add_unique(session: Session, row: object, taken: BrandError) -> None:
    """Inserts ``row``; ``taken`` when its unique email was registered
    between the caller's check and this insert."""
    try:
        with session.begin_nested():
            session.add(row)
            session.flush()
    except IntegrityError:
        raise taken from None


def staff_by_email(session: Session, email: object) -> StaffUser | None:
    """The staff user whose address ``email`` is, as someone typed it; None
    for anything else (no such person, not an address)."""
    try:
        normalized = normalize_email(email) if isinstance(email, str) else None
    except BrandError:
        return None
    return session.scalar(select(StaffUser).where(StaffUser.email == normalized)) if normalized else None


def authenticate_staff(session: Session, email: object, password: object) -> StaffUser:
    """The staff user signing in with ``email`` and ``password``;
    NotAuthenticated (code invalid_login) otherwise."""
    global _DUMMY_HASH
    staff = staff_by_email(session, email)
    if staff is None:
        if _DUMMY_HASH is None:
            _DUMMY_HASH = hash_password(secrets.token_urlsafe(16))
        _passwords.verify(str(password or "x"), _DUMMY_HASH)
        raise NotAuthenticated("wrong email or password", code="invalid_login")
    if not isinstance(password, str) or not verify_password(staff, password):
        raise NotAuthenticated("wrong email or password", code="invalid_login")
    if _passwords.needs_update(staff.password_hash):
        staff.password_hash = hash_password(password)
    staff.last_login_at = utcnow()
    return staff


def token_digest(token: str) -> str:
    """What is stored of a random secret (an API key, an invitation or a
    password-reset link): with 32 random bytes a slow hash adds latency
    and no safety, and a lookup by digest compares nothing in Python."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def hash_api_key(key: str) -> str:
    return token_digest(key)


def register_brand(session: Session, *, name: str, email: str, password: str) -> tuple[Brand, StaffUser]:
    """A new brand and its owner, who signs in with ``email`` and ``password``."""
    name = _text(name, "name", 200, "invalid_name")
    email = normalize_email(email)
    check_new_password(password)
    taken = BrandError(f"a brand with email {email} already exists", code="email_taken")
    if session.scalar(select(Brand.id).where(Brand.email == email)) is not None:
        raise taken
    brand = Brand(name=name, email=email)
    _add_unique(session, brand, taken)
    owner = add_staff_user(session, brand, email=email, password=password, role=StaffRole.OWNER)
    return brand, owner


def create_brand(session: Session, *, name: str, email: str, password: str) -> tuple[Brand, str]:
    """A new brand with its owner and its first API key; returns (brand,
    plaintext key). The key is shown once and never stored."""
    brand, _owner = register_brand(session, name=name, email=email, password=password)
    _, key = create_api_key(session, brand, "default")
    return brand, key


def create_api_key(session: Session, brand: Brand, name: str = "default") -> tuple[ApiKey, str]:
    name = valid_text(name or "default", "key name", max_len=100, code="invalid_name")
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    row = ApiKey(brand_id=brand.id, name=name, prefix=key[: len(KEY_PREFIX) + 4], key_hash=hash_api_key(key))
    session.add(row)
    session.flush()
    return row, key


def revoke_api_key(session: Session, brand: Brand, key_id: int) -> ApiKey:
    row = session.scalar(select(ApiKey).where(ApiKey.id == key_id, ApiKey.brand_id == brand.id))
    if row is None:
        raise NotFound(f"no API key {key_id}", code="api_key_not_found")
    if row.revoked_at is not None:
        raise Conflict(f"API key {key_id} is already revoked", code="already_revoked")
    row.revoked_at = utcnow()
    return row


class AuthenticatedKey(NamedTuple):
    """What a request needs of the API key it was made with."""

    id: int
    brand_id: int
    prefix: str
    last_used_at: datetime | None


_KEYS = ApiKey.__table__
# Built once, a statement of plain columns: every API request runs it.
_LIVE_KEY = select(_KEYS.c.id, _KEYS.c.brand_id, _KEYS.c.prefix, _KEYS.c.last_used_at).where(
    _KEYS.c.key_hash == bindparam("digest"), _KEYS.c.revoked_at.is_(None))


def authenticate_api_key(session: Session, key: str) -> AuthenticatedKey:
    """The API key ``key``; NotAuthenticated when unknown or revoked."""
    if not key or not key.startswith(KEY_PREFIX) or len(key) > 200:
        raise NotAuthenticated("unknown or revoked API key", code="invalid_api_key")
    row = session.execute(_LIVE_KEY, {"digest": hash_api_key(key)}).first()
    if row is None:
        raise NotAuthenticated("unknown or revoked API key", code="invalid_api_key")
    return AuthenticatedKey(*row)


# last_used_at is kept to the minute: a finer one would cost a write per request.
KEY_USE_RESOLUTION = timedelta(seconds=60)


def key_use_is_stale(row: AuthenticatedKey, now: datetime) -> bool:
    """Whether ``row.last_used_at`` (as read at authentication) needs a write."""
    return row.last_used_at is None or row.last_used_at <= now - KEY_USE_RESOLUTION


def record_key_use(session: Session, key_id: int, now: datetime) -> bool:
    """Set last_used_at unless another request did within the minute; True
    when this call wrote. The condition is in the UPDATE, so processes that
    race here write once between them."""
    cutoff = now - KEY_USE_RESOLUTION
    written = session.execute(
        update(ApiKey)
        .where(ApiKey.id == key_id, or_(ApiKey.last_used_at.is_(None), ApiKey.last_used_at <= cutoff))
        .values(last_used_at=now)
    ).rowcount
    return written == 1
