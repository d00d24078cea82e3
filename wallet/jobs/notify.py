"""Delivering ``notification`` outbox rows: email through SMTP, SMS through
a pluggable sender, and both to the log when nothing is configured.

Email: with SMTP_HOST set, one SMTP session per batch (STARTTLS by default,
implicit TLS with SMTP_TLS=ssl, plain with SMTP_TLS=none for a relay on
localhost), AUTH when SMTP_USERNAME is set. Without SMTP_HOST the message is
written to the log (development reads its sign-in links there).

SMS: the design names no provider, so by default the text is logged. A
provider plugs in with ``set_sms_sender(app, sender)``: any object with
``send(to: str, body: str) -> None`` that raises ``NotificationRejected``
when the provider refuses the message for good and any other exception
when it should be tried again.

A message the far side refuses for good (an unknown mailbox, an address the
server cannot take) is done and logged: retrying cannot help. Anything else
(server down, 4xx, a timeout) is retried by the outbox with back-off, so a
message is sent at least once; its Message-ID is fixed by its outbox row,
so a repeat after a worker died can be recognised by the receiving side.
"""

from __future__ import annotations

import logging
import smtplib
import ssl
from collections.abc import Iterable
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import format_datetime, parseaddr
from typing import Any, Protocol

from wallet.config import Settings, get_settings
from wallet.db import utcnow
from wallet.logtext import printable
from wallet.jobs.outbox import Claimed
from wallet.loyalty.notifications import Channel, NotificationPayload
from wallet.loyalty.outbox import MalformedPayload

log = logging.getLogger("wallet.notifications")

SMTP_SECURITY = ("starttls", "ssl", "none")
DEFAULT_PORTS = {"starttls": 587, "ssl": 465, "none": 25}
SMTP_TIMEOUT = 20.0
SMS_SENDER_KEY = "wallet.jobs.sms_sender"


# A claimed notification row and its payload, read once.
Outgoing = tuple[Claimed, NotificationPayload]


class NotificationRejected(Exception):
    """The provider refused this message for good: it is dropped, not retried."""


class SmsSender(Protocol):
    def send(self, to: str, body: str) -> None: ...


@dataclass
class Delivered:
    done: set[int] = field(default_factory=set)
    failed: dict[int, str] = field(default_factory=dict)


@dataclass(frozen=True)
class SmtpSettings:
    host: str
    port: int
    sender: str
    security: str = "starttls"
    username: str | None = None
    password: str | None = None
    ca_file: str | None = None
    timeout: float = SMTP_TIMEOUT

    @classmethod
    def from_settings(cls, settings: Settings) -> SmtpSettings | None:
        """None when SMTP_HOST is not set (messages are logged instead)."""
        host = settings.smtp_host
        if not host:
            return None
        security = settings.smtp_tls.lower()
        if security not in SMTP_SECURITY:
            raise ValueError(f"SMTP_TLS must be one of {', '.join(SMTP_SECURITY)}, not {security!r}")
        sender = settings.smtp_from
        if not sender or "@" not in parseaddr(sender)[1]:
            raise ValueError("SMTP_FROM must be set to the sender's address when SMTP_HOST is set, "
                             "e.g. 'Wallet Clubs <no-reply@example.com>'")
        return cls(host=host, port=settings.smtp_port or DEFAULT_PORTS[security], sender=sender,
                   security=security, username=settings.smtp_username, password=settings.smtp_password,
                   ca_file=str(settings.smtp_ca_file) if settings.smtp_ca_file else None)

    def tls_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context()
        if self.ca_file:
            context.load_verify_locations(cafile=self.ca_file)
        return context


class LoggedSms:
    """The development SMS sender: the text goes to the log."""

    def send(self, to: str, body: str) -> None:
        _log_message(Channel.SMS, to, "", body, reason="no SMS provider is configured")


def set_sms_sender(app: Any, sender: SmsSender) -> None:
    """Send SMS through ``sender`` in this app's workers."""
    app.extensions[SMS_SENDER_KEY] = sender


def _log_message(channel: Channel, to: str, subject: str, body: str, *, reason: str) -> None:
    # Each body line is indented behind a bar, so a line of the message can
    # never pass for a log record of its own; what the member typed (their
    # name, the address) is escaped like all client text in the log.
    lines = "\n".join(f"    | {printable(line)}" for line in body.splitlines() or [""])
    head = f"{channel.value} to {printable(to)} (not sent: {reason})"
    if subject:
        head += f"\n    Subject: {printable(subject)}"
    log.warning("%s\n%s", head, lines)


