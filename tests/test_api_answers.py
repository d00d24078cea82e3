"""wallet.api.answers: the purchase's answer dumped without marshmallow
gives what the schema's own dump gives."""

from __future__ import annotations

from datetime import date, datetime, timezone

import marshmallow as ma
import pytest
from marshmallow import fields

from wallet.api import schemas as s
from wallet.api.answers import Dumper

MEMBER = {
    "id": 7, "club_id": 3, "card_number": "1234 5678", "serial_number": "abc", "name": "Zoë", "email": None,
    "phone": "+4930123456", "birthday": date(1990, 2, 28), "locale": "de", "status": "active", "balance": 50,
    "pending": 0, "cash_balance": 125, "stamps": 2, "tier": None, "expiring": {"points": 50, "date": date(2027, 1, 1)},
    "referral_code": "ABC123", "created_at": datetime(2026, 12, 2, 15, 0, 1, 123456, tzinfo=timezone.utc),
    "apple_pass_url": "https://x.test/p", "google_save_url": "https://pay.google.com/gp/v/save/j.w.t",
}
TRANSACTION = {
    "id": 11, "member_id": 7, "club_id": 3, "type": "purchase", "points": 50, "balance_change": 50,
    "pending_change": 0, "cash_change": 125, "stamps_change": 1, "amount": 100000, "currency": "EUR",
    "receipt_id": None, "refund_of": None, "refunded_amount": 0, "tier": "Gold", "reason": None,
    "actor": "api:wk_1234", "details": {"rate": [5, 10000], "bonus": None},
    "created_at": datetime(2026, 12, 2, 15, 0, 1), "not_in_the_schema": 1,
}


@pytest.mark.parametrize("member", [MEMBER, {**MEMBER, "expiring": None, "birthday": None, "email": "a@b.test"}])
def test_the_transaction_result_is_dumped_as_its_schema_dumps_it(member):
    values = {"transaction": TRANSACTION, "member": member}
    fast = Dumper(s.TransactionResultSchema)(values)
    assert fast == s.TransactionResultSchema().dump(values)
    assert list(fast["member"]) == list(s.TransactionResultSchema().dump(values)["member"])


def test_a_field_kind_without_a_fast_dump_is_refused():
    class WithEmail(ma.Schema):
        email = fields.Email()

    class WithHook(ma.Schema):
        id = fields.Integer()

        @ma.post_dump
        def _more(self, data, **kwargs):
            return data

    with pytest.raises(TypeError):
        Dumper(WithEmail)
    with pytest.raises(TypeError):
        Dumper(WithHook)
