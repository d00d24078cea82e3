"""Every setting of the service, read once from the environment.

``Settings.load()`` reads the environment (and any overrides a test or a
tool passes, by the same names) into one frozen, typed object. create_app()
keeps it on the app (``get_settings()``) and copies into ``app.config`` only
what Flask and its extensions read there. Nothing else in the package reads
the environment. README.md's configuration table names every field; a test
compares the two.

Nothing set means the embedded mode: SQLite in instance/, the outbox drained
by a thread inside the app process, development certificates. Scale mode
sets DATABASE_URL, BROKER_URL and real certificates.
"""

from __future__ import annotations

import os
import sys
import types
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, NoReturn, TypeVar

PROJECT_ROOT = Path(__file__).resolve().parent.parent

# The languages of pages and passes (not a setting: each needs translations).
LANGUAGES = ("en", "ru")

_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})


class StartupError(RuntimeError):
    """The service cannot start as it is set up; the message says what to do."""


def exit_cannot_start(exc: StartupError) -> NoReturn:
    """One line saying what to do, not a traceback, and an exit status that
    gunicorn's master takes as "do not restart" (its APP_LOAD_ERROR)."""
    print(f"Wallet Clubs cannot start: {exc}", file=sys.stderr)
    sys.exit(4)


class SettingsError(StartupError, ValueError):
    """A setting in the environment cannot be used; the message names it."""


def _no_trailing_slash(value: str) -> str:
    return value.rstrip("/")


def _clean(func: Callable[[Any], Any]) -> dict[str, Any]:
    return {"clean": func}


@dataclass(frozen=True, kw_only=True)
class Settings:
    """One field per environment variable, named as the variable in lower case.

    Fields without a default are derived from others when not set (see
    ``load``)."""

    # --- where things live ------------------------------------------------
    instance_path: Path
    database_url: str
    public_base_url: str = field(default="http://127.0.0.1:5000", metadata=_clean(_no_trailing_slash))
    # Signs sessions. Unset: a key generated once into instance/secret_key, so
    # sessions survive restarts; several machines need one value set here.
    secret_key: str | None = None

    # --- Apple certificates and push --------------------------------------
    certs_dir: Path = PROJECT_ROOT / "certs"
    dev_certs_dir: Path
    # Development certificates are made when CERTS_DIR holds none; production
    # sets USE_DEV_CERTS=0 to make a missing certificate an error.
    use_dev_certs: bool = True
    pass_type_identifier: str = "pass.dev.walletclubs.loyalty"
    team_identifier: str = "DEVTEAM123"
    pass_cert_password: str | None = None
    apns_url: str = field(default="https://api.push.apple.com", metadata=_clean(_no_trailing_slash))
    apns_ca_file: Path | None = None
    apns_key_file: Path | None = None
    apns_key_id: str | None = None
    apns_max_streams: int = 100
    apns_max_retries: int = 5
    apns_backoff_base: float = 0.25
    apple_auth_failure_limit: str = "30 per minute"
    apple_log_limit: str = "120 per minute"
    # Android wallet apps that hold Apple-format passes push through their
    # own APIs (see wallet.apple.android). WalletUnion publishes its endpoint
    # to registered providers only, so it has no default: unset, its devices
    # refresh their passes when the app opens, without a push.
    walletpasses_push_url: str = "https://walletpasses.appspot.com/api/v1/push"
    walletpasses_api_key: str | None = None
    walletunion_push_url: str | None = None
    walletunion_api_key: str | None = None

    # --- Google Wallet -----------------------------------------------------
    # Without a service account the development mode signs save links with a
    # generated key and logs the REST calls instead of making them.
    google_issuer_id: str | None = None
    google_service_account_file: Path | None = None
    google_wallet_api_url: str = field(default="https://walletobjects.googleapis.com/walletobjects/v1",
                                       metadata=_clean(_no_trailing_slash))
    google_token_url: str = "https://oauth2.googleapis.com/token"
    # Google's root signing keys for the save/delete callback (the JSON Google
    # publishes); unset, every callback is refused.
    google_callback_root_keys_file: Path | None = None

    # --- webhooks ---------------------------------------------------------------
    # Lets webhooks reach loopback and private addresses: development and
    # tests only, never where brands are strangers.
    webhook_allow_private: bool = False

    # --- email ----------------------------------------------------------------
    # Through this SMTP server when SMTP_HOST is set, else written to the log
    # (see wallet.jobs.notify). SMTP_PORT unset: the port of SMTP_TLS.
    smtp_host: str | None = None
    smtp_port: int | None = None
    smtp_tls: str = "starttls"
    smtp_username: str | None = None
    smtp_password: str | None = None
    smtp_from: str | None = None
    smtp_ca_file: Path | None = None

    # --- background work ---------------------------------------------------
    # Celery on Redis when set; otherwise the outbox is drained in-process.
    broker_url: str | None = None
    celery_queue: str = "wallet-outbox"
    embedded_worker: bool = True
    worker_concurrency: int = 4
    outbox_poll_seconds: float = 1.0
    outbox_batch_size: int = 200
    outbox_lease_seconds: float = 60.0
    outbox_backoff_seconds: float = 5.0
    # Outbox rows are kept this long after they are done (for inspection).
    outbox_keep_days: int = 7
    # The time rules (expiry, pending windows, tier reviews, birthdays,
    # expiry warnings) and the purges run once every this many minutes.
    schedule_minutes: int = 60

    # --- HTTP ----------------------------------------------------------------
    api_rate_limit: str = "6000 per minute"
    # Failed portal sign-ins, counted per client address and per email.
    login_rate_limit: str = "10 per minute;50 per hour"
    # Join forms and /me sign-in links sent, per client address: each can
    # write to somebody's inbox or phone.
    join_rate_limit: str = "100 per hour"
    api_max_body: int = 1024 * 1024
    max_content_length: int = 16 * 1024 * 1024
    # Where rate-limit counters live: BROKER_URL's Redis when that is set, so
    # every process shares them; otherwise this process's memory
    # (wallet-memory://, wallet.ratelimit).
    ratelimit_storage_uri: str
    # Reverse proxies in front of us that we trust to set X-Forwarded-*
    # (werkzeug's ProxyFix): how many hops of each header to believe. 0, the
    # default, ignores the header, so a client cannot choose its own address.
    proxy_x_for: int = 0
    proxy_x_proto: int = 0
    proxy_x_host: int = 0
    proxy_x_port: int = 0
    proxy_x_prefix: int = 0

    # --------------------------------------------------------------------------

    @classmethod
    def env_names(cls) -> list[str]:
        """The environment variables read, in declaration order."""
        return [f.name.upper() for f in fields(cls)]

    @classmethod
    def load(cls, environ: Mapping[str, str] | None = None,
             overrides: Mapping[str, Any] | None = None) -> Settings:
        """The settings from ``environ`` (default: the process environment).

        ``overrides`` take precedence, by variable name; a value there may
        already have its type, and None means "not set" (the default, never
        the environment). Raises SettingsError naming a variable that
        cannot be read."""
        env = os.environ if environ is None else environ
        given = dict(overrides or {})
        hints = typing.get_type_hints(cls)
        values: dict[str, Any] = {}
        for f in fields(cls):
            name = f.name.upper()
            if name in given:
                raw = given[name]
            else:
                raw = env.get(name)
                if raw is not None and raw.strip() == "":
                    raw = None
            if raw is None:
                continue
            value = _convert(name, raw, hints[f.name])
            clean = f.metadata.get("clean")
            values[f.name] = clean(value) if clean and value is not None else value
        instance = Path(values.get("instance_path") or PROJECT_ROOT / "instance")
        values["instance_path"] = instance
        values.setdefault("database_url", f"sqlite:///{instance / 'wallet.sqlite3'}")
        values.setdefault("dev_certs_dir", instance / "dev-certs")
        values.setdefault("ratelimit_storage_uri", values.get("broker_url") or "wallet-memory://")
        for name, value in values.items():
            if name.startswith("proxy_x_") and value < 0:
                raise SettingsError(f"{name.upper()} must be 0 or more (the number of proxies to trust)")
        return cls(**values)

    def flask_config(self) -> dict[str, Any]:
        """What Flask and its extensions read from ``app.config``."""
        return {
            "SECRET_KEY": self.secret_key,
            "MAX_CONTENT_LENGTH": self.max_content_length,
            "RATELIMIT_STORAGE_URI": self.ratelimit_storage_uri,
            # Redis down must not take the API down with it: count in this
            # process's memory until it is back.
            "RATELIMIT_IN_MEMORY_FALLBACK_ENABLED": True,
            "RATELIMIT_SWALLOW_ERRORS": True,
            "BABEL_DEFAULT_LOCALE": LANGUAGES[0],
        }


