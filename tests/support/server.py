"""The app under werkzeug's WSGI server on a loopback socket, for tests that
need a real HTTP client on a real connection."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from flask import Flask
from werkzeug.serving import make_server


@contextmanager
def live_server(app: Flask | Callable[[str], Flask]) -> Iterator[str]:
    """The base URL of ``app`` served on 127.0.0.1 (a free port) until the
    block ends. ``app`` may also be a function that makes the app from that
    base URL, for an app that must know its own address (the pages'
    PUBLIC_BASE_URL, which links in pages and passes lead back to)."""
    server = make_server("127.0.0.1", 0, app if isinstance(app, Flask) else Flask("placeholder"), threaded=True)
    url = f"http://127.0.0.1:{server.server_port}"
    if not isinstance(app, Flask):
        server.app = app(url)
    thread = threading.Thread(target=server.serve_forever, name="live-server", daemon=True)
    thread.start()
    try:
        yield url
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)
