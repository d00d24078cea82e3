"""The web floor of bench.serve: a minimal Flask app that answers the pass
URL with the same bytes (read once from BENCH_PASS_FILE) and the same
headers, or 304 for If-Modified-Since, doing nothing else."""

from __future__ import annotations

import os
from datetime import datetime, timezone
from pathlib import Path

from flask import Flask, Response, request

app = Flask(__name__)
DATA = Path(os.environ["BENCH_PASS_FILE"]).read_bytes()
MODIFIED = datetime(2026, 1, 1, tzinfo=timezone.utc)


@app.get("/apple/v1/passes/<pass_type>/<serial>")
def latest_pass(pass_type: str, serial: str) -> Response:
    since = request.if_modified_since
    if since is not None and MODIFIED <= since:
        response = Response(status=304)
    else:
        response = Response(DATA, mimetype="application/vnd.apple.pkpass")
        response.headers["Cache-Control"] = "no-store"
    response.last_modified = MODIFIED
    return response
