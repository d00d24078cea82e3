"""Google's copy of the cards kept current by the outbox workers, against a
stand-in for the Google Wallet REST API and Google's token endpoint on a
real loopback socket (tests/support/google_standin.py)."""

from __future__ import annotations

from typing import Any

import jwt
from sqlalchemy import select, update

from tests.support.api import POINTS_PROGRAM, Api, make_brand
from tests.support.discovery import problems
from tests.support.portal import client_sign_in, person
from wallet.google.links import SAVE_URL_PREFIX
from wallet.google.models import GoogleClass, GoogleObject
from wallet.jobs.outbox import drain
from wallet.loyalty.models import Club, OutboxEvent, StaffRole


def _setup(app, db, client) -> tuple[Api, int, dict[str, Any]]:
    brand = make_brand(db)
    api = Api(client, brand.key)
    club = api.post("/clubs", {"name": "Bean Club", "program": POINTS_PROGRAM}).get_json()
    member = api.post(f"/clubs/{club['id']}/members", {"email": "ann@example.com", "name": "Ann"}).get_json()
    return api, club["id"], member


def _buy(api: Api, member_id: int, amount: int) -> dict[str, Any]:
    response = api.post(f"/members/{member_id}/transactions", {"type": "purchase", "amount": amount})
    assert response.status_code == 201, response.get_json()
    return response.get_json()["member"]


def _object(google, db, member_id: int) -> dict[str, Any]:
    with db.session() as session:
        object_id = session.get(GoogleObject, member_id).object_id
    return google.objects[object_id]


def test_enrolment_inserts_the_class_and_the_object_and_the_link_becomes_skinny(google, app, db, client) -> None:
    api, club_id, member = _setup(app, db, client)
    full = member["google_save_url"]
    drain(app)
    inserted = google.received("POST")
    assert [c.path.rsplit("/", 1)[-1] for c in inserted] == ["loyaltyClass", "loyaltyObject"]
    assert all(c.status == 200 for c in inserted)
    obj = _object(google, db, member["id"])
    assert obj["accountId"] == member["card_number"] and obj["state"] == "ACTIVE"
    assert obj["loyaltyPoints"]["balance"] == {"int": 0}

    skinny = api.get(f"/members/{member['id']}").get_json()["google_save_url"]
    assert skinny != full and len(skinny) < 1800
    token = skinny.removeprefix(SAVE_URL_PREFIX)
    claims = jwt.decode(token, options={"verify_signature": False})
    assert claims["payload"] == {"loyaltyObjects": [{"id": obj["id"], "classId": obj["classId"]}]}
    assert problems("LoyaltyObject", claims["payload"]["loyaltyObjects"][0]) == []


def test_a_purchase_patches_the_new_balance_and_notifies(google, app, db, client) -> None:
    api, _club_id, member = _setup(app, db, client)
    drain(app)
    after = _buy(api, member["id"], 250000)
    drain(app)
    patches = google.received("PATCH", "/loyaltyObject/")
    assert len(patches) == 1
    assert patches[0].body["loyaltyPoints"]["balance"] == {"int": after["balance"]} and after["balance"] > 0
    assert patches[0].body["notifyPreference"] == "NOTIFY_ON_UPDATE"
    assert _object(google, db, member["id"])["loyaltyPoints"]["balance"] == {"int": after["balance"]}
    # Nothing new on the card: nothing is sent.
    drain(app)
    assert len(google.received("PATCH")) == 1


def test_club_messages_go_through_addmessage_and_the_fourth_notifying_change_of_a_day_is_silent(
    google, app, db, client
) -> None:
    api, club_id, member = _setup(app, db, client)
    drain(app)
    assert api.post(f"/clubs/{club_id}/messages", {"text": "Double points this weekend"}).status_code == 202
    drain(app)
    messages = google.received("POST", "/addMessage")
    assert len(messages) == 1
    assert messages[0].body["message"]["body"] == "Double points this weekend"
    assert messages[0].body["message"]["messageType"] == "TEXT_AND_NOTIFY"
    for amount in (100000, 100000):
        _buy(api, member["id"], amount)
        drain(app)
    patches = google.received("PATCH", "/loyaltyObject/")
    assert [p.body.get("notifyPreference") for p in patches] == ["NOTIFY_ON_UPDATE", "NOTIFY_ON_UPDATE"]
    # Three notifying updates today: the fourth change arrives, silently.
    fourth = _buy(api, member["id"], 100000)
    drain(app)
    last = google.received("PATCH", "/loyaltyObject/")[-1]
    assert last.body["loyaltyPoints"]["balance"] == {"int": fourth["balance"]}
    assert "notifyPreference" not in last.body
    api.post(f"/clubs/{club_id}/messages", {"text": "See you soon"})
    drain(app)
    assert google.received("POST", "/addMessage")[-1].body["message"]["messageType"] == "TEXT"


