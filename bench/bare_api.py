"""The web floor of bench.ledger's HTTP figure: a minimal Flask app under
the same gunicorn that answers the same POST (Bearer key, Idempotency-Key,
a JSON purchase) with a 201 JSON body the size of a real answer (about
5 KB, most of it the member's Google save link), doing nothing else."""

from __future__ import annotations

from typing import Any

from flask import Flask, request

app = Flask(__name__)
SAVE_LINK = "https://pay.google.com/gp/v/save/" + "x" * 4400


@app.post("/api/v1/members/<int:member_id>/transactions")
def purchase(member_id: int) -> Any:
    body = request.get_json()
    amount = body["amount"]
    member = {"id": member_id, "balance": amount // 2000, "google_save_url": SAVE_LINK,
              "key": request.headers["Idempotency-Key"], "authorization": len(request.headers["Authorization"])}
    return {"transaction": {"type": body["type"], "amount": amount, "points": amount // 2000}, "member": member}, 201


@app.get("/api/v1/members/<int:member_id>")
def member(member_id: int) -> Any:
    # bench.ledger's warm-up reads each member (a real worker signs its save link).
    return {"id": member_id, "google_save_url": SAVE_LINK, "authorization": len(request.headers["Authorization"])}


@app.get("/healthz")
def healthz() -> Any:
    return {"status": "ok"}
