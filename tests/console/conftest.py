"""Fixtures of the console tests: signed-in clients and stored interactions."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

import pytest

from tests.conftest import create_agent

PASSWORD = "correct horse battery"


def csrf_from(html: str) -> str:
    """Return the CSRF token a rendered page carries."""
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found, "page has no CSRF token"
    return found.group(1)


def sign_in(client, email: str, password: str = PASSWORD):
    """Sign in through the form, as a browser does; return the POST response."""
    page = client.get("/login")
    token = csrf_from(page.get_data(as_text=True))
    return client.post("/login", data={"email": email, "password": password, "csrf_token": token})


class Console:
    """A signed-in agent's browser session: GET pages, call the JSON API with the CSRF header."""

    def __init__(self, client, agent_id: int):
        self.client = client
        self.agent_id = agent_id
        self.csrf = csrf_from(client.get("/").get_data(as_text=True))

    def get(self, path: str, **kwargs):
        return self.client.get(path, headers={"Accept": "application/json"}, **kwargs)

    def post_json(self, path: str, body, *, csrf: bool = True):
        headers = {"X-CSRF-Token": self.csrf} if csrf else {}
        return self.client.post(path, json=body, headers=headers)


@pytest.fixture
def make_console(app):
    """Return a factory: create an agent, sign them in on a new client, return a Console."""

    def factory(email: str = "alice@example.com", **fields) -> Console:
        agent_id = create_agent(app, email=email, client_identity=email.split("@")[0], **fields)
        client = app.test_client()
        response = sign_in(client, email)
        assert response.status_code == 302, response.get_data(as_text=True)
        return Console(client, agent_id)

    return factory


def store_customer(app, name: str = "Ada Example", company: str = "Example Analytics") -> int:
    from app.db import get_db
    from app.models import Customer

    with app.app_context():
        with get_db().new_session() as session:
            customer = Customer(display_name=name, company=company)
            session.add(customer)
            session.commit()
            return customer.id


def store_interaction(app, *, sid: str, agent_id: int | None = None, notified: list[int] | None = None,
                      customer_id: int | None = None, minutes_ago: int = 0, **fields) -> int:
    """Store an interaction routed to `agent_id` and shown to `notified`; return its id."""
    from app.db import get_db
    from app.models import Interaction

    if notified is None:
        notified = [agent_id] if agent_id else []
    values = {
        "provider_sid": sid,
        "channel": "voice",
        "direction": "inbound",
        "from_address": "+14155550100",
        "to_address": "+14155550199",
        "caller_e164": "+14155550100",
        "status": "completed",
        "agent_id": agent_id,
        "customer_id": customer_id,
        "routing": {"notified": notified},
        "started_at": datetime.now(timezone.utc) - timedelta(minutes=minutes_ago),
    }
    values.update(fields)
    with app.app_context():
        with get_db().new_session() as session:
            interaction = Interaction(**values)
            session.add(interaction)
            session.commit()
            return interaction.id


def load_interaction(app, interaction_id: int):
    from app.db import get_db
    from app.models import Interaction

    with app.app_context():
        with get_db().new_session() as session:
            return session.get(Interaction, interaction_id)


def card_with_matches(interaction_id: int, sid: str, matches: list[dict]) -> dict:
    """Return a minimal card carrying `matches`, as app.cards.build_card shapes them."""
    return {
        "version": 1,
        "revision": 1,
        "interaction": {"id": interaction_id, "sid": sid, "channel": "voice", "status": "ringing"},
        "caller": {"raw": "+14155550100", "kind": "phone", "e164": "+14155550100"},
        "customer": {"id": None, "name": matches[0]["display_name"] if matches else None},
        "matches": matches,
        "systems": {},
        "open_items": [],
        "timeline": [],
    }
