r"""URL converters for the whole app.

Werkzeug's ``int`` converter matches ``\d+``, which in Python's regular
expressions takes any Unicode digit ("/clubs/１", a full-width 1, was
club 1), and converts numbers of any size, which the database driver then
fails to bind (a 500). Ids in every route are ASCII digits and at most a
BIGINT: anything else matches no route, a 404 like any unknown id.
"""

from __future__ import annotations

from typing import Any

from flask import Flask
from werkzeug.routing import IntegerConverter, Map

from wallet.db import MAX_ID


class IdConverter(IntegerConverter):
    regex = r"[0-9]+"

    def __init__(self, map: Map, *args: Any, max: int = MAX_ID, **kwargs: Any) -> None:  # noqa: A002
        super().__init__(map, *args, max=max, **kwargs)


def init_app(app: Flask) -> None:
    """Before any blueprint adds its rules."""
    app.url_map.converters["int"] = IdConverter
