"""Fixtures for end-to-end lookup tests: the app on the Salesforce and Zendesk stubs.

A test posts signed voice webhooks. The real simple-salesforce and zenpy clients
send HTTPS requests to the stubs on 127.0.0.1, and the card is read from the agent's stream.
"""

from __future__ import annotations

import time

import pytest

from tests.conftest import Twilio, create_agent, mark_online, redis_client, stream_events, voice_params
from tests.integrations.conftest import (  # noqa: F401  (fixtures, found by name)
    ZENDESK_EMAIL,
    ZENDESK_TOKEN,
    ca_bundle,
    certificate_authority,
    salesforce_stub,
    stub_ssl_context,
    trust_stubs,
    zendesk_stub,
)

CRM_CONNECTORS = "directory,salesforce,zendesk"
# Test deadline: shorter than the default 1.5 s to keep the tests fast.
DEADLINE_MS = 700
# Time the webhook may take past the deadline: database writes, routing, TwiML.
MARGIN_S = 0.5


@pytest.fixture
def crm_settings(salesforce_stub, zendesk_stub) -> dict:
    """Settings that enable every connector and point them at the stubs."""
    return {
        "CONNECTORS": CRM_CONNECTORS,
        "LOOKUP_DEADLINE_MS": DEADLINE_MS,
        "SALESFORCE_USERNAME": "integration@example.com",
        "SALESFORCE_PASSWORD": "p&ss-fake1",
        "SALESFORCE_SECURITY_TOKEN": "FAKESECURITYTOKEN",
        "SALESFORCE_DOMAIN": salesforce_stub.host,
        "ZENDESK_URL": zendesk_stub.url,
        "ZENDESK_EMAIL": ZENDESK_EMAIL,
        "ZENDESK_API_TOKEN": ZENDESK_TOKEN,
    }


@pytest.fixture
def make_crm_app(make_app, crm_settings):
    """Return a factory of apps on the stubs; keyword arguments override settings."""

    def factory(**overrides):
        app = make_app(**{**crm_settings, **overrides})
        redis_client(app).flushdb()
        return app

    return factory


@pytest.fixture
def crm_app(make_crm_app):
    return make_crm_app()


@pytest.fixture
def agent(crm_app) -> int:
    """An agent with an open console, who receives every card."""
    agent_id = create_agent(crm_app)
    mark_online(crm_app, agent_id)
    return agent_id


class Calls:
    """Place calls through the signed voice webhook and read the cards they produce."""

    def __init__(self, app, agent_id: int):
        self.app = app
        self.agent_id = agent_id
        self.twilio = Twilio(app.test_client())
        self.count = 0

    def place(self, number: str, call_sid: str | None = None):
        """Post a voice webhook from `number`; return (response, seconds taken)."""
        self.count += 1
        call_sid = call_sid or f"CA{self.count:032d}"
        started = time.monotonic()
        response = self.twilio.post("/webhooks/twilio/voice", voice_params(call_sid=call_sid, from_=number))
        return response, time.monotonic() - started

    def events(self, call_sid: str | None = None, kind: str | None = None) -> list[dict]:
        """Return the card events in the agent's stream, optionally for one call and one kind."""
        found = []
        for _id, event, data in stream_events(self.app, self.agent_id):
            if kind is not None and event != kind:
                continue
            if call_sid is not None and (data.get("interaction") or {}).get("sid") != call_sid:
                continue
            found.append(data)
        return found

    def card(self, number: str) -> dict:
        """Place a call and return its first card, checking that the webhook returned TwiML."""
        response, _ = self.place(number)
        assert response.status_code == 200, response.get_data(as_text=True)
        assert b"<Response>" in response.data
        return self.events(call_sid=f"CA{self.count:032d}", kind="card")[-1]

    def wait_for_update(self, call_sid: str, timeout_s: float = 5.0) -> dict:
        """Wait for the call's last `card.update` with no system pending, and return it."""
        give_up = time.monotonic() + timeout_s
        while time.monotonic() < give_up:
            updates = self.events(call_sid=call_sid, kind="card.update")
            if updates and not any(s["status"] == "pending" for s in updates[-1]["systems"].values()):
                return updates[-1]
            time.sleep(0.05)
        raise AssertionError(f"no complete card.update for {call_sid} within {timeout_s} s")


@pytest.fixture
def calls(crm_app, agent) -> Calls:
    return Calls(crm_app, agent)


def match_ids(card: dict) -> list[str]:
    return [match["external_id"] for match in card["matches"]]


def statuses(card: dict) -> dict[str, str]:
    return {name: system["status"] for name, system in card["systems"].items()}
