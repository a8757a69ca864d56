"""A circuit breaker per connector, kept in Redis so every process shares it."""

from __future__ import annotations

import logging

import redis

log = logging.getLogger(__name__)


class CircuitBreaker:
    """Open after `threshold` failures within `window_s`; half-open after `cooldown_s`.

    While open, `allow` returns False and the lookup skips the connector. When the
    cool-down has passed, one request (the probe) goes through; its success closes
    the breaker and its failure opens it again. A rate-limit answer opens the
    breaker for the time the system asked for.
    """

    def __init__(
        self,
        client: redis.Redis,
        threshold: int = 5,
        window_s: float = 60,
        cooldown_s: float = 30,
    ):
        self.client = client
        self.threshold = threshold
        self.window_ms = int(window_s * 1000)
        self.cooldown_ms = int(cooldown_s * 1000)

    def _key(self, system: str, part: str) -> str:
        return f"callcard:breaker:{system}:{part}"

    def allow(self, system: str) -> bool:
        """Tell whether a request to `system` may go out now."""
        if self.client.exists(self._key(system, "open")):
            return False
        if not self.client.exists(self._key(system, "tripped")):
            return True
        # Half-open: the cool-down is over but the breaker has not closed yet.
        return bool(self.client.set(self._key(system, "probe"), 1, nx=True, px=self.cooldown_ms))

    def is_open(self, system: str) -> bool:
        return bool(self.client.exists(self._key(system, "open")))

    def record_success(self, system: str) -> None:
        if self.client.exists(self._key(system, "tripped")):
            log.info("Connector %s: circuit breaker closed", system)
        self.client.delete(
            self._key(system, "failures"), self._key(system, "tripped"), self._key(system, "probe")
        )

    def record_failure(self, system: str, retry_after_s: float | None = None) -> None:
        """Count a failure; open the breaker at the threshold or on a rate limit."""
        failures_key = self._key(system, "failures")
        pipe = self.client.pipeline()
        pipe.incr(failures_key)
        pipe.pexpire(failures_key, self.window_ms, nx=True)
        failures, _ = pipe.execute()

        if retry_after_s is not None:
            self._open(system, max(int(retry_after_s * 1000), 1), f"rate-limited for {retry_after_s:g} s")
        elif failures >= self.threshold or self.client.exists(self._key(system, "tripped")):
            self._open(system, self.cooldown_ms, f"{failures} failures")

    def _open(self, system: str, duration_ms: int, reason: str) -> None:
        pipe = self.client.pipeline()
        pipe.set(self._key(system, "open"), reason, px=duration_ms)
        pipe.set(self._key(system, "tripped"), 1)
        pipe.delete(self._key(system, "probe"))
        pipe.execute()
        log.warning("Connector %s: circuit breaker open for %d ms (%s)", system, duration_ms, reason)
