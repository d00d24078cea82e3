"""The club's numbers through the API: the same figures as the core's, for
the calling brand's clubs only."""

from __future__ import annotations

from tests.support.api import Api, make_brand


def test_a_club_and_the_brand_have_numbers_and_another_brand_gets_404(app, db) -> None:
    client = app.test_client()
    owner = Api(client, make_brand(db).key)
    club = owner.club(program={"points": {"earn_points": 1, "per_amount": 100}})
    second = owner.club()
    member = owner.member(club["id"])
    owner.purchase(member["id"], 10_000)
    owner.purchase(member["id"], 5_000)
    answer = owner.get(f"/clubs/{club['id']}/numbers")
    assert answer.status_code == 200
    numbers = answer.get_json()
    assert numbers["club_ids"] == [club["id"]]
    assert (numbers["members"]["joined"], numbers["members"]["by_source"]["api"]) == (1, 1)
    assert numbers["points"]["issued"] == 150 and numbers["points"]["liability"] == {"RUB": 15_000}
    assert (numbers["purchases"]["purchases"], numbers["purchases"]["repeat_rate"]) == (2, 1.0)
    brand = owner.get("/numbers").get_json()
    assert brand["club_ids"] == sorted([club["id"], second["id"]])
    assert brand["members"]["total"] == 1

    stranger = Api(client, make_brand(db).key)
    refused = stranger.get(f"/clubs/{club['id']}/numbers")
    assert refused.status_code == 404 and refused.get_json()["error"]["code"] == "club_not_found"
    assert stranger.get("/numbers").get_json()["members"]["total"] == 0


def test_a_period_is_checked(app, db) -> None:
    owner = Api(app.test_client(), make_brand(db).key)
    club = owner.club()
    ok = owner.get(f"/clubs/{club['id']}/numbers?from=2027-01-01&to=2027-01-31").get_json()
    assert ok["period"] == {"from": "2027-01-01", "to": "2027-01-31"}
    assert len(ok["members"]["joined_per_day"]) == 31
    for query in ("from=2027-02-01&to=2027-01-01", "from=2020-01-01&to=2027-01-01", "from=yesterday"):
        answer = owner.get(f"/clubs/{club['id']}/numbers?{query}")
        assert answer.status_code == 400 and answer.get_json()["error"]["code"] == "invalid_query", query
