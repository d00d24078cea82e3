"""Apple Wallet: turns a membership into a signed .pkpass, serves the PassKit
web service and pushes updates through APNs."""

from flask import Flask


def init_app(app: Flask) -> None:
    """Registers this area's blueprints and services on the app."""
    # Signing identity, pass download route: see certs.py / download.py.
    from wallet.apple.certs import init_identity

    init_identity(app)  # a missing or mismatched real certificate stops start-up here
    from wallet.apple.download import bp as download_bp

    app.register_blueprint(download_bp)
    # PassKit web service under /apple/v1: see webservice.py.
    from wallet.apple.webservice import init_app as init_webservice

    init_webservice(app)
