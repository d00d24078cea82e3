"""Campaigns through the API: a message to a segment now or later, its
results per card, cancelling before it starts; the segment's rules are the
core's, and no brand reaches another brand's club or campaign."""

from __future__ import annotations

from datetime import timedelta

from tests.support.api import Api, error_code, make_brand
from wallet.db import utcnow
from wallet.jobs.outbox import drain


def test_a_campaign_to_a_segment_reaches_only_its_members_and_counts_them(app, db, client) -> None:
    api = Api(client, make_brand(db).key)
    club = api.club()
    big, small = api.member(club["id"], "big@example.com"), api.member(club["id"], "small@example.com")
    api.purchase(big["id"], 500_000)
    api.purchase(small["id"], 10_000)
    response = api.post(f"/clubs/{club['id']}/campaigns",
                        {"text": "Thank you!", "segment": {"min_spend": 100_000}})
    assert response.status_code == 202, response.get_json()
    created = response.get_json()
    assert (created["status"], created["segment"], created["cards"]) == ("scheduled", {"min_spend": 100_000}, 0)
    drain(app)
    done = api.get(f"/campaigns/{created['id']}").get_json()
    assert (done["status"], done["cards"]) == ("sent", 1)
    assert done["results"] == {"queued": 0, "reached": 0, "silent": 0, "failed": 0, "no_wallet": 1}
    assert api.get(f"/members/{big['id']}").status_code == 200
    listed = api.get(f"/clubs/{club['id']}/campaigns?limit=1").get_json()
    assert [c["id"] for c in listed["items"]] == [created["id"]] and listed["next_cursor"] is None


def test_a_scheduled_campaign_is_cancelled_before_it_starts_and_not_after(app, db, client) -> None:
    api = Api(client, make_brand(db).key)
    club = api.club()
    later = api.post(f"/clubs/{club['id']}/campaigns",
                     {"text": "Soon", "send_at": (utcnow() + timedelta(days=2)).isoformat()}).get_json()
    now = api.post(f"/clubs/{club['id']}/campaigns", {"text": "Now"}).get_json()
    drain(app)
    cancelled = api.delete(f"/campaigns/{later['id']}")
    assert cancelled.status_code == 200 and cancelled.get_json()["status"] == "cancelled"
    refused = api.delete(f"/campaigns/{now['id']}")
    assert refused.status_code == 409 and error_code(refused) == "campaign_started"


def test_campaign_requests_that_break_a_rule_are_refused_and_other_brands_get_404(app, db, client) -> None:
    api = Api(client, make_brand(db).key)
    club = api.club()
    for body, code in (({"text": "Hi", "segment": {"wallets": ["nokia"]}}, "invalid_segment"),
                       ({"text": "Hi", "segment": {"min_balance": 5, "max_balance": 1}}, "invalid_segment"),
                       ({"text": "Hi", "send_at": "2001-01-01T00:00:00Z"}, "invalid_send_at"),
                       ({"text": "Hi", "segment": {"tiers": ["Diamond"]}}, "unknown_tier")):
        response = api.post(f"/clubs/{club['id']}/campaigns", body)
        assert response.status_code == 422 and error_code(response) == code, (body, response.get_json())
    mine = api.post(f"/clubs/{club['id']}/campaigns", {"text": "Mine"}).get_json()
    other = Api(client, make_brand(db, "Other").key)
    assert other.post(f"/clubs/{club['id']}/campaigns", {"text": "Theirs"}).status_code == 404
    assert other.get(f"/clubs/{club['id']}/campaigns").status_code == 404
    assert other.get(f"/campaigns/{mine['id']}").status_code == 404
    assert other.delete(f"/campaigns/{mine['id']}").status_code == 404
