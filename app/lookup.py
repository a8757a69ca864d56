"""The lookup fan-out: every enabled connector in parallel, on one deadline."""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait

from flask import Flask, current_app

from app.breaker import CircuitBreaker
from app.lookup_cache import LookupCache
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


@dataclasses.dataclass
class SystemResult:
    """What one connector returned for one caller."""

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


LateCallback = Callable[[LookupResult], None]


class LookupService:
    """Run connector lookups in a thread pool, with a cache and a breaker per connector."""

    def __init__(self, app: Flask | None = None):
        self.connectors: list[Connector] = []
        self.executor: ThreadPoolExecutor | None = None
        if app is not None:
            self.init_app(app)

    def init_app(self, app: Flask) -> None:
        from app.db import get_db

        with app.app_context():
            context = ConnectorContext(
                config=app.config, engine=get_db().engine, redis=app.extensions["callcard.redis"]
            )
            names = enabled_names(app.config)
            self.connectors = [
                connector
                for connector in build_connectors(names, context)
                if LOOKUP in connector.capabilities
            ]
        self.deadline_s = app.config["LOOKUP_DEADLINE_MS"] / 1000
        self.cache_ttl_s = app.config["LOOKUP_CACHE_TTL_S"]
        self.timeouts_s = {
            connector.name: int(
                app.config.get(f"{connector.name.upper()}_TIMEOUT_MS") or 5000
            )
            / 1000
            for connector in self.connectors
        }
        self.executor = ThreadPoolExecutor(max_workers=32, thread_name_prefix="lookup")
        self.redis_store = app.extensions["callcard.redis"]
        app.extensions["callcard.lookup"] = self
        log.info("Connectors enabled: %s", ", ".join(c.name for c in self.connectors) or "none")

    @property
    def cache(self) -> LookupCache:
        return LookupCache(self.redis_store.client, self.cache_ttl_s)

    @property
    def breaker(self) -> CircuitBreaker:
        return CircuitBreaker(self.redis_store.client)

    def run(
        self,
        caller: Caller,
        on_late: LateCallback | None = None,
        deadline_s: float | None = None,
        log_id: str = "",
    ) -> LookupResult:
        """Look `caller` up everywhere and return what arrived by the deadline.

        Connectors still running at the deadline are marked pending. When one of
        them finishes, `on_late` is called (from a pool thread) with the updated
        result, so the caller can publish a card update.
        """
        deadline_s = self.deadline_s if deadline_s is None else deadline_s
        result = LookupResult(caller=caller, systems={})
        if not caller.is_lookupable:
            for connector in self.connectors:
                result.systems[connector.name] = SystemResult(connector.name, NONE)
            return result

        started = time.monotonic()
        futures: dict[Future, str] = {}
        for connector in self.connectors:
            cached = self._from_cache(connector, caller)
            if cached is not None:
                result.systems[connector.name] = cached
            elif not self.breaker.allow(connector.name):
                result.systems[connector.name] = SystemResult(
                    connector.name, SKIPPED, error="circuit breaker open"
                )
            else:
                result.systems[connector.name] = SystemResult(connector.name, PENDING)
                future = self.executor.submit(self._lookup_one, connector, caller, log_id)
                futures[future] = connector.name

        remaining = set(futures)
        while remaining:
            left = deadline_s - (time.monotonic() - started)
            if left <= 0:
                break
            done, remaining = wait(remaining, timeout=left, return_when=FIRST_COMPLETED)
            for future in done:
                result.systems[futures[future]] = future.result()

        if remaining:
            self._follow_late(result, {f: futures[f] for f in remaining}, on_late, log_id)
        return result

    def _follow_late(
        self,
        result: LookupResult,
        late: dict[Future, str],
        on_late: LateCallback | None,
        log_id: str,
    ) -> None:
        lock = threading.Lock()
        for name in late.values():
            log.info("Call %s: lookup in %s still running at the deadline", log_id, name)

        def _deliver(future: Future) -> None:
            with lock:
                result.systems[late[future]] = future.result()
                if on_late is None:
                    return
                try:
                    on_late(result)
                except Exception:
                    log.exception("Call %s: publishing the late %s result failed", log_id, late[future])

        for future in late:
            future.add_done_callback(_deliver)

    def _from_cache(self, connector: Connector, caller: Caller) -> SystemResult | None:
        try:
            matches = self.cache.get(connector.name, caller.e164)
        except Exception:
            log.warning("Lookup cache unavailable for %s", connector.name, exc_info=True)
            return None
        if matches is None:
            return None
        status = FOUND if matches else NONE
        return SystemResult(connector.name, status, matches, elapsed_ms=0, cached=True)

    def _lookup_one(self, connector: Connector, caller: Caller, log_id: str) -> SystemResult:
        """Run one connector's lookup; never raises."""
        timeout = self.timeouts_s.get(connector.name, 5.0)
        started = time.monotonic()
        try:
            matches = connector.lookup(caller, timeout)
        except RateLimited as error:
            self._record_failure(connector.name, error.retry_after)
            return self._failure(connector, started, RATE_LIMITED, error, log_id)
        except TimeoutError as error:
            self._record_failure(connector.name)
            return self._failure(connector, started, TIMED_OUT, error, log_id)
        except Exception as error:
            self._record_failure(connector.name)
            status = TIMED_OUT if "timed out" in str(error).lower() else FAILED
            return self._failure(connector, started, status, error, log_id)

        elapsed_ms = int((time.monotonic() - started) * 1000)
        if elapsed_ms > timeout * 1000:
            self._record_failure(connector.name)
            return SystemResult(connector.name, TIMED_OUT, elapsed_ms=elapsed_ms, error="timed out")

        self._safely(self.breaker.record_success, connector.name)
        self._safely(self.cache.put, connector.name, caller.e164, matches)
        log.info(
            "Call %s: %s found %d record(s) for %s in %d ms",
            log_id, connector.name, len(matches), mask(caller.e164), elapsed_ms,
        )
        return SystemResult(connector.name, FOUND if matches else NONE, matches, elapsed_ms)

    def _failure(self, connector, started, status, error, log_id) -> SystemResult:
        elapsed_ms = int((time.monotonic() - started) * 1000)
        log.warning(
            "Call %s: lookup in %s %s after %d ms: %s",
            log_id, connector.name, status.replace("_", " "), elapsed_ms, error,
            exc_info=status == FAILED,
        )
        return SystemResult(connector.name, status, elapsed_ms=elapsed_ms, error=str(error)[:300])

    def _record_failure(self, system: str, retry_after: float | None = None) -> None:
        self._safely(self.breaker.record_failure, system, retry_after)

    @staticmethod
    def _safely(function, *args) -> None:
        try:
            function(*args)
        except Exception:
            log.warning("Redis call %s failed", function.__qualname__, exc_info=True)

    def close(self) -> None:
        if self.executor is not None:
            self.executor.shutdown(wait=False, cancel_futures=True)
        for connector in self.connectors:
            connector.close()


def get_lookup() -> LookupService:
    return current_app.extensions["callcard.lookup"]
