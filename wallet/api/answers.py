"""An answer's JSON built without marshmallow's per-field machinery, for
the answers every till sends for: a purchase's (the transaction with its
member). marshmallow's dump of that answer was about as costly as claiming
the Idempotency-Key.

``Dumper`` is made once per schema from its declared fields and gives what
``schema.dump`` gives for the field kinds it knows (tested against it); a
schema with any other kind is refused when the dumper is made, so a new
field cannot be dumped differently without notice.

``JsonAnswer`` writes the dumped answer as the app's JSON provider's
``response`` writes it (flask-smorest sends a view's data through that),
with an encoder made once while the provider is Flask's own with the same
settings, and makes the Response once its text is final: a purchase's
answer has its entry's id filled in after it is written
(wallet.api.idempotency.AnswerRider). ``json.dumps`` given any option, as
the provider calls it, makes a new encoder on every call, and the answer
went from text to a Response to text and to a Response again.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, NamedTuple, cast

import marshmallow as ma
from flask import Flask, Response, current_app
from flask.json.provider import DefaultJSONProvider
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


class _Kept(NamedTuple):
    settings: tuple[Any, ...]
    encoder: json.JSONEncoder


_kept: _Kept | None = None


def _encoder(app: Flask) -> json.JSONEncoder | None:
    """An encoder that writes what ``app.json.response`` writes (but its
    last newline), made once per settings of the provider; None when the
    provider is not Flask's default one in what it writes (it is asked
    itself then)."""
    global _kept
    provider = app.json
    kind = type(provider)
    if not isinstance(provider, DefaultJSONProvider) or kind.response is not DefaultJSONProvider.response \
            or kind.dumps is not DefaultJSONProvider.dumps:
        return None
    # What DefaultJSONProvider.response and dumps read, as they read it.
    indented = (provider.compact is None and app.debug) or provider.compact is False
    settings = (provider.default, provider.ensure_ascii, provider.sort_keys, indented)
    kept = _kept
    if kept is None or kept.settings != settings:
        encoder = json.JSONEncoder(default=provider.default, ensure_ascii=provider.ensure_ascii,
                                   sort_keys=provider.sort_keys, indent=2 if indented else None,
                                   separators=None if indented else (",", ":"))
        kept = _kept = _Kept(settings, encoder)
    return kept.encoder


class JsonAnswer:
    """A view's answer of ``status`` with the data ``dumper(values)``, as
    flask-smorest sends it (the app's JSON provider's ``response``, which
    passes a view's Response through untouched): ``text`` is its body,
    ``response()`` makes its Response."""

    __slots__ = ("status", "text", "_app", "_made")

    def __init__(self, dumper: Dumper, values: Any, status: int) -> None:
        app: Flask = current_app._get_current_object()  # type: ignore[attr-defined]
        encoder = _encoder(app)
        self.status, self._app = status, app
        if encoder is None:
            made = cast(Response, app.json.response(dumper(values)))
            made.status_code = status
            self._made: Response | None = made
            self.text: str = made.get_data(as_text=True)
        else:
            self._made = None
            self.text = f"{encoder.encode(dumper(values))}\n"

    def response(self, text: str | None = None) -> Response:
        """The answer's Response, once; with ``text`` (``text`` with a value
        filled in), that body instead."""
        made = self._made
        if made is None:
            app = self._app
            return app.response_class(self.text if text is None else text, status=self.status,
                                      mimetype=app.json.mimetype)  # type: ignore[attr-defined]
        if text is not None:
            made.set_data(text)
        return made
