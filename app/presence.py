"""Presence: which agents have a console open, and which are taking a call."""

from __future__ import annotations

import redis

# Delete the offer only when it still belongs to the given call, in one step.
RELEASE_IF_HELD = """
if redis.call('get', KEYS[1]) == ARGV[1] then
    return redis.call('del', KEYS[1])
end
return 0
"""


def online_key(agent_id: int) -> str:
    return f"callcard:online:{agent_id}"


def offer_key(agent_id: int) -> str:
    return f"callcard:offer:{agent_id}"


class Presence:
    """Track open consoles and call offers in Redis, shared by every process."""

    def __init__(self, client: redis.Redis, ttl_s: int = 45):
        self.client = client
        self.ttl_s = ttl_s

    def connected(self, agent_id: int, connection_id: str) -> None:
        """Record an open stream; refreshed by every heartbeat, gone after `ttl_s`."""
        pipe = self.client.pipeline()
        pipe.hset(online_key(agent_id), connection_id, 1)
        pipe.expire(online_key(agent_id), self.ttl_s)
        pipe.execute()

    def disconnected(self, agent_id: int, connection_id: str) -> None:
        self.client.hdel(online_key(agent_id), connection_id)

    def is_online(self, agent_id: int) -> bool:
        return self.client.hlen(online_key(agent_id)) > 0

    def online(self, agent_ids: list[int]) -> set[int]:
        pipe = self.client.pipeline(transaction=False)
        for agent_id in agent_ids:
            pipe.hlen(online_key(agent_id))
        return {agent_id for agent_id, count in zip(agent_ids, pipe.execute()) if count}

    def free(self, agent_ids: list[int]) -> set[int]:
        """Return the agents among `agent_ids` with a console open and no call offered."""
        pipe = self.client.pipeline(transaction=False)
        for agent_id in agent_ids:
            pipe.hlen(online_key(agent_id))
            pipe.exists(offer_key(agent_id))
        replies = pipe.execute()
        return {
            agent_id
            for agent_id, connections, offered in zip(agent_ids, replies[::2], replies[1::2])
            if connections and not offered
        }

    def offer(self, agent_id: int, call_sid: str, ttl_s: int) -> bool:
        """Reserve the agent for `call_sid`; False when another call holds them."""
        if self.client.set(offer_key(agent_id), call_sid, nx=True, ex=ttl_s):
            return True
        return self.client.get(offer_key(agent_id)) in (call_sid, call_sid.encode())

    def hold(self, agent_id: int, call_sid: str, ttl_s: int) -> None:
        """Keep the agent reserved while the call lasts."""
        self.client.set(offer_key(agent_id), call_sid, ex=ttl_s)

    def release(self, agent_id: int, call_sid: str) -> None:
        """Free the agent if `call_sid` still holds them."""
        self.client.eval(RELEASE_IF_HELD, 1, offer_key(agent_id), call_sid)

    def offered_call(self, agent_id: int) -> str | None:
        value = self.client.get(offer_key(agent_id))
        return value.decode() if isinstance(value, bytes) else value
