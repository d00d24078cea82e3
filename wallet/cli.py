"""The ``flask --app wsgi ...`` commands of the outside contract.

Each command is a thin shell over a function of its area, and brings the
schema up to date first (``schema_first``), so every command works on an
empty database.
"""

from __future__ import annotations

import json
import os
from datetime import datetime, timezone

import click
from flask import Flask, current_app
from flask.cli import FlaskGroup, run_command, with_appcontext

from wallet.schema import schema_first, upgrade_schema


def started_by_flask_run() -> bool:
    """True while ``flask run`` builds the app it is about to serve (Flask
    loads the app inside the run command's click context)."""
    ctx = click.get_current_context(silent=True)
    return ctx is not None and ctx.command is run_command


def running_flask_cli() -> bool:
    """True while the ``flask`` command line builds the app."""
    ctx = click.get_current_context(silent=True)
    return ctx is not None and isinstance(ctx.find_root().command, FlaskGroup)


def _echo_json(data: object) -> None:
    click.echo(json.dumps(data, ensure_ascii=False, indent=2))


def _parse_instant(value: str | None) -> datetime:
    if not value:
        return datetime.now(timezone.utc)
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError as exc:
        raise click.BadParameter(f"not an ISO 8601 date-time: {value!r}") from exc
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)
    return parsed.astimezone(timezone.utc)


@click.command("create-brand")
@click.option("--name", required=True, help="The brand's display name.")
@click.option("--email", required=True, help="The owner's login email.")
@click.option("--password", required=True, help="The owner's password.")
@schema_first
def create_brand_command(name: str, email: str, password: str) -> None:
    """Create a brand with its first API key; prints brand_id and api_key."""
    from wallet.extensions import get_db
    from wallet.loyalty.brands import BrandError, create_brand

    try:
        with get_db().transaction() as session:
            brand, api_key = create_brand(session, name=name, email=email, password=password)
            brand_id = brand.id
    except BrandError as exc:
        raise click.ClickException(str(exc)) from exc
    _echo_json({"brand_id": brand_id, "api_key": api_key})


@click.command("dev-certs")
@click.option("--force", is_flag=True, help="Replace an existing development chain.")
@schema_first
def dev_certs_command(force: bool) -> None:
    """Write the development certificate chain under instance/."""
    from wallet.apple.certs import write_dev_chain
    from wallet.config import get_settings

    settings = get_settings()
    paths = write_dev_chain(
        settings.dev_certs_dir,
        pass_type_identifier=settings.pass_type_identifier,
        team_identifier=settings.team_identifier,
        force=force,
    )
    _echo_json({name: str(path) for name, path in paths.items()})


@click.command("demo")
@click.option("--history", is_flag=True,
              help="Also give the points club 14 months of generated history, for its numbers page.")
@schema_first
def demo_command(history: bool) -> None:
    """Load a demo brand, two clubs and a few members; prints them as JSON."""
    from wallet.demo import load_demo

    _echo_json(load_demo(current_app, history=history))


@click.command("worker")
@click.option("--concurrency", type=int, default=None, help="Worker threads or processes.")
@click.option("--beat", is_flag=True, help="With BROKER_URL: also run Celery beat (the schedule).")
@schema_first
def worker_command(concurrency: int | None, beat: bool) -> None:
    """Run outbox workers (scale mode: Celery on BROKER_URL) and the schedule."""
    from wallet.jobs.worker import run_worker

    os.umask(0o077)  # what a worker writes (beat's schedule file) is ours alone
    run_worker(current_app._get_current_object(), concurrency=concurrency, beat=beat)  # type: ignore[attr-defined]


@click.command("beat")
@schema_first
def beat_command() -> None:
    """Run Celery beat: triggers the time rules and purges (scale mode)."""
    from wallet.config import get_settings
    from wallet.jobs.celery_app import run_beat

    if not get_settings().broker_url:
        raise click.ClickException(
            "beat needs BROKER_URL; without a broker the web process's embedded worker and "
            "`flask --app wsgi worker` run the schedule themselves")
    os.umask(0o077)  # beat's schedule file is ours alone
    run_beat(current_app._get_current_object())  # type: ignore[attr-defined]


@click.command("expire-points")
@click.option("--as-of", "as_of", default=None, help="ISO 8601 instant, default now.")
@schema_first
def expire_points_command(as_of: str | None) -> None:
    """Run every time-based rule as of an instant; idempotent per instant."""
    from wallet.extensions import get_db
    from wallet.loyalty.schedule import run_time_rules

    report = run_time_rules(get_db(), _parse_instant(as_of))
    _echo_json(report)


@click.group("db")
def db_group() -> None:
    """The database schema."""


@db_group.command("upgrade")
@with_appcontext
def db_upgrade_command() -> None:
    """Apply every migration the database lacks (an empty one gets the whole schema)."""
    from wallet.config import get_settings
    from wallet.schema import head_revision, one_line_errors, safe_url

    url = get_settings().database_url
    with one_line_errors(url):
        upgrade_schema(url)
    click.echo(f"{safe_url(url)} is at revision {head_revision()}")


def register_commands(app: Flask) -> None:
    for command in (
        db_group,
        create_brand_command,
        dev_certs_command,
        demo_command,
        worker_command,
        beat_command,
        expire_points_command,
    ):
        app.cli.add_command(command)
