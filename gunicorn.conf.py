"""gunicorn's settings for ``gunicorn wsgi:app`` started in this directory
(gunicorn reads ./gunicorn.conf.py by default); flags on its command line
still win."""


def on_starting(server: object) -> None:
    # Check settings and schema in the master before any worker is forked:
    # otherwise every worker prints the refusal, and gunicorn's master, halting
    # on the first worker's exit status 4, may crash with a traceback on the
    # second one's.
    from wallet import check_startup
    from wallet.config import StartupError, exit_cannot_start

    try:
        check_startup()
    except StartupError as exc:
        exit_cannot_start(exc)
