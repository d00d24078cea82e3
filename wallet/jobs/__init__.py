"""Background work: draining the outbox, in-process or on Celery workers.

- ``wallet.jobs.outbox``: claim rows with a lease, finish or back off; ``drain(app)``.
- ``wallet.jobs.dispatch``: handlers by outbox kind (card.changed, webhook, ...).
- ``wallet.jobs.embedded``: the daemon thread of the embedded mode.
- ``wallet.jobs.celery_app``: Celery app and task of the scale mode.
- ``wallet.jobs.worker``: ``flask --app wsgi worker``.
"""

import os

from flask import Flask


def init_app(app: Flask) -> None:
    """Wires the wake-up after commits that write outbox rows: a Celery task
    with BROKER_URL, else the embedded thread (started on first use)."""
    from wallet.extensions import get_db
    from wallet.jobs import nudge

    db = get_db(app)
    engines = {db.engine, db.write_engine}
    if app.config.get("BROKER_URL"):
        from wallet.jobs.celery_app import configure, enqueue_drain

        configure(app)
        for engine in engines:
            nudge.register_waker(engine, enqueue_drain)
    elif app.config.get("EMBEDDED_WORKER"):
        from wallet.jobs.embedded import EmbeddedWorker

        worker = EmbeddedWorker(app)
        app.extensions["wallet.jobs.embedded"] = worker
        for engine in engines:
            nudge.register_waker(engine, worker.wake)
        app.before_request(worker.ensure_started)
        if os.environ.get("FLASK_RUN_FROM_CLI") == "true":
            worker.ensure_started()  # `flask run`: drain what is waiting before any request
