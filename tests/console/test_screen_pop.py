"""Screen pop from the console: the API against the Zendesk stub, and the button's conditions."""

from __future__ import annotations

import json
import re
import time

import pytest

from app.phone import parse_caller
from tests.conftest import create_agent
from tests.console.conftest import Console, sign_in, store_interaction
from tests.integrations.conftest import (  # noqa: F401  (fixtures used by this module's tests)
    ca_bundle,
    certificate_authority,
    stub_ssl_context,
    trust_stubs,
    zendesk_config,
    zendesk_stub,
)

CALLER = "+14155550100"
ZENDESK_AGENT_ID = 7001
DIRECTORY_MATCH = {"system": "directory", "record_type": "contact", "external_id": "12",
                   "display_name": "Ada Example", "open_items": []}


@pytest.fixture
def app(make_app, zendesk_config):
    """An application whose Zendesk connector talks to the stub; the directory cannot screen-pop."""
    return make_app(CONNECTORS="directory,zendesk", **zendesk_config)


@pytest.fixture
def mapped(make_console):
    return make_console("alice@example.com", team="support", crm_user_ids={"zendesk": ZENDESK_AGENT_ID})


@pytest.fixture
def unmapped(make_console):
    return make_console("bob@example.com", team="support", crm_user_ids={"salesforce": "005000000000001AAA"})


@pytest.fixture
def caller(zendesk_stub):
    """Seed the caller in Zendesk with one open ticket."""
    user = zendesk_stub.add_user(name="Ada Example", phone="+1 415-555-0100")
    ticket = zendesk_stub.add_ticket(requester_id=user["id"], status="open", subject="Invoice is wrong")
    return {"user_id": user["id"], "ticket_id": ticket["id"]}


def zendesk_matches(app) -> list[dict]:
    """Look the caller up in Zendesk as the voice webhook does and return the card's matches."""
    connector = app.extensions["callcard.connectors"]["zendesk"]
    return [match.to_dict() for match in connector.lookup(parse_caller(CALLER, "US"), 5)]


def call_for(app, agent_id: int, sid: str = "CA" + "z" * 32) -> int:
    matches = zendesk_matches(app) + [DIRECTORY_MATCH]
    return store_interaction(app, sid=sid, agent_id=agent_id, card={"matches": matches})


def screen_pop(console, interaction_id: int, body: dict, *, csrf: bool = True):
    return console.post_json(f"/api/interactions/{interaction_id}/screen-pop", body, csrf=csrf)


def screen_pop_systems(console) -> dict:
    html = console.client.get("/").get_data(as_text=True)
    found = re.search(r"data-screen-pop-systems='([^']*)'", html)
    assert found, "console page has no data-screen-pop-systems attribute"
    return json.loads(found.group(1))


def test_screen_pop_opens_user(app, zendesk_stub, caller, mapped):
    interaction_id = call_for(app, mapped.agent_id)

    response = screen_pop(mapped, interaction_id, {"system": "zendesk", "external_id": str(caller["user_id"])})

    assert response.status_code == 200, response.get_json()
    assert response.get_json()["screen_pop"]["open_item_id"] is None
    assert zendesk_stub.displayed == [(ZENDESK_AGENT_ID, caller["user_id"])]
    assert zendesk_stub.displayed_tickets == []


def test_screen_pop_opens_picked_ticket(app, zendesk_stub, caller, mapped):
    interaction_id = call_for(app, mapped.agent_id)

    response = screen_pop(mapped, interaction_id, {"system": "zendesk", "external_id": str(caller["user_id"]),
                                                   "open_item_id": str(caller["ticket_id"])})

    assert response.status_code == 200, response.get_json()
    assert zendesk_stub.displayed_tickets == [(ZENDESK_AGENT_ID, caller["ticket_id"])]
    assert zendesk_stub.displayed == []


def test_screen_pop_unmapped_agent_conflict(app, zendesk_stub, caller, unmapped):
    interaction_id = call_for(app, unmapped.agent_id)

    response = screen_pop(unmapped, interaction_id, {"system": "zendesk", "external_id": str(caller["user_id"])})

    assert response.status_code == 409
    assert "Map your Zendesk agent id in the admin page" in response.get_json()["message"]
    assert zendesk_stub.requests_to("/api/v2/channels/voice") == []


def test_screen_pop_record_missing_bad_gateway(app, zendesk_stub, caller, mapped):
    interaction_id = call_for(app, mapped.agent_id)
    del zendesk_stub.users[caller["user_id"]]

    response = screen_pop(mapped, interaction_id, {"system": "zendesk", "external_id": str(caller["user_id"])})

    assert response.status_code == 502
    message = response.get_json()["message"]
    assert message.startswith("Zendesk screen pop failed")
    assert "not found (HTTP 404)" in message
    assert len(zendesk_stub.requests_to("/api/v2/channels/voice", "POST")) == 1


