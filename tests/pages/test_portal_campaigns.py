"""A campaign walked in the portal: a segment saved by its labels, a message
previewed wallet by wallet, sent, and its results; automatic messages
switched on; refusals; and no brand reaching another brand's campaigns."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from flask.testing import FlaskClient
from sqlalchemy import insert, select

from tests.support.apns_standin import ApnsStandIn
from tests.support.app import TEST_PASS_TYPE
from tests.support.ledger import TIERS
from tests.support.portal import PASSWORD, brand, client_sign_in, error_of, sign_in
from wallet.apple.models import DeviceRegistration
from wallet.db import Database, utcnow
from wallet.jobs.outbox import drain
from wallet.loyalty import ledger
from wallet.loyalty.automessages import club_auto_messages
from wallet.loyalty.campaign_models import AutoKind, Campaign
from wallet.loyalty.campaigns import create_campaign
from wallet.loyalty.clubs import create_club
from wallet.loyalty.members import enrol
from wallet.loyalty.models import Brand, Club, Membership
from wallet.loyalty.segments import Segment

PROGRAM = {"points": {"earn_points": 5, "per_amount": 10000}, "tiers": TIERS}


@pytest.fixture
def app_config(app_config: dict[str, Any], standin: ApnsStandIn) -> dict[str, Any]:
    app_config.update(APNS_URL=standin.url, APNS_CA_FILE=str(standin.ca_file), APNS_BACKOFF_BASE=0.01)
    return app_config


def _club(db: Database, brand_id: int) -> tuple[int, list[int]]:
    """A club with a Gold member on an iPhone and two Silver members."""
    with db.transaction() as s:
        club = create_club(s, s.get(Brand, brand_id), {"name": "Bean Club", "category": "cafe", "program": PROGRAM})
        ids = []
        for i, amount in enumerate((300_000, 10_000, 0)):
            member, _ = enrol(s, club, email=f"m{i}@example.test", name=f"Member {i}")
            if amount:
                ledger.purchase(s, member, amount=amount, actor="till")
            ids.append(member.id)
        s.flush()
        s.execute(insert(DeviceRegistration), [{"device_library_identifier": "d0", "pass_type_identifier": TEST_PASS_TYPE,
                                                "membership_id": ids[0], "push_token": "ab" * 32}])
        return club.id, ids


def test_a_campaign_walked_from_segment_to_results(new_page, shoot, live_server, standin: ApnsStandIn,
                                                   db: Database) -> None:
    brand_id = brand(db, "owner@bean.test")
    club_id, ids = _club(db, brand_id)
    for device in ("phone", "laptop"):
        page = new_page(device)
        sign_in(page, "owner@bean.test")
        page.goto(f"/portal/clubs/{club_id}")
        page.get_by_role("link", name="Campaigns").click()
        page.get_by_role("link", name="New segment").click()
        name = f"Gold on {device}"
        page.get_by_label("Segment name").fill(name)
        page.get_by_label("Gold").check()
        page.get_by_label("Points from").fill("-5")
        page.get_by_role("button", name="Save the segment").click()
        assert "0 or more" in error_of(page, "Points from")  # refused, nothing saved
        page.get_by_label("Points from").fill("")
        shoot(page, "portal-segment-form")
        page.get_by_role("button", name="Save the segment").click()
        assert "Segment saved: 1 member in it now." in page.locator(".flash, [role=status], .alert").first.inner_text()
        row = page.locator("li", has_text=name)
        assert "1 member" in row.inner_text()
        shoot(page, "portal-campaigns")
        row.get_by_role("link", name="Message this segment").click()
        page.get_by_label("Message").fill(f"Gold lounge opens Friday ({device})")
        page.get_by_role("button", name="Preview").click()
        preview = page.locator("#preview")
        assert "What happens on 1 card" in preview.inner_text()
        assert "Apple Wallet: 1" in preview.inner_text() and "Google Wallet: 0" in preview.inner_text()
        shoot(page, "portal-campaign-preview")
        page.get_by_role("button", name="Send").click()
        assert "/campaigns/" in page.url
        drain(live_server.app)
        page.reload()
        assert page.locator("#campaign-status").inner_text() == "sent"
        figures = page.locator("#campaign-results")
        assert figures.locator("[data-field=targeted]").inner_text() == "1"
        assert figures.locator("[data-field=reached]").inner_text() == "1"  # the iPhone, at the APNs stand-in
        shoot(page, "portal-campaign-results")
        page.get_by_role("link", name="Campaigns").click()
        assert "Gold lounge opens Friday" in page.locator("table").inner_text()
        shoot(page, "portal-campaigns-sent")
    assert {r.token for r in standin.received()} == {"ab" * 32}
    with db.session() as s:
        assert s.get(Membership, ids[0]).message == "Gold lounge opens Friday (laptop)"
        assert s.get(Membership, ids[1]).message is None and s.get(Membership, ids[2]).message is None


def test_automatic_messages_are_switched_on_in_the_portal_in_russian_too(new_page, shoot, db: Database) -> None:
    brand_id = brand(db, "owner@bean.test")
    club_id, _ids = _club(db, brand_id)
    page = new_page("phone")
    sign_in(page, "owner@bean.test")
    page.goto(f"/portal/clubs/{club_id}/auto-messages")
    section = page.locator("#auto-winback")
    section.get_by_label("On").check()
    section.get_by_label("Days without a purchase").fill("45")
    page.get_by_role("button", name="Save").click()
    assert page.locator("#auto-winback [aria-invalid=true]").count() == 1  # switched on without a text
    section.get_by_label("Message").fill("We miss you, {name}")
    page.locator("#auto-expiring").get_by_label("On").check()
    page.locator("#auto-expiring").get_by_label("Message").fill("{points} points expire on {date}")
    page.get_by_role("button", name="Save").click()
    assert "Automatic messages saved." in page.content()
    assert page.locator("[data-sent=expiring]").inner_text() == "Last 30 days: 0 sent"
    shoot(page, "portal-auto-messages")
    with db.session() as s:
        saved = club_auto_messages(s, club_id)
    assert (saved[AutoKind.WINBACK].enabled, saved[AutoKind.WINBACK].days) == (True, 45)
    assert saved[AutoKind.EXPIRING].text == "{points} points expire on {date}"
    assert not saved[AutoKind.BIRTHDAY].enabled
    russian = new_page("laptop", locale="ru-RU")
    russian.goto("/portal/login")
    russian.get_by_label("Эл. почта").fill("owner@bean.test")
    russian.get_by_label("Пароль").fill(PASSWORD)
    russian.get_by_role("button", name="Войти").click()
    russian.goto(f"/portal/clubs/{club_id}/campaigns")
    assert russian.locator("h1").inner_text() == "Рассылки"
    russian.goto(f"/portal/clubs/{club_id}/campaigns/new")
    russian.get_by_label("Сообщение").fill("Привет")
    russian.get_by_role("button", name="Предпросмотр").click()
    assert "Apple Wallet" in russian.locator("#preview").inner_text()
    shoot(russian, "portal-campaign-preview-ru")


def test_a_scheduled_campaign_can_be_cancelled_and_another_brand_gets_404(client: FlaskClient, db: Database) -> None:
    mine = brand(db, "owner@bean.test")
    theirs = brand(db, "owner@books.test", name="Books")
    club_id, _ = _club(db, mine)
    other_club, _ = _club(db, theirs)
    with db.transaction() as s:
        later = create_campaign(s, s.get(Club, club_id), text="Later", segment=Segment(),
                                send_at=utcnow() + timedelta(days=1)).id
        foreign = create_campaign(s, s.get(Club, other_club), text="Theirs", segment=Segment()).id
    token = client_sign_in(client, "owner@bean.test")
    assert client.get(f"/portal/clubs/{club_id}/campaigns/{later}").status_code == 200
    for path in (f"/portal/clubs/{other_club}/campaigns", f"/portal/clubs/{other_club}/campaigns/{foreign}",
                 f"/portal/clubs/{club_id}/campaigns/{foreign}", f"/portal/clubs/{other_club}/auto-messages",
                 f"/portal/clubs/{other_club}/segments/new"):
        assert client.get(path).status_code == 404, path
    assert client.post(f"/portal/clubs/{club_id}/campaigns/{foreign}/cancel",
                       data={"csrf_token": token}).status_code == 404
    refused = client.post(f"/portal/clubs/{club_id}/campaigns/new",
                          data={"csrf_token": token, "text": "Hi", "segment": "", "send_at": "2001-01-01T10:00",
                                "action": "send"})
    assert refused.status_code == 422 and "Choose a time from now to a year ahead." in refused.get_data(as_text=True)
    assert client.post(f"/portal/clubs/{club_id}/campaigns/{later}/cancel", data={"csrf_token": token}).status_code == 302
    with db.session() as s:
        assert s.get(Campaign, later).status == "cancelled"
        assert s.scalar(select(Campaign.id).where(Campaign.text == "Hi")) is None
