"""Error pages: HTML for pages, while the machine interfaces keep theirs.

The JSON API answers its own errors (its blueprint's handlers and a
before_request hook for routing errors); PassKit and Google routes answer
what their code or Werkzeug answers. Everything else gets a page in the
reader's language that says what happened and what to do next.
"""

from __future__ import annotations

import time

from flask import Flask, render_template, request, url_for
from flask_babel import lazy_gettext as _l
from werkzeug.exceptions import HTTPException

from wallet.extensions import limiter

MACHINE_PREFIXES = ("/api/", "/apple/", "/google/")

_PAGES = {
    400: (_l("That request did not work"),
          _l("The page could not use what was sent. If you were filling in a form, go back, reload it and try again.")),
    403: (_l("Not allowed"), _l("You cannot open this page. If you work for a brand, your role does not include it: "
                                "ask the brand's owner.")),
    404: (_l("Page not found"), _l("There is nothing here. Check the address, or start again from the home page.")),
    405: (_l("Not allowed"), _l("This page cannot be used that way.")),
    413: (_l("Too large"), _l("What you sent is too large. Choose a smaller file and try again.")),
    429: (_l("Too many attempts"), _l("Please wait a little and try again.")),
    500: (_l("Something went wrong"), _l("It is our fault, not yours. Please try again in a moment.")),
    503: (_l("Temporarily unavailable"), _l("The service is busy or being updated. Please try again in a moment.")),
}


def _is_page(path: str) -> bool:
    return not (path + "/").startswith(MACHINE_PREFIXES) and path not in ("/api", "/apple", "/google")


def _retry_after() -> int | None:
    current = limiter.current_limit
    if current is None:
        return None
    return max(1, int(current.reset_at - time.time()) + 1)


def _error_page(exc: HTTPException):  # type: ignore[no-untyped-def]
    if not _is_page(request.path):
        return exc
    status = exc.code or 500
    title, text = _PAGES.get(status) or _PAGES[400 if status < 500 else 500]
    if status == 400 and exc.description and "CSRF" in exc.description:
        text = _l("This form was open too long or came from elsewhere. Reload the page and send it again.")
    response = exc.get_response()
    # Someone in the portal whose role does not include a page goes back to
    # the portal, which offers what the role may open.
    back = ((url_for("portal.dashboard"), _l("Back to the portal"))
            if status == 403 and (request.path + "/").startswith("/portal/") else
            (url_for("public.home"), _l("Go to the home page")))
    body = render_template("errors/error.html", status=status, title=title, text=text, back=back)
    response.set_data(body)
    response.mimetype = "text/html"
    if status == 429 and "Retry-After" not in response.headers:
        seconds = _retry_after()
        if seconds:
            response.headers["Retry-After"] = str(seconds)
    return response


def init_app(app: Flask) -> None:
    # An unhandled exception reaches this too, as an InternalServerError.
    app.register_error_handler(HTTPException, _error_page)
