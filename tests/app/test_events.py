"""GET /agent/events: headers, keep-alive, Last-Event-ID replay and who may read a stream."""

from __future__ import annotations

import time

import pytest
from itsdangerous import TimestampSigner, URLSafeTimedSerializer

from tests.conftest import create_agent, redis_client

EVENTS = "/agent/events"


class EventReader:
    """Read a streamed SSE response chunk by chunk, as a browser's EventSource would."""

    def __init__(self, response):
        self.response = response
        self.chunks = iter(response.response)

    def next_chunk(self) -> str:
        chunk = next(self.chunks)
        return chunk.decode() if isinstance(chunk, bytes) else chunk

    def events(self, count: int) -> list[dict[str, str]]:
        """Return the next `count` events as their fields, skipping comments."""
        found = []
        while len(found) < count:
            chunk = self.next_chunk()
            fields = dict(line.split(": ", 1) for line in chunk.splitlines() if line and not line.startswith(":"))
            if "event" in fields:
                found.append(fields)
        return found

    def close(self):
        self.response.close()


@pytest.fixture
def agent_id(app):
    return create_agent(app)


def token_for(app, agent_id: int) -> str:
    from app.auth import stream_token

    with app.app_context():
        return stream_token(agent_id)


def publish(app, agent_id: int, event: str = "card", data: dict | None = None) -> str:
    from app.streams import AgentStreams

    return AgentStreams(redis_client(app)).publish([agent_id], event, data or {"n": 1})[agent_id]


def open_stream(app, agent_id: int, **headers) -> EventReader:
    response = app.test_client().get(f"{EVENTS}?token={token_for(app, agent_id)}", headers=headers, buffered=False)
    assert response.status_code == 200, response.data
    reader = EventReader(response)
    assert "connected" in reader.next_chunk()
    return reader


def test_stream_content_type(app, agent_id):
    reader = open_stream(app, agent_id)

    assert reader.response.mimetype == "text/event-stream"
    reader.close()


def test_stream_disables_caching(app, agent_id):
    reader = open_stream(app, agent_id)

    assert "no-cache" in reader.response.headers["Cache-Control"]
    reader.close()


def test_stream_disables_proxy_buffering(app, agent_id):
    reader = open_stream(app, agent_id)

    assert reader.response.headers["X-Accel-Buffering"] == "no"
    reader.close()


def test_stream_sends_keep_alive_in_time(make_app):
    app = make_app(STREAM_HEARTBEAT_S=1)
    reader = open_stream(app, create_agent(app))

    started = time.monotonic()
    chunk = reader.next_chunk()
    waited = time.monotonic() - started

    assert chunk.startswith(":")
    assert waited < 1.5
    reader.close()


def test_heartbeat_default_is_15_s(app):
    from app.events import heartbeat_interval_s

    with app.test_request_context():
        assert heartbeat_interval_s() == 15


def test_heartbeat_is_capped_at_30_s(make_app):
    from app.events import heartbeat_interval_s

    app = make_app(STREAM_HEARTBEAT_S=300)

    with app.test_request_context():
        assert heartbeat_interval_s() == 30


def test_stream_starts_after_newest_event(app, agent_id):
    publish(app, agent_id, data={"n": "old"})
    reader = open_stream(app, agent_id)

    publish(app, agent_id, data={"n": "new"})

    [event] = reader.events(1)
    assert event["data"] == '{"n": "new"}'
    reader.close()


def test_stream_replays_after_last_event_id(app, agent_id):
    ids = [publish(app, agent_id, data={"n": n}) for n in range(4)]

    reader = open_stream(app, agent_id, **{"Last-Event-ID": ids[1]})

    assert [event["id"] for event in reader.events(2)] == ids[2:]
    reader.close()


def test_stream_replay_stops_at_newest(app, agent_id):
    ids = [publish(app, agent_id, data={"n": n}) for n in range(3)]
    reader = open_stream(app, agent_id, **{"Last-Event-ID": ids[0]})
    reader.events(2)

    later = publish(app, agent_id, data={"n": "later"})

    assert [event["id"] for event in reader.events(1)] == [later]
    reader.close()


def test_stream_rejects_malformed_last_event_id(app, agent_id):
    response = app.test_client().get(
        f"{EVENTS}?token={token_for(app, agent_id)}", headers={"Last-Event-ID": "yesterday"}
    )

    assert response.status_code == 400
    assert "Last-Event-ID" in response.json["message"]


def test_stream_marks_agent_online(app, agent_id):
    from app.presence import Presence

    reader = open_stream(app, agent_id)

    assert Presence(redis_client(app)).is_online(agent_id)
    reader.close()


def test_stream_close_marks_agent_offline(app, agent_id):
    from app.presence import Presence

    reader = open_stream(app, agent_id)
    reader.close()

    assert not Presence(redis_client(app)).is_online(agent_id)


def test_stream_token_cannot_read_other_agent(app, agent_id):
    other = create_agent(app, email="bob@example.com", client_identity="bob")

    response = app.test_client().get(f"{EVENTS}?token={token_for(app, agent_id)}&agent={other}")

    assert response.status_code == 403


def test_stream_token_for_other_agent_reads_only_own(app, agent_id):
    other = create_agent(app, email="bob@example.com", client_identity="bob")
    publish(app, other, data={"secret": "bob's customer"})
    reader = open_stream(app, agent_id, **{"Last-Event-ID": "0-0"})

    mine = publish(app, agent_id, data={"n": "mine"})

    assert [event["id"] for event in reader.events(1)] == [mine]
    reader.close()


def test_stream_rejects_expired_token(app, agent_id):
    class HourOldSigner(TimestampSigner):
        def get_timestamp(self) -> int:
            return int(time.time()) - 3600

    serializer = URLSafeTimedSerializer("test-secret-key", salt="callcard.stream", signer=HourOldSigner)
    token = serializer.dumps({"agent_id": agent_id})
    app.config["STREAM_TOKEN_MAX_AGE_S"] = 60

    response = app.test_client().get(f"{EVENTS}?token={token}")

    assert response.status_code == 401


def test_stream_accepts_fresh_token_of_same_signer(app, agent_id):
    # Guards the expired-token test: the same serializer with the current time is accepted.
    serializer = URLSafeTimedSerializer("test-secret-key", salt="callcard.stream")
    token = serializer.dumps({"agent_id": agent_id})

    response = app.test_client().get(f"{EVENTS}?token={token}", buffered=False)

    assert response.status_code == 200
    response.close()


def test_stream_rejects_forged_token(app, agent_id):
    serializer = URLSafeTimedSerializer("not-the-secret-key", salt="callcard.stream")
    token = serializer.dumps({"agent_id": agent_id})

    response = app.test_client().get(f"{EVENTS}?token={token}")

    assert response.status_code == 401


def test_stream_rejects_anonymous_request(app, agent_id):
    response = app.test_client().get(EVENTS)

    assert response.status_code == 401


def test_stream_accepts_signed_in_session(app, agent_id):
    client = app.test_client()
    with client.session_transaction() as session:
        session["agent_id"] = agent_id

    response = client.get(EVENTS, buffered=False)

    assert response.status_code == 200
    response.close()
