"""GET /agent/events: the agent's stream as server-sent events."""

from __future__ import annotations

import logging
import re
import uuid

from flask import Blueprint, Response, abort, current_app, request, stream_with_context

from app.auth import agent_from_stream_token, current_agent
from app.db import get_db
from app.presence import Presence
from app.streams import STREAM_ID_PATTERN, get_streams

log = logging.getLogger(__name__)

bp = Blueprint("events", __name__)

STREAM_ID = re.compile(STREAM_ID_PATTERN)
RECONNECT_MS = 2000
# Proxies commonly close a connection idle for 60 s (nginx's proxy_read_timeout
# default), so a keep-alive goes out at least twice within that time.
MAX_HEARTBEAT_S = 30


def _stream_agent_id() -> int:
    """Return the agent whose stream this request may read, from the session or a token."""
    token = request.args.get("token")
    if token:
        agent_id = agent_from_stream_token(token)
        if agent_id is None:
            abort(401, description="stream token invalid or expired; sign in again")
        return agent_id

    agent = current_agent()
    if agent is None:
        abort(401, description="sign in first")
    return agent.id


def heartbeat_interval_s() -> int:
    """Return STREAM_HEARTBEAT_S, capped at MAX_HEARTBEAT_S and at least 1 s."""
    configured = current_app.config["STREAM_HEARTBEAT_S"]
    if configured > MAX_HEARTBEAT_S:
        log.warning("STREAM_HEARTBEAT_S=%s is above %s s; using %s s", configured, MAX_HEARTBEAT_S, MAX_HEARTBEAT_S)
    return min(max(configured, 1), MAX_HEARTBEAT_S)


def _start_id() -> str:
    """Return the event id to read after: Last-Event-ID on reconnect, else now."""
    last_id = request.headers.get("Last-Event-ID") or request.args.get("last_event_id")
    if last_id:
        if not STREAM_ID.match(last_id):
            abort(400, description=f"Last-Event-ID {last_id[:40]!r} is not a stream event id")
        return last_id
    return "$"


@bp.get("/agent/events")
def agent_events():
    agent_id = _stream_agent_id()
    requested = request.args.get("agent")
    if requested is not None and requested != str(agent_id):
        abort(403, description="an agent can read only their own stream")

    after_id = _start_id()
    streams = get_streams()
    presence = Presence(streams.client)
    heartbeat_ms = heartbeat_interval_s() * 1000
    connection_id = uuid.uuid4().hex
    if after_id == "$":
        after_id = streams.latest_id(agent_id)
    # The stream lasts for hours: end the request's database transaction now, so
    # it holds no connection and, on SQLite, no read snapshot meanwhile.
    get_db().session.remove()

    def generate():
        last_id = after_id
        presence.connected(agent_id, connection_id)
        log.info("Agent %s: stream opened after event %s", agent_id, last_id)
        try:
            yield f"retry: {RECONNECT_MS}\n: connected\n\n"
            while True:
                events = streams.read(agent_id, last_id, block_ms=heartbeat_ms)
                presence.connected(agent_id, connection_id)
                if not events:
                    yield ": keep-alive\n\n"
                    continue
                for event_id, event, data in events:
                    last_id = event_id
                    yield f"id: {event_id}\nevent: {event}\ndata: {data}\n\n"
        finally:
            presence.disconnected(agent_id, connection_id)
            log.info("Agent %s: stream closed at event %s", agent_id, last_id)

    response = Response(stream_with_context(generate()), mimetype="text/event-stream")
    response.headers["Cache-Control"] = "no-cache, no-transform"
    response.headers["X-Accel-Buffering"] = "no"
    return response
