"""No request a client can send gets a 5xx, on any route of the app.

Property tests drive every rule in ``app.url_map`` (API or not) with junk
in the path, the query, the headers and the body, and with real ids and
tokens mixed in so requests get past the first checks: once as anyone,
once for the PassKit web service as a device would talk to it, and once
for the pages as signed-in staff whose forms pass the CSRF check. Fixed
cases send every route what broke services before (NUL, lone surrogates,
deep JSON, numbers beyond 64 bits, digits of other scripts); and a real WSGI
server on a socket shows that a chunked body over the limit is a 413 like
one announced by Content-Length, on every kind of route.
"""

from __future__ import annotations

import json
import re
import socket
import uuid
from collections.abc import Iterator
from dataclasses import replace
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

import pytest
from flask import Flask
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support.api import Api, error_code, make_brand
from tests.support.app import TEST_PASS_TYPE
from tests.support.server import live_server
from wallet.apple.models import DeviceRegistration
from wallet.apple.webservice import MAX_DEVICES_PER_PASS
from wallet.config import get_settings
from wallet.extensions import get_db
from wallet.loyalty.brands import create_brand
from wallet.loyalty.models import Membership
from wallet.web.forms import PageForm

UNICODE_DIGITS = ["\u0661\u0662", "\uff11", "\u09e7", "\U0001d7d9", "\u00b2"]
NASTY_TEXT = ["\x00", "%00", "1\x00", "..", "../../etc/passwd", "\u202e", "\ud800", "\r\nX-Injected: 1",
              "\x1b[31m", "9" * 30, str(2**63), str(2**64), "-1", "0", "1e309", "NaN", " 1 ", "1_0", "0x10"]


def _text() -> st.SearchStrategy[str]:
    return st.one_of(st.sampled_from(NASTY_TEXT + UNICODE_DIGITS), st.text(max_size=40),
                     st.integers(min_value=-(2**70), max_value=2**70).map(str))


def _json_junk() -> st.SearchStrategy[Any]:
    scalars = st.one_of(st.none(), st.booleans(), st.integers(min_value=-(2**80), max_value=2**80),
                        st.floats(allow_nan=False, allow_infinity=False), _text())
    return st.recursive(scalars, lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(_text(), inner, max_size=4)), max_leaves=12)


MAX_BODY = 2_000_000  # above the deepest JSON sent here, far below the default


@pytest.fixture
def app_config(app_config: dict[str, Any]) -> dict[str, Any]:
    app_config["API_RATE_LIMIT"] = "1000000 per minute"
    app_config["APPLE_AUTH_FAILURE_LIMIT"] = "1000000 per minute"
    app_config["APPLE_LOG_LIMIT"] = "1000000 per minute"
    app_config["MAX_CONTENT_LENGTH"] = MAX_BODY
    return app_config


@pytest.fixture
def known(app: Flask, client: Any, db: Any) -> dict[str, Any]:
    """Real ids and secrets, so generated requests sometimes name real rows."""
    brand = make_brand(db)
    api = Api(client, brand.key)
    club = api.club()
    member = api.member(club["id"])
    api.purchase(member["id"], 100000)
    hook = api.post("/webhooks", {"url": "https://hooks.example.com/hook"}).get_json()
    with db.session() as s:
        card = s.get(Membership, member["id"])
        tokens = {"serial": card.serial_number, "auth": card.auth_token, "download": card.download_token}
    return {
        "key": brand.key,
        "values": [str(club["id"]), str(member["id"]), str(hook["id"]), TEST_PASS_TYPE, tokens["serial"],
                   tokens["download"], "1", uuid.uuid4().hex],
        "auth": [f"Bearer {brand.key}", f"ApplePass {tokens['auth']}", f"AndroidPass {tokens['auth']}",
                 f"Bearer {brand.key}\x00", "ApplePass ", "Bearer", "Basic Zm9vOmJhcg=="],
        "serial": tokens["serial"],
        "token": tokens["auth"],
    }


def _rules(app: Flask) -> list[Any]:
    return sorted((r for r in app.url_map.iter_rules() if r.endpoint != "static"), key=lambda r: r.rule)


