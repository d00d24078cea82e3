"""What every route answers alike, whichever blueprint serves it.

- A body over the size limit is 413 however it is sent. Werkzeug refuses a
  Content-Length over ``MAX_CONTENT_LENGTH`` before reading, but cuts a
  chunked body at the limit without a word: a form or JSON document then
  fails as malformed (400), or a prefix of it parses as if it were all.
- JSON nested deeper than Python's parser can follow, or with a string that
  is not Unicode (a lone surrogate escape such as "\\ud800", which nothing can
  encode, store or render), is malformed JSON: 400 wherever
  ``request.get_json`` reads it (PassKit, Flask-WTF's forms), not a 500.
- Last-Modified is never later than the answer's Date. A card's
  modification time can run ahead of the clock (two changes in one second
  are kept a second apart, and another machine's clock may be ahead), and a
  client may refuse or mis-cache a document modified "in the future".
  Conditional requests still compare against the true time, so a clamped
  Last-Modified can cost a device one download more, never a missed change.

A blueprint that answers machines only (the PassKit web service: no
cookies, sessions, sign-ins, CSRF, nor limits but the ones its views apply
themselves) is registered with ``for_machines``: its requests run its own
before_request hooks and, of the app-wide ones, only those marked
``everywhere`` (the rules above, the embedded worker's start); likewise of
the app-wide after_request hooks. The extensions' app-wide checks
(Flask-Limiter's, CSRF's) and their after-request hooks (Flask-Limiter's
headers, Flask-Login's remember cookie) cost a pass fetch more than its
authentication and had nothing to do for it.

A machine endpoint that phones call at the rate of pushes (a pass fetch,
the list of a device's updated passes) is
answered before Flask makes a request of it at all (``answer_directly``):
its handler reads the WSGI environ and gives an ``Answer`` (status, headers,
body), or None to let Flask route the request as any other. Flask's request
and application contexts, URL matching, hooks and response building were
half of a 304's CPU under gunicorn, more than the database read. What the
rules above do for such a request the handler does itself: a request with a
Transfer-Encoding goes to Flask (the body-size rule reads it there), the
handler keeps Last-Modified within Date, and the app-wide hooks marked
``everywhere(..., needs_request=False)`` (the embedded worker's start) run
first. A handler that raises answers nothing: Flask takes the request from
the start and answers it through its error handlers (a 503 when the database
is down, wallet.outage), so a handler must only read.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Iterable
from datetime import datetime, timezone
from typing import Any, NamedTuple, TypeVar

import flask
from flask import Blueprint, Flask, request
from flask.json.provider import DefaultJSONProvider
from werkzeug.exceptions import RequestEntityTooLarge
from werkzeug.http import HTTP_STATUS_CODES

from wallet.db import utcnow

H = TypeVar("H", bound=Callable[..., Any])

log = logging.getLogger(__name__)

# Registered views and hooks are a few hundred.
_SYNC_KEPT = 2048


def everywhere(hook: H, *, needs_request: bool = True) -> H:
    """Marks an app-wide hook that blueprints for machines run too; one
    that ``needs_request=False`` (it reads nothing of the request) runs
    before a direct answer too (``answer_directly``)."""
    hook.wallet_everywhere = True  # type: ignore[attr-defined]
    hook.wallet_without_request = not needs_request  # type: ignore[attr-defined]
    return hook


class Answer(NamedTuple):
    """A direct answer (``answer_directly``): the status, every header but
    those the WSGI server adds (Date, Server, Connection), and the body."""

    status: int
    headers: list[tuple[str, str]]
    body: Iterable[bytes] = ()


DirectHandler = Callable[[Flask, dict[str, Any]], "Answer | None"]


@functools.lru_cache(maxsize=64)
def status_line(code: int) -> str:
    """As werkzeug's Response writes it ("304 NOT MODIFIED")."""
    return f"{code} {HTTP_STATUS_CODES.get(code, 'UNKNOWN').upper()}"


_LAST_MODIFIED = flask.Response.last_modified


