"""The members' survey in a browser: from the card page, 0-10 and a comment,
once a quarter; and its answer in the club's numbers."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from wallet.db import Database
from wallet.loyalty.brands import register_brand
from wallet.loyalty.clubs import create_club
from wallet.loyalty.members import enrol
from wallet.loyalty.models import Club
from wallet.loyalty.numbers_models import NpsAnswer


@pytest.fixture
def token(db: Database) -> str:
    with db.transaction() as session:
        brand, _owner = register_brand(session, name="Bean", email="owner@bean.test", password="correct horse")
        club = create_club(session, brand, {"name": "Bean Club", "currency": "RUB"})
        member, _ = enrol(session, session.get(Club, club.id), email="anna@example.test", name="Anna")
        return member.download_token


def test_a_member_answers_from_the_card_page_once_a_quarter(new_page, shoot, db: Database, token: str) -> None:
    page = new_page("phone")
    page.goto(f"/cards/{token}")
    page.get_by_role("link", name="How likely are you to recommend us?").click()
    assert page.url.endswith(f"/cards/{token}/survey")
    shoot(page, "survey")
    page.get_by_role("button", name="Send my answer").click()
    expect(page.get_by_text("Choose a number from 0 to 10.")).to_be_visible()
    page.get_by_role("radio", name="9", exact=True).check()
    page.get_by_label("Comment").fill("Lovely coffee")
    page.get_by_role("button", name="Send my answer").click()
    expect(page.get_by_text("Thank you for your answer!")).to_be_visible()
    assert page.url.endswith(f"/cards/{token}")
    with db.session() as session:
        assert [(a.score, a.comment) for a in session.scalars(select(NpsAnswer))] == [(9, "Lovely coffee")]
    page.goto(f"/cards/{token}/survey")
    expect(page.get_by_text("You answered 9 of 10")).to_be_visible()
    expect(page.get_by_role("button", name="Send my answer")).to_have_count(0)


def test_the_survey_in_russian_on_a_laptop(new_page, shoot, token: str) -> None:
    page = new_page("laptop", locale="ru-RU")
    page.goto(f"/cards/{token}/survey")
    expect(page.get_by_role("heading", name="Насколько вероятно, что вы порекомендуете нас?")).to_be_visible()
    shoot(page, "survey-ru")
    page.get_by_role("radio", name="3", exact=True).check()
    page.get_by_role("button", name="Отправить ответ").click()
    expect(page.get_by_text("Спасибо за ваш ответ!")).to_be_visible()


def test_an_unknown_card_has_no_survey(client) -> None:  # type: ignore[no-untyped-def]
    assert client.get("/cards/" + "x" * 24 + "/survey").status_code == 404
    assert client.get("/cards/bad/survey").status_code == 404