def test_429_and_5xx_are_tried_again_and_the_row_waits_when_google_stays_down(google, app, db, client) -> None:
    api, _club_id, member = _setup(app, db, client)
    drain(app)
    google.script(429, 503)
    after = _buy(api, member["id"], 250000)
    drain(app)
    statuses = [c.status for c in google.received("PATCH", "/loyaltyObject/")]
    assert statuses == [429, 503, 200]
    assert _object(google, db, member["id"])["loyaltyPoints"]["balance"] == {"int": after["balance"]}

    google.script(503, 503, 503, 503)
    _buy(api, member["id"], 250000)
    drain(app, max_batches=1)
    with db.session() as session:
        waiting = session.scalars(select(OutboxEvent).where(OutboxEvent.done_at.is_(None))).all()
    assert len(waiting) == 1 and "503" in (waiting[0].last_error or "")


def test_a_refused_body_is_recorded_with_googles_message_and_not_retried(google, app, db, client) -> None:
    api, club_id, member = _setup(app, db, client)
    google.script(400)
    drain(app)
    with db.session() as session:
        refused = session.get(GoogleClass, club_id)
        assert refused.last_error and "Scripted failure" in refused.last_error
        assert session.scalar(select(OutboxEvent.id).where(OutboxEvent.done_at.is_(None))) is None
        brand_id = session.get(Club, club_id).brand_id
    # The brand reads Google's own words on its club's page.
    person(db, brand_id, StaffRole.MANAGER, "mia@example.com")
    staff = app.test_client()
    client_sign_in(staff, "mia@example.com")
    hub = staff.get(f"/portal/clubs/{club_id}").get_data(as_text=True)
    assert "Google Wallet refused this club" in hub and "Scripted failure" in hub
    # The next change of the club writes the class again.
    assert api.patch(f"/clubs/{club_id}", {"background_color": "#112233"}).status_code == 200
    drain(app)
    with db.session() as session:
        assert session.get(GoogleClass, club_id).last_error is None
    assert "Google Wallet refused" not in staff.get(f"/portal/clubs/{club_id}").get_data(as_text=True)
    assert google.classes and _object(google, db, member["id"])["state"] == "ACTIVE"


def test_an_expired_token_is_renewed_and_a_club_change_patches_the_class(google, app, db, client) -> None:
    api, club_id, _member = _setup(app, db, client)
    drain(app)
    assert len(google.tokens_issued) == 1
    google.expire_tokens()
    api.patch(f"/clubs/{club_id}", {"name": "Bean Club Gold"})
    drain(app)
    assert len(google.tokens_issued) == 2
    patched = google.received("PATCH", "/loyaltyClass/")
    assert [c.status for c in patched] == [401, 200]
    assert google.classes[patched[-1].path.rsplit("/", 1)[-1]]["programName"] == "Bean Club Gold"


def test_leaving_the_club_expires_the_object(google, app, db, client) -> None:
    from wallet.loyalty.members import end_membership
    from wallet.loyalty.models import Membership

    _api, _club_id, member = _setup(app, db, client)
    drain(app)
    with db.transaction() as session:
        end_membership(session, session.get(Membership, member["id"]))
    drain(app)
    assert _object(google, db, member["id"])["state"] == "EXPIRED"


def test_without_a_service_account_the_calls_are_logged_and_nothing_is_recorded(app, db, client, caplog) -> None:
    import logging

    _api, _club_id, member = _setup(app, db, client)
    with caplog.at_level(logging.INFO, logger="wallet.google.sync"):
        drain(app)
    said = [r.getMessage() for r in caplog.records if r.name == "wallet.google.sync"]
    assert len(said) == 1 and "would write loyaltyClass" in said[0] and member["serial_number"] in said[0]
    with db.session() as session:
        assert session.scalar(select(GoogleObject.membership_id)) is None
        assert session.scalar(select(OutboxEvent.id).where(OutboxEvent.done_at.is_(None))) is None


