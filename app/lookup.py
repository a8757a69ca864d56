"""The lookup fan-out: every enabled connector in parallel, on one deadline.

Each connector runs in a pool thread with its own timeout (`<NAME>_TIMEOUT_MS`,
default 5000). The caller gets what has arrived at the deadline
(`LOOKUP_DEADLINE_MS`, default 1500), with every connector still running marked
pending. A follower thread then waits for those connectors and calls `on_late`
with the updated result each time one of them finishes or runs out of time.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import time
from collections.abc import Callable, Mapping
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import Any

from flask import Flask, current_app

from app.breaker import BreakerSettings, CircuitBreaker
from app.lookup_cache import LookupCache
from app.metrics import LOOKUPS
from app.phone import mask
from integrations.base import (
    LOOKUP,
    Caller,
    Connector,
    ConnectorContext,
    Match,
    RateLimited,
)
from integrations.registry import build_connectors, enabled_names

log = logging.getLogger(__name__)

# Per-system statuses shown on the card.
FOUND = "found"
NONE = "none"
PENDING = "pending"
TIMED_OUT = "timed_out"
FAILED = "failed"
RATE_LIMITED = "rate_limited"
SKIPPED = "skipped"

DEFAULT_CONNECTOR_TIMEOUT_MS = 5000
# Extra time a late connector gets past its own timeout to report its own error
# before the follower marks it timed out.
LATE_GRACE_S = 0.5
# Threads that run connector lookups, and threads that follow late ones. A lookup
# waiting for a free thread has its wait deducted from its timeout.
LOOKUP_THREADS = 32
FOLLOWER_THREADS = 16


@dataclasses.dataclass
class SystemResult:
    """The result of one connector's lookup for one caller."""

    system: str
    status: str
    matches: list[Match] = dataclasses.field(default_factory=list)
    elapsed_ms: int | None = None
    error: str | None = None
    cached: bool = False

    def to_dict(self) -> dict:
        return {
            "status": self.status,
            "count": len(self.matches),
            "elapsed_ms": self.elapsed_ms,
            "error": self.error,
            "cached": self.cached,
        }


@dataclasses.dataclass
class LookupResult:
    """The results of every connector, as known at the time of reading."""

    caller: Caller
    systems: dict[str, SystemResult]

    @property
    def matches(self) -> list[Match]:
        return [match for result in self.systems.values() for match in result.matches]

    @property
    def pending(self) -> list[str]:
        return [name for name, result in self.systems.items() if result.status == PENDING]

    def copy(self) -> "LookupResult":
        """Return a copy whose `systems` can change without changing this one."""
        return LookupResult(caller=self.caller, systems=dict(self.systems))


LateCallback = Callable[[LookupResult], None]


def connector_timeout_s(config: Mapping[str, Any], name: str) -> float:
    """Read `<NAME>_TIMEOUT_MS` from the settings, then the environment, in seconds.

    The environment is read too because the settings module lists only the
    built-in connectors' names, and a third-party connector has its own.

    Raises:
        ValueError: the value is not a positive whole number of milliseconds.
    """
    key = f"{name.upper()}_TIMEOUT_MS"
    raw = config.get(key) or os.environ.get(key) or DEFAULT_CONNECTOR_TIMEOUT_MS
    try:
        milliseconds = int(raw)
    except (TypeError, ValueError):
        raise ValueError(f"{key} must be a whole number of milliseconds, got {raw!r}") from None
    if milliseconds <= 0:
        raise ValueError(f"{key} must be positive, got {milliseconds}")
    return milliseconds / 1000