@st.composite
def _requests(draw: st.DrawFn, app: Flask, known: dict[str, Any]) -> dict[str, Any]:
    rule = draw(st.sampled_from(_rules(app)))
    args = {name: draw(st.one_of(st.sampled_from(known["values"]), _text())) for name in rule.arguments}
    path = rule.rule
    for part in ("int:", "path:", "float:"):
        path = path.replace("<" + part, "<")
    for name, value in args.items():
        path = path.replace(f"<{name}>", quote(value.encode("utf-8", "surrogatepass"), safe=""))
    query = draw(st.dictionaries(st.sampled_from(["limit", "cursor", "email", "phone", "card_number",
                                                  "passesUpdatedSince", "lang", "q"]) | _text(),
                                 _text(), max_size=3))
    methods = sorted((rule.methods or set()) | {"GET", "POST", "DELETE", "PATCH", "PUT"})
    headers = {"Authorization": draw(st.sampled_from(known["auth"]) | _text())}
    if draw(st.booleans()):
        headers["Idempotency-Key"] = draw(st.sampled_from([uuid.uuid4().hex, "", "k" * 300, "\u00e9"]))
    if draw(st.booleans()):
        headers["If-Modified-Since"] = draw(st.sampled_from(["", "yesterday", "Mon, 99 Foo 9999 99:99:99 GMT"]))
    body_kind = draw(st.sampled_from(["none", "json", "bytes", "deep"]))
    body: bytes | None = None
    if body_kind == "json":
        body = json.dumps(draw(_json_junk())).encode()
    elif body_kind == "bytes":
        body = draw(st.binary(max_size=200))
    elif body_kind == "deep":
        depth = draw(st.integers(min_value=30, max_value=100_000))
        body = b'{"a":' * depth + b"1" + b"}" * depth
    return {
        "method": draw(st.sampled_from(methods)),
        "path": path + ("?" + urlencode({k.encode("utf-8", "surrogatepass"): v.encode("utf-8", "surrogatepass")
                                         for k, v in query.items()}) if query else ""),
        # As a socket would carry them: latin-1, and no line breaks (those end the header).
        "headers": {k: v.encode("utf-8", "surrogatepass").decode("latin-1").replace("\r", "").replace("\n", "")
                    for k, v in headers.items()},
        "body": body,
        "content_type": draw(st.sampled_from(["application/json", "text/plain", "application/x-www-form-urlencoded",
                                              "application/json; charset=latin-1"])),
    }


def _send(client: Any, request: dict[str, Any]) -> Any:
    response = client.open(request["path"], method=request["method"], headers=request["headers"],
                           data=request["body"], content_type=request["content_type"])
    assert response.status_code < 500, (request, response.status_code, response.get_data()[:300])
    return response


def test_no_route_answers_junk_with_a_5xx(app: Flask, client: Any, known: dict[str, Any]) -> None:
    @settings(max_examples=400, deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck))
    @given(request=_requests(app, known))
    def run(request: dict[str, Any]) -> None:
        response = _send(client, request)
        if request["path"].startswith("/api/") and response.status_code >= 400 and request["method"] != "HEAD":
            error_code(response)  # one error format on the API

    run()


# --- the PassKit web service, as devices (and others) talk to it ---------------------------


