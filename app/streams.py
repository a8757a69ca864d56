"""Agent streams: one Redis Stream per agent carries card events to the console."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from typing import Any

import redis
from flask import current_app

from app.metrics import EVENTS_PUBLISHED

log = logging.getLogger(__name__)

STREAM_ID_PATTERN = r"^\d{1,20}-\d{1,20}$"


def stream_key(agent_id: int) -> str:
    return f"callcard:stream:agent:{agent_id}"


class AgentStreams:
    """Publish events to agents' streams and read them back for SSE."""

    def __init__(self, client: redis.Redis, max_events: int = 1000):
        self.client = client
        self.max_events = max_events

    def publish(self, agent_ids: Iterable[int], event: str, data: dict[str, Any]) -> dict[int, str]:
        """Append `event` to each agent's stream; return the event id per agent."""
        payload = json.dumps(data, default=str, ensure_ascii=False)
        pipe = self.client.pipeline(transaction=False)
        agent_ids = list(dict.fromkeys(agent_ids))
        for agent_id in agent_ids:
            pipe.xadd(
                stream_key(agent_id),
                {"event": event, "data": payload},
                maxlen=self.max_events,
                approximate=True,
            )
        ids = pipe.execute()
        EVENTS_PUBLISHED.labels(event=event).inc(len(agent_ids))
        return {agent_id: _text(event_id) for agent_id, event_id in zip(agent_ids, ids)}

    def latest_id(self, agent_id: int) -> str:
        """Return the id of the agent's newest event, or `0-0` for an empty stream."""
        entries = self.client.xrevrange(stream_key(agent_id), count=1)
        return _text(entries[0][0]) if entries else "0-0"

    def read(self, agent_id: int, after_id: str, block_ms: int | None) -> list[tuple[str, str, str]]:
        """Return (id, event, data) of the events after `after_id`, waiting up to `block_ms`."""
        response = self.client.xread({stream_key(agent_id): after_id}, count=100, block=block_ms)
        events = []
        for _key, entries in response or []:
            for event_id, fields in entries:
                events.append((_text(event_id), _text(fields[b"event"]), _text(fields[b"data"])))
        return events


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def get_streams() -> AgentStreams:
    client = current_app.extensions["callcard.redis"].client
    return AgentStreams(client, current_app.config["STREAM_MAX_EVENTS"])
