"""Brands, their owners' passwords and their API keys.

An API key is "wc_live_" plus 32 random bytes (URL-safe). Only its SHA-256 is
stored: with that much entropy a slow hash adds latency and no safety, and a
lookup by hash compares nothing in Python, so timing reveals nothing.
Passwords are people's and get argon2.
"""

from __future__ import annotations

import hashlib
import secrets

from passlib.context import CryptContext
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from wallet.db import utcnow
from wallet.loyalty import contacts
from wallet.loyalty.errors import Conflict, LoyaltyError, NotAuthenticated, NotFound, RuleViolation
from wallet.loyalty.models import ApiKey, Brand
from wallet.loyalty.program import valid_text

KEY_PREFIX = "wc_live_"
_passwords = CryptContext(schemes=["argon2"], deprecated="auto")


class BrandError(LoyaltyError):
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


def verify_password(brand: Brand, password: str) -> bool:
    if not brand.password_hash or not password:
        return False
    return _passwords.verify(password, brand.password_hash)


_DUMMY_HASH: str | None = None


def authenticate_brand(session: Session, email: str, password: str) -> Brand:
    """The brand whose owner logs in with ``email`` and ``password``;
    NotAuthenticated otherwise. An unknown email costs the same argon2 check
    as a wrong password, so timing does not tell which emails exist."""
    global _DUMMY_HASH
    try:
        normalized = normalize_email(email)
    except BrandError:
        normalized = None
    brand = session.scalar(select(Brand).where(Brand.email == normalized)) if normalized else None
    if brand is None or not brand.password_hash:
        if _DUMMY_HASH is None:
            _DUMMY_HASH = hash_password(secrets.token_urlsafe(16))
        _passwords.verify(str(password or "x"), _DUMMY_HASH)
        raise NotAuthenticated("wrong email or password", code="invalid_login")
    if not isinstance(password, str) or not verify_password(brand, password):
        raise NotAuthenticated("wrong email or password", code="invalid_login")
    return brand


def hash_api_key(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def create_brand(session: Session, *, name: str, email: str, password: str) -> tuple[Brand, str]:
    """A new brand with its first API key; returns (brand, plaintext key).
    The key is shown once and never stored."""
    name = _text(name, "name", 200, "invalid_name")
    email = normalize_email(email)
    if not isinstance(password, str) or len(password) < 8:
        raise BrandError("password must be at least 8 characters", code="invalid_password")
    if len(password) > 1024:
        raise BrandError("password is too long", code="invalid_password")
    if session.scalar(select(Brand.id).where(Brand.email == email)) is not None:
        raise BrandError(f"a brand with email {email} already exists", code="email_taken")
    brand = Brand(name=name, email=email, password_hash=hash_password(password))
    try:
        with session.begin_nested():
            session.add(brand)
            session.flush()
    except IntegrityError:
        # Someone registered the same email between our check and insert.
        raise BrandError(f"a brand with email {email} already exists", code="email_taken") from None
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


def authenticate_api_key(session: Session, key: str) -> Brand:
    """The brand holding ``key``; NotAuthenticated when unknown or revoked."""
    if not key or not key.startswith(KEY_PREFIX) or len(key) > 200:
        raise NotAuthenticated("unknown or revoked API key", code="invalid_api_key")
    row = session.scalar(select(ApiKey).where(ApiKey.key_hash == hash_api_key(key)))
    if row is None or row.revoked_at is not None:
        raise NotAuthenticated("unknown or revoked API key", code="invalid_api_key")
    return row.brand
