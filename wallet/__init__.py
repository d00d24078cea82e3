"""Wallet Clubs: loyalty cards for Apple Wallet and Google Wallet.

``create_app()`` is the application factory; nothing here runs at import time.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix

from wallet.config import PROJECT_ROOT, Settings


def create_app(test_config: Mapping[str, Any] | None = None) -> Flask:
    """The app, configured from the environment.

    ``test_config`` overrides settings by their variable names (see
    wallet.config.Settings); any other key goes to ``app.config`` as it is
    (Flask's and its extensions' own keys, such as TESTING)."""
    from wallet.http_rules import App

    overrides = dict(test_config or {})
    settings = Settings.load(overrides=overrides)
    _bring_schema(settings)
    app = App(
        __name__,
        instance_path=str(settings.instance_path.resolve()),
        template_folder=str(PROJECT_ROOT / "templates"),
    )
    app.extensions["wallet.settings"] = settings
    _private_dir(Path(app.instance_path))
    if any((settings.proxy_x_for, settings.proxy_x_proto, settings.proxy_x_host, settings.proxy_x_port,
            settings.proxy_x_prefix)):
        app.wsgi_app = ProxyFix(  # type: ignore[method-assign]
            app.wsgi_app, x_for=settings.proxy_x_for, x_proto=settings.proxy_x_proto,
            x_host=settings.proxy_x_host, x_port=settings.proxy_x_port, x_prefix=settings.proxy_x_prefix,
        )
    app.config.from_mapping(settings.flask_config())
    names = set(Settings.env_names())
    app.config.from_mapping({k: v for k, v in overrides.items() if k not in names})
    if settings.secret_key is None:
        app.secret_key = _instance_secret(Path(app.instance_path))

    from wallet import extensions, http_rules, outage, routing

    routing.init_app(app)
    http_rules.init_app(app)
    extensions.init_app(app)
    outage.init_app(app)

    from wallet.apple import init_app as init_apple
    from wallet.api import init_app as init_api
    from wallet.google import init_app as init_google
    from wallet.jobs import init_app as init_jobs
    from wallet.web import init_app as init_web

    init_apple(app)
    init_google(app)
    init_api(app)
    init_web(app)
    init_jobs(app)

    from wallet.cli import register_commands

    register_commands(app)
    return app


def check_startup() -> None:
    """Raise StartupError for settings or a schema create_app() would refuse,
    without building the app: gunicorn's master runs it once before forking
    workers (gunicorn.conf.py), so a refusal is one line, not one per worker."""
    _bring_schema(Settings.load())


def _bring_schema(settings: Settings) -> None:
    """``flask run`` (the embedded server) brings the schema up to date, as
    other commands do when they run; any other server refuses an outdated
    schema instead of changing it under its siblings."""
    from wallet.cli import running_flask_cli, started_by_flask_run
    from wallet.schema import require_current_schema, upgrade_schema

    if started_by_flask_run():
        upgrade_schema(settings.database_url)
    elif not running_flask_cli():
        require_current_schema(settings.database_url)


def _private_dir(path: Path) -> None:
    """instance/ holds the database, secrets and keys: this user's only."""
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    info = path.stat()
    if info.st_mode & 0o077 and info.st_uid == os.getuid():
        path.chmod(0o700)


def _instance_secret(instance: Path) -> str:
    """A development secret kept in instance/ so sessions survive restarts."""
    path = instance / "secret_key"
    if path.exists():
        return path.read_text().strip()
    key = secrets.token_hex(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(key)
    return key
