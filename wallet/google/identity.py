"""The Google service account that signs "Add to Google Wallet" links.

Real accounts come from GOOGLE_SERVICE_ACCOUNT_FILE (the JSON key Google
Cloud issues; see certs.example/README.md). Without one, development mode
generates a key of the same shape under the development certificates
directory, so the whole path runs on a fresh machine; Google would refuse
links signed with it, which is the point of calling it development.
"""

from __future__ import annotations

import json
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey
from flask import Flask

from wallet.config import Settings, get_settings, made_on_first_use
from wallet.google.errors import GoogleConfigError

DEV_ISSUER_ID = "3388000000000000000"
DEV_ACCOUNT_FILE = "google-service-account.json"


@dataclass(frozen=True)
class GoogleIdentity:
    issuer_id: str
    client_email: str
    private_key_id: str
    private_key: RSAPrivateKey
    development: bool


def write_service_account(path: Path, key: RSAPrivateKey, *, client_email: str, key_id: str,
                          project_id: str) -> None:
    """A service account key file of the shape Google Cloud issues, written
    once (FileExistsError if it is there), readable by this user only.

    The file appears whole or not at all: gunicorn's workers create the
    development key on their first requests at the same moment, and one
    that found the file half written answered 500."""
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    account = {
        "type": "service_account",
        "project_id": project_id,
        "private_key_id": key_id,
        "private_key": pem,
        "client_email": client_email,
        "token_uri": "https://oauth2.googleapis.com/token",
    }
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w") as fh:
            json.dump(account, fh, indent=2)
        os.link(tmp, path)  # FileExistsError when another process was first
    finally:
        tmp.unlink(missing_ok=True)


def _write_dev_account(path: Path) -> None:
    write_service_account(path, rsa.generate_private_key(public_exponent=65537, key_size=2048),
                          client_email="wallet-dev@wallet-clubs-dev.iam.gserviceaccount.com",
                          key_id=secrets.token_hex(20), project_id="wallet-clubs-dev")


def load_identity(settings: Settings) -> GoogleIdentity:
    account_file = settings.google_service_account_file
    development = account_file is None
    if account_file is None:
        path = settings.dev_certs_dir / DEV_ACCOUNT_FILE
        if not path.exists():
            try:
                _write_dev_account(path)
            except FileExistsError:  # another process wrote it first
                pass
    else:
        path = account_file
    try:
        account = json.loads(path.read_text())
        key = serialization.load_pem_private_key(account["private_key"].encode(), password=None)
    except (OSError, ValueError, KeyError) as exc:
        raise GoogleConfigError(f"cannot read the Google service account key {path}: {exc}") from exc
    if not isinstance(key, rsa.RSAPrivateKey):
        raise GoogleConfigError(f"{path}: the service account key is not an RSA key")
    issuer_id = settings.google_issuer_id or (DEV_ISSUER_ID if development else None)
    if not issuer_id:
        raise GoogleConfigError("GOOGLE_SERVICE_ACCOUNT_FILE is set but GOOGLE_ISSUER_ID is not")
    return GoogleIdentity(
        issuer_id=str(issuer_id),
        client_email=account["client_email"],
        private_key_id=account.get("private_key_id", ""),
        private_key=key,
        development=development,
    )


def init_identity(app: Flask) -> None:
    """Loads a configured service account at start-up, so a problem stops
    the app at once; the development key is written on first use."""
    settings = get_settings(app)
    if settings.google_service_account_file is not None or (settings.dev_certs_dir / DEV_ACCOUNT_FILE).exists():
        app.extensions["wallet.google.identity"] = load_identity(settings)


def get_identity(app: Flask | None = None) -> GoogleIdentity:
    return made_on_first_use(app, "wallet.google.identity", load_identity)
