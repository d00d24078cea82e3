"""HTML pages for brands and customers."""

from flask import Flask


def init_app(app: Flask) -> None:
    """Registers this area's blueprints and services on the app."""
