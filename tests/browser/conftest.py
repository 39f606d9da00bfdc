"""Playwright (sync API) driving Debian's headless chromium against pytest-django's live server.

Never run `playwright install`: the tests use /usr/bin/chromium (scripts/ensure_chromium.sh installs it).
Screenshots of every step go to $RAMPART_SHOTS_DIR (default /tmp/rampart-shots), never into the repo.
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

# Playwright's sync API runs an event loop in this thread; the tests still call the ORM directly.
os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"

CHROMIUM = os.environ.get("RAMPART_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
SHOTS = Path(os.environ.get("RAMPART_SHOTS_DIR", "/tmp/rampart-shots"))


@pytest.fixture(scope="module")
def browser():
    if not (os.path.exists(CHROMIUM) or shutil.which(CHROMIUM)):
        pytest.fail(f"Browser tests need Debian's chromium at {CHROMIUM}: run scripts/ensure_chromium.sh "
                    "(or 'sudo apt-get install chromium').")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield browser
        browser.close()


@pytest.fixture
def page(browser, live_server):
    context = browser.new_context(base_url=live_server.url, viewport={"width": 1440, "height": 900})
    context.set_default_timeout(10_000)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.js_errors = errors
    yield page
    context.close()


@pytest.fixture
def shot(request):
    """shot(page, "step") saves a full-page screenshot named after the test and the step."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    counter = iter(range(1, 100))

    def take(page, step: str) -> Path:
        path = SHOTS / f"{request.node.name}-{next(counter):02d}-{step}.png"
        page.screenshot(path=str(path), full_page=True)
        return path

    return take


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_teardown(item, nextitem):
    """live_server needs transactional_db, which empties every table after the test (role groups come back
    through post_migrate). Once every fixture is torn down, put the RMF catalogues back so that later tests
    in the session still find the 72 subcategories."""
    yield
    # After the last test the test database is already gone (and the connection points elsewhere): skip.
    if nextitem is not None and "live_server" in getattr(item, "fixturenames", ()):
        from pytest_django.plugin import blocking_manager_key

        from governance.rmf.catalogues import load_catalogues

        with item.config.stash[blocking_manager_key].unblock():
            load_catalogues()


def login(page, email: str, password: str) -> None:
    page.goto("/accounts/login/")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(lambda url: "/accounts/login/" not in url)
