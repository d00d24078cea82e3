"""Configuration read from the environment, with defaults for the embedded mode.

Embedded mode (no variables set): SQLite in instance/, the outbox drained by a
thread inside the app process, development certificates generated under
instance/. Scale mode sets DATABASE_URL, BROKER_URL and real certificates.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def _bool(value: str | None, default: bool) -> bool:
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def _int(value: str | None, default: int) -> int:
    if value is None or value.strip() == "":
        return default
    try:
        return int(value)
    except ValueError as exc:
        raise RuntimeError(f"expected an integer, got {value!r}") from exc


def load_config(instance_path: str | os.PathLike[str]) -> dict[str, Any]:
    """Every setting the app reads, from the environment."""
    env = os.environ
    instance = Path(instance_path)
    certs_dir = Path(env.get("CERTS_DIR") or PROJECT_ROOT / "certs")
    return {
        # Only used to sign sessions; a random per-process key would log
        # everybody out on restart, so development keeps one in instance/.
        "SECRET_KEY": env.get("SECRET_KEY") or None,
        "DATABASE_URL": env.get("DATABASE_URL") or f"sqlite:///{instance / 'wallet.sqlite3'}",
        "PUBLIC_BASE_URL": (env.get("PUBLIC_BASE_URL") or "http://127.0.0.1:5000").rstrip("/"),
        "CERTS_DIR": str(certs_dir),
        "DEV_CERTS_DIR": str(Path(env.get("DEV_CERTS_DIR") or instance / "dev-certs")),
        # Development certificates are generated when no real ones are in
        # CERTS_DIR; set USE_DEV_CERTS=0 in production to make that an error.
        "USE_DEV_CERTS": _bool(env.get("USE_DEV_CERTS"), True),
        "PASS_TYPE_IDENTIFIER": env.get("PASS_TYPE_IDENTIFIER") or "pass.dev.walletclubs.loyalty",
        "TEAM_IDENTIFIER": env.get("TEAM_IDENTIFIER") or "DEVTEAM123",
        "PASS_CERT_PASSWORD": env.get("PASS_CERT_PASSWORD") or None,
        "APNS_URL": (env.get("APNS_URL") or "https://api.push.apple.com").rstrip("/"),
        "APNS_CA_FILE": env.get("APNS_CA_FILE") or None,
        "APNS_KEY_FILE": env.get("APNS_KEY_FILE") or None,
        "APNS_KEY_ID": env.get("APNS_KEY_ID") or None,
        # Celery on Redis when set; otherwise the outbox is drained in-process.
        "BROKER_URL": env.get("BROKER_URL") or None,
        "EMBEDDED_WORKER": _bool(env.get("EMBEDDED_WORKER"), True),
        "AUTO_MIGRATE": _bool(env.get("AUTO_MIGRATE"), True),
        "RATELIMIT_STORAGE_URI": env.get("RATELIMIT_STORAGE_URI") or "memory://",
        "API_RATE_LIMIT": env.get("API_RATE_LIMIT") or "6000 per minute",
        # Failed portal sign-ins, counted per client address and per email.
        "LOGIN_RATE_LIMIT": env.get("LOGIN_RATE_LIMIT") or "10 per minute;50 per hour",
        # Join forms and /me sign-in links sent, per client address: each can
        # write to somebody's inbox or phone.
        "JOIN_RATE_LIMIT": env.get("JOIN_RATE_LIMIT") or "100 per hour",
        "MAX_CONTENT_LENGTH": _int(env.get("MAX_CONTENT_LENGTH"), 16 * 1024 * 1024),
        # Email: through this SMTP server when SMTP_HOST is set, else written
        # to the log (see wallet.jobs.notify).
        "SMTP_HOST": env.get("SMTP_HOST") or None,
        "SMTP_PORT": _int(env.get("SMTP_PORT"), 0) or None,
        "SMTP_TLS": env.get("SMTP_TLS") or "starttls",
        "SMTP_USERNAME": env.get("SMTP_USERNAME") or None,
        "SMTP_PASSWORD": env.get("SMTP_PASSWORD") or None,
        "SMTP_FROM": env.get("SMTP_FROM") or None,
        "SMTP_CA_FILE": env.get("SMTP_CA_FILE") or None,
        # Lets webhooks reach loopback and private addresses: development
        # and tests only, never where brands are strangers.
        "WEBHOOK_ALLOW_PRIVATE": _bool(env.get("WEBHOOK_ALLOW_PRIVATE"), False),
        "GOOGLE_ISSUER_ID": env.get("GOOGLE_ISSUER_ID") or None,
        "GOOGLE_SERVICE_ACCOUNT_FILE": env.get("GOOGLE_SERVICE_ACCOUNT_FILE") or None,
        "BABEL_DEFAULT_LOCALE": "en",
        "LANGUAGES": ("en", "ru"),
        "JSON_SORT_KEYS": False,
    }
