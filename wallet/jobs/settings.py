"""Worker settings: the app's config first, then the environment.

config.py holds the contract's settings; these tuning knobs of the workers
are read here so a worker started from the shell (``flask --app wsgi worker``,
``celery -A wallet.jobs.celery_app worker``) takes them from its environment.
"""

from __future__ import annotations

import os
from typing import Any


def setting(app: Any, name: str, default: Any = None) -> Any:
    value = app.config.get(name) if app is not None else None
    if value is None or value == "":
        value = os.environ.get(name)
    if value is None or value == "":
        return default
    return value


def number(app: Any, name: str, default: float) -> float:
    return float(setting(app, name, default))
