"""Browser fixtures: Debian's Chromium driven by Playwright, and the site served from a thread."""

from __future__ import annotations

import os
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from werkzeug.serving import make_server

from tests.conftest import make_site, need_service
from tests.fakes import HashingEmbedder

ROOT = Path(__file__).parent.parent.parent
CHROMIUM = os.environ.get("KB_CHROMIUM", "/usr/bin/chromium")
AXE = Path(__file__).parent / "node_modules" / "axe-core" / "axe.min.js"
SHOTS = Path(os.environ.get("KB_SCREENSHOTS", ROOT / "screenshots"))


@pytest.fixture(scope="session")
def browser():
    """Headless Chromium (fails in CI, skips elsewhere, when it is not installed)."""
    if not Path(CHROMIUM).exists():
        need_service("Chromium", f"{CHROMIUM} not found (apt-get install -y chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield chromium
        chromium.close()


def closing(app):
    """The application with each response closed however werkzeug's test server leaves it.

    When a browser drops a connection mid-response (a cancelled favicon), werkzeug's
    development server abandons the response without closing it, and the open file is
    reported later, during whichever test runs then. gunicorn closes responses itself.
    """

    def serve(environ, start_response):
        response = app(environ, start_response)
        try:
            yield from response
        finally:
            if hasattr(response, "close"):
                response.close()

    return serve


class Live:
    """The site on a local port, with its application for looking into the database."""

    def __init__(self, app, url: str):
        self.app, self.url = app, url


@pytest.fixture
def live(tmp_path: Path) -> Iterator[Live]:
    """The bundled sample articles served by a real HTTP server in a thread (SQLite, fake embedder)."""
    articles = tmp_path / "articles"
    shutil.copytree(ROOT / "articles", articles)
    app = make_site(tmp_path, articles, HashingEmbedder(), CONTACT_MIN_SECONDS=0, BASE_URL="")
    server = make_server("127.0.0.1", 0, closing(app), threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield Live(app, f"http://127.0.0.1:{server.server_port}")
    finally:
        server.shutdown()
        app.extensions["kb_db"].engine.dispose()


@pytest.fixture
def page(browser, live: Live):
    """A fresh browser tab with clipboard access; CSP violations are collected in window.__csp."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=live.url)
    context.add_init_script(
        "window.__csp = []; document.addEventListener('securitypolicyviolation', e => "
        "window.__csp.push(e.violatedDirective + ' ' + e.blockedURI));")
    tab = context.new_page()
    dialogs: list[str] = []
    tab.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    tab.dialogs = dialogs  # type: ignore[attr-defined]
    yield tab
    context.close()


def shots_folder() -> Path:
    SHOTS.mkdir(parents=True, exist_ok=True)
    return SHOTS
