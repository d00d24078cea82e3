"""A real SMTP server on loopback (aiosmtpd), to receive what the workers send.

It speaks SMTP over a socket like any mail server: plain, STARTTLS or
implicit TLS with a certificate of its own CA (clients trust it through
SMTP_CA_FILE = ``standin.ca_file``), AUTH PLAIN against one user, and
recipients it refuses with 550 as an unknown mailbox. Every accepted
message is kept, parsed, with whether it came over TLS and who logged in.
"""

from __future__ import annotations

import socket
import ssl
import threading
from dataclasses import dataclass
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from tests.support.apns_standin import _write_server_cert


@dataclass(frozen=True)
class Received:
    mail_from: str
    rcpt_tos: list[str]
    message: EmailMessage
    tls: bool
    login: str | None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class SmtpStandIn:
    def __init__(self, workdir: Path, *, security: str = "none", username: str | None = None,
                 password: str | None = None, refuse: set[str] | None = None, port: int | None = None) -> None:
        self.security = security
        self.port = port or _free_port()
        self.received: list[Received] = []
        self.refuse = refuse or set()
        self.username, self.password = username, password
        self._lock = threading.Lock()
        self.ca_file, cert_file, key_file = _write_server_cert(workdir)
        server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        server_tls.load_cert_chain(cert_file, key_file)
        kwargs: dict[str, Any] = {"hostname": "127.0.0.1", "port": self.port, "server_hostname": "standin.test"}
        if security == "starttls":
            kwargs.update(tls_context=server_tls, require_starttls=True)
        elif security == "ssl":
            kwargs.update(ssl_context=server_tls)
        if username is not None:
            # With implicit TLS aiosmtpd does not see the TLS it runs on and
            # would hide AUTH; the socket is TLS all the same.
            kwargs.update(authenticator=self._authenticate, auth_required=True,
                          auth_require_tls=security == "starttls", auth_exclude_mechanism=["LOGIN"])
        self.controller = Controller(self, **kwargs)

    def settings(self) -> dict[str, Any]:
        """The app settings that point at this server."""
        return {"SMTP_HOST": "127.0.0.1", "SMTP_PORT": self.port, "SMTP_TLS": self.security,
                "SMTP_CA_FILE": str(self.ca_file), "SMTP_FROM": "Wallet Clubs <no-reply@wallet.test>",
                "SMTP_USERNAME": self.username, "SMTP_PASSWORD": self.password}

    def _authenticate(self, _server: Any, _session: Any, _envelope: Any, _mechanism: str,
                      data: Any) -> AuthResult:
        ok = (isinstance(data, LoginPassword) and data.login.decode() == self.username
              and data.password.decode() == self.password)
        return AuthResult(success=ok, handled=False, auth_data=self.username if ok else None)

    async def handle_RCPT(self, _server: Any, _session: Any, envelope: Any, address: str,  # noqa: N802
                          _options: Any) -> str:
        if address in self.refuse:
            return "550 5.1.1 no such mailbox here"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        message = message_from_bytes(envelope.original_content or envelope.content, policy=policy.default)
        with self._lock:
            self.received.append(Received(
                mail_from=envelope.mail_from, rcpt_tos=list(envelope.rcpt_tos), message=message,  # type: ignore[arg-type]
                tls=server.transport.get_extra_info("ssl_object") is not None, login=session.auth_data if session.authenticated else None,
            ))
        return "250 Message accepted for delivery"

    def __enter__(self) -> SmtpStandIn:
        self.controller.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.controller.stop()