class Response(flask.Response):
    """Flask's response (the app's ``response_class``), which remembers the
    Last-Modified date it was given: the clamp below reads it on every
    answer that has one, and parsing the header back (email.utils) was a few
    per cent of a 304. Read back it is what parsing the header gives: in
    UTC, to the second; a header set otherwise is parsed as before."""

    _last_modified_given: tuple[str | None, datetime] | None = None

    @property  # type: ignore[override]
    def last_modified(self) -> datetime | None:
        given = self._last_modified_given
        if given is not None and given[0] == self.headers.get("Last-Modified"):
            return given[1]
        return _LAST_MODIFIED.__get__(self, type(self))  # type: ignore[no-any-return]

    @last_modified.setter
    def last_modified(self, value: Any) -> None:
        _LAST_MODIFIED.__set__(self, value)
        if isinstance(value, datetime):
            utc = value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)
            self._last_modified_given = (self.headers.get("Last-Modified"), utc.replace(microsecond=0))
        else:
            self._last_modified_given = None

    @last_modified.deleter
    def last_modified(self) -> None:
        _LAST_MODIFIED.__delete__(self)
        self._last_modified_given = None


class App(Flask):
    """Flask, where a request to a blueprint registered ``for_machines``
    skips the app-wide before_request hooks not marked ``everywhere``
    (Flask's own ``preprocess_request`` with that one filter), and the
    app-wide after_request hooks not so marked (Flask-Limiter's, which adds
    no headers here and has no conditional deduction to count for these
    views, and Flask-Login's remember cookie): each is registered through
    ``after_request`` wrapped to pass a machine's answer through untouched.
    They were a tenth of a 304's CPU."""

    response_class = Response

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.machine_blueprints: set[str] = set()
        self.direct_routes: list[tuple[str, DirectHandler]] = []
        self._sync: dict[Callable[..., Any], Callable[..., Any]] = {}
        self._marked: dict[str, tuple[list[Any], tuple[Callable[..., Any], ...]]] = {}

    def wsgi_app(self, environ: dict[str, Any], start_response: Any) -> Any:
        """Flask's, after the direct routes (``answer_directly``) had their
        say; inside any middleware wrapped around ``app.wsgi_app`` (ProxyFix:
        REMOTE_ADDR is already the client's)."""
        if self.direct_routes and "HTTP_TRANSFER_ENCODING" not in environ:
            path = environ.get("PATH_INFO", "")
            for prefix, handler in self.direct_routes:
                if path.startswith(prefix):
                    answer = self._answer_directly(handler, environ)
                    if answer is not None:
                        start_response(status_line(answer.status), answer.headers)
                        return () if environ.get("REQUEST_METHOD") == "HEAD" else answer.body
                    break
        return super().wsgi_app(environ, start_response)

    def _answer_directly(self, handler: DirectHandler, environ: dict[str, Any]) -> Answer | None:
        # A hook that raises, like a handler, leaves the request to Flask,
        # which runs the hook again and answers through its error handlers.
        try:
            for hook in self._hooks_marked("wallet_without_request"):
                hook()
            return handler(self, environ)
        except Exception:  # noqa: BLE001 - Flask answers it again, through its error handlers
            log.debug("a direct answer failed; Flask takes the request", exc_info=True)
            return None

    def response_of(self, answer: Answer) -> Response:
        """A direct answer as a view's response (the same status, headers
        and body), for a handler's route that Flask serves."""
        return self.response_class(answer.body, status=answer.status, headers=answer.headers)

    def ensure_sync(self, func: Callable[..., Any]) -> Callable[..., Any]:
        """Flask's, kept per function: Flask asks it of every view, hook and
        teardown function on every request, and its inspect.iscoroutinefunction
        (unwrapping partials and methods) cost a 304 seven checks of the same
        registered functions. A bounded number are kept (a caller passing new
        callables each time only misses)."""
        try:
            return self._sync[func]
        except KeyError:
            pass
        except TypeError:  # unhashable
            return super().ensure_sync(func)
        found = super().ensure_sync(func)
        if len(self._sync) < _SYNC_KEPT:
            self._sync[func] = found
        return found

    def after_request(self, f: H) -> H:
        if getattr(f, "wallet_everywhere", False):
            return super().after_request(f)
        machines = self.machine_blueprints

        @functools.wraps(f)
        def not_for_machines(response: Any) -> Any:
            if request.blueprint in machines:
                return response
            return f(response)

        super().after_request(not_for_machines)
        return f

    def preprocess_request(self) -> Any:
        if request.blueprint not in self.machine_blueprints:
            return super().preprocess_request()
        names = (None, *reversed(request.blueprints))
        for name in names:
            for url_func in self.url_value_preprocessors.get(name, ()):
                url_func(request.endpoint, request.view_args)
        for name in names:
            hooks = self._hooks_marked("wallet_everywhere") if name is None else self.before_request_funcs.get(name, ())
            for hook in hooks:
                answer = self.ensure_sync(hook)()
                if answer is not None:
                    return answer
        return None

    def _hooks_marked(self, mark: str) -> tuple[Callable[..., Any], ...]:
        """The app-wide before_request hooks with ``mark`` (``everywhere``'s),
        picked out again only when that list changes: asking each hook for the
        mark on every request raised and formatted an AttributeError per
        unmarked hook."""
        hooks = self.before_request_funcs.get(None) or []
        seen, marked = self._marked.get(mark, ([], ()))
        if seen != hooks:
            marked = tuple(hook for hook in hooks if getattr(hook, mark, False))
            self._marked[mark] = (list(hooks), marked)
        return marked


