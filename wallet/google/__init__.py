"""Google Wallet: loyalty classes and objects, save links, REST updates."""

from flask import Flask


def init_app(app: Flask) -> None:
    """Registers this area's blueprints and services on the app."""
