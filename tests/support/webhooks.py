"""Stand-ins for a brand's webhook endpoint and for DNS.

``Receiver`` is a real HTTP(S) server on a loopback socket that checks every
signature with the secret it was given. ``Hosts`` answers name look-ups
from a table, so tests decide what a name resolves to (and can change it
between creation and delivery, as a rebinding DNS server would) without
depending on the network's DNS.
"""

from __future__ import annotations

import datetime
import ipaddress
import json
import ssl
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from wallet.loyalty.webhook_targets import IPAddress, UnresolvableHost
from wallet.loyalty.webhooks import SIGNATURE_HEADER, verify_signature

# A public address no test connects to: names that must pass the address
# rule at creation resolve here.
PUBLIC_ADDRESS = "93.184.215.14"


class Hosts:
    """A resolver answering from ``table``; unknown names do not resolve.
    ``answers`` maps a name to a list of answers given in turn (the last
    one repeats), for names that change between look-ups."""

    def __init__(self, table: dict[str, list[str]] | None = None) -> None:
        self.table: dict[str, list[str]] = {"hooks.example.com": [PUBLIC_ADDRESS], **(table or {})}
        self.answers: dict[str, list[list[str]]] = {}
        self.lookups: list[str] = []

    def __call__(self, host: str) -> list[IPAddress]:
        self.lookups.append(host)
        turns = self.answers.get(host)
        if turns:
            found = turns.pop(0) if len(turns) > 1 else turns[0]
        else:
            found = self.table.get(host, [])
        if not found:
            raise UnresolvableHost(host)
        return [ipaddress.ip_address(a) for a in found]


def write_tls_files(folder: Path, name: str) -> tuple[Path, Path, Path]:
    """A CA and a server certificate for ``name`` signed by it: (ca, cert, key)."""
    folder.mkdir(parents=True, exist_ok=True)
    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Webhook test CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
          .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
          .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
          .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
          .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
            .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
            .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256()))
    paths = folder / "ca.pem", folder / "server.pem", folder / "server.key"
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return paths


class Receiver:
    """A brand's endpoint on a real socket. It checks every signature with
    ``secret`` and answers ``status`` (with ``headers``); with ``tls`` =
    (cert, key) it speaks HTTPS and records the SNI name each client sent."""

    def __init__(self, *, tls: tuple[Path, Path] | None = None, host: str = "127.0.0.1") -> None:
        self.secret = ""
        self.status = 200
        self.headers: dict[str, str] = {}
        self.received: list[dict[str, Any]] = []
        self.bad_signatures = 0
        self.server_names: list[str | None] = []
        self.hold: Callable[[], None] | None = None
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if receiver.hold is not None:
                    receiver.hold()
                ok = verify_signature(receiver.secret, self.headers.get(SIGNATURE_HEADER, ""), body,
                                      now=int(time.time()))
                if ok:
                    receiver.received.append({"headers": dict(self.headers), "event": json.loads(body)})
                else:
                    receiver.bad_signatures += 1
                self.send_response(receiver.status if ok else 400)
                for name, value in receiver.headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(b"thanks")

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer((host, 0), Handler)
        # A client that hangs up mid-answer (a timeout test) is expected here.
        self.server.handle_error = lambda request, address: None  # type: ignore[method-assign]
        self.port = self.server.server_address[1]
        scheme = "http"
        if tls is not None:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(str(tls[0]), str(tls[1]))
            context.sni_callback = lambda sock, name, ctx: self.server_names.append(name)
            self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
            scheme = "https"
        self.url = f"{scheme}://{host}:{self.port}/hooks/wallet"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> Receiver:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
