"""A requests session whose requests share one per-thread deadline, for connector clients."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from typing import Any

import requests
from requests.adapters import HTTPAdapter

# Used outside a deadline block, e.g. by a client library's own calls.
DEFAULT_REQUEST_TIMEOUT_S = 30.0

# Keep-alive connections per host: as many as lookups and jobs run at once in a
# process (the lookup pool has 32 threads), so none is discarded under load.
POOL_SIZE = 32


class DeadlineSession(requests.Session):
    """A session that bounds the requests a thread makes inside `deadline()` to one total time.

    The client libraries (simple-salesforce, zenpy) have no overall timeout, but
    they send every request through the session they are given.
    """

    def __init__(self) -> None:
        super().__init__()
        self._local = threading.local()
        adapter = HTTPAdapter(pool_connections=4, pool_maxsize=POOL_SIZE)
        self.mount("https://", adapter)
        self.mount("http://", adapter)

    @contextlib.contextmanager
    def deadline(self, seconds: float) -> Iterator[None]:
        """Bound the requests this thread makes inside the block to `seconds` in all."""
        previous = getattr(self._local, "deadline", None)
        self._local.deadline = time.monotonic() + seconds
        try:
            yield
        finally:
            self._local.deadline = previous

    def time_left(self) -> float | None:
        """Seconds left before the current deadline, or None outside a deadline."""
        deadline = getattr(self._local, "deadline", None)
        return None if deadline is None else deadline - time.monotonic()

    def request(self, method: str, url: str, *args: Any, **kwargs: Any) -> requests.Response:
        left = self.time_left()
        if left is None:
            kwargs["timeout"] = kwargs.get("timeout") or DEFAULT_REQUEST_TIMEOUT_S
        elif left <= 0:
            raise requests.Timeout(f"the deadline passed before a {method} request")
        else:
            kwargs["timeout"] = left
        return super().request(method, url, *args, **kwargs)