def _convert(name: str, raw: Any, kind: Any) -> Any:
    """``raw`` (a string from the environment, or a typed override) as ``kind``."""
    optional = False
    if isinstance(kind, types.UnionType) or typing.get_origin(kind) is typing.Union:
        args = [a for a in typing.get_args(kind) if a is not type(None)]
        optional = len(args) < len(typing.get_args(kind))
        kind = args[0]
    if raw is None:
        if optional:
            return None
        raise SettingsError(f"{name} must be set")
    if kind is bool:
        if isinstance(raw, bool):
            return raw
        text = str(raw).strip().lower()
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
        raise SettingsError(f"{name} must be 1 or 0 (true/false, yes/no, on/off), got {raw!r}")
    if kind in (int, float):
        if isinstance(raw, bool):
            raise SettingsError(f"{name} must be a number, got {raw!r}")
        try:
            return kind(raw.strip() if isinstance(raw, str) else raw)
        except (TypeError, ValueError):
            what = "a whole number" if kind is int else "a number"
            raise SettingsError(f"{name} must be {what}, got {raw!r}") from None
    if kind is Path:
        return Path(os.fspath(raw)).expanduser()
    if kind is str:
        return str(raw)
    raise TypeError(f"setting {name} has a type Settings cannot read: {kind!r}")


T = TypeVar("T")


def made_on_first_use(app: Any, name: str, make: Callable[[Settings], T]) -> T:
    """``app.extensions[name]``, made from the app's settings the first time
    it is asked for (a key that creating the app did not load)."""
    if app is None:
        from flask import current_app

        app = current_app._get_current_object()
    found = app.extensions.get(name)
    if found is None:
        found = make(get_settings(app))
        app.extensions[name] = found
    return found


def get_settings(app: Any = None) -> Settings:
    """The settings of ``app`` (default: the current Flask app)."""
    if app is None:
        from flask import current_app

        app = current_app
    return app.extensions["wallet.settings"]
