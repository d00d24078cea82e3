"""What every rule set is built from: its field types and its one error.

A rule set (program rules, club fields, member fields) is one marshmallow
schema in the core. The core loads what it is given through it, the API
validates request bodies and writes its OpenAPI document from the same
class, and the portal's forms read its fields (bounds, choices, defaults,
descriptions), so the three can never disagree.

A schema that refuses raises ``InvalidFields``, a RuleViolation whose
``errors`` address each problem by its path ("program.points.earn_points",
"locations[2].latitude"), so a form can show each message next to its
field and the API can name it; its message lists them all in one line.
Each message is a ``Problem``: the English text the API answers, and a code
(with the values it names) that a page words in its own language.
"""

from __future__ import annotations

import numbers
from collections.abc import Callable, Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

import marshmallow as ma
from marshmallow import fields, validate

from wallet.loyalty.errors import RuleViolation

class Problem(str):
    """One thing wrong with a field: its English text (it is that string), a
    ``code`` saying what it is and the values it names (``params``: the
    bounds of a range, a length), so a page says it in its language without
    reading the English.

    Codes: required, not_text, too_long {max}, control_characters, not_integer,
    not_number, not_true_or_false, not_object, not_list, out_of_range {low,
    high}, too_many_decimals {places}, not_a_choice, unknown_field, and each
    rule set's own (not_colour, not_currency, ...; a checked value's
    RuleViolation code, such as invalid_email); ``invalid`` for a message
    that names none (marshmallow's own)."""

    code: str
    params: dict[str, Any]

    def __new__(cls, code: str, text: str, **params: Any) -> Problem:
        problem = super().__new__(cls, text)
        problem.code, problem.params = code, params
        return problem

    def format(self, *args: Any, **kwargs: Any) -> Problem:  # type: ignore[override]
        # marshmallow formats messages ({input}, {min}); the result keeps its code.
        return Problem(self.code, str.format(self, *args, **kwargs), **self.params)

    def __getnewargs__(self) -> tuple[str, str]:  # type: ignore[override]
        return self.code, str(self)


def problem(message: Any) -> Problem:
    """``message`` as a Problem: ``invalid`` if it names no code."""
    return message if isinstance(message, Problem) else Problem("invalid", str(message))


UNKNOWN_FIELD = Problem("unknown_field", "unknown field")


class InvalidFields(RuleViolation):
    """Values that break a rule set. ``errors`` maps each field's path to
    its messages (``Problem``s), in the order of the schema's fields."""

    errors: dict[str, list[Problem]]

    def __init__(self, errors: dict[str, list[Problem]], *, code: str, messages: Any = None) -> None:
        self.errors = errors
        # marshmallow's nested form, for a rule set loaded inside another.
        self.messages = messages if messages is not None else errors
        message = "; ".join(f"{path}: {text}" if path else text
                            for path, texts in errors.items() for text in texts)
        super().__init__(message or "the values break a rule", code=code)

    def within(self, prefix: str) -> InvalidFields:
        """The same errors addressed from an enclosing object ("program")."""
        return invalid_fields({prefix: self.messages}, code=self.code)

    @property
    def codes(self) -> dict[str, list[str]]:
        """Each field's path with the codes of its problems."""
        return {path: [p.code for p in problems] for path, problems in self.errors.items()}


def valid_text(value: Any, field_name: str, *, max_len: int, code: str, allow_empty: bool = False,
               multiline: bool = False) -> str:
    """A client's string, stripped, or RuleViolation: not a string, empty,
    too long, with a NUL or other control characters (PostgreSQL refuses
    NUL; a lone surrogate cannot even be encoded)."""
    try:
        return clean_text(value, max_len=max_len, allow_empty=allow_empty, multiline=multiline)
    except ma.ValidationError as exc:
        raise RuleViolation(f"{field_name} {exc.messages[0]}", code=code) from None


def clean_text(value: Any, *, max_len: int, allow_empty: bool = False, multiline: bool = False) -> str:
    """``valid_text`` inside a rule set: the same checks, ma.ValidationError."""
    if not isinstance(value, str):
        raise ma.ValidationError(NOT_TEXT)
    value = value.strip()
    if not value and not allow_empty:
        raise ma.ValidationError(Problem("required", "must not be empty"))
    if len(value) > max_len:
        raise ma.ValidationError(Problem("too_long", f"may be at most {max_len} characters", max=max_len))
    allowed = "\n\t\r" if multiline else ""
    if any((ord(ch) < 32 and ch not in allowed) or ord(ch) == 127 for ch in value):
        raise ma.ValidationError(Problem("control_characters", "must not contain control characters"))
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ma.ValidationError(Problem("control_characters", "is not valid Unicode text")) from None
    return value


