"""A club in the portal, and that no brand reaches another brand's pages."""

from __future__ import annotations

import re

from flask.testing import FlaskClient

from wallet.db import Database
from wallet.loyalty.brands import register_brand
from wallet.loyalty.clubs import create_club


def _brand(db: Database, email: str, club_name: str) -> int:
    with db.transaction() as session:
        brand, _owner = register_brand(session, name=club_name.split()[0], email=email, password="correct horse")
        return create_club(session, brand, {"name": club_name, "category": "cafe"}).id


def _sign_in(client: FlaskClient, email: str) -> None:
    html = client.get("/portal/login").get_data(as_text=True)
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', html).group(1)
    response = client.post("/portal/login", data={"email": email, "password": "correct horse", "csrf_token": token})
    assert response.status_code == 302


def test_a_brand_reaches_its_club_and_its_poster_from_the_dashboard(new_page, shoot, db: Database) -> None:
    club_id = _brand(db, "owner@bean.test", "Bean Club")
    for device in ("phone", "laptop"):
        page = new_page(device)
        page.goto("/portal/login")
        page.get_by_label("Email").fill("owner@bean.test")
        page.get_by_label("Password").fill("correct horse")
        page.get_by_role("button", name="Sign in").click()
        shoot(page, "portal-dashboard")
        page.get_by_role("link", name="Bean Club").click()
        assert page.url.endswith(f"/portal/clubs/{club_id}")
        assert page.get_by_label("Join link").input_value().endswith(f"/clubs/{club_id}/join")
        shoot(page, "portal-club")
        with page.expect_download() as download:
            page.get_by_role("link", name="Poster (PDF)").click(modifiers=["Alt"])  # Alt-click saves the link
        assert download.value.path().read_bytes().startswith(b"%PDF")


def test_staff_of_one_brand_get_404_for_another_brands_club_whatever_the_url(client: FlaskClient, db) -> None:
    mine = _brand(db, "owner@bean.test", "Bean Club")
    theirs = _brand(db, "owner@books.test", "Books Club")
    _sign_in(client, "owner@bean.test")
    assert client.get(f"/portal/clubs/{mine}").status_code == 200
    for path in (f"/portal/clubs/{theirs}", "/portal/clubs/999999", f"/portal/clubs/{2**64}", "/portal/clubs/-1"):
        response = client.get(path)
        assert response.status_code == 404 and response.mimetype == "text/html", path
    dashboard = client.get("/portal/").get_data(as_text=True)
    assert "Bean Club" in dashboard and "Books Club" not in dashboard
