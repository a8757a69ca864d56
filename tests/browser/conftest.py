"""Browser-test fixtures: the application on a real HTTP server, and headless Chromium.

One server serves a whole module and one Chromium the whole run. Each test starts
from empty tables and an empty Redis database, and opens its own browser context.
"""

from __future__ import annotations

import os
import threading
import time
from urllib.parse import urlencode, urlsplit

import pytest
import requests
import sqlalchemy as sa
from werkzeug.serving import make_server

from tests.conftest import AUTH_TOKEN, _empty_real_database, real_database_url, real_redis_url, redis_client, sign

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]
LOCAL_HOSTS = frozenset({"127.0.0.1", "localhost"})
PASSWORD = "correct horse battery"


class LiveServer:
    """The application served by werkzeug on 127.0.0.1 in a background thread."""

    def __init__(self, app):
        self.app = app
        self.server = make_server("127.0.0.1", 0, app, threaded=True)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def start(self) -> "LiveServer":
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def post_twilio(self, path: str, params: dict[str, str]) -> requests.Response:
        """Post a form webhook signed as Twilio signs it for this server's URL."""
        url = self.url + path
        headers = {"X-Twilio-Signature": sign(url, params, AUTH_TOKEN),
                   "Content-Type": "application/x-www-form-urlencoded"}
        response = requests.post(url, data=urlencode(params), headers=headers, timeout=10)
        assert response.status_code == 200, response.text
        return response


@pytest.fixture(scope="module")
def live_app(tmp_path_factory):
    from app import create_app

    database_url = real_database_url()
    redis_url = real_redis_url()
    config = {
        "TESTING": True,
        "INSTANCE_PATH": str(tmp_path_factory.mktemp("live-instance")),
        "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
        "SECRET_KEY": "browser-test-secret-key",
        "DEMO_DATA": False,
        "DEFAULT_REGION": "US",
        "CONNECTORS": "directory",
        # A short heartbeat lets the server notice closed streams quickly.
        "STREAM_HEARTBEAT_S": 1,
    }
    if database_url:
        _empty_real_database(database_url)
        config["DATABASE_URL"] = database_url
    if redis_url:
        config["REDIS_URL"] = redis_url
    app = create_app(config)
    app.extensions["callcard.db"].upgrade()
    yield app
    app.extensions["callcard.lookup"].close()
    app.extensions["callcard.db"].engine.dispose()


@pytest.fixture(scope="module")
def live_server(live_app):
    server = LiveServer(live_app).start()
    yield server
    server.stop()


@pytest.fixture
def app(live_app, live_server):
    """The live application, emptied before the test."""
    _empty_tables(live_app)
    redis_client(live_app).flushdb()
    return live_app


def _empty_tables(app) -> None:
    from app.models import Base

    engine = app.extensions["callcard.db"].engine
    tables = [table.name for table in Base.metadata.sorted_tables]
    with engine.begin() as connection:
        if engine.dialect.name == "postgresql":
            connection.execute(sa.text(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE"))
            return
        for table in reversed(Base.metadata.sorted_tables):
            connection.execute(table.delete())


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import sync_playwright

    if not os.path.exists(CHROMIUM):
        # CI installs Chromium (.ci/run), so there a missing browser is a failure.
        if os.environ.get("CI"):
            pytest.fail(f"{CHROMIUM} is not installed; apt-get install chromium")
        pytest.skip(f"{CHROMIUM} is not installed; apt-get install chromium")
    playwright = sync_playwright().start()
    chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
    yield chromium
    chromium.close()
    playwright.stop()


@pytest.fixture
def open_page(browser):
    """Return a factory of pages in new contexts; fail the test if a page calls a non-local host."""
    contexts = []
    outside: list[str] = []

    def factory(locale: str = "en-US"):
        context = browser.new_context(locale=locale, viewport={"width": 1280, "height": 720})
        contexts.append(context)
        page = context.new_page()
        page.set_default_timeout(5000)
        page.on("request", lambda request: _check_local(request.url, outside))
        return page

    yield factory

    for context in contexts:
        context.close()
    assert not outside, f"pages requested non-local URLs: {outside}"


def _check_local(url: str, outside: list[str]) -> None:
    parts = urlsplit(url)
    if parts.scheme in ("http", "https", "ws", "wss") and parts.hostname not in LOCAL_HOSTS:
        outside.append(url)


def sign_in_page(page, server: LiveServer, email: str, password: str = PASSWORD) -> None:
    """Sign in through the form and wait until the console's stream is connected."""
    page.goto(server.url + "/login")
    page.fill("#email", email)
    page.fill("#password", password)
    page.click("button[type=submit]")
    page.wait_for_url(server.url + "/")
    page.wait_for_selector('#connection[data-state="connected"]')


def wait_until(condition, timeout_s: float = 5.0, interval_s: float = 0.05):
    """Poll `condition` until it returns a true value; return that value or fail."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout_s} s")
        time.sleep(interval_s)
