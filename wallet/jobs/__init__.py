"""Background work: draining the outbox, in-process or on Celery workers.

- ``wallet.jobs.outbox``: claim rows with a lease, finish or back off; ``drain(app)``.
- ``wallet.jobs.dispatch``: handlers by outbox kind (card.changed, webhook, ...).
- ``wallet.jobs.embedded``: the daemon thread of the embedded mode.
- ``wallet.jobs.celery_app``: Celery app and task of the scale mode.
- ``wallet.jobs.worker``: ``flask --app wsgi worker``.
- ``wallet.jobs.scheduler``: time rules and purges, once per slot, by a timer or Celery beat.
"""

from functools import partial

from flask import Flask


def init_app(app: Flask) -> None:
    """Wires the wake-up after commits that write outbox rows: a Celery task
    with BROKER_URL, else the embedded thread (started on first use)."""
    from wallet.config import get_settings
    from wallet.extensions import get_db
    from wallet.http_rules import everywhere
    from wallet.jobs import nudge

    settings = get_settings(app)
    db = get_db(app)
    engines = {db.engine, db.write_engine}
    if settings.broker_url:
        from wallet.jobs.celery_app import enqueue_drain, init_celery

        celery = init_celery(app)
        for engine in engines:
            nudge.register_waker(engine, partial(enqueue_drain, celery))
    elif settings.embedded_worker:
        from wallet.jobs.embedded import EmbeddedWorker

        worker = EmbeddedWorker(app, poll_seconds=settings.outbox_poll_seconds)
        app.extensions["wallet.jobs.embedded"] = worker
        for engine in engines:
            nudge.register_waker(engine, worker.wake)
        # A pass fetch may be the first request: it starts the worker too.
        app.before_request(everywhere(partial(EmbeddedWorker.ensure_started, worker), needs_request=False))
        from wallet.cli import started_by_flask_run

        if started_by_flask_run():
            worker.ensure_started()  # `flask run`: drain what is waiting before any request
