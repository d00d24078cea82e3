"""A till integrator's day one: generate a client from the served OpenAPI
document with openapi-python-client (warnings fail), then run the till's
whole flow through that client alone, against the app on a real socket.
Every answer must parse into its typed model, and mypy must accept this
module with the generated package: a document that loses a type, omits a
field that is always sent or an error status fails here."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask

from tests.support.api import make_brand
from tests.support.server import live_server
from wallet.db import Database

PACKAGE = "wallet_clubs_client"
BIN = Path(sys.executable).parent


def till_flow(base_url: str, api_key: str) -> None:
    """What a till does, through the generated client only."""
    from wallet_clubs_client import AuthenticatedClient
    from wallet_clubs_client.api.api_v1 import (create_api_key, create_club, create_transaction, create_webhook,
                                                enrol, get_member, list_api_keys, list_members, list_transactions,
                                                revoke_api_key, send_message)
    from wallet_clubs_client.models import (AdjustRequest, AdjustRequestType, ApiKeyCreate, ApiKeyCreated,
                                            ApiKeyPage, BonusRules, Club, ClubCreate, Enrol, Error401,
                                            Error422, ErrorDetail401Code, ErrorDetail422Code, Member,
                                            MemberPage, MemberStatus, MessageRequest, MessageResult,
                                            PointsRules, Program, PurchaseRequest, PurchaseRequestType,
                                            RedeemRequest, RedeemRequestType, RefundRequest, RefundRequestType,
                                            TransactionPage, TransactionResult, TransactionType, WebhookCreate,
                                            WebhookCreated)
    from wallet_clubs_client.types import UNSET

    till = AuthenticatedClient(base_url=base_url, token=api_key, raise_on_unexpected_status=True)

    club = create_club.sync(client=till, body=ClubCreate(
        name="Morning Beans", currency="EUR",
        program=Program(points=PointsRules(earn_points=1, per_amount=100, expiry_days=365),
                        bonuses=BonusRules(welcome_points=50))))
    assert isinstance(club, Club), club
    assert club.program.points and club.program.points.earn_points == 1
    assert club.program.points.warning_days == 14  # a default, filled in and sent back
    assert club.program.tiers is UNSET

    member = enrol.sync(club.id, client=till, body=Enrol(email="ann@example.com", name="Ann"))
    assert isinstance(member, Member), member
    assert (member.balance, member.status, member.expiring) == (50, MemberStatus.ACTIVE, None)

    key = str(uuid.uuid4())
    bought = create_transaction.sync_detailed(member.id, client=till, idempotency_key=key, body=PurchaseRequest(
        type_=PurchaseRequestType.PURCHASE, amount=15000, receipt_id="R-1"))
    purchase = bought.parsed
    assert isinstance(purchase, TransactionResult), purchase
    assert purchase.transaction.type_ == TransactionType.PURCHASE and purchase.transaction.points == 150
    assert purchase.member.balance == 200
    again = create_transaction.sync_detailed(member.id, client=till, idempotency_key=key, body=PurchaseRequest(
        type_=PurchaseRequestType.PURCHASE, amount=15000, receipt_id="R-1"))
    assert again.headers.get("Idempotent-Replayed") == "true"
    assert isinstance(again.parsed, TransactionResult) and again.parsed.member.balance == 200

    redeemed = create_transaction.sync(member.id, client=till, idempotency_key=str(uuid.uuid4()),
                                       body=RedeemRequest(type_=RedeemRequestType.REDEEM, points=30))
    assert isinstance(redeemed, TransactionResult) and redeemed.member.balance == 170
    too_much = create_transaction.sync(member.id, client=till, idempotency_key=str(uuid.uuid4()),
                                       body=RedeemRequest(type_=RedeemRequestType.REDEEM, points=10_000))
    assert isinstance(too_much, Error422) and too_much.error.code == ErrorDetail422Code.INSUFFICIENT_BALANCE

    refunded = create_transaction.sync(member.id, client=till, idempotency_key=str(uuid.uuid4()), body=RefundRequest(
        type_=RefundRequestType.REFUND, refund_of=purchase.transaction.id, amount=5000))
    assert isinstance(refunded, TransactionResult) and refunded.transaction.points == -50
    adjusted = create_transaction.sync(member.id, client=till, idempotency_key=str(uuid.uuid4()), body=AdjustRequest(
        type_=AdjustRequestType.ADJUST, points=5, reason="coffee machine was down"))
    assert isinstance(adjusted, TransactionResult) and adjusted.member.balance == 125

    found = list_members.sync(club.id, client=till, card_number=member.card_number)
    assert isinstance(found, MemberPage) and [m.id for m in found.items] == [member.id]
    assert found.next_cursor is None
    ledger = list_transactions.sync(member.id, client=till, limit=2)
    assert isinstance(ledger, TransactionPage) and len(ledger.items) == 2 and isinstance(ledger.next_cursor, str)
    rest = list_transactions.sync(member.id, client=till, cursor=ledger.next_cursor)
    assert isinstance(rest, TransactionPage)
    assert [t.type_ for t in ledger.items + rest.items] == [
        TransactionType.ADJUST, TransactionType.REFUND, TransactionType.REDEEM, TransactionType.PURCHASE,
        TransactionType.BONUS]
    now = get_member.sync(member.id, client=till)
    assert isinstance(now, Member) and now.balance == 125 and now.created_at.year >= 2026

    sent = send_message.sync(club.id, client=till, body=MessageRequest(text="Double points all weekend!"))
    assert isinstance(sent, MessageResult) and sent.cards == 1

    hook = create_webhook.sync(client=till, body=WebhookCreate(url="https://hooks.example.com/till"))
    assert isinstance(hook, WebhookCreated) and hook.secret

    made = create_api_key.sync(client=till, body=ApiKeyCreate(name="till 2"))
    assert isinstance(made, ApiKeyCreated) and made.key.startswith(made.prefix)
    second = AuthenticatedClient(base_url=base_url, token=made.key)
    keys = list_api_keys.sync(client=second)
    assert isinstance(keys, ApiKeyPage) and made.id in [k.id for k in keys.items]
    revoke_api_key.sync(made.id, client=till)
    refused = get_member.sync(member.id, client=second)
    assert isinstance(refused, Error401) and refused.error.code in (
        ErrorDetail401Code.INVALID_API_KEY, ErrorDetail401Code.NOT_AUTHENTICATED)


@pytest.fixture
def generated(app: Flask, tmp_path: Path) -> Iterator[Path]:
    """The client generated from the document the app serves, importable."""
    document = tmp_path / "openapi.json"
    document.write_text(json.dumps(app.test_client().get("/api/v1/openapi.json").get_json()))
    config = tmp_path / "generator.yaml"
    config.write_text("post_hooks: []\nproject_name_override: wallet-clubs-client\n"
                      f"package_name_override: {PACKAGE}\n")
    out = tmp_path / "client"
    result = subprocess.run(
        [str(BIN / "openapi-python-client"), "generate", "--path", str(document), "--config", str(config),
         "--meta", "none", "--output-path", str(out / PACKAGE), "--fail-on-warning"],
        capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    sys.path.insert(0, str(out))
    try:
        yield out
    finally:
        sys.path.remove(str(out))
        for name in [m for m in sys.modules if m == PACKAGE or m.startswith(PACKAGE + ".")]:
            del sys.modules[name]


def test_a_till_runs_its_whole_flow_through_the_generated_client(app: Flask, db: Database,
                                                                 generated: Path) -> None:
    with live_server(app) as base_url:
        till_flow(base_url, make_brand(db).key)


def test_mypy_accepts_the_flow_with_the_generated_client(generated: Path, tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--follow-imports=silent", "--no-error-summary",
         "--cache-dir", str(tmp_path / "mypy-cache"), __file__],
        capture_output=True, text=True, timeout=600, env={**os.environ, "MYPYPATH": str(generated)})
    assert result.returncode == 0, result.stdout + result.stderr
