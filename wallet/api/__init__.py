"""The point-of-sale JSON API under /api/v1."""

from flask import Flask


def init_app(app: Flask) -> None:
    """Registers this area's blueprints and services on the app."""
