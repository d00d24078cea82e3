"""Apple Wallet: turns a membership into a signed .pkpass, serves the PassKit
web service and pushes updates through APNs."""

from flask import Flask


def init_app(app: Flask) -> None:
    """Registers this area's blueprints and services on the app."""
    # Signing identity, pass download route: see certs.py / download.py.
    # PassKit web service under /apple/v1: see webservice.py.