# --- the schema every rule set derives from -----------------------------------------

NOT_NUMBER = Problem("not_number", "must be a number")
_MESSAGES = {"required": Problem("required", "is required"), "null": Problem("required", "must not be null")}
NOT_TEXT = Problem("not_text", "must be a string")
NOT_LIST = Problem("not_list", "must be a list")


class RuleSet(ma.Schema):
    """Unknown fields refused; messages in the words the whole service uses.
    ``error_code`` is the RuleViolation code of what this schema refuses;
    ``field_codes`` gives a field its own (a club's ``program`` answers
    ``invalid_program`` as the program itself does), ``unknown_code`` an
    unknown field of its own."""

    error_code = "rule_violation"
    field_codes: Mapping[str, str] = {}
    unknown_code: str | None = None
    error_messages = {"unknown": UNKNOWN_FIELD, "type": Problem("not_object", "must be an object")}

    class Meta:
        unknown = ma.RAISE

    def handle_error(self, error: ma.ValidationError, data: Any, *, many: bool, **kwargs: Any) -> None:
        raise invalid_fields(error.messages, code=self._code_of(error.messages))

    def _code_of(self, messages: Any) -> str:
        if isinstance(messages, dict):
            first = next(iter(messages), None)
            if first in self.field_codes:
                return self.field_codes[str(first)]
            if first is not None and messages[first] == [UNKNOWN_FIELD] and self.unknown_code:
                return self.unknown_code
        return self.error_code


class Section(fields.Nested):
    """A rule set inside another (a club's ``program``, a tier level). Use it
    instead of ``fields.Nested`` for a RuleSet: it gives the enclosing schema
    the nested errors to address from its own fields."""

    def _load(self, value: Any, partial: Any = None) -> Any:
        try:
            return super()._load(value, partial=partial)
        except InvalidFields as exc:
            raise ma.ValidationError(exc.messages) from None


def invalid_fields(messages: Any, *, code: str, prefix: str = "") -> InvalidFields:
    """marshmallow's nested messages ({"points": {"earn_points": [...]}},
    {"levels": {1: {...}}}) as InvalidFields with flat paths."""
    errors: dict[str, list[Problem]] = {}
    _flatten(messages, prefix, errors)
    return InvalidFields(errors, code=code, messages=messages)


def _flatten(messages: Any, path: str, out: dict[str, list[Problem]]) -> None:
    if isinstance(messages, dict):
        for key, value in messages.items():
            if key == "_schema":
                child = path
            elif isinstance(key, int):
                child = f"{path}[{key}]"
            else:
                child = f"{path}.{key}" if path else str(key)
            _flatten(value, child, out)
    elif isinstance(messages, (list, tuple)):
        for item in messages:
            _flatten(item, path, out)
    else:
        out.setdefault(path, []).append(problem(messages))


# --- field types ---------------------------------------------------------------------


def _with_messages(kwargs: dict[str, Any], **messages: Problem) -> dict[str, Any]:
    return {**kwargs, "error_messages": {**_MESSAGES, **messages, **kwargs.get("error_messages", {})}}


def between(low: int | float, high: int | float) -> validate.Range:
    return validate.Range(low, high, error=Problem("out_of_range", f"must be between {low} and {high}",
                                                   low=low, high=high))


def one_of(choices: tuple[str, ...]) -> validate.OneOf:
    return validate.OneOf(choices, error=Problem("not_a_choice", f"must be one of {', '.join(choices)}"))


def at_most(count: int, code: str, text: str) -> validate.Length:
    """A list of at most ``count`` items; ``code`` and ``text`` say what."""
    return validate.Length(max=count, error=Problem(code, text, max=count))


def at_least_one(code: str, text: str) -> validate.Length:
    return validate.Length(min=1, error=Problem(code, text))


