"""Email and SMS leave through the outbox: queued in the caller's
transaction, sent by the workers over SMTP to a real server on a socket, or
written to the log when no server is configured; never lost, never sent for
a transaction that rolled back."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select, update

from tests.support.app import empty_tables
from tests.support.smtp_standin import SmtpStandIn
from wallet import create_app
from wallet.db import Database, utcnow
from wallet.jobs.notify import NotificationRejected, set_sms_sender
from wallet.jobs.outbox import drain
from wallet.loyalty.errors import RuleViolation
from wallet.loyalty.models import OutboxEvent
from wallet.loyalty.notifications import queue_email, queue_sms
from wallet.loyalty.outbox import OutboxKind

RUSSIAN = "Ваша ссылка для входа: https://wallet.test/me/sign-in/abc\nОна действует 20 минут."


def rows(db: Database) -> list[OutboxEvent]:
    with db.session() as session:
        found = list(session.scalars(select(OutboxEvent).where(OutboxEvent.kind == OutboxKind.NOTIFICATION)
                                     .order_by(OutboxEvent.id)))
        session.expunge_all()
        return found


def retry_now(db: Database) -> None:
    """Skip the back-off, as time passing would."""
    with db.transaction() as session:
        session.execute(update(OutboxEvent).values(available_at=utcnow()))


def send_email(db: Database, to: str = "ann@example.com", body: str = RUSSIAN, **kwargs: Any) -> None:
    with db.transaction() as session:
        queue_email(session, to=to, subject="Вход в Wallet Clubs", body=body, **kwargs)


@pytest.fixture
def make_app(app_config: dict[str, Any], database_url: str) -> Iterator[Any]:
    """Apps with extra settings (an SMTP server's), cleaned up afterwards."""
    made: list[Flask] = []

    def build(**settings: Any) -> Flask:
        application = create_app({**app_config, **settings})
        made.append(application)
        return application

    yield build
    for application in made:
        application.extensions["wallet.db"].dispose()
    empty_tables(database_url)


def test_an_email_reaches_a_real_smtp_server_with_its_text_intact(make_app: Any, tmp_path: Path) -> None:
    with SmtpStandIn(tmp_path / "smtp") as server:
        app = make_app(**server.settings())
        db = app.extensions["wallet.db"]
        send_email(db, to="Ann@Example.com", html="<p>Ваша ссылка</p>")
        assert drain(app) == 1
    [got] = server.received
    assert got.rcpt_tos == ["ann@example.com"] and got.mail_from == "no-reply@wallet.test"
    message = got.message
    assert message["Subject"] == "Вход в Wallet Clubs"
    assert message["To"] == "ann@example.com"
    assert message["From"] == "Wallet Clubs <no-reply@wallet.test>"
    [row] = rows(db)
    assert message["Message-ID"].startswith(f"<notification.{row.id}.") and row.done_at is not None
    assert message.get_body(("plain",)).get_content().replace("\r\n", "\n").strip() == RUSSIAN
    assert "Ваша ссылка" in message.get_body(("html",)).get_content()


def test_starttls_and_login_are_used_when_configured(make_app: Any, tmp_path: Path) -> None:
    with SmtpStandIn(tmp_path / "smtp", security="starttls", username="mailer", password="s3cret") as server:
        app = make_app(**server.settings())
        send_email(app.extensions["wallet.db"])
        drain(app)
    [got] = server.received
    assert got.tls and got.login == "mailer"


def test_implicit_tls_is_used_with_smtp_tls_ssl(make_app: Any, tmp_path: Path) -> None:
    with SmtpStandIn(tmp_path / "smtp", security="ssl", username="mailer", password="s3cret") as server:
        app = make_app(**server.settings())
        send_email(app.extensions["wallet.db"])
        drain(app)
    [got] = server.received
    assert got.tls and got.login == "mailer"


def test_a_server_that_does_not_trust_us_or_is_down_leaves_the_email_for_later(make_app: Any,
                                                                             tmp_path: Path) -> None:
    with SmtpStandIn(tmp_path / "smtp", security="starttls", username="mailer", password="s3cret") as server:
        app = make_app(**{**server.settings(), "SMTP_PASSWORD": "wrong"})
        db = app.extensions["wallet.db"]
        send_email(db)
        drain(app)
        assert server.received == []
        [row] = rows(db)
        assert row.done_at is None and row.attempts == 1 and "SMTPAuthenticationError" in row.last_error
        port = server.port
    # The server is gone: still waiting, nothing lost.
    retry_now(db)
    drain(app)
    [row] = rows(db)
    assert row.done_at is None and row.attempts == 2
    # Configured right and the server back: delivered once.
    with SmtpStandIn(tmp_path / "smtp2", security="starttls", username="mailer", password="s3cret",
                     port=port) as server:
        fixed = make_app(**server.settings())
        retry_now(db)
        drain(fixed)
    assert len(server.received) == 1
    assert rows(db)[0].done_at is not None


def test_a_refused_mailbox_is_not_retried_forever(make_app: Any, tmp_path: Path,
                                                  caplog: pytest.LogCaptureFixture) -> None:
    with SmtpStandIn(tmp_path / "smtp", refuse={"gone@example.com"}) as server:
        app = make_app(**server.settings())
        db = app.extensions["wallet.db"]
        send_email(db, to="gone@example.com")
        send_email(db, to="bob@example.com")
        with caplog.at_level(logging.WARNING, logger="wallet.notifications"):
            drain(app)
    assert [r.rcpt_tos for r in server.received] == [["bob@example.com"]]
    assert all(row.done_at is not None for row in rows(db))
    assert "refused for good" in caplog.text


def test_without_smtp_host_the_email_is_written_to_the_log(app: Flask, db: Database,
                                                            caplog: pytest.LogCaptureFixture) -> None:
    send_email(db, body="Open https://wallet.test/me/sign-in/tok\nINFO forged log line")
    with caplog.at_level(logging.WARNING, logger="wallet.notifications"):
        drain(app)
    assert "email to ann@example.com (not sent: SMTP_HOST is not set)" in caplog.text
    assert "https://wallet.test/me/sign-in/tok" in caplog.text
    # A line of the body cannot pass for a log record of its own.
    assert "\n    | INFO forged log line" in caplog.text
    assert rows(db)[0].done_at is not None


def test_what_a_member_typed_reaches_the_log_escaped(app: Flask, db: Database,
                                                     caplog: pytest.LogCaptureFixture) -> None:
    send_email(db, body="Hello Ann,\nINFO forged\u2028INFO forged too\u202e")
    with caplog.at_level(logging.WARNING, logger="wallet.notifications"):
        drain(app)
    [record] = [r for r in caplog.records if r.name == "wallet.notifications"]
    lines = record.getMessage().split("\n")
    assert lines[0] == "email to ann@example.com (not sent: SMTP_HOST is not set)"
    assert all(line.isprintable() for line in lines)
    assert all(line.startswith("    ") for line in lines[1:])


def test_sms_is_logged_in_development_and_sent_by_a_plugged_in_provider(app: Flask, db: Database,
                                                                        caplog: pytest.LogCaptureFixture) -> None:
    with db.transaction() as session:
        queue_sms(session, to="+7 916 123-45-67", body="Код: 123456")
    with caplog.at_level(logging.WARNING, logger="wallet.notifications"):
        drain(app)
    assert "sms to +79161234567 (not sent: no SMS provider is configured)" in caplog.text
    assert "Код: 123456" in caplog.text

    class Provider:
        def __init__(self) -> None:
            self.sent: list[tuple[str, str]] = []
            self.down = True

        def send(self, to: str, body: str) -> None:
            if to == "+442079460958":
                raise NotificationRejected("landline")
            if self.down:
                self.down = False
                raise ConnectionError("provider unreachable")
            self.sent.append((to, body))

    provider = Provider()
    set_sms_sender(app, provider)
    with db.transaction() as session:
        queue_sms(session, to="+79161234567", body="Код: 654321")
        queue_sms(session, to="+44 20 7946 0958", body="Code: 111111")
    drain(app)
    assert provider.sent == []
    retry_now(db)
    drain(app)
    assert provider.sent == [("+79161234567", "Код: 654321")]
    assert all(row.done_at is not None for row in rows(db))


def test_nothing_is_sent_for_a_transaction_that_rolled_back(app: Flask, db: Database) -> None:
    with pytest.raises(RuntimeError), db.transaction() as session:
        queue_email(session, to="ann@example.com", subject="Hi", body="never")
        raise RuntimeError("the caller failed after queueing")
    assert rows(db) == []


@pytest.mark.parametrize("to,body,code", [
    ("not an address", "x", "invalid_email"),
    ("ann@example.com", "bad\x1b[31m", "invalid_notification"),
    ("ann@example.com", "", "invalid_notification"),
])
def test_a_bad_email_is_refused_when_queued(db: Database, to: str, body: str, code: str) -> None:
    with db.transaction() as session, pytest.raises(RuleViolation) as err:
        queue_email(session, to=to, subject="Hi", body=body)
    assert err.value.code == code


def test_a_bad_sms_is_refused_when_queued(db: Database) -> None:
    for to, body, code in [("8 916 123 45 67", "x", "invalid_phone"), ("+79161234567", "x" * 1001,
                                                                      "invalid_notification")]:
        with db.transaction() as session, pytest.raises(RuleViolation) as err:
            queue_sms(session, to=to, body=body)
        assert err.value.code == code
    assert rows(db) == []