@st.composite
def _passkit_requests(draw: st.DrawFn, known: dict[str, Any]) -> dict[str, Any]:
    """Requests shaped like Apple's protocol, mostly right, with one part wrong."""
    device = draw(st.sampled_from([f"device{n:02d}" for n in range(14)]) | _text())
    pass_type = draw(st.sampled_from([TEST_PASS_TYPE] * 3) | _text())
    serial = draw(st.sampled_from([known["serial"]] * 3) | _text())
    kind = draw(st.sampled_from(["register", "unregister", "list", "pass", "log"]))
    headers = {"Authorization": draw(st.sampled_from([f"ApplePass {known['token']}"] * 3 + known["auth"]) | _text())}
    if draw(st.booleans()):
        headers["If-Modified-Since"] = draw(st.sampled_from(["Mon, 01 Jan 3000 00:00:00 GMT", "Thu, 01 Jan 1970 "
                                                             "00:00:00 GMT", "", "\u0661"]) | _text())
    push_token = draw(st.sampled_from(["ab" * 32, "0" * 8]) | _text() | st.integers() | st.none())
    bodies = {"register": {"pushToken": push_token}, "log": {"logs": draw(st.lists(_text(), max_size=4))}}
    body: Any = bodies.get(kind)
    if draw(st.integers(min_value=0, max_value=3)) == 0:
        body = draw(_json_junk())
    raw = json.dumps(body).encode() if body is not None else None
    if draw(st.integers(min_value=0, max_value=5)) == 0:
        raw = draw(st.binary(max_size=100))
    enc = [quote(v.encode("utf-8", "surrogatepass"), safe="") for v in (device, pass_type, serial)]
    path, method = {
        "register": (f"/apple/v1/devices/{enc[0]}/registrations/{enc[1]}/{enc[2]}", "POST"),
        "unregister": (f"/apple/v1/devices/{enc[0]}/registrations/{enc[1]}/{enc[2]}", "DELETE"),
        "list": (f"/apple/v1/devices/{enc[0]}/registrations/{enc[1]}", "GET"),
        "pass": (f"/apple/v1/passes/{enc[1]}/{enc[2]}", "GET"),
        "log": ("/apple/v1/log", "POST"),
    }[kind]
    if kind == "list" and draw(st.booleans()):
        tag = draw(st.sampled_from(["0", "1", str(2**63 - 1)] + UNICODE_DIGITS) | _text())
        path += "?" + urlencode({"passesUpdatedSince": tag.encode("utf-8", "surrogatepass")})
    return {"method": method, "path": path, "body": raw, "content_type": "application/json",
            "headers": {k: v.encode("utf-8", "surrogatepass").decode("latin-1").replace("\r", "").replace("\n", "")
                        for k, v in headers.items()}}


def test_the_passkit_web_service_answers_no_5xx_and_keeps_its_limits(app: Flask, client: Any, db: Any,
                                                                     known: dict[str, Any]) -> None:
    @settings(max_examples=300, deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck))
    @given(request=_passkit_requests(known))
    def run(request: dict[str, Any]) -> None:
        _send(client, request)
        with db.session() as s:
            held = s.query(DeviceRegistration).count()
        assert held <= MAX_DEVICES_PER_PASS  # one pass in the database: all registrations are its

    run()


# --- pages, as signed-in staff whose forms pass the CSRF check ------------------------------


def _form_field_names() -> list[str]:
    """Every field name of every page form, so generated forms name real fields."""
    names: set[str] = set()
    forms = [PageForm]
    while forms:
        form = forms.pop()
        forms.extend(form.__subclasses__())
        names.update(name for name in dir(form) if hasattr(getattr(form, name, None), "field_class"))
    return sorted(names)


@pytest.fixture
def staff(app: Flask, db: Any) -> tuple[Any, dict[str, str]]:
    """A client signed in to the portal of a brand of its own, and the
    header that carries its session's CSRF token (Flask-WTF reads it there
    as from the form), so its requests get past the CSRF check."""
    with db.transaction() as session:
        create_brand(session, name="Page Co", email="pages@example.com", password="correct horse battery")
    staff = app.test_client()

    def token(page_path: str) -> dict[str, str]:
        page = staff.get(page_path).get_data(as_text=True)
        match = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page)
        assert match, page[:500]
        return {"X-CSRFToken": match.group(1)}

    signed_in = staff.post("/portal/login", data={"email": "pages@example.com", "password": "correct horse battery"},
                           headers=token("/portal/login"))
    assert signed_in.status_code == 302, signed_in.get_data(as_text=True)[:500]
    return staff, token("/portal/")  # its sign-out form


