"""Apple's passesUpdatedSince tag: a device never misses a card change, and
tagging a change makes no two members' changes wait on each other.

On PostgreSQL two transactions really overlap: a change that commits after a
later one was listed must still be listed next time. SQLite has one writer
at a time, where the tag is a counter in commit order.
"""

from __future__ import annotations

from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import text

from tests.support.app import TEST_PASS_TYPE
from tests.support.apple import make_club, make_member
from tests.support.ledger import page_messages
from wallet.db import Database
from wallet.loyalty import ledger
from wallet.loyalty.messages import send_club_message
from wallet.loyalty.models import Club, Membership

DEVICE = "0f1e2d3c4b5a69788796a5b4c3d2e1f0"
LISTING = f"/apple/v1/devices/{DEVICE}/registrations/{TEST_PASS_TYPE}"


def _registered(client: FlaskClient, db: Database, club: int, count: int) -> list[dict[str, Any]]:
    members = []
    for _ in range(count):
        member_id = make_member(db, club)
        with db.session() as s:
            m = s.get(Membership, member_id)
            info = {"id": m.id, "serial": m.serial_number, "token": m.auth_token}
        response = client.post(f"/apple/v1/devices/{DEVICE}/registrations/{TEST_PASS_TYPE}/{info['serial']}",
                               json={"pushToken": "cd" * 32}, headers={"Authorization": f"ApplePass {info['token']}"})
        assert response.status_code == 201
        members.append(info)
    return members


def _listed(client: FlaskClient, tag: str | None) -> tuple[list[str], str | None]:
    response = client.get(LISTING, query_string={"passesUpdatedSince": tag} if tag else None)
    if response.status_code == 204:
        return [], tag
    assert response.status_code == 200
    return sorted(response.json["serialNumbers"]), response.json["lastUpdated"]


def _purchase(session: Any, member_id: int) -> None:
    member = ledger.get_member_for_update(session, member_id)
    ledger.purchase(session, member, amount=20_000, actor="till")


def test_a_change_committed_late_with_an_older_tag_is_still_listed(client: FlaskClient, db: Database,
                                                                    backend: str) -> None:
    if backend != "postgresql":
        pytest.skip("two writers at once need PostgreSQL; SQLite has one writer at a time")
    a, b = _registered(client, db, make_club(db), 2)
    _, tag = _listed(client, None)

    late = db.write_session()
    try:
        _purchase(late, a["id"])
        late.flush()  # a's change is written, tagged, and not committed
        other = db.write_session()
        try:
            # Another member's change must not wait for the first: fail, not hang, if it does.
            other.execute(text("SET LOCAL lock_timeout = '5s'"))
            _purchase(other, b["id"])
            other.commit()
        finally:
            other.close()
        listed, newer = _listed(client, tag)
        assert listed == [b["serial"]]
        late.commit()
    finally:
        late.close()
    # a's change began before b's and committed after the device read
    # ``newer``: it is listed all the same.
    listed, _ = _listed(client, newer)
    assert a["serial"] in listed


def test_every_change_is_listed_and_nothing_that_did_not_change(client: FlaskClient, db: Database,
                                                                 backend: str) -> None:
    a, b, c = _registered(client, db, make_club(db), 3)
    listed, tag = _listed(client, None)
    assert listed == sorted(m["serial"] for m in (a, b, c))
    for member in (a, c):
        with db.transaction() as s:
            _purchase(s, member["id"])
    listed, tag = _listed(client, tag)
    assert sorted(listed) == sorted([a["serial"], c["serial"]])
    again = _listed(client, tag)[0]
    if backend == "sqlite":
        assert again == []  # one writer: the counter is exact
    else:
        # A transaction of anyone's still running (another client of the
        # database) holds the listing's xmin back, and what changed since
        # may be listed once more; what did not change never is.
        assert set(again) <= {a["serial"], c["serial"]}


def test_a_club_message_lists_every_card_of_the_club(client: FlaskClient, db: Database) -> None:
    club = make_club(db)
    members = _registered(client, db, club, 3)
    _, tag = _listed(client, None)
    with db.transaction() as s:
        assert send_club_message(s, s.get(Club, club), text="Double points on Friday") == 3
    page_messages(db)
    assert _listed(client, tag)[0] == sorted(m["serial"] for m in members)


@pytest.mark.parametrize("tag", ["yesterday", "x", "x12a", "１２", "x９", "99999999999999999999"])
def test_a_tag_we_did_not_hand_out_lists_everything(client: FlaskClient, db: Database, tag: str) -> None:
    members = _registered(client, db, make_club(db), 2)
    _, current = _listed(client, None)
    everything = sorted(m["serial"] for m in members)
    assert _listed(client, tag)[0] == everything
    # Nor does a tag of the other database's form, or one from the future
    # (a restored database whose transaction ids began again lower).
    assert current is not None
    foreign = current[1:] if current.startswith("x") else "x" + current
    future = current[0] + "9" * 18 if current.startswith("x") else None
    assert _listed(client, foreign)[0] == everything
    if future:
        assert _listed(client, future)[0] == everything
