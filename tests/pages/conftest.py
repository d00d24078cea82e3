"""Browser fixtures: the app served on a real local port, and Debian's
chromium driven by Playwright at phone and laptop size.

The browser is started once per run; each test gets fresh contexts (cookies,
storage) and an app of its own. Set PAGE_SCREENSHOTS=<dir> to keep a
screenshot of every page a test calls ``shoot`` on (never committed).
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from tests.support.server import live_server as serve

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-quic", "--no-first-run"]
PHONE = {"viewport": {"width": 390, "height": 844}, "device_scale_factor": 3, "is_mobile": True,
         "has_touch": True}
LAPTOP = {"viewport": {"width": 1366, "height": 900}}


@dataclass
class LiveServer:
    url: str
    app: Flask


@pytest.fixture
def live_server(app_config: dict[str, Any], request: pytest.FixtureRequest) -> Iterator[LiveServer]:
    """The test app behind a werkzeug server on 127.0.0.1, in a thread; its
    PUBLIC_BASE_URL is that server, so links in pages and passes lead back to it."""
    made: list[Flask] = []

    def app_at(url: str) -> Flask:
        app_config["PUBLIC_BASE_URL"] = url
        made.append(request.getfixturevalue("app"))
        return made[0]

    with serve(app_at) as url:
        yield LiveServer(url, made[0])


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    if not CHROMIUM.exists():
        pytest.skip("browser tests need Debian's chromium at /usr/bin/chromium: apt-get install -y chromium")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def new_page(browser: Any, live_server: LiveServer) -> Iterator[Callable[..., Any]]:
    """Opens a page in a fresh browser context: ``new_page("phone")`` or
    ``new_page("laptop", locale="ru-RU")``; extra keywords go to the context."""
    contexts: list[Any] = []

    def open_page(device: str = "phone", *, locale: str = "en-US", **options: Any) -> Any:
        settings = {**(PHONE if device == "phone" else LAPTOP), "locale": locale, "base_url": live_server.url,
                    "accept_downloads": True, **options}
        context = browser.new_context(**settings)
        context.set_default_timeout(10_000)
        contexts.append(context)
        return context.new_page()

    yield open_page
    for context in contexts:
        context.close()


@pytest.fixture
def phone(new_page: Callable[..., Any]) -> Any:
    return new_page("phone")


@pytest.fixture
def laptop(new_page: Callable[..., Any]) -> Any:
    return new_page("laptop")


@pytest.fixture
def shoot() -> Callable[[Any, str], None]:
    """``shoot(page, name)``: a full-page screenshot into $PAGE_SCREENSHOTS
    (when set), for people to look at."""
    folder = os.environ.get("PAGE_SCREENSHOTS")

    def take(page: Any, name: str) -> None:
        if not folder:
            return
        width = page.viewport_size["width"] if page.viewport_size else 0
        safe = re.sub(r"[^A-Za-z0-9_.-]+", "-", name)
        Path(folder).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(folder) / f"{safe}-{width}.png"), full_page=True)

    return take