def test_pages_answer_junk_forms_without_a_5xx(app: Flask, staff: tuple[Any, dict[str, str]],
                                               known: dict[str, Any]) -> None:
    staff_client, csrf = staff
    fields = _form_field_names()
    page_rules = [r for r in _rules(app) if not (r.rule + "/").startswith(("/api/", "/apple/", "/google/"))]

    @st.composite
    def forms(draw: st.DrawFn) -> dict[str, Any]:
        rule = draw(st.sampled_from(page_rules))
        values = known["values"] + ["x", "2000-01-01", "+79161234567", "a@b.c", "owner", "on", "#ff0000"]
        args = {name: draw(st.sampled_from(known["values"]) | _text()) for name in rule.arguments}
        path = rule.rule.replace("<int:", "<").replace("<path:", "<")
        for name, value in args.items():
            path = path.replace(f"<{name}>", quote(value.encode("utf-8", "surrogatepass"), safe=""))
        form = draw(st.dictionaries(st.sampled_from(fields) | _text(), st.sampled_from(values) | _text(),
                                    max_size=6))
        return {"path": path, "method": draw(st.sampled_from(sorted((rule.methods or set()) - {"OPTIONS"}))),
                "form": {k.encode("utf-8", "surrogatepass"): v.encode("utf-8", "surrogatepass")
                         for k, v in form.items()}}

    @settings(max_examples=300, deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck))
    @given(request=forms())
    def run(request: dict[str, Any]) -> None:
        body = urlencode(request["form"]).encode()
        response = staff_client.open(request["path"], method=request["method"], data=body, headers=csrf,
                                     content_type="application/x-www-form-urlencoded")
        assert response.status_code < 500, (request, response.status_code, response.get_data()[:300])

    run()


# --- what broke services before, sent to every route ----------------------------------------


_NASTY_BODIES = {
    "deep json": ("application/json", b'{"a":' * 100_000 + b"1" + b"}" * 100_000),
    "deep list": ("application/json", b"[" * 100_000 + b"]" * 100_000),
    "nul in json": ("application/json", json.dumps({k: "a\x00b" for k in ("name", "email", "logs", "text",
                                                                          "pushToken", "url")}).encode()),
    "surrogate in json": ("application/json", b'{"name": "\\ud800", "logs": ["\\udfff"], "text": "\\ud800"}'),
    "huge numbers": ("application/json", json.dumps({k: 2**64 for k in ("amount", "points", "limit",
                                                                          "refund_of")}).encode()),
    "nul in form": ("application/x-www-form-urlencoded", b"name=a%00b&email=a%00%40b.c&q=%00&password=%00"),
    "raw nul": ("application/octet-stream", b"\x00" * 64),
}


@pytest.mark.parametrize("body", sorted(_NASTY_BODIES))
def test_every_route_refuses_what_broke_services_before_without_a_5xx(
    app: Flask, staff: tuple[Any, dict[str, str]], known: dict[str, Any], body: str
) -> None:
    staff_client, csrf = staff
    content_type, data = _NASTY_BODIES[body]
    for rule in _rules(app):
        path = rule.rule.replace("<int:", "<").replace("<path:", "<")
        for name in rule.arguments:
            path = path.replace(f"<{name}>", quote(known["values"][0] if name.endswith("_id") else known["serial"]))
        query = "?" + urlencode({"q": "\x00", "passesUpdatedSince": "\u0661", "cursor": "\x00", "limit": str(2**64),
                                 "email": "\x00"})
        for method in sorted((rule.methods or set()) - {"OPTIONS", "HEAD"}):
            # Each kind of route with the credentials it takes: key, pass token, staff session.
            auth = f"ApplePass {known['token']}" if path.startswith("/apple/") else f"Bearer {known['key']}"
            response = staff_client.open(path + query, method=method, data=data, content_type=content_type,
                                         headers={**csrf, "Authorization": auth, "Idempotency-Key": uuid.uuid4().hex})
            assert response.status_code < 500, (body, method, path, response.status_code, response.get_data()[:300])


def test_every_route_with_an_id_refuses_ids_beyond_64_bits_and_non_ascii_digits(app: Flask, client: Any,
                                                                                 known: dict[str, Any]) -> None:
    headers = {"Authorization": f"Bearer {known['key']}"}
    for rule in _rules(app):
        int_args = [name for name, conv in rule._converters.items()  # noqa: SLF001
                    if conv.__class__.__name__.endswith(("IntegerConverter", "IdConverter"))]
        if not int_args:
            continue
        for bad in [str(2**63), "9" * 40, "\u0661", "\uff11", "1\u0662"]:
            path = rule.rule
            for name in rule.arguments:
                value = bad if name in int_args else "1"
                path = path.replace(f"<int:{name}>", quote(value)).replace(f"<{name}>", quote(value))
            for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
                response = client.open(path, method=method, headers=headers)
                # 405 when another method's rule matched the path before its
                # id was converted (werkzeug's order): still no row looked up.
                assert response.status_code in (404, 405), (method, path, response.status_code)


