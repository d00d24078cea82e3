"""The owner's API keys and webhooks pages, and a message to a club's cards:
each form refuses bad input next to its field and saves nothing, and no
brand reaches another brand's keys, endpoints or clubs."""

from __future__ import annotations

from flask.testing import FlaskClient
from sqlalchemy import func, select

from tests.support.portal import brand, client_sign_in, error_of, person, sign_in
from wallet.db import Database
from wallet.loyalty.brands import create_api_key
from wallet.loyalty.clubs import create_club
from wallet.loyalty.members import enrol
from wallet.loyalty.models import ApiKey, Brand, Club, OutboxEvent, StaffRole
from wallet.loyalty.webhooks import Webhook


def _club(db: Database, brand_id: int, name: str = "Bean Club", program: dict | None = None) -> int:
    with db.transaction() as session:
        return create_club(session, brand_id, {"name": name, "program": program or {"points": {}}}).id


def test_the_owner_creates_a_key_sees_it_once_uses_it_and_revokes_it(new_page, shoot, db: Database) -> None:
    brand(db, "owner@bean.test")
    page = new_page("laptop")
    sign_in(page, "owner@bean.test")
    page.get_by_role("link", name="API keys").click()
    page.get_by_label("Key name").fill("Till in the Arbat shop")
    page.get_by_role("button", name="Create the key").click()
    key = page.get_by_label("Your new API key").input_value()
    assert key.startswith("wc_live_")
    shoot(page, "portal-keys-created")

    assert page.request.get("/api/v1/clubs", headers={"Authorization": f"Bearer {key}"}).status == 200
    page.goto("/portal/keys")
    assert key not in page.content()  # shown once, on the answer that made it
    row = page.locator(f"[data-key='{key[:12]}']")
    assert "Till in the Arbat shop" in row.inner_text() and "Last used" in row.inner_text()
    shoot(page, "portal-keys")

    row.get_by_role("button", name="Revoke").click()
    assert "revoked" in page.get_by_role("status").inner_text()
    assert page.request.get("/api/v1/clubs", headers={"Authorization": f"Bearer {key}"}).status == 401
    assert page.locator(f"[data-key='{key[:12]}']").get_by_role("button", name="Revoke").count() == 0


def test_the_key_form_refuses_bad_input_and_saves_nothing(new_page, shoot, db: Database) -> None:
    brand(db, "owner@bean.test")
    page = new_page("phone")
    sign_in(page, "owner@bean.test")
    page.goto("/portal/keys")
    for typed, message in (("", "required"), ("x" * 101, "longer than 100"), ("tab\there", "special characters")):
        page.get_by_label("Key name").evaluate("(el, v) => { el.removeAttribute('maxlength'); el.value = v; }", typed)
        page.get_by_role("button", name="Create the key").click()
        assert message in error_of(page, "Key name"), typed
        assert page.get_by_label("Your new API key").count() == 0
    shoot(page, "portal-keys-refused")
    with db.session() as session:
        assert session.scalar(select(func.count(ApiKey.id))) == 0


def test_the_owner_adds_and_removes_a_webhook_endpoint(new_page, shoot, db: Database) -> None:
    brand(db, "owner@bean.test")
    page = new_page("laptop")
    sign_in(page, "owner@bean.test")
    page.get_by_role("link", name="Webhooks").click()
    page.get_by_label("Endpoint URL").fill("https://hooks.example.com/wallet")
    page.get_by_label("member.enrolled").check()
    page.get_by_role("button", name="Add the endpoint").click()
    secret = page.get_by_label("Signing secret").input_value()
    shoot(page, "portal-webhooks-created")
    with db.session() as session:
        hook = session.scalars(select(Webhook)).one()
        assert (hook.url, hook.events, hook.secret) == ("https://hooks.example.com/wallet", ["member.enrolled"], secret)
    page.goto("/portal/webhooks")
    assert secret not in page.content()
    row = page.locator("[data-webhook='https://hooks.example.com/wallet']")
    assert "member.enrolled" in row.inner_text()
    shoot(page, "portal-webhooks")
    row.get_by_role("button", name="Remove").click()
    assert "removed" in page.get_by_role("status").inner_text()
    assert page.locator("[data-webhook]").count() == 0


def test_the_webhook_form_shows_the_cores_address_rules_on_the_field_and_saves_nothing(
    new_page, shoot, db: Database
) -> None:
    brand(db, "owner@bean.test")
    page = new_page("phone")
    sign_in(page, "owner@bean.test")
    page.goto("/portal/webhooks")
    for typed, message in (
        ("", "required"),
        ("ftp://hooks.example.com/x", "http:// or https://"),
        ("https://user:pw@hooks.example.com/x", "without a user name or password"),
        ("http://2130706433/hooks", "this machine (loopback)"),
        ("http://[::ffff:10.0.0.1]/hooks", "a private network"),
        ("https://nowhere.example.net/hooks", "not found in DNS"),
    ):
        page.get_by_label("Endpoint URL").fill(typed)
        page.get_by_role("button", name="Add the endpoint").click()
        assert message in error_of(page, "Endpoint URL"), typed
    shoot(page, "portal-webhooks-refused")
    with db.session() as session:
        assert session.scalar(select(func.count(Webhook.id))) == 0