class LookupService:
    """Run connector lookups in a thread pool, with a cache and a breaker per connector."""

    def __init__(self, app: Flask | None = None):
        self.connectors: list[Connector] = []
        self.executor: ThreadPoolExecutor | None = None
        self.followers: ThreadPoolExecutor | None = None
        if app is not None:
            self.init_app(app)

    def init_app(self, app: Flask) -> None:
        from app.db import get_db

        with app.app_context():
            context = ConnectorContext(
                config=app.config, engine=get_db().engine, redis=app.extensions["callcard.redis"]
            )
            connectors = build_connectors(enabled_names(app.config), context)

        app.extensions["callcard.connectors"] = {c.name: c for c in connectors}
        self.connectors = [c for c in connectors if LOOKUP in c.capabilities]
        self.deadline_s = app.config["LOOKUP_DEADLINE_MS"] / 1000
        self.cache_ttl_s = app.config["LOOKUP_CACHE_TTL_S"]
        self.breaker_settings = BreakerSettings.from_config(app.config)
        self.timeouts_s = {c.name: connector_timeout_s(app.config, c.name) for c in self.connectors}
        self.executor = ThreadPoolExecutor(max_workers=LOOKUP_THREADS, thread_name_prefix="lookup")
        self.followers = ThreadPoolExecutor(max_workers=FOLLOWER_THREADS, thread_name_prefix="lookup-late")
        self.redis_store = app.extensions["callcard.redis"]
        app.extensions["callcard.lookup"] = self

        log.info(
            "Lookup: connectors enabled: %s; deadline %d ms",
            ", ".join(f"{name} ({seconds * 1000:.0f} ms)" for name, seconds in self.timeouts_s.items()) or "none",
            self.deadline_s * 1000,
        )

    @property
    def cache(self) -> LookupCache:
        return LookupCache(self.redis_store.client, self.cache_ttl_s)

    @property
    def breaker(self) -> CircuitBreaker:
        return CircuitBreaker(self.redis_store.client, self.breaker_settings)

    def run(
        self,
        caller: Caller,
        on_late: LateCallback | None = None,
        deadline_s: float | None = None,
        log_id: str = "",
    ) -> LookupResult:
        """Look `caller` up everywhere and return what arrived by the deadline.

        Connectors still running at the deadline are marked pending. Each time one
        of them finishes, or runs out of its own timeout, `on_late` is called from
        a follower thread with the whole result known so far, so the caller can
        publish a card update. Calls to `on_late` for one lookup never overlap.
        """
        started = time.monotonic()
        deadline_s = self.deadline_s if deadline_s is None else deadline_s
        result = LookupResult(caller=caller, systems={})
        if not caller.is_lookupable:
            for connector in self.connectors:
                result.systems[connector.name] = SystemResult(connector.name, NONE)
            return result

        running: dict[Future, Connector] = {}
        for connector in self.connectors:
            answered = self._answer_without_request(connector, caller, log_id)
            if answered is not None:
                result.systems[connector.name] = answered
                continue
            result.systems[connector.name] = SystemResult(connector.name, PENDING)
            future = self.executor.submit(self._lookup_one, connector, caller, started, log_id)
            running[future] = connector

        done, late = wait(running, timeout=max(deadline_s - (time.monotonic() - started), 0))
        for future in done:
            result.systems[running[future].name] = future.result()

        if late:
            self._follow_late(result.copy(), {future: running[future] for future in late}, started, on_late, log_id)
        return result

    # Before any request: the cache and the breaker

    def _answer_without_request(self, connector: Connector, caller: Caller, log_id: str) -> SystemResult | None:
        """Return the cached result, or a skip when the breaker is open. None means the system must be asked."""
        cached = self._from_cache(connector, caller)
        if cached is not None:
            return cached

        breaker = self.breaker
        try:
            if breaker.allow(connector.name):
                return None
            reason = breaker.open_reason(connector.name)
        except Exception:
            # Without Redis the breaker cannot tell, so the system is asked.
            log.warning("Call %s: circuit breaker of %s unavailable", log_id, connector.name, exc_info=True)
            return None

        log.info("Call %s: lookup in %s skipped: %s", log_id, connector.name, reason)
        return SystemResult(connector.name, SKIPPED, elapsed_ms=0, error=reason)

    def _from_cache(self, connector: Connector, caller: Caller) -> SystemResult | None:
        try:
            matches = self.cache.get(connector.name, caller.e164)
        except Exception:
            log.warning("Lookup cache of %s unavailable", connector.name, exc_info=True)
            return None
        if matches is None:
            return None
        status = FOUND if matches else NONE
        return SystemResult(connector.name, status, matches, elapsed_ms=0, cached=True)

    # One connector

    def _lookup_one(self, connector: Connector, caller: Caller, started: float, log_id: str) -> SystemResult:
        """Run one connector's lookup and record its time in the metrics; never raises."""
        result = self._run_lookup(connector, caller, started, log_id)
        elapsed_s = (result.elapsed_ms or 0) / 1000
        LOOKUPS.labels(connector=result.system, status=result.status).observe(elapsed_s)
        return result

    def _run_lookup(self, connector: Connector, caller: Caller, started: float, log_id: str) -> SystemResult:
        """Run one connector's lookup in a pool thread; never raises."""
        began = time.monotonic()
        timeout = self.timeouts_s[connector.name] - (began - started)
        if timeout <= 0:
            error = TimeoutError("no lookup thread was free before the connector's timeout")
            return self._failure(connector, began, TIMED_OUT, error, log_id)

        try:
            matches = connector.lookup(caller, timeout)
        except RateLimited as error:
            self._record_failure(connector.name, rate_limited=True, retry_after_s=error.retry_after)
            return self._failure(connector, began, RATE_LIMITED, error, log_id)
        except TimeoutError as error:
            self._record_failure(connector.name)
            return self._failure(connector, began, TIMED_OUT, error, log_id)
        except Exception as error:
            self._record_failure(connector.name)
            return self._failure(connector, began, FAILED, error, log_id)

        return self._success(connector, caller, matches, began, timeout, log_id)

    def _success(self, connector, caller, matches, began, timeout, log_id) -> SystemResult:
        elapsed_ms = int((time.monotonic() - began) * 1000)
        if elapsed_ms > timeout * 1000 + LATE_GRACE_S * 1000:
            log.warning(
                "Call %s: %s returned after %d ms, past its %d ms timeout",
                log_id, connector.name, elapsed_ms, timeout * 1000,
            )

        self._safely(self.breaker.record_success, connector.name)
        self._safely(self.cache.put, connector.name, caller.e164, matches)
        log.info(
            "Call %s: %s found %d record(s) for %s in %d ms",
            log_id, connector.name, len(matches), mask(caller.e164), elapsed_ms,
        )
        return SystemResult(connector.name, FOUND if matches else NONE, matches, elapsed_ms)

    def _failure(self, connector: Connector, began: float, status: str, error: Exception, log_id: str) -> SystemResult:
        elapsed_ms = int((time.monotonic() - began) * 1000)
        log.warning(
            "Call %s: lookup in %s %s after %d ms: %s",
            log_id, connector.name, status.replace("_", " "), elapsed_ms, error,
            exc_info=status == FAILED,
        )
        return SystemResult(connector.name, status, elapsed_ms=elapsed_ms, error=str(error)[:300])

    def _record_failure(self, system: str, rate_limited: bool = False, retry_after_s: float | None = None) -> None:
        self._safely(self.breaker.record_failure, system, rate_limited, retry_after_s)

    @staticmethod
    def _safely(function, *args) -> None:
        try:
            function(*args)
        except Exception:
            log.warning("Redis call %s failed", function.__qualname__, exc_info=True)

    # After the deadline

    def _follow_late(
        self,
        result: LookupResult,
        late: dict[Future, Connector],
        started: float,
        on_late: LateCallback | None,
        log_id: str,
    ) -> None:
        for connector in late.values():
            log.info("Call %s: lookup in %s still running at the deadline", log_id, connector.name)
        follower = LateFollower(self, result, late, started, on_late, log_id)
        self.followers.submit(follower.run)

    def close(self) -> None:
        for executor in (self.executor, self.followers):
            if executor is not None:
                executor.shutdown(wait=False, cancel_futures=True)
        for connector in self.connectors:
            connector.close()


