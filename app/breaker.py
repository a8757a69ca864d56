"""A circuit breaker per connector, kept in Redis so every process shares it."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping
from typing import Any

import redis

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class BreakerSettings:
    """Thresholds of the circuit breakers, from BREAKER_* settings."""

    failures: int = 5
    window_s: float = 60
    cooldown_s: float = 30

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> "BreakerSettings":
        """Read BREAKER_FAILURES, BREAKER_WINDOW_S and BREAKER_COOLDOWN_S.

        Raises:
            ValueError: a value is not a positive number.
        """
        settings = cls(
            failures=int(config.get("BREAKER_FAILURES") or cls.failures),
            window_s=float(config.get("BREAKER_WINDOW_S") or cls.window_s),
            cooldown_s=float(config.get("BREAKER_COOLDOWN_S") or cls.cooldown_s),
        )
        for name, value in dataclasses.asdict(settings).items():
            if value <= 0:
                raise ValueError(f"BREAKER_{name.upper()} must be positive, got {value!r}")
        return settings


class CircuitBreaker:
    """Open after `failures` failures within `window_s`; half-open after `cooldown_s`.

    While open, `allow` returns False and the lookup skips the connector. When the
    cool-down has passed, one request (the probe) goes through: its success closes
    the breaker and its failure opens it again. A rate-limit response opens the
    breaker at once, for the Retry-After the system sent or else for the cool-down.
    """

    def __init__(self, client: redis.Redis, settings: BreakerSettings | None = None):
        self.client = client
        self.settings = settings or BreakerSettings()
        self.window_ms = int(self.settings.window_s * 1000)
        self.cooldown_ms = int(self.settings.cooldown_s * 1000)

    def _key(self, system: str, part: str) -> str:
        return f"callcard:breaker:{system}:{part}"

    def allow(self, system: str) -> bool:
        """Return True when a request to `system` may go out now."""
        if self.client.exists(self._key(system, "open")):
            return False
        if not self.client.exists(self._key(system, "tripped")):
            return True

        # Half-open: the cool-down is over, and the first caller to claim the probe
        # key sends the one request that decides whether the breaker closes.
        return bool(self.client.set(self._key(system, "probe"), 1, nx=True, px=self.cooldown_ms))

    def open_reason(self, system: str) -> str:
        """Describe why `allow` rejected `system`, for the card and the log."""
        reason = self.client.get(self._key(system, "open"))
        if reason is None:
            return "circuit breaker half-open, waiting for the probe request"
        text = reason.decode() if isinstance(reason, bytes) else reason
        return f"circuit breaker open after {text}"

    def is_open(self, system: str) -> bool:
        return bool(self.client.exists(self._key(system, "open")))

    def record_success(self, system: str) -> None:
        """Close the breaker of `system` and forget its failures."""
        if self.client.exists(self._key(system, "tripped")):
            log.info("Connector %s: circuit breaker closed", system)
        self.client.delete(
            self._key(system, "failures"), self._key(system, "tripped"), self._key(system, "probe")
        )

    def record_failure(
        self, system: str, rate_limited: bool = False, retry_after_s: float | None = None
    ) -> None:
        """Count a failure, and open the breaker at the threshold, after a failed probe or on a rate limit."""
        # SET NX starts the window with the first failure and INCR keeps its expiry.
        # PEXPIRE NX would do the same in one command but needs Redis 7, and the
        # embedded Redis is 6.2.
        failures_key = self._key(system, "failures")
        pipe = self.client.pipeline()
        pipe.set(failures_key, 0, nx=True, px=self.window_ms)
        pipe.incr(failures_key)
        _, failures = pipe.execute()

        if rate_limited and retry_after_s:
            self._open(system, max(int(retry_after_s * 1000), 1), f"a rate limit with Retry-After {retry_after_s:g} s")
        elif rate_limited:
            self._open(system, self.cooldown_ms, "a rate limit without Retry-After")
        elif self.client.exists(self._key(system, "tripped")):
            self._open(system, self.cooldown_ms, "a failed probe request")
        elif failures >= self.settings.failures:
            self._open(system, self.cooldown_ms, f"{failures} failures")

    def _open(self, system: str, duration_ms: int, reason: str) -> None:
        pipe = self.client.pipeline()
        pipe.set(self._key(system, "open"), reason, px=duration_ms)
        pipe.set(self._key(system, "tripped"), 1)
        pipe.delete(self._key(system, "probe"))
        pipe.execute()
        log.warning("Connector %s: circuit breaker open for %d ms after %s", system, duration_ms, reason)
