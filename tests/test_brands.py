"""Brands and their API keys: stored hashed, several per brand, revocable."""

from __future__ import annotations

import json

import pytest
from flask import Flask
from sqlalchemy import select

from wallet.db import Database
from wallet.loyalty.brands import (
    BrandError,
    authenticate_api_key,
    create_api_key,
    create_brand,
    hash_api_key,
    revoke_api_key,
    verify_password,
)
from wallet.loyalty.errors import Conflict, NotAuthenticated, NotFound
from wallet.loyalty.models import ApiKey, Brand, StaffRole, StaffUser


def new_brand(db: Database, email: str = "owner@brand.test") -> tuple[int, str]:
    with db.transaction() as s:
        brand, key = create_brand(s, name="Brand", email=email, password="correct horse")
        return brand.id, key


def test_a_new_brand_gets_an_api_key_that_is_stored_only_as_a_hash(db: Database) -> None:
    brand_id, key = new_brand(db)
    assert key.startswith("wc_live_") and len(key) > 40
    with db.session() as s:
        row = s.scalar(select(ApiKey).where(ApiKey.brand_id == brand_id))
        assert row.key_hash == hash_api_key(key) and key not in (row.key_hash, row.prefix)
        assert authenticate_api_key(s, key).brand_id == brand_id


def test_the_owner_is_the_brands_first_staff_user_with_an_argon2_password(db: Database) -> None:
    brand_id, _ = new_brand(db)
    with db.session() as s:
        owner = s.scalars(select(StaffUser).where(StaffUser.brand_id == brand_id)).one()
        assert (owner.email, owner.role) == ("owner@brand.test", StaffRole.OWNER)
        assert owner.password_hash.startswith("$argon2")
        assert verify_password(owner, "correct horse") and not verify_password(owner, "wrong horse")


def test_a_brand_email_is_taken_once(db: Database) -> None:
    new_brand(db, "owner@brand.test")
    with pytest.raises(BrandError) as err:
        new_brand(db, "OWNER@brand.test")
    assert err.value.code == "email_taken"


@pytest.mark.parametrize("kwargs", [
    {"name": "", "email": "a@b.test", "password": "long enough"},
    {"name": "B", "email": "nope", "password": "long enough"},
    {"name": "B", "email": "a@b.test", "password": "short"},
])
def test_bad_brand_input_is_refused(db: Database, kwargs: dict) -> None:
    with db.transaction() as s, pytest.raises(BrandError):
        create_brand(s, **kwargs)


def test_a_brand_can_hold_several_keys_and_revoke_one(db: Database) -> None:
    brand_id, first = new_brand(db)
    with db.transaction() as s:
        brand = s.get(Brand, brand_id)
        row, second = create_api_key(s, brand, "till")
        key_id = row.id
    with db.transaction() as s:
        revoke_api_key(s, s.get(Brand, brand_id), key_id)
    with db.session() as s:
        assert authenticate_api_key(s, first).brand_id == brand_id
        with pytest.raises(NotAuthenticated):
            authenticate_api_key(s, second)
    with db.transaction() as s, pytest.raises(Conflict):
        revoke_api_key(s, s.get(Brand, brand_id), key_id)


def test_a_brand_cannot_revoke_another_brands_key(db: Database) -> None:
    a, _ = new_brand(db, "a@brand.test")
    b, _ = new_brand(db, "b@brand.test")
    with db.session() as s:
        b_key = s.scalar(select(ApiKey.id).where(ApiKey.brand_id == b))
    with db.transaction() as s, pytest.raises(NotFound):
        revoke_api_key(s, s.get(Brand, a), b_key)


@pytest.mark.parametrize("key", ["", "wc_live_", "wc_live_unknown", "Bearer x", "x" * 500])
def test_unknown_keys_are_not_authenticated(db: Database, key: str) -> None:
    new_brand(db)
    with db.session() as s, pytest.raises(NotAuthenticated):
        authenticate_api_key(s, key)


def test_create_brand_command_prints_brand_id_and_api_key(app: Flask, db: Database) -> None:
    result = app.test_cli_runner().invoke(
        args=["create-brand", "--name", "Cafe", "--email", "cafe@brand.test", "--password", "s3cret-pass"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    with db.session() as s:
        assert authenticate_api_key(s, out["api_key"]).brand_id == out["brand_id"]
    again = app.test_cli_runner().invoke(
        args=["create-brand", "--name", "Cafe", "--email", "cafe@brand.test", "--password", "s3cret-pass"])
    assert again.exit_code != 0 and "already exists" in again.output


def test_a_brand_owner_logs_in_with_email_and_password(db: Database) -> None:
    from wallet.loyalty.brands import authenticate_staff

    brand_id, _ = new_brand(db, "owner@brand.test")
    with db.session() as s:
        assert authenticate_staff(s, "Owner@Brand.test", "correct horse").brand_id == brand_id
        for email, password in (("owner@brand.test", "wrong horse"), ("nobody@brand.test", "correct horse"),
                                ("not an email", "x"), ("owner@brand.test", "")):
            with pytest.raises(NotAuthenticated):
                authenticate_staff(s, email, password)