class LateFollower:
    """Wait for the connectors that missed the deadline and report each one's outcome.

    A connector that has not finished `LATE_GRACE_S` after its own timeout is
    marked timed out, and the result it may still return later is dropped.
    """

    def __init__(self, service: LookupService, result: LookupResult, late: dict[Future, Connector],
                 started: float, on_late: LateCallback | None, log_id: str):
        self.service = service
        self.result = result
        self.late = late
        self.on_late = on_late
        self.log_id = log_id
        self.give_up_at = {
            future: started + service.timeouts_s[connector.name] + LATE_GRACE_S
            for future, connector in late.items()
        }

    def run(self) -> None:
        """Report each late connector as it finishes or runs out of time."""
        remaining = set(self.late)
        while remaining:
            next_give_up = min(self.give_up_at[future] for future in remaining)
            done, remaining = wait(remaining, timeout=max(next_give_up - time.monotonic(), 0), return_when=FIRST_COMPLETED)
            for future in done:
                self._report(self.late[future].name, self._outcome(future))

            expired = {future for future in remaining if self.give_up_at[future] <= time.monotonic()}
            for future in expired:
                self._report(self.late[future].name, self._gave_up(self.late[future]))
            remaining -= expired

    def _outcome(self, future: Future) -> SystemResult:
        if future.cancelled():
            return SystemResult(self.late[future].name, FAILED, error="lookup cancelled at shutdown")
        return future.result()

    def _gave_up(self, connector: Connector) -> SystemResult:
        timeout_ms = self.service.timeouts_s[connector.name] * 1000
        log.warning("Call %s: lookup in %s timed out after %d ms", self.log_id, connector.name, timeout_ms)
        self.service._record_failure(connector.name)
        return SystemResult(connector.name, TIMED_OUT, elapsed_ms=int(timeout_ms), error=f"no reply within {timeout_ms:.0f} ms")

    def _report(self, name: str, outcome: SystemResult) -> None:
        self.result.systems[name] = outcome
        if self.on_late is None:
            return
        try:
            self.on_late(self.result.copy())
        except Exception:
            log.warning("Call %s: publishing the late %s result failed", self.log_id, name, exc_info=True)



def get_lookup() -> LookupService:
    return current_app.extensions["callcard.lookup"]
