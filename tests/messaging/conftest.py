"""Fixtures for the messaging tests: the Twilio REST API stub and a signed-in agent."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
import sqlalchemy as sa

from tests.conftest import AUTH_TOKEN, load_fixture, redis_client
from tests.stubs.twilio_api import TwilioApiStub

# The account SID of every recorded Twilio payload in tests/fixtures/twilio.
ACCOUNT_SID = "AC0123456789abcdef0123456789abcdef"
MESSAGING = "/webhooks/twilio/messaging"
STATUS = "/webhooks/twilio/messaging/status"


@pytest.fixture
def twilio_api(monkeypatch) -> Iterator[TwilioApiStub]:
    """The Twilio REST API on 127.0.0.1, reached directly rather than through a proxy."""
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    with TwilioApiStub(ACCOUNT_SID, AUTH_TOKEN) as stub:
        yield stub


@pytest.fixture
def app(make_app, twilio_api):
    """The application with messaging configured against the stub."""
    app = make_app(TWILIO_ACCOUNT_SID=ACCOUNT_SID, TWILIO_API_BASE_URL=twilio_api.url)
    redis_client(app).flushdb()
    return app


def sign_in(client, agent_id: int) -> dict[str, str]:
    """Sign `agent_id` in on `client` and return the headers of a console JSON request."""
    with client.session_transaction() as session:
        session["agent_id"] = agent_id
        session["csrf_token"] = "test-csrf-token"
    return {"X-CSRF-Token": "test-csrf-token", "Accept": "application/json"}


def post_fixture(twilio, name: str, **changes: str):
    """Post a recorded inbound message, signed. With `changes`, the changed form is re-encoded."""
    params = load_fixture(f"twilio/{name}.json")
    if changes:
        params.update(changes)
        return twilio.post(MESSAGING, params)
    body = load_fixture(f"twilio/form/{name}.form.txt").encode("ascii")
    return twilio.post_body(MESSAGING, body, params)


def post_status(twilio, name: str, **changes: str):
    params = {**load_fixture(f"twilio/{name}.json"), **changes}
    return twilio.post(STATUS, params)


def query(app, statement):
    """Run a SELECT in a fresh session and return every row's first column."""
    from app.db import get_db

    with app.app_context():
        with get_db().new_session() as session:
            return list(session.scalars(statement))


def move_back(app, model, row_id: int, hours: float, *columns: str) -> None:
    """Move the given datetime columns of one row `hours` into the past."""
    from app.db import get_db

    with app.app_context():
        with get_db().new_session() as session:
            row = session.get(model, row_id)
            for column in columns:
                value = getattr(row, column)
                setattr(row, column, value - timedelta(hours=hours))
            session.commit()


def conversation_ids(app) -> list[int]:
    from app.models import Interaction

    return query(app, sa.select(Interaction.conversation_id).order_by(Interaction.id))
