"""A request that writes owns its transaction one way (wallet.extensions):
its work commits when it answers, and a refused or failed request leaves
nothing behind."""

from __future__ import annotations

import pytest
from flask import Blueprint, Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from wallet.db import Database
from wallet.extensions import get_session, transactional
from wallet.loyalty.models import Brand


@pytest.fixture
def probe(app: Flask) -> FlaskClient:
    """Views that add a brand and then answer with the status in the URL."""
    bp = Blueprint("unit_of_work_probe", __name__)

    @bp.post("/probe/<int:status>")
    @transactional
    def write(status: int) -> tuple[str, int]:
        get_session().add(Brand(name="Probe", email=f"probe-{status}@example.test"))
        if status == 599:
            raise RuntimeError("the view failed after writing")
        return "", status

    @bp.post("/probe/outside")
    def write_outside() -> str:
        get_session().add(Brand(name="Probe", email="outside@example.test"))
        return ""

    app.register_blueprint(bp)
    return app.test_client()


def _brands(db: Database) -> int:
    with db.session() as session:
        return session.scalar(select(func.count()).select_from(Brand)) or 0


@pytest.mark.parametrize("status", [200, 201, 204, 302])
def test_a_view_that_answers_below_400_commits_its_work(probe: FlaskClient, db: Database, status: int) -> None:
    assert probe.post(f"/probe/{status}").status_code == status
    assert _brands(db) == 1


@pytest.mark.parametrize("status", [400, 401, 404, 409, 422, 503])
def test_a_view_that_answers_400_or_more_changes_nothing(probe: FlaskClient, db: Database, status: int) -> None:
    assert probe.post(f"/probe/{status}").status_code == status
    assert _brands(db) == 0


def test_a_view_that_raises_changes_nothing(probe: FlaskClient, db: Database) -> None:
    with pytest.raises(RuntimeError, match="the view failed"):
        probe.post("/probe/599")
    assert _brands(db) == 0


def test_a_view_cannot_write_outside_a_unit_of_work(probe: FlaskClient, db: Database) -> None:
    with pytest.raises(RuntimeError, match="outside a unit of work"):
        probe.post("/probe/outside")
    assert _brands(db) == 0
