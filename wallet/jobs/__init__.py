"""Background work: draining the outbox, in-process or on Celery workers."""

from flask import Flask


def init_app(app: Flask) -> None:
    """Registers this area's blueprints and services on the app."""
