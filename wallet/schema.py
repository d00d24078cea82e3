"""The database schema: Alembic migrations, applied by a command.

``flask --app wsgi db upgrade`` applies them; every command of the outside
contract and the embedded ``flask run`` do so first as well. A web process
started any other way (gunicorn in scale mode) only checks, and refuses to
start on a schema older than its code (``require_current_schema``): with many
web processes, none should race to change the schema under the others.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path
from typing import Any

import click
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from flask.cli import with_appcontext
from sqlalchemy import create_engine
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

from wallet.config import StartupError, get_settings
from wallet.db import UNAVAILABLE, describe_unavailable

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
UPGRADE_COMMAND = "flask --app wsgi db upgrade"


class SchemaOutdated(StartupError):
    """The database's schema is older (or other) than the code's."""


class DatabaseUnavailable(StartupError):
    """The database cannot be reached; the message names it (no password)."""

    def __init__(self, url: str, exc: BaseException) -> None:
        super().__init__(f"cannot reach the database {safe_url(url)}: {describe_unavailable(exc)}")


def alembic_config(url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    # ConfigParser interpolation would eat the % of URL-encoded passwords.
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def safe_url(url: str) -> str:
    """The URL for messages and logs: the password hidden."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 - an unparsable URL still deserves a message
        return "<unparsable database URL>"


def sqlite_path(url: str) -> Path | None:
    """The file behind a SQLite URL (None for memory or other backends)."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or not parsed.database or parsed.database == ":memory:":
        return None
    return Path(parsed.database)


@lru_cache(maxsize=1)
def head_revision() -> str | None:
    return ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()


def current_revision(url: str) -> str | None:
    """The revision the database is at; None for an empty database."""
    path = sqlite_path(url)
    if path is not None and not path.exists():
        return None  # do not create the file just to look at it
    engine = create_engine(url, poolclass=NullPool)
    try:
        with engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()
    except UNAVAILABLE as exc:
        raise DatabaseUnavailable(url, exc) from None
    finally:
        engine.dispose()


def upgrade_schema(url: str) -> None:
    """Apply every migration not yet applied. Safe from several processes at
    once: Alembic's version table makes it a no-op once done, and
    PostgreSQL serialises concurrent DDL. Raises DatabaseUnavailable."""
    path = sqlite_path(url)
    if path is not None:
        _private_sqlite_file(path)
    try:
        command.upgrade(alembic_config(url), "head")
    except UNAVAILABLE as exc:
        raise DatabaseUnavailable(url, exc) from None


def _private_sqlite_file(path: Path) -> None:
    """The SQLite file readable by this user only: SQLite gives its -wal and
    -shm files the database file's mode, so this covers them too."""
    if not path.parent.exists():
        path.parent.mkdir(parents=True, mode=0o700)
    if not path.exists():
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))
    elif path.stat().st_mode & 0o077 and path.stat().st_uid == os.getuid():
        path.chmod(0o600)


def require_current_schema(url: str) -> None:
    """Raise SchemaOutdated, saying which command to run, unless the database
    is at the code's revision."""
    at, head = current_revision(url), head_revision()
    if at == head:
        return
    where = safe_url(url)
    state = "is empty" if at is None else f"is at revision {at}"
    raise SchemaOutdated(
        f"the database {where} {state} but this code needs revision {head}: run `{UPGRADE_COMMAND}`"
    )


def schema_first(command_func: Callable[..., Any]) -> Callable[..., Any]:
    """For CLI commands: run in the app context, after bringing the schema up
    to date, so each command works on an empty database."""

    @functools.wraps(command_func)
    def run(*args: Any, **kwargs: Any) -> Any:
        url = get_settings().database_url
        with one_line_errors(url):
            upgrade_schema(url)
            return command_func(*args, **kwargs)

    return with_appcontext(run)


@contextmanager
def one_line_errors(url: str) -> Iterator[None]:
    """A CLI command's database trouble as one line and exit status 1."""
    try:
        yield
    except StartupError as exc:
        raise click.ClickException(str(exc)) from None
    except UNAVAILABLE as exc:
        raise click.ClickException(str(DatabaseUnavailable(url, exc))) from None