# --- a real server: chunked bodies -------------------------------------------------------


@pytest.fixture
def served(app: Flask) -> Iterator[tuple[str, int]]:
    """The app under werkzeug's WSGI server on a loopback socket, which
    reads chunked bodies as gunicorn does (wsgi.input_terminated)."""
    with live_server(app) as url:
        address = urlsplit(url)
        yield str(address.hostname), int(address.port or 80)


def _chunked_post(address: tuple[str, int], path: str, headers: dict[str, str], body: bytes,
                  chunk: int = 4096) -> tuple[int, bytes]:
    """POST ``body`` with Transfer-Encoding: chunked over a raw socket; the
    status and body of the answer (the server may answer before all is sent)."""
    with socket.create_connection(address, timeout=10) as sock:
        head = [f"POST {path} HTTP/1.1", f"Host: {address[0]}:{address[1]}", "Transfer-Encoding: chunked",
                "Connection: close", *(f"{k}: {v}" for k, v in headers.items())]
        sock.sendall(("\r\n".join(head) + "\r\n\r\n").encode("latin-1"))
        try:
            for start in range(0, len(body), chunk):
                piece = body[start:start + chunk]
                sock.sendall(f"{len(piece):x}\r\n".encode() + piece + b"\r\n")
            sock.sendall(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass  # it answered and closed before the end: read what it said
        answer = b""
        while b"\r\n\r\n" not in answer:  # the head, then as much body as it announces
            answer += sock.recv(65536)
        head, _, body = answer.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        length = int(next(v for k, _, v in (x.partition(": ") for x in lines) if k.lower() == "content-length"))
        while len(body) < length:
            body += sock.recv(65536)
    return int(lines[0].split()[1]), body


def test_a_chunked_body_over_the_limit_is_413_like_one_with_a_content_length(app, db, served):
    app.extensions["wallet.settings"] = replace(get_settings(app), api_max_body=10_000)
    key = make_brand(db).key
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    small = json.dumps({"name": "Chunked club"}).encode()
    status, body = _chunked_post(served, "/api/v1/clubs", {**headers, "Idempotency-Key": uuid.uuid4().hex}, small)
    assert status == 201 and json.loads(body)["name"] == "Chunked club"

    big = json.dumps({"name": "x", "description": "y" * 50_000}).encode()
    status, body = _chunked_post(served, "/api/v1/clubs", {**headers, "Idempotency-Key": uuid.uuid4().hex}, big)
    assert status == 413
    assert json.loads(body)["error"]["code"] == "payload_too_large"
    with get_db(app).session() as s:
        from wallet.loyalty.models import Club

        assert [c.name for c in s.query(Club).all()] == ["Chunked club"]


@pytest.mark.parametrize("path", ["/portal/login", "/clubs/{club}/join", "/apple/v1/log",
                                  "/apple/v1/devices/d1/registrations/{pass_type}/{serial}", "/api/v1/clubs"])
def test_a_chunked_body_over_the_limit_is_413_on_every_kind_of_route(app, served, known, path):
    """Pages and PassKit have MAX_CONTENT_LENGTH, the API its own smaller limit:
    a chunked body over either is refused whole, as one with a Content-Length."""
    path = path.format(club=known["values"][0], pass_type=TEST_PASS_TYPE, serial=known["serial"])
    headers = {"Authorization": f"ApplePass {known['token']}" if "/apple/" in path else f"Bearer {known['key']}",
               "Content-Type": "application/json", "Idempotency-Key": uuid.uuid4().hex}
    limit = get_settings(app).api_max_body if path.startswith("/api/") else MAX_BODY
    status, _body = _chunked_post(served, path, headers, json.dumps({"logs": ["x" * (limit + 10)]}).encode())
    assert status == 413


def test_a_chunked_body_within_the_limit_is_read_whole(app, db, served):
    lines = ["y" * 900] * 40  # more than one chunk, and the form of every device log
    status, _body = _chunked_post(served, "/apple/v1/log", {"Content-Type": "application/json"},
                                  json.dumps({"logs": lines}).encode(), chunk=1000)
    assert status == 200
    with get_db(app).session() as s:
        from wallet.apple.models import DeviceLogEntry

        assert s.query(DeviceLogEntry).count() == 40
