"""Every role's portal offers only what that role may open: following every
link from the portal's home, as an owner, a manager or a cashier, never
lands on a refusal or a missing page; what a role may not open answers 403
with a way back to the portal."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from urllib.parse import urldefrag, urljoin, urlsplit

import pytest
from flask.testing import FlaskClient

from tests.support.portal import brand, client_sign_in, person
from wallet.db import Database
from wallet.loyalty.clubs import create_club
from wallet.loyalty.imports import start_import
from wallet.loyalty.members import enrol
from wallet.loyalty.models import Club, StaffRole

# Pages past these many are a crawler gone astray (pagination in a loop).
MAX_PAGES = 200


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.found: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        href = dict(attrs).get("href")
        if tag == "a" and href:
            self.found.append(href)


def _portal_links(page_url: str, html: str) -> list[str]:
    parser = _Links()
    parser.feed(html)
    links = []
    for href in parser.found:
        url = urldefrag(urljoin(page_url, href)).url
        parts = urlsplit(url)
        if parts.netloc not in ("", "localhost") or not parts.path.startswith("/portal"):
            continue
        links.append(parts.path + (f"?{parts.query}" if parts.query else ""))
    return links


def _crawl(client: FlaskClient) -> dict[str, tuple[int, str]]:
    """Every portal page reachable by links from /portal/: its status and
    the page that linked to it."""
    seen: dict[str, tuple[int, str]] = {}
    queue = [("/portal/", "(start)")]
    while queue and len(seen) < MAX_PAGES:
        path, source = queue.pop(0)
        if path in seen:
            continue
        response = client.get(path)
        seen[path] = (response.status_code, source)
        if response.status_code == 200 and response.mimetype == "text/html":
            queue.extend((link, path) for link in _portal_links(f"http://localhost{path}",
                                                                 response.get_data(as_text=True)))
    return seen


@pytest.fixture
def brand_with_staff(db: Database) -> dict[str, str]:
    brand_id = brand(db, "owner@bean.test")
    person(db, brand_id, StaffRole.MANAGER, "max@bean.test")
    person(db, brand_id, StaffRole.CASHIER, "kim@bean.test")
    with db.transaction() as session:
        club = create_club(session, brand_id, {"name": "Bean Club", "program": {"points": {}}})
        enrol(session, club, email="ann@example.com", name="Ann")
        start_import(session, session.get(Club, club.id), file_name="a.csv", content=b"email\nx@example.com\n")
    return {"owner": "owner@bean.test", "manager": "max@bean.test", "cashier": "kim@bean.test"}


@pytest.mark.parametrize("role", ["owner", "manager", "cashier"])
def test_every_link_a_role_is_offered_opens(app, brand_with_staff: dict[str, str], role: str) -> None:
    client = app.test_client()
    client_sign_in(client, brand_with_staff[role])
    pages = _crawl(client)
    broken = {path: found for path, found in pages.items() if found[0] >= 400}
    assert not broken, f"{role} is offered links that do not open: {broken}"
    opened = set(pages)
    tills = {p for p in opened if re.fullmatch(r"/portal/clubs/\d+/till", p)}
    assert tills, f"{role} finds no till"
    if role == "cashier":
        # The till is all a cashier is offered (besides pages open to anyone).
        adapter = app.url_map.bind("localhost")
        private = {p for p in opened
                   if not getattr(app.view_functions[adapter.match(urlsplit(p).path)[0]], "portal_public", False)}
        assert private - tills == {"/portal/"}, opened
    else:
        assert any(re.fullmatch(r"/portal/clubs/\d+/members/\d+", p) for p in opened)
        assert ("/portal/staff" in opened) == (role == "owner")


def test_a_page_a_role_may_not_open_is_403_with_the_way_back(app, db: Database,
                                                            brand_with_staff: dict[str, str]) -> None:
    with db.session() as session:
        club_id = session.query(Club.id).scalar()
    cashier = app.test_client()
    client_sign_in(cashier, brand_with_staff["cashier"])
    for path in (f"/portal/clubs/{club_id}", f"/portal/clubs/{club_id}/members", "/portal/clubs/new",
                 "/portal/staff", "/portal/keys"):
        response = cashier.get(path)
        assert response.status_code == 403, path
        html = response.get_data(as_text=True)
        assert 'href="/portal/"' in html and "Back to the portal" in html, path
