"""Pages for brands and customers (the portal comes with its own issue);
for now the service's front door and a health check for load balancers."""

from flask import Flask

from wallet.web import filters
from wallet.web.routes import bp


def init_app(app: Flask) -> None:
    """Registers this area's blueprints on the app."""
    app.register_blueprint(bp)
    filters.init_app(app)
