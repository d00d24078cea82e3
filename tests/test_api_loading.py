"""wallet.api.loading: a transaction body recognised without marshmallow
gives what the schema's own load gives, and whatever the schema refuses is
left to it (the loader never answers for a body it cannot prove valid)."""

from __future__ import annotations

import marshmallow as ma
import pytest
from marshmallow import fields, validate

from wallet.api import schemas as s
from wallet.api.loading import Loader
from wallet.loyalty.program import MAX_MONEY, MAX_POINTS

ODD_VALUES = [None, True, False, 0, -1, 1, 2.0, 1.5, "1", "", "x" * 101, "x" * 501, [], {}, MAX_MONEY,
              MAX_MONEY + 1, MAX_POINTS, -MAX_POINTS, -MAX_POINTS - 1, 2**63, "purchase", "redeem"]


def _bodies(schema_class):
    names = list(schema_class().load_fields)
    kind = schema_class().load_fields["type"].validators[0].choices[0]
    plain = {"purchase": {"amount": 12345}, "redeem": {"points": 5}, "refund": {"refund_of": 9, "amount": 100},
             "adjust": {"points": -5, "reason": "goodwill"}, "stamp": {}}[kind]
    base = {"type": kind, **plain}
    yield base
    yield {**base, "receipt_id": "R-1"}
    yield {**base, "unknown": 1}
    for name in names:
        yield {k: v for k, v in base.items() if k != name}
        for value in ODD_VALUES:
            yield {**base, name: value}


@pytest.mark.parametrize("schema_class", list(s.TRANSACTION_REQUESTS.values()))
def test_a_body_is_recognised_only_as_the_schema_loads_it(schema_class):
    loader = Loader(schema_class)
    recognised = 0
    for body in _bodies(schema_class):
        fast = loader(body)
        if fast is not None:
            recognised += 1
            # A body the schema refuses raises here.
            assert fast == schema_class().load(body), body
    assert recognised >= 1


def test_a_plain_purchase_is_recognised_and_anything_else_is_marshmallows():
    assert s.load_transaction_request({"type": "purchase", "amount": 100}) == {"type": "purchase", "amount": 100}
    for body in ({"type": "purchase", "amount": True}, {"type": "purchase", "amount": 0},
                 {"type": "purchase", "amount": 100, "receipt_id": ""}, {"type": "purchase"},
                 {"type": "purchase", "amount": 100, "tip": 1}):
        with pytest.raises(ma.ValidationError) as refused:
            s.load_transaction_request(body)
        assert refused.value.messages == _errors(s.PurchaseRequestSchema, body)


def _errors(schema_class, body):
    with pytest.raises(ma.ValidationError) as refused:
        schema_class().load(body)
    return refused.value.messages


def test_a_field_kind_or_option_without_a_fast_load_is_refused():
    class WithEmail(s.Request):
        email = fields.Email()

    class WithDefault(s.Request):
        count = fields.Integer(strict=True, load_default=1)

    class Lenient(s.Request):
        count = fields.Integer()

    class WithRegexp(s.Request):
        code = fields.String(validate=validate.Regexp("[A-Z]+"))

    class WithHook(s.Request):
        count = fields.Integer(strict=True)

        @ma.pre_load
        def _more(self, data, **kwargs):
            return data

    class KeepsUnknown(ma.Schema):
        class Meta:
            unknown = ma.EXCLUDE

        count = fields.Integer(strict=True)

    for schema_class in (WithEmail, WithDefault, Lenient, WithRegexp, WithHook, KeepsUnknown):
        with pytest.raises(TypeError):
            Loader(schema_class)