def test_what_google_took_before_a_failure_is_not_sent_again(google, app, db, client) -> None:
    api, club_id, member = _setup(app, db, client)
    drain(app)
    _buy(api, member["id"], 250000)
    api.post(f"/clubs/{club_id}/messages", {"text": "Happy hour"})
    # The patch goes through; addMessage meets 503 on every try of this run.
    google.script(503, 503, 503, 503, only="/addMessage")
    drain(app, max_batches=1)
    assert [c.body.get("notifyPreference") for c in google.received("PATCH", "/loyaltyObject/")] == [
        "NOTIFY_ON_UPDATE"]
    with db.transaction() as session:
        session.execute(update(OutboxEvent).values(available_at=OutboxEvent.created_at))
    drain(app)
    # Neither patched nor notified twice; the message goes out on the retry.
    assert len(google.received("PATCH", "/loyaltyObject/")) == 1
    assert [c.status for c in google.received("POST", "/addMessage")] == [503] * 4 + [200]


def test_a_card_found_inserted_is_not_read_again_and_a_new_card_still_is(google, app, db, client) -> None:
    from tests.test_statement_counts import counting

    api, club_id, member = _setup(app, db, client)
    drain(app)
    reads = []
    for _ in range(3):
        with counting(db) as counted:
            answer = _buy(api, member["id"], 1000)
        reads.append(sum("google_objects" in statement for statement in counted.statements))
        assert len(answer["google_save_url"]) < 1800
    assert reads[0] <= 1 and reads[1:] == [0, 0], "found inserted once, the card is skinny for good"
    # A card Google does not have yet is looked at on every answer, so its
    # link turns skinny as soon as the worker has inserted it.
    other = api.post(f"/clubs/{club_id}/members", {"email": "bob@example.com", "name": "Bob"}).get_json()
    with counting(db) as counted:
        assert len(_buy(api, other["id"], 1000)["google_save_url"]) > 1800
    assert sum("google_objects" in statement for statement in counted.statements) == 1
    drain(app)
    links = [_buy(api, card["id"], 1000)["google_save_url"] for card in (member, other)]
    assert len(links[1]) < 1800
    # Each card's skinny link names its own object, kept apart per card.
    assert [jwt.decode(link.removeprefix(SAVE_URL_PREFIX), options={"verify_signature": False})["payload"]
            for link in links] == [{"loyaltyObjects": [{"id": o["id"], "classId": o["classId"]}]}
                                   for o in (_object(google, db, member["id"]), _object(google, db, other["id"]))]


def test_the_worker_stores_the_skinny_link_and_answers_read_it_from_the_card(google, app, db, client) -> None:
    from wallet.google import links
    from wallet.google.identity import get_identity

    api, club_id, member = _setup(app, db, client)
    drain(app)
    obj = _object(google, db, member["id"])
    with db.session() as session:
        row = session.get(GoogleObject, member["id"])
        stored, made_for = row.save_link, row.save_link_for
    assert stored is not None and len(stored) < 1800 and made_for
    claims = jwt.decode(stored.removeprefix(SAVE_URL_PREFIX), get_identity(app).private_key.public_key(),
                        algorithms=["RS256"], audience="google")
    assert claims["payload"] == {"loyaltyObjects": [{"id": obj["id"], "classId": obj["classId"]}]}

    def answered_link() -> str:
        links._skinny_links.clear()  # as in a process that has not shown the card yet
        return api.get(f"/members/{member['id']}").get_json()["google_save_url"]

    marked = SAVE_URL_PREFIX + "the.link.stored"
    with db.transaction() as session:
        session.execute(update(GoogleObject).where(GoogleObject.membership_id == member["id"])
                        .values(save_link=marked))
    assert answered_link() == marked, "the answer reads the stored link, it does not sign one"

    # Stored for another key or address (a rotated service account key): the
    # answer signs its own, and the card's next sync stores a current one.
    with db.transaction() as session:
        session.execute(update(GoogleObject).where(GoogleObject.membership_id == member["id"])
                        .values(save_link_for="another key"))
    fresh = answered_link()
    assert fresh != marked
    assert jwt.decode(fresh.removeprefix(SAVE_URL_PREFIX), get_identity(app).private_key.public_key(),
                      algorithms=["RS256"], audience="google")["payload"] == claims["payload"]
    _buy(api, member["id"], 1000)
    drain(app)
    with db.session() as session:
        row = session.get(GoogleObject, member["id"])
        assert (row.save_link_for, row.save_link != marked) == (made_for, True)
    assert answered_link() == row.save_link
