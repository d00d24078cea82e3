"""The ``flask --app wsgi ...`` commands of the outside contract.

Each command is a thin shell over a function of its area; create_app() has
already brought the schema up to date, so every command works on an empty
database.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone

import click
from flask import Flask, current_app
from flask.cli import run_command, with_appcontext


def started_by_flask_run() -> bool:
    """True while ``flask run`` builds the app it is about to serve (Flask
    loads the app inside the run command's click context)."""
    ctx = click.get_current_context(silent=True)
    return ctx is not None and ctx.command is run_command


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
@with_appcontext
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
@with_appcontext
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
@with_appcontext
def demo_command() -> None:
    """Load a demo brand, two clubs and a few members; prints them as JSON."""
    from wallet.demo import load_demo

    _echo_json(load_demo(current_app))


@click.command("worker")
@click.option("--concurrency", type=int, default=None, help="Worker threads or processes.")
@with_appcontext
def worker_command(concurrency: int | None) -> None:
    """Run outbox workers (scale mode: Celery on BROKER_URL)."""
    from wallet.jobs.worker import run_worker

    run_worker(current_app._get_current_object(), concurrency=concurrency)  # type: ignore[attr-defined]


@click.command("expire-points")
@click.option("--as-of", "as_of", default=None, help="ISO 8601 instant, default now.")
@with_appcontext
def expire_points_command(as_of: str | None) -> None:
    """Run every time-based rule as of an instant; idempotent per instant."""
    from wallet.extensions import get_db
    from wallet.loyalty.schedule import run_time_rules

    report = run_time_rules(get_db(), _parse_instant(as_of))
    _echo_json(report)


def register_commands(app: Flask) -> None:
    for command in (
        create_brand_command,
        dev_certs_command,
        demo_command,
        worker_command,
        expire_points_command,
    ):
        app.cli.add_command(command)
