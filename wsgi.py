"""WSGI entry point: ``flask --app wsgi ...`` and ``gunicorn wsgi:app``."""

import sys

from wallet import create_app
from wallet.config import StartupError

try:
    app = create_app()
except StartupError as exc:
    # One line saying what to do, not a traceback, and an exit status that
    # gunicorn's master takes as "do not restart" (its APP_LOAD_ERROR).
    print(f"Wallet Clubs cannot start: {exc}", file=sys.stderr)
    sys.exit(4)
