"""A request body checked without marshmallow's per-field machinery, for
the bodies every till sends: a purchase's. marshmallow's load of that
body (its field walk, error store and validators' calls) cost a purchase
more than dumping its answer.

``Loader`` is made once per schema from its declared fields and gives what
``schema.load`` gives for a body whose every value is plainly valid (tested
against it). For anything else it gives None and the caller loads with
marshmallow, whose errors are the API's: the loader never refuses, it only
recognises. A schema with any field kind, option or hook it does not know
is refused when the loader is made, so a new field cannot be loaded
differently without notice.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import marshmallow as ma
from marshmallow import fields, validate

Check = Callable[[Any], bool]


def _bounds(check: validate.Validator) -> Check:
    # Exact classes only, as for the fields: a subclass may check its own way.
    kind = type(check)
    if kind is validate.Range:
        low, high = check.min, check.max
        low_in, high_in = check.min_inclusive, check.max_inclusive
        return lambda v: ((low is None or (v >= low if low_in else v > low))
                          and (high is None or (v <= high if high_in else v < high)))
    if kind is validate.Length and check.equal is None:
        shortest, longest = check.min, check.max
        return lambda v: (shortest is None or len(v) >= shortest) and (longest is None or len(v) <= longest)
    if kind is validate.OneOf:
        choices = frozenset(check.choices)
        return lambda v: v in choices
    raise TypeError(f"{kind.__name__} has no fast check")


def _checker(field: fields.Field) -> Check:
    kind = type(field)
    if kind is fields.Integer and field.strict:
        plain: type = int
    elif kind is fields.String:
        plain = str
    else:
        raise TypeError(f"{kind.__name__} {field.name!r} has no fast load")
    if field.load_default is not ma.missing or field.data_key is not None or field.attribute is not None:
        raise TypeError(f"{field.name!r} is renamed or has a default: no fast load")
    checks = [_bounds(check) for check in field.validators]
    allow_none = field.allow_none
    # ``type(v) is int``: not a bool (which strict integers refuse) nor a subclass.
    return lambda v: (allow_none if v is None
                      else type(v) is plain and all(check(v) for check in checks))


class Loader:
    """``schema_class().load(body)`` for a plainly valid JSON object body;
    None for any other, which marshmallow loads (or refuses)."""

    def __init__(self, schema_class: type[ma.Schema]) -> None:
        schema = schema_class()
        if any(schema._hooks.values()) or schema.unknown != ma.RAISE:
            raise TypeError(f"{schema_class.__name__} has hooks or keeps unknown fields: no fast load")
        if any(field.dump_only for field in schema.fields.values()):
            raise TypeError(f"{schema_class.__name__} has dump-only fields: no fast load")
        self._fields = {name: _checker(field) for name, field in schema.load_fields.items()}
        self._required = frozenset(name for name, field in schema.load_fields.items() if field.required)

    def __call__(self, body: dict[str, Any]) -> dict[str, Any] | None:
        checks = self._fields
        for name, value in body.items():
            check = checks.get(name)
            if check is None or not check(value):
                return None
        if not self._required.issubset(body):
            return None
        return dict(body)
