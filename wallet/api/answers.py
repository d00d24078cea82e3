"""An answer's JSON built without marshmallow's per-field machinery, for
the answers every till sends for: a purchase's (the transaction with its
member). marshmallow's dump of that answer was about as costly as claiming
the Idempotency-Key.

``Dumper`` is made once per schema from its declared fields and gives what
``schema.dump`` gives for the field kinds it knows (tested against it); a
schema with any other kind is refused when the dumper is made, so a new
field cannot be dumped differently without notice.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import marshmallow as ma
from flask import Response, current_app
from marshmallow import fields
from marshmallow.utils import ensure_text_type

Convert = Callable[[Any], Any]


def _converter(field: fields.Field) -> Convert:
    # Exact classes only: a subclass (AwareDateTime, Email, ...) may convert
    # or check values its own way.
    kind = type(field)
    if kind is fields.Integer and not field.as_string:
        return int
    if kind is fields.String:
        return ensure_text_type
    if kind in (fields.DateTime, fields.Date) and (field.format or kind.DEFAULT_FORMAT) == "iso":
        return kind.SERIALIZATION_FUNCS["iso"]
    if kind is fields.Dict and field.key_field is None and field.value_field is None:
        return dict
    if kind is fields.Nested and not field.many and not field.only and not field.exclude:
        return Dumper(field.schema.__class__)
    raise TypeError(f"{kind.__name__} {field.name!r} has no fast dump")


class Dumper:
    """``schema_class().dump(values)`` for a mapping of values."""

    def __init__(self, schema_class: type[ma.Schema]) -> None:
        schema = schema_class()
        if any(schema._hooks.values()):
            raise TypeError(f"{schema_class.__name__} has pre/post hooks: no fast dump")
        self._fields = [(field.data_key or name, field.attribute or name, _converter(field))
                        for name, field in schema.dump_fields.items()]

    def __call__(self, values: Any) -> dict[str, Any]:
        answer: dict[str, Any] = {}
        for key, name, convert in self._fields:
            if name in values:
                value = values[name]
                answer[key] = None if value is None else convert(value)
        return answer


def json_response(dumper: Dumper, values: Any, status: int) -> Response:
    """The answer as flask-smorest would send it (the app's JSON provider),
    which passes a view's Response through untouched."""
    response = current_app.json.response(dumper(values))
    response.status_code = status
    return response