def answer_directly(app: Flask, prefix: str, handler: DirectHandler) -> None:
    """Requests whose path starts with ``prefix`` are offered to
    ``handler(app, environ)`` before Flask makes a request of them; None
    lets Flask route them as usual (see the module's docstring)."""
    if not isinstance(app, App):
        raise TypeError("answer_directly needs the app create_app() builds (wallet.http_rules.App)")
    app.direct_routes.append((prefix, handler))


def for_machines(app: Flask, blueprint: Blueprint) -> None:
    """Registers a blueprint whose requests skip the app-wide hooks not
    marked ``everywhere`` (the app is an ``App``, as create_app makes it)."""
    app.register_blueprint(blueprint)
    mark_for_machines(app, blueprint.name)


def mark_for_machines(app: Flask, blueprint_name: str) -> None:
    """What ``for_machines`` does to a blueprint registered otherwise
    (flask-smorest registers the API's itself)."""
    if not isinstance(app, App):
        raise TypeError("a blueprint for machines needs the app create_app() builds (wallet.http_rules.App)")
    app.machine_blueprints.add(blueprint_name)


class JSONProvider(DefaultJSONProvider):
    """Flask's JSON, where a document too deep or not Unicode is malformed
    like any other."""

    def loads(self, s: str | bytes, **kwargs: Any) -> Any:
        try:
            value = super().loads(s, **kwargs)
        except RecursionError:
            raise ValueError("JSON nested too deeply") from None
        if not _unicode(value):
            raise ValueError("JSON string with a lone surrogate")
        return value


def _unicode(value: Any) -> bool:
    # A loop, not recursion: the document may be as deep as the parser allows.
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, str):
            if not item.isascii():
                try:
                    item.encode("utf-8")
                except UnicodeEncodeError:
                    return False
        elif isinstance(item, dict):
            pending.extend(item)
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)
    return True


@everywhere
def _refuse_chunked_bodies_over_the_limit() -> None:
    environ = request.environ
    # A request without Transfer-Encoding sends no body or says its length
    # (HTTP/1.1's message length rules): gunicorn marks every request's input
    # terminated, and reading the empty body of each GET was a few per cent
    # of a 304's CPU there.
    if "HTTP_TRANSFER_ENCODING" not in environ or "wsgi.input_terminated" not in environ:
        return
    limit = request.max_content_length
    if limit is None or request.content_length is not None or request.routing_exception is not None:
        return  # no route: its 404 or 405 says enough
    # Reading one byte more than the limit tells a body over it from one
    # that just fits; what is read is kept for the form or JSON parser.
    request.max_content_length = limit + 1
    try:
        too_large = len(request.get_data(cache=True)) > limit
    finally:
        request.max_content_length = limit
    if too_large:
        raise RequestEntityTooLarge()


@everywhere
def _last_modified_not_after_date(response: Response) -> Response:
    modified = response.last_modified
    if modified is not None:
        # The server writes Date when it sends the answer: later than now.
        now = response.date or utcnow().replace(microsecond=0)
        if modified > now:
            response.last_modified = now
    return response


def init_app(app: Flask) -> None:
    """Before the blueprints, so their hooks see the body already checked."""
    app.json = JSONProvider(app)
    app.before_request(_refuse_chunked_bodies_over_the_limit)
    app.after_request(_last_modified_not_after_date)
