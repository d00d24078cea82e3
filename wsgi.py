"""WSGI entry point: ``flask --app wsgi ...`` and ``gunicorn wsgi:app``."""

from wallet import create_app
from wallet.config import StartupError, exit_cannot_start

try:
    app = create_app()
except StartupError as exc:
    exit_cannot_start(exc)
