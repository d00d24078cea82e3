"""The app's Response remembers the Last-Modified date it was given (so the
clamp in wallet.http_rules reads it back without parsing the header): what it
reads back is exactly what Flask's Response reads from the header."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import flask
import pytest

from wallet.http_rules import Response

GIVEN = [
    datetime(2026, 3, 4, 5, 6, 7, 891, tzinfo=timezone.utc),
    datetime(2026, 3, 4, 5, 6, 7, 891),  # naive: UTC, as werkzeug takes it
    datetime(2026, 3, 4, 8, 6, 7, 891, tzinfo=timezone(timedelta(hours=3))),
    1_700_000_000,
]


@pytest.mark.parametrize("value", GIVEN)
def test_it_reads_back_what_flasks_response_parses(value: object) -> None:
    ours, flasks = Response(), flask.Response()
    ours.last_modified = value
    flasks.last_modified = value
    assert ours.headers["Last-Modified"] == flasks.headers["Last-Modified"]
    read = ours.last_modified
    assert read is not None and (read, read.tzinfo) == (flasks.last_modified, timezone.utc)


def test_a_header_set_otherwise_is_parsed_and_deleting_forgets() -> None:
    response = Response()
    response.last_modified = datetime(2026, 1, 1, tzinfo=timezone.utc)
    response.headers["Last-Modified"] = "Wed, 21 Oct 2015 07:28:00 GMT"
    assert response.last_modified == datetime(2015, 10, 21, 7, 28, tzinfo=timezone.utc)
    response.last_modified = datetime(2026, 1, 1, tzinfo=timezone.utc)
    del response.last_modified
    assert response.last_modified is None and "Last-Modified" not in response.headers


def test_the_app_answers_with_it(app: flask.Flask) -> None:
    assert app.response_class is Response