def test_screen_pop_server_error_bad_gateway(app, zendesk_stub, caller, mapped):
    interaction_id = call_for(app, mapped.agent_id)
    zendesk_stub.service_unavailable(path="/api/v2/channels/voice")

    response = screen_pop(mapped, interaction_id, {"system": "zendesk", "external_id": str(caller["user_id"])})

    assert response.status_code == 502
    assert "Zendesk" in response.get_json()["message"]


def test_screen_pop_unexpected_error_bad_gateway(app, make_console, zendesk_stub, caller):
    console = make_console("carol@example.com", team="support", crm_user_ids={"zendesk": "not-a-number"})
    interaction_id = call_for(app, console.agent_id)

    response = screen_pop(console, interaction_id, {"system": "zendesk", "external_id": str(caller["user_id"])})

    assert response.status_code == 502
    assert "Zendesk screen pop failed with an unexpected error" in response.get_json()["message"]
    assert zendesk_stub.displayed == []


def test_screen_pop_times_out_quickly(app, zendesk_stub, caller, mapped, monkeypatch):
    from integrations import zendesk

    monkeypatch.setattr(zendesk, "SCREEN_POP_TIMEOUT_S", 0.5)
    interaction_id = call_for(app, mapped.agent_id)
    zendesk_stub.delay(3, path="/api/v2/channels/voice")

    started = time.monotonic()
    response = screen_pop(mapped, interaction_id, {"system": "zendesk", "external_id": str(caller["user_id"])})
    elapsed = time.monotonic() - started

    assert response.status_code == 504
    assert "the Zendesk screen pop timed out" in response.get_json()["message"]
    assert elapsed < 2.5


def test_screen_pop_timeout_is_short():
    from integrations import zendesk

    assert zendesk.SCREEN_POP_TIMEOUT_S <= 5
    assert zendesk.SCREEN_POP_TIMEOUT_S < zendesk.DEFAULT_REQUEST_TIMEOUT_S


def test_screen_pop_of_another_agent_forbidden(app, zendesk_stub, caller, mapped, unmapped):
    interaction_id = call_for(app, unmapped.agent_id)

    response = screen_pop(mapped, interaction_id, {"system": "zendesk", "external_id": str(caller["user_id"])})

    assert response.status_code == 403
    assert zendesk_stub.displayed == []


def test_screen_pop_without_csrf_rejected(app, zendesk_stub, caller, mapped):
    interaction_id = call_for(app, mapped.agent_id)

    response = screen_pop(mapped, interaction_id, {"system": "zendesk", "external_id": str(caller["user_id"])},
                          csrf=False)

    assert response.status_code == 400
    assert "CSRF" in response.get_json()["message"]
    assert zendesk_stub.displayed == []


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ({"external_id": "1"}, "missing field system"),
        ({"system": "zendesk"}, "missing field external_id"),
        ({"system": "zendesk", "external_id": "424242"}, "no match zendesk/424242"),
        ({"system": "zendesk", "external_id": "{user}", "open_item_id": "999"}, "field open_item_id: 999"),
        ({"system": "zendesk", "external_id": "{user}", "open_item_id": ""}, "missing field open_item_id"),
        ({"system": "directory", "external_id": "12"}, "field system: directory"),
    ],
)
def test_screen_pop_invalid_input(app, zendesk_stub, caller, mapped, body, problem):
    interaction_id = call_for(app, mapped.agent_id)
    body = {key: value.replace("{user}", str(caller["user_id"])) for key, value in body.items()}

    response = screen_pop(mapped, interaction_id, body)

    assert response.status_code == 400
    assert problem in response.get_json()["message"]
    assert zendesk_stub.requests_to("/api/v2/channels/voice") == []


def test_console_offers_screen_pop_to_mapped_agent(app, mapped):
    assert screen_pop_systems(mapped) == {"zendesk": "Zendesk"}


def test_console_hides_screen_pop_from_unmapped_agent(app, unmapped):
    assert screen_pop_systems(unmapped) == {}


def test_console_hides_screen_pop_without_capable_connector(make_app):
    directory_only = make_app(CONNECTORS="directory")
    agent_id = create_agent(directory_only, crm_user_ids={"zendesk": ZENDESK_AGENT_ID, "directory": 1})
    client = directory_only.test_client()
    assert sign_in(client, "alice@example.com").status_code == 302

    assert screen_pop_systems(Console(client, agent_id)) == {}