def test_a_manager_sends_a_message_to_the_clubs_cards(new_page, shoot, db: Database) -> None:
    brand_id = brand(db, "owner@bean.test")
    person(db, brand_id, StaffRole.MANAGER, "max@bean.test")
    club_id = _club(db, brand_id, program={"points": {}, "tiers": {"levels": [{"name": "Silver"},
                                                                           {"name": "Gold", "min_spend": 100}]}})
    with db.transaction() as session:
        club = session.get(Club, club_id)
        for email in ("ann@example.com", "bob@example.com"):
            enrol(session, club, email=email, name="A")
    page = new_page("phone")
    sign_in(page, "max@bean.test")
    page.goto(f"/portal/clubs/{club_id}")
    page.get_by_role("link", name="Message to the cards").click()
    page.get_by_label("Message").fill("Double points this weekend")
    assert page.get_by_label("Send to").input_value() == ""
    shoot(page, "portal-club-message")
    page.get_by_role("button", name="Send the message").click()
    assert page.url.endswith(f"/portal/clubs/{club_id}")
    assert "on its way to 2 cards" in page.get_by_role("status").inner_text()
    with db.session() as session:
        assert session.get(Club, club_id).message == "Double points this weekend"


def test_the_message_form_refuses_bad_input_and_sends_nothing(new_page, shoot, db: Database) -> None:
    brand_id = brand(db, "owner@bean.test")
    club_id = _club(db, brand_id)
    with db.transaction() as session:
        enrol(session, session.get(Club, club_id), email="ann@example.com", name="Ann")
    with db.session() as session:
        before = session.scalar(select(func.count(OutboxEvent.id)))
    page = new_page("phone")
    sign_in(page, "owner@bean.test")
    page.goto(f"/portal/clubs/{club_id}/message")
    for typed, message in (("   ", "required"), ("x" * 501, "longer than 500"), ("bell\x07", "special characters")):
        page.get_by_label("Message").evaluate("(el, v) => { el.removeAttribute('maxlength'); el.value = v; }",
                                              typed)
        page.get_by_role("button", name="Send the message").click()
        assert message in error_of(page, "Message"), typed
    shoot(page, "portal-club-message-refused")
    with db.session() as session:
        assert session.get(Club, club_id).message is None
        assert session.scalar(select(func.count(OutboxEvent.id))) == before


def test_keys_webhooks_and_messages_of_another_brand_are_404_and_roles_are_kept(client: FlaskClient,
                                                                               db: Database) -> None:
    mine = brand(db, "owner@bean.test")
    theirs = brand(db, "owner@books.test", name="Books")
    their_club = _club(db, theirs, "Books Club")
    with db.transaction() as session:
        their_key, _ = create_api_key(session, session.get_one(Brand, theirs), "their till")
        their_hook = Webhook(brand_id=theirs, url="https://hooks.example.com/books", events=[])
        session.add(their_hook)
        session.flush()
        their_key_id, their_hook_id = their_key.id, their_hook.id
    token = client_sign_in(client, "owner@bean.test")
    for path in (f"/portal/clubs/{their_club}/message",):
        assert client.get(path).status_code == 404
    for path in (f"/portal/clubs/{their_club}/message", f"/portal/keys/{their_key_id}/revoke",
                 f"/portal/webhooks/{their_hook_id}/delete", "/portal/keys/999999/revoke",
                 f"/portal/webhooks/{2**64}/delete"):
        response = client.post(path, data={"csrf_token": token, "text": "hello"})
        assert response.status_code == 404 and response.mimetype == "text/html", path
    for page, russian in (("/portal/keys", "Создать ключ"), ("/portal/webhooks", "Добавить адрес")):
        html = client.get(page).get_data(as_text=True)
        assert "their till" not in html and "hooks.example.com/books" not in html
        assert russian in client.get(page, headers={"Accept-Language": "ru-RU,ru;q=0.9"}).get_data(as_text=True)
    with db.session() as session:
        assert session.get(ApiKey, their_key_id).revoked_at is None
        assert session.get(Webhook, their_hook_id).active
        assert session.get(Club, their_club).message is None

    person(db, mine, StaffRole.MANAGER, "max@bean.test")
    person(db, mine, StaffRole.CASHIER, "kim@bean.test")
    my_club = _club(db, mine)
    manager = client.application.test_client()
    client_sign_in(manager, "max@bean.test")
    assert [manager.get(p).status_code for p in ("/portal/keys", "/portal/webhooks")] == [403, 403]
    assert manager.get(f"/portal/clubs/{my_club}/message").status_code == 200
    cashier = client.application.test_client()
    client_sign_in(cashier, "kim@bean.test")
    assert cashier.get(f"/portal/clubs/{my_club}/message").status_code == 403
