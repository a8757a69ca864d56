"""Screen pop and the open-ticket choice in headless Chromium, with Zendesk served by the stub."""

from __future__ import annotations

import re

import pytest

from tests.browser.conftest import sign_in_page, wait_until
from tests.browser.test_console import stored_interaction, voice_params
from tests.conftest import AUTH_TOKEN, _empty_real_database, create_agent, real_database_url, real_redis_url
from tests.integrations.conftest import (  # noqa: F401  (session fixtures used below)
    ZENDESK_EMAIL,
    ZENDESK_TOKEN,
    ca_bundle,
    certificate_authority,
    stub_ssl_context,
)
from tests.stubs.zendesk import ZendeskStub

CALLER = "+14155550123"
ZENDESK_AGENT_ID = 7001


@pytest.fixture(scope="module")
def zendesk_stub(stub_ssl_context, ca_bundle):
    """One Zendesk stub for the module's live server, trusted by requests for as long as it runs."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("REQUESTS_CA_BUNDLE", str(ca_bundle))
        patch.delenv("CURL_CA_BUNDLE", raising=False)
        patch.setenv("NO_PROXY", "127.0.0.1,localhost")
        patch.setenv("no_proxy", "127.0.0.1,localhost")
        with ZendeskStub(stub_ssl_context, email=ZENDESK_EMAIL, api_token=ZENDESK_TOKEN) as stub:
            yield stub


@pytest.fixture(scope="module")
def live_app(tmp_path_factory, zendesk_stub):
    """The live application of tests/browser/conftest.py, with Zendesk enabled on the stub."""
    from app import create_app

    config = {
        "TESTING": True,
        "INSTANCE_PATH": str(tmp_path_factory.mktemp("live-instance")),
        "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
        "SECRET_KEY": "browser-test-secret-key",
        "DEMO_DATA": False,
        "DEFAULT_REGION": "US",
        "CONNECTORS": "directory,zendesk",
        "ZENDESK_URL": zendesk_stub.url,
        "ZENDESK_EMAIL": ZENDESK_EMAIL,
        "ZENDESK_API_TOKEN": ZENDESK_TOKEN,
        "STREAM_HEARTBEAT_S": 1,
    }
    database_url = real_database_url()
    if database_url:
        _empty_real_database(database_url)
        config["DATABASE_URL"] = database_url
    if real_redis_url():
        config["REDIS_URL"] = real_redis_url()
    app = create_app(config)
    app.extensions["callcard.db"].upgrade()
    yield app
    app.extensions["callcard.lookup"].close()
    app.extensions["callcard.db"].engine.dispose()


@pytest.fixture
def zendesk_caller(app, zendesk_stub):
    """Seed the caller in an emptied stub: an end user with one open ticket."""
    with zendesk_stub.lock:
        zendesk_stub.users.clear()
        zendesk_stub.tickets.clear()
        zendesk_stub.displayed.clear()
        zendesk_stub.displayed_tickets.clear()
    user = zendesk_stub.add_user(name="Ada Example", phone="+1 415-555-0123")
    ticket = zendesk_stub.add_ticket(requester_id=user["id"], status="open", subject="Invoice is wrong")
    return {"user_id": user["id"], "ticket_id": ticket["id"]}


def test_show_in_zendesk_reaches_stub(app, live_server, open_page, zendesk_stub, zendesk_caller):
    create_agent(app, email="alice@example.com", crm_user_ids={"zendesk": ZENDESK_AGENT_ID})
    page = open_page()
    sign_in_page(page, live_server, "alice@example.com")

    live_server.post_twilio("/webhooks/twilio/voice", voice_params("CA" + "7" * 32, CALLER))
    button = page.get_by_role("button", name="Show in Zendesk")
    button.click()

    page.wait_for_selector(".card .match-state:text('Opened in your Zendesk tab.')")
    assert zendesk_stub.displayed == [(ZENDESK_AGENT_ID, zendesk_caller["user_id"])]
    assert zendesk_stub.displayed_tickets == []


def test_keyboard_pick_of_open_ticket_stored(app, live_server, open_page, zendesk_caller):
    create_agent(app, email="bob@example.com", client_identity="bob")
    page = open_page()
    sign_in_page(page, live_server, "bob@example.com")

    live_server.post_twilio("/webhooks/twilio/voice", voice_params("CA" + "8" * 32, CALLER))
    page.get_by_role("radio", name=re.compile("Ada Example — Zendesk")).check()
    # The ticket choice appears once the server has stored the record.
    tickets = page.get_by_role("group", name="Which case or ticket is this call about?")
    tickets.wait_for()
    tickets.get_by_role("radio", name="None of these").focus()
    page.keyboard.press("ArrowDown")

    page.wait_for_selector(".card .match-state:text('Choice saved; it will be logged with this call.')")
    assert tickets.get_by_role("radio", name=re.compile("Invoice is wrong")).is_checked()
    chosen = wait_until(lambda: (stored_interaction(app, "CA" + "8" * 32).chosen_match or {}).get("open_item_id"))
    assert chosen == str(zendesk_caller["ticket_id"])
    assert page.get_by_role("button", name="Show in Zendesk").count() == 0
