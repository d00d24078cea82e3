"""Google Wallet: loyalty classes and objects, save links, REST updates."""

from flask import Flask


def init_app(app: Flask) -> None:
    """Loads the service account that signs save links; serves class images."""
    from wallet.google.identity import init_identity

    init_identity(app)
    from wallet.google.routes import bp

    app.register_blueprint(bp)
