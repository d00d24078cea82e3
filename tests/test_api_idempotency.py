"""Idempotency-Key: a retry is answered with the first answer and books nothing."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from sqlalchemy import func, select, update

from tests.support.api import Api, error_code, make_brand
from wallet.api.models import DONE, IN_FLIGHT, IdempotencyKey
from wallet.db import utcnow
from wallet.loyalty.ledger_models import PURCHASE, LedgerTransaction
from wallet.loyalty.models import Club


def _purchases(db) -> int:
    with db.session() as s:
        return s.scalar(select(func.count()).where(LedgerTransaction.type == PURCHASE)) or 0


def _setup(client, db):
    api = Api(client, make_brand(db).key)
    club = api.club()
    member = api.member(club["id"])
    return api, club, member["id"]


def test_the_same_key_and_body_replays_the_first_answer_and_books_once(client, db):
    api, _, mid = _setup(client, db)
    body = {"type": "purchase", "amount": 20000, "receipt_id": "R-1"}
    first = api.post(f"/members/{mid}/transactions", body, key="till-7-0001")
    second = api.post(f"/members/{mid}/transactions", dict(reversed(list(body.items()))), key="till-7-0001")
    assert first.status_code == second.status_code == 201
    assert second.get_json() == first.get_json()
    assert second.headers.get("Idempotent-Replayed") == "true"
    assert _purchases(db) == 1
    assert api.get(f"/members/{mid}").get_json()["balance"] == 10


def test_the_same_key_with_another_body_is_409(client, db):
    api, _, mid = _setup(client, db)
    api.post(f"/members/{mid}/transactions", {"type": "purchase", "amount": 20000}, key="k-1")
    other = api.post(f"/members/{mid}/transactions", {"type": "purchase", "amount": 30000}, key="k-1")
    assert other.status_code == 409 and error_code(other) == "idempotency_key_reused"
    elsewhere = api.post(f"/members/{mid}/transactions?x=1", {"type": "purchase", "amount": 20000}, key="k-1")
    assert elsewhere.status_code == 201 and elsewhere.headers.get("Idempotent-Replayed") == "true"
    assert _purchases(db) == 1


def test_the_same_key_with_a_body_that_would_be_refused_is_still_409(client, db):
    api, _, mid = _setup(client, db)
    api.post(f"/members/{mid}/transactions", {"type": "purchase", "amount": 20000}, key="k-6")
    other = api.post(f"/members/{mid}/transactions", {"type": "redeem", "points": 10_000}, key="k-6")
    assert other.status_code == 409 and error_code(other) == "idempotency_key_reused"


def test_a_duplicate_whose_first_request_finished_while_it_ran_is_409_and_books_nothing(client, db, backend):
    """The key's row is written with its answer after the work: a duplicate
    that came while the first was in flight (the row's answer is dated after
    the duplicate's transaction began) is 409, its own booking rolled back;
    one that comes after the answer replays it."""
    api, _, mid = _setup(client, db)
    body = {"type": "purchase", "amount": 20000}
    first = api.post(f"/members/{mid}/transactions", body, key="k-7")
    with db.transaction() as s:
        s.execute(update(IdempotencyKey).values(completed_at=utcnow() + timedelta(hours=1)))
    again = api.post(f"/members/{mid}/transactions", body, key="k-7")
    if backend == "postgresql":
        assert again.status_code == 409 and error_code(again) == "request_in_flight"
        assert again.headers["Retry-After"] == "1"
    else:  # writers run one at a time: a duplicate never overlaps its first request
        assert again.status_code == 201 and again.get_json() == first.get_json()
    assert _purchases(db) == 1
    with db.transaction() as s:
        s.execute(update(IdempotencyKey).values(completed_at=utcnow() - timedelta(seconds=1)))
    replayed = api.post(f"/members/{mid}/transactions", body, key="k-7")
    assert replayed.status_code == 201 and replayed.get_json() == first.get_json()
    assert replayed.headers.get("Idempotent-Replayed") == "true"
    assert _purchases(db) == 1


def test_transactions_need_a_key_and_a_sane_one(client, db):
    api, _, mid = _setup(client, db)
    missing = api.post(f"/members/{mid}/transactions", {"type": "purchase", "amount": 100}, key=None)
    assert missing.status_code == 400 and error_code(missing) == "idempotency_key_required"
    for bad in ("", "x" * 256, "naïve key", "two words"):
        response = api.post(f"/members/{mid}/transactions", {"type": "purchase", "amount": 100}, key=bad)
        assert response.status_code == 400, bad
    assert _purchases(db) == 0


def test_a_key_still_in_flight_is_409_until_its_lease_runs_out(client, db):
    api, _, mid = _setup(client, db)
    body = {"type": "purchase", "amount": 20000}
    api.post(f"/members/{mid}/transactions", body, key="k-2")
    # Make the key look like its first request is still running (its answer
    # not stored yet) and that nothing was booked.
    with db.transaction() as s:
        s.execute(update(IdempotencyKey).values(state=IN_FLIGHT, response_status=None, response_body=None,
                                                 locked_until=utcnow() + timedelta(seconds=30)))
        s.execute(LedgerTransaction.__table__.delete().where(LedgerTransaction.type == PURCHASE))
    busy = api.post(f"/members/{mid}/transactions", body, key="k-2")
    assert busy.status_code == 409 and error_code(busy) == "request_in_flight"
    assert _purchases(db) == 0
    # The first request died: after the lease a retry takes the key over.
    with db.transaction() as s:
        s.execute(update(IdempotencyKey).values(locked_until=utcnow() - timedelta(seconds=1)))
    retried = api.post(f"/members/{mid}/transactions", body, key="k-2")
    assert retried.status_code == 201 and "Idempotent-Replayed" not in retried.headers
    assert _purchases(db) == 1


def test_concurrent_duplicates_book_once(app, client, db):
    api, _, mid = _setup(client, db)
    body = {"type": "purchase", "amount": 20000}
    start = threading.Barrier(8)
    answers: list[tuple[int, dict]] = []
    lock = threading.Lock()

    def till() -> None:
        own = Api(app.test_client(), api.key)
        start.wait()
        response = own.post(f"/members/{mid}/transactions", body, key="same-key")
        with lock:
            answers.append((response.status_code, response.get_json()))

    threads = [threading.Thread(target=till) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert _purchases(db) == 1
    booked = [b for status, b in answers if status == 201]
    assert booked and all(b == booked[0] for b in booked)
    assert all(status in (201, 409) for status, _ in answers)
    assert all(b["error"]["code"] == "request_in_flight" for status, b in answers if status == 409)
    assert api.get(f"/members/{mid}").get_json()["balance"] == 10


def test_keys_belong_to_one_brand(client, db):
    api, _, mid = _setup(client, db)
    other = Api(client, make_brand(db, "Tea Co").key)
    api.post(f"/members/{mid}/transactions", {"type": "purchase", "amount": 20000}, key="shared-key")
    club = other.post("/clubs", {"name": "Leaves"}, key="shared-key")
    assert club.status_code == 201


def test_a_refused_request_is_answered_the_same_way_again(client, db):
    api, _, mid = _setup(client, db)
    body = {"type": "redeem", "points": 10}
    first = api.post(f"/members/{mid}/transactions", body, key="k-3")
    assert first.status_code == 422
    api.purchase(mid, 100000)
    again = api.post(f"/members/{mid}/transactions", body, key="k-3")
    assert again.status_code == 422 and again.get_json() == first.get_json()
    fresh = api.post(f"/members/{mid}/transactions", body, key="k-4")
    assert fresh.status_code == 201


def test_enrolment_and_club_creation_replay_too(client, db):
    api = Api(client, make_brand(db).key)
    first = api.post("/clubs", {"name": "Once"}, key="club-1")
    again = api.post("/clubs", {"name": "Once"}, key="club-1")
    assert again.status_code == 201 and again.get_json() == first.get_json()
    with db.session() as s:
        assert s.scalar(select(func.count()).select_from(Club)) == 1
    cid = first.get_json()["id"]
    enrolled = api.post(f"/clubs/{cid}/members", {"email": "z@example.com"}, key="enrol-1")
    replayed = api.post(f"/clubs/{cid}/members", {"email": "z@example.com"}, key="enrol-1")
    assert enrolled.status_code == replayed.status_code == 201


def test_keys_are_kept_a_day_and_may_be_reused_after(client, db):
    api, _, mid = _setup(client, db)
    body = {"type": "purchase", "amount": 20000}
    api.post(f"/members/{mid}/transactions", body, key="k-5")
    with db.transaction() as s:
        s.execute(update(IdempotencyKey).values(created_at=utcnow() - timedelta(hours=25)))
    assert api.post(f"/members/{mid}/transactions", body, key="k-5").headers.get("Idempotent-Replayed") == "true"
    with db.transaction() as s:
        s.execute(update(IdempotencyKey).values(created_at=utcnow() - timedelta(days=3)))
    reused = api.post(f"/members/{mid}/transactions", body, key="k-5")
    assert reused.status_code == 201 and "Idempotent-Replayed" not in reused.headers
    assert _purchases(db) == 2
    with db.session() as s:
        assert s.scalar(select(IdempotencyKey.state).where(IdempotencyKey.key == "k-5")) == DONE


def test_a_post_without_a_key_works_where_it_is_optional(client, db):
    api = Api(client, make_brand(db).key)
    assert api.post("/clubs", {"name": "No key"}, key=None).status_code == 201


def test_keys_past_retention_are_purged_and_newer_ones_kept(client, db):
    from wallet.api.idempotency import purge_expired

    api, _, mid = _setup(client, db)
    for key in ("old", "new"):
        api.post(f"/members/{mid}/transactions", {"type": "purchase", "amount": 100}, key=key)
    with db.transaction() as s:
        s.execute(update(IdempotencyKey).where(IdempotencyKey.key == "old")
                  .values(created_at=utcnow() - timedelta(hours=49)))
    with db.transaction() as s:
        assert purge_expired(s) == 1
    with db.session() as s:
        kept = s.scalars(select(IdempotencyKey.key).where(IdempotencyKey.key.in_(["old", "new"])))
        assert list(kept) == ["new"]


class TestAfterAFault:
    @pytest.fixture
    def app_config(self, app_config):
        app_config["TESTING"] = False
        app_config["PROPAGATE_EXCEPTIONS"] = False
        return app_config

    def test_a_request_that_failed_on_our_side_frees_its_key_for_the_retry(self, client, db, monkeypatch):
        import wallet.api.views as views

        api, _, mid = _setup(client, db)
        real_purchase = views.ledger.purchase
        # The database is away for the whole first request (however many
        # times the server tries it: a till's purchase is tried before Flask
        # and then by the route, wallet.api.direct).
        away = [True]

        def flaky(*args, **kwargs):
            if away[0]:
                raise RuntimeError("the database went away")
            return real_purchase(*args, **kwargs)

        monkeypatch.setattr(views.ledger, "purchase", flaky)
        body = {"type": "purchase", "amount": 20000}
        failed = api.post(f"/members/{mid}/transactions", body, key="k-9")
        assert failed.status_code == 500 and error_code(failed) == "internal_error"
        away[0] = False
        retried = api.post(f"/members/{mid}/transactions", body, key="k-9")
        assert retried.status_code == 201 and "Idempotent-Replayed" not in retried.headers
        assert _purchases(db) == 1