def build_email(event: Claimed, payload: NotificationPayload, sender: str) -> EmailMessage:
    message = EmailMessage()
    message["From"] = sender
    message["To"] = payload.to
    message["Subject"] = payload.subject
    created = event.created_at or utcnow()
    message["Date"] = format_datetime(created)
    domain = parseaddr(sender)[1].rpartition("@")[2] or "localhost"
    # Fixed per outbox row: a message sent again after a crash keeps its id.
    message["Message-ID"] = f"<notification.{event.id}.{int(created.timestamp())}@{domain}>"
    message.set_content(payload.body)
    if payload.html:
        message.add_alternative(payload.html, subtype="html")
    return message


def _permanent(exc: smtplib.SMTPException) -> bool:
    if isinstance(exc, (smtplib.SMTPRecipientsRefused, smtplib.SMTPNotSupportedError)):
        return True
    if isinstance(exc, smtplib.SMTPSenderRefused):
        return False  # our SMTP_FROM is refused: fixed by configuration, then sent
    code = getattr(exc, "smtp_code", None)
    return isinstance(code, int) and 500 <= code < 600


def _open_smtp(settings: SmtpSettings) -> smtplib.SMTP:
    if settings.security == "ssl":
        client: smtplib.SMTP = smtplib.SMTP_SSL(settings.host, settings.port, timeout=settings.timeout,
                                                context=settings.tls_context())
    else:
        client = smtplib.SMTP(settings.host, settings.port, timeout=settings.timeout)
    try:
        if settings.security == "starttls":
            client.starttls(context=settings.tls_context())
        if settings.username:
            client.login(settings.username, settings.password or "")
    except BaseException:
        client.close()
        raise
    return client


def send_emails(settings: SmtpSettings, events: list[Outgoing]) -> Delivered:
    """Send each email over one SMTP session."""
    result = Delivered()
    try:
        client = _open_smtp(settings)
    except (OSError, smtplib.SMTPException) as exc:
        reason = f"SMTP {settings.host}:{settings.port}: {type(exc).__name__}: {exc}"
        log.warning("could not open the SMTP session: %s", reason)
        return Delivered(failed={e.id: reason for e, _ in events})
    try:
        for index, (event, payload) in enumerate(events):
            try:
                client.send_message(build_email(event, payload, settings.sender))
                result.done.add(event.id)
            except smtplib.SMTPException as exc:
                if isinstance(exc, smtplib.SMTPServerDisconnected):
                    reason = f"SMTP server disconnected: {exc}"
                    result.failed.update({e.id: reason for e, _ in events[index:]})
                    break
                if _permanent(exc):
                    log.warning("email (outbox row %s) refused for good: %s", event.id, exc)
                    result.done.add(event.id)
                else:
                    result.failed[event.id] = f"{type(exc).__name__}: {exc}"
            except OSError as exc:
                reason = f"SMTP connection lost: {type(exc).__name__}: {exc}"
                result.failed.update({e.id: reason for e, _ in events[index:]})
                break
    finally:
        try:
            client.quit()
        except (OSError, smtplib.SMTPException):
            client.close()
    return result


def send_sms(sender: SmsSender, events: Iterable[Outgoing]) -> Delivered:
    result = Delivered()
    for event, payload in events:
        try:
            sender.send(payload.to, payload.body)
            result.done.add(event.id)
        except NotificationRejected as exc:
            log.warning("SMS (outbox row %s) refused for good: %s", event.id, exc)
            result.done.add(event.id)
        except Exception as exc:  # the provider's own errors: try again later
            result.failed[event.id] = f"{type(exc).__name__}: {exc}"
    return result


def _deliver_emails(settings: Settings, events: list[Outgoing]) -> Delivered:
    try:
        smtp = SmtpSettings.from_settings(settings)
    except ValueError as exc:
        log.error("emails wait in the outbox: %s", exc)
        return Delivered(failed={e.id: str(exc) for e, _ in events})
    if smtp is not None:
        return send_emails(smtp, events)
    for _event, payload in events:
        _log_message(Channel.EMAIL, payload.to, payload.subject, payload.body, reason="SMTP_HOST is not set")
    return Delivered(done={e.id for e, _ in events})


def deliver_notifications(app: Any, events: list[Claimed]) -> Delivered:
    """Send every claimed notification row; says which are done and which
    should be tried again."""
    by_channel: dict[Channel, list[Outgoing]] = {Channel.EMAIL: [], Channel.SMS: []}
    result = Delivered()
    for event in events:
        try:
            payload = NotificationPayload.of(event)
        except MalformedPayload as exc:
            log.warning("notification outbox row %s dropped: %s", event.id, exc)
            result.done.add(event.id)
            continue
        by_channel[payload.channel].append((event, payload))
    for sent in (
        _deliver_emails(get_settings(app), by_channel[Channel.EMAIL]) if by_channel[Channel.EMAIL] else Delivered(),
        send_sms(app.extensions.get(SMS_SENDER_KEY) or LoggedSms(), by_channel[Channel.SMS]),
    ):
        result.done |= sent.done
        result.failed.update(sent.failed)
    return result