class Integer(fields.Integer):
    """A JSON integer: not a float, not a numeric string, not true/false
    (Python counts a bool as an int; a JSON true is not a number of points)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(strict=True, **_with_messages(kwargs, invalid=Problem("not_integer", "must be an integer")))

    def _validated(self, value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, numbers.Integral):
            raise self.make_error("invalid")
        return super()._validated(value)


class Flag(fields.Boolean):
    """JSON true or false only; "yes" and 1 are a client's bug, not a guess."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**_with_messages(kwargs, invalid=Problem("not_true_or_false", "must be true or false")))

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> bool:
        if not isinstance(value, bool):
            raise self.make_error("invalid")
        return value


class Number(fields.Float):
    """A JSON number that is not money (coordinates): finite, not a bool."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(allow_nan=False, **_with_messages(kwargs, invalid=NOT_NUMBER, special=NOT_NUMBER))

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise self.make_error("invalid")
        return super()._deserialize(value, attr, data, **kwargs)


class Text(fields.String):
    """A client's string, stripped: at most ``max_len`` characters, no control
    characters (``multiline`` allows line breaks and tabs), empty only when
    ``allow_empty``. An empty optional value loads as ``empty`` ("" or None)."""

    def __init__(self, *, max_len: int, allow_empty: bool = True, multiline: bool = False,
                 empty: str | None = "", **kwargs: Any) -> None:
        self.max_len, self.allow_empty, self.multiline, self.empty = max_len, allow_empty, multiline, empty
        # The bounds are documented here (OpenAPI minLength/maxLength) and
        # enforced by clean_text on the stripped value, in the service's words.
        metadata = {"maxLength": max_len, **({} if allow_empty else {"minLength": 1}),
                    **kwargs.pop("metadata", {})}
        super().__init__(metadata=metadata, **_with_messages(kwargs, invalid=NOT_TEXT))

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str | None:
        text = clean_text(value, max_len=self.max_len, allow_empty=self.allow_empty, multiline=self.multiline)
        return text if text else self.empty


class Percent(fields.String):
    """A percentage 0..100 with at most 2 decimal places, sent as a JSON number
    or a decimal string and kept as the normalized string ("2.50" -> "2.5"):
    percentages are used as Decimal, never as floats."""

    def __init__(self, **kwargs: Any) -> None:
        metadata = {"pattern": r"^[0-9]{1,3}(\.[0-9]{1,2})?$",
                    "description": "percent 0-100, at most 2 decimals; a decimal string (a JSON number "
                                   "is accepted too)", **kwargs.pop("metadata", {})}
        super().__init__(metadata=metadata, **_with_messages(kwargs))

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        return _percent_text(_parse_percent(value))


def _parse_percent(value: Any) -> Decimal:
    """A percentage 0..100 with at most 2 decimal places, from a JSON number or
    a decimal string; ma.ValidationError otherwise."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise ma.ValidationError(Problem("not_number", 'must be a number or a decimal string such as "2.5"'))
    try:
        number = Decimal(str(value).strip())
    except InvalidOperation:
        raise ma.ValidationError(Problem("not_number", f"{value!r} is not a decimal number")) from None
    if not number.is_finite():
        raise ma.ValidationError(Problem("not_number", "must be a finite number"))
    if number < 0 or number > 100:
        raise ma.ValidationError(Problem("out_of_range", "must be between 0 and 100", low=0, high=100))
    if number != number.quantize(Decimal("0.01")):
        raise ma.ValidationError(Problem("too_many_decimals", "may have at most 2 decimal places", places=2))
    return number


def _percent_text(number: Decimal) -> str:
    return format(number.normalize(), "f")


class Checked(fields.Field):
    """A field whose value a core function reads and normalizes (an email, a
    country, a phone number), turning its RuleViolation into this field's
    Problem (its code the RuleViolation's). ``check`` raises
    RuleViolation("<field>: <message>") or ma.ValidationError."""

    def __init__(self, check: Callable[[Any], Any], *, json_type: str = "string", **kwargs: Any) -> None:
        self.check = check
        super().__init__(metadata={"type": json_type, **kwargs.pop("metadata", {})}, **_with_messages(kwargs))

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Any:
        try:
            return self.check(value)
        except RuleViolation as exc:
            message = exc.message
            prefix = f"{attr}: " if attr else ""
            text = message[len(prefix):] if prefix and message.startswith(prefix) else message
            raise ma.ValidationError(Problem(exc.code, text)) from None
