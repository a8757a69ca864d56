"""A short-lived Redis cache of lookups, per connector and E.164 number."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable

import redis

from integrations.base import Match

log = logging.getLogger(__name__)


class LookupCache:
    """Store each connector's matches for a number for `ttl_s` seconds."""

    def __init__(self, client: redis.Redis, ttl_s: int):
        self.client = client
        self.ttl_s = ttl_s

    @staticmethod
    def _key(system: str, e164: str) -> str:
        return f"callcard:lookup:{system}:{e164}"

    def get(self, system: str, e164: str) -> list[Match] | None:
        """Return the cached matches, or None on a miss."""
        if self.ttl_s <= 0:
            return None
        raw = self.client.get(self._key(system, e164))
        if raw is None:
            return None
        return [Match.from_dict(item) for item in json.loads(raw)]

    def put(self, system: str, e164: str, matches: list[Match]) -> None:
        """Store a successful lookup. Failures are never stored, so the next call sends a new request."""
        if self.ttl_s <= 0:
            return
        payload = json.dumps([match.to_dict() for match in matches], default=str)
        self.client.set(self._key(system, e164), payload, ex=self.ttl_s)

    def invalidate(self, numbers: Iterable[str], systems: Iterable[str]) -> None:
        """Drop the cached lookups of `numbers` in `systems`, e.g. after logging a new interaction."""
        keys = [self._key(system, number) for number in numbers for system in systems]
        if keys:
            self.client.delete(*keys)
