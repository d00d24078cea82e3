"""Examples of the OpenAPI document: a request and an answer per operation,
as a till sees them. A test validates each against its schema."""

from __future__ import annotations

from typing import Any

PROGRAM: dict[str, Any] = {
    "points": {"earn_points": 1, "per_amount": 100, "rounding": "down", "min_purchase": 0,
               "redeem_value": 100, "expiry_days": 365, "pending_days": 0, "warning_days": 14,
               "allow_negative": False},
    "tiers": {"window_days": 365, "review_days": 30, "levels": [
        {"name": "Silver", "min_spend": 0, "earn_points": None, "discount_percent": None},
        {"name": "Gold", "min_spend": 3000000, "earn_points": 2, "discount_percent": "3"}]},
    "bonuses": {"welcome_points": 50, "referral_points": 100, "birthday_points": 200},
}

CLUB_CREATE = {"name": "Morning Beans", "currency": "EUR", "country": "DE", "category": "cafe",
               "background_color": "#1F2937", "program": {
                   "points": {"earn_points": 1, "per_amount": 100, "expiry_days": 365},
                   "tiers": {"levels": [{"name": "Silver"}, {"name": "Gold", "min_spend": 3000000,
                                                             "earn_points": 2, "discount_percent": "3"}]},
                   "bonuses": {"welcome_points": 50, "referral_points": 100, "birthday_points": 200}},
               "locations": [{"name": "Main St", "latitude": 52.52, "longitude": 13.405,
                              "relevant_text": "Coffee is ready"}]}
CLUB_UPDATE = {"background_color": "#0B3D2E", "terms": "Points expire a year after they are earned."}

CLUB: dict[str, Any] = {
    "id": 12, "name": "Morning Beans", "description": "", "category": "cafe", "logo_text": None,
    "currency": "EUR", "country": "DE", "foreground_color": "#FFFFFF", "background_color": "#1F2937",
    "label_color": "#D1D5DB", "barcode_format": "qr", "languages": ["en", "ru"], "terms": "", "contact_email": None,
    "contact_phone": None, "website": None,
    "locations": [{"name": "Main St", "latitude": 52.52, "longitude": 13.405, "relevant_text": "Coffee is ready"}],
    "program": PROGRAM, "card_style": "store_card", "featured_actions": [], "design_version": 1, "message": None,
    "created_at": "2026-12-01T09:30:00", "updated_at": "2026-12-01T09:30:00",
}

ENROL = {"email": "ann@example.com", "name": "Ann Lee", "birthday": "1990-01-05", "locale": "en"}
MEMBER: dict[str, Any] = {
    "id": 7, "club_id": 12, "card_number": "418204716358", "serial_number": "9f2c4e1a7b3d4c5e8f6a1b2c3d4e5f60",
    "name": "Ann Lee", "email": "ann@example.com", "phone": None, "birthday": "1990-01-05", "locale": "en",
    "status": "active", "balance": 320, "pending": 0, "cash_balance": 0, "stamps": 0, "tier": "Silver",
    "expiring": {"points": 120, "date": "2026-12-14"}, "referral_code": "K7QM2XPA",
    "created_at": "2026-01-10T12:00:00",
    "apple_pass_url": "https://wallet.example.com/passes/7/9eYt3kJ2w1Qx8ZrT4mVbN0aL5cHs6PdG.pkpass",
    "google_save_url": "https://pay.google.com/gp/v/save/eyJhbGciOiJSUzI1NiJ9.e30.c2ln",
}

PURCHASE = {"type": "purchase", "amount": 15000, "receipt_id": "R-2026-000123"}
TRANSACTION_REQUESTS = {
    "purchase": PURCHASE,
    "redeem": {"type": "redeem", "points": 100},
    "refund": {"type": "refund", "refund_of": 345, "amount": 5000},
    "adjust": {"type": "adjust", "points": 25, "reason": "coffee machine was down"},
    "stamp": {"type": "stamp"},
}
TRANSACTION: dict[str, Any] = {
    "id": 345, "member_id": 7, "club_id": 12, "type": "purchase", "points": 150, "balance_change": 150,
    "pending_change": 0, "cash_change": 0, "stamps_change": 0, "amount": 15000, "currency": "EUR",
    "receipt_id": "R-2026-000123", "refund_of": None, "refunded_amount": 0, "tier": "Silver", "reason": None,
    "actor": "api:wc_live_KtHU", "details": {"earn_points": 1, "per_amount": 100},
    "created_at": "2026-12-01T10:15:00",
}
TRANSACTION_RESULT = {"transaction": TRANSACTION, "member": {**MEMBER, "balance": 470}}

MESSAGE = {"text": "Double points all weekend!", "tier": None}
MESSAGE_RESULT = {"cards": 1250}

CAMPAIGN_CREATE = {"text": "We miss you: double points until Sunday", "segment": {"no_purchase_days": 60,
                                                                                   "wallets": ["apple", "google"]},
                   "send_at": "2026-12-05T09:00:00+00:00"}
CAMPAIGN: dict[str, Any] = {
    "id": 12, "club_id": 7, "text": "We miss you: double points until Sunday",
    "segment": {"no_purchase_days": 60, "wallets": ["apple", "google"]}, "segment_name": None,
    "send_at": "2026-12-05T09:00:00+00:00", "status": "sent", "cards": 340,
    "results": {"queued": 0, "reached": 310, "silent": 12, "failed": 0, "no_wallet": 18},
    "created_at": "2026-12-01T08:00:00+00:00"}

API_KEY_CREATE = {"name": "till 3"}
API_KEY: dict[str, Any] = {"id": 4, "name": "till 3", "prefix": "wc_live_Q2vX", "created_at": "2026-12-01T08:00:00",
                           "last_used_at": None, "revoked_at": None}
API_KEY_CREATED = {**API_KEY, "key": "wc_live_Q2vX9c1bT0pL7sYqR3uW8eZ5aK6mN2dF4hJ0gV1xC7o"}

WEBHOOK_CREATE = {"url": "https://pos.example.com/hooks/wallet", "events": ["transaction.created"]}
WEBHOOK: dict[str, Any] = {"id": 3, "url": "https://pos.example.com/hooks/wallet", "events": ["transaction.created"],
                           "created_at": "2026-12-01T08:05:00"}
WEBHOOK_CREATED = {**WEBHOOK, "secret": "whsec_4f7d2a9c1e8b3f6a0d5c2e9b7a4f1c8d"}
WEBHOOK_DELIVERY = {"id": 91, "event_id": "evt_01J9ZC3Q4M", "event_type": "transaction.created", "attempt": 1,
                    "url": "https://pos.example.com/hooks/wallet", "response_status": 200, "error": None,
                    "succeeded": True, "duration_ms": 84, "created_at": "2026-12-01T10:15:01"}


def page(item: dict[str, Any]) -> dict[str, Any]:
    return {"items": [item], "next_cursor": None}
