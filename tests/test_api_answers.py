"""wallet.api.answers: the purchase's answer dumped without marshmallow
gives what the schema's own dump gives, and is sent as the app's JSON
provider sends it, whatever the provider's settings, or its own way when
the provider is not Flask's."""

from __future__ import annotations

from datetime import date, datetime, timezone

import marshmallow as ma
import pytest
from flask import Flask
from flask.json.provider import DefaultJSONProvider
from marshmallow import fields

from wallet.api import schemas as s
from wallet.api.answers import Dumper, JsonAnswer
from wallet.http_rules import JSONProvider

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


def _as_sent(response):
    return response.status, list(response.headers), response.get_data()


def _provider_answer(app, values, status):
    sent = app.json.response(Dumper(s.TransactionResultSchema)(values))
    sent.status_code = status
    return sent


class _OwnProvider(DefaultJSONProvider):
    """A provider that writes and answers its own way."""

    def dumps(self, obj, **kwargs):
        return super().dumps(obj, **{**kwargs, "indent": 1})

    def response(self, *args, **kwargs):
        sent = super().response(*args, **kwargs)
        sent.headers["X-Provider"] = "own"
        return sent


@pytest.mark.parametrize("settings", [{}, {"ensure_ascii": False}, {"sort_keys": False}, {"compact": False},
                                      {"debug": True}, {"provider": _OwnProvider}])
def test_an_answer_is_sent_as_the_apps_json_provider_sends_it(settings):
    app = Flask(__name__)
    app.json = settings.pop("provider", JSONProvider)(app)
    app.debug = settings.pop("debug", False)
    for name, value in settings.items():
        setattr(app.json, name, value)
    values = {"transaction": TRANSACTION, "member": MEMBER}
    with app.app_context():
        answer = JsonAnswer(Dumper(s.TransactionResultSchema), values, 201)
        expected = _provider_answer(app, values, 201)
        assert answer.text == expected.get_data(as_text=True)
        assert _as_sent(answer.response()) == _as_sent(expected)
        # A value filled in later (the entry's id: AnswerRider) is sent as if it had been there.
        filled = JsonAnswer(Dumper(s.TransactionResultSchema), values, 201)
        assert '"id": 11' in filled.text or '"id":11' in filled.text
        sent = filled.response(filled.text.replace('"id":11', '"id":12').replace('"id": 11', '"id": 12'))
        assert _as_sent(sent) == _as_sent(_provider_answer(app, {**values, "transaction": {**TRANSACTION, "id": 12}},
                                                           201))


def test_a_provider_setting_changed_between_answers_is_followed():
    app = Flask(__name__)
    app.json = JSONProvider(app)
    values = {"transaction": TRANSACTION, "member": MEMBER}
    with app.app_context():
        ascii_only = JsonAnswer(Dumper(s.TransactionResultSchema), values, 201).text
        app.json.ensure_ascii = False  # type: ignore[attr-defined]
        assert JsonAnswer(Dumper(s.TransactionResultSchema), values, 201).text == \
            _provider_answer(app, values, 201).get_data(as_text=True) != ascii_only
