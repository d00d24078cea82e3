"""What the portal's browser and client tests share: a brand with its staff,
signing in, and reading the message a refused field shows."""

from __future__ import annotations

import re
from typing import Any

from flask.testing import FlaskClient

from wallet.db import Database
from wallet.loyalty.brands import register_brand
from wallet.loyalty.models import StaffRole
from wallet.loyalty.staff import accept_invite, invite_staff

PASSWORD = "correct horse"


def brand(db: Database, email: str, name: str = "Bean") -> int:
    """A new brand whose owner signs in with ``email`` and PASSWORD."""
    with db.transaction() as session:
        created, _owner = register_brand(session, name=name, email=email, password=PASSWORD)
        return created.id


def person(db: Database, brand_id: int, role: StaffRole, email: str) -> None:
    """Someone on the brand's staff with ``role``, signing in with PASSWORD."""
    with db.transaction() as session:
        _, token = invite_staff(session, brand_id, email=email, role=role)
        accept_invite(session, token, name=email.split("@")[0].title(), password=PASSWORD)


def sign_in(page: Any, email: str, password: str = PASSWORD) -> None:
    page.goto("/portal/login")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()


def client_sign_in(client: FlaskClient, email: str) -> str:
    """Signs ``client`` in; returns the CSRF token its forms carry."""
    html = client.get("/portal/login").get_data(as_text=True)
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', html).group(1)
    response = client.post("/portal/login", data={"email": email, "password": PASSWORD, "csrf_token": token})
    assert response.status_code == 302
    return token


def error_of(page: Any, label: str) -> str:
    """The error text shown for the field labelled ``label`` (which must be
    marked invalid and point at its error through aria-describedby)."""
    field = page.get_by_label(label, exact=True)
    assert field.get_attribute("aria-invalid") == "true", label
    ids = (field.get_attribute("aria-describedby") or "").split()
    return " ".join(page.locator(f"#{i}").inner_text() for i in ids if i.endswith("-error"))
