"""Background jobs: the RQ queues of this installation and the worker that runs them."""

from __future__ import annotations

import logging

from flask import Flask, current_app
from rq import Queue, Worker

log = logging.getLogger(__name__)

DEFAULT_QUEUE = "callcard"

_worker_app: Flask | None = None


def get_queue(name: str = DEFAULT_QUEUE) -> Queue:
    """Return the RQ queue `name` on this installation's Redis."""
    client = current_app.extensions["callcard.redis"].client
    return Queue(name, connection=client)


def worker_app() -> Flask:
    """Return the application a job runs in: the worker's, or a new one."""
    global _worker_app
    if _worker_app is None:
        from app import create_app

        _worker_app = create_app()
    return _worker_app


def run_worker(app: Flask, burst: bool = False, queues: list[str] | None = None) -> bool:
    """Work on `queues` (default: the main queue) until stopped, or until empty with `burst`."""
    global _worker_app
    _worker_app = app
    client = app.extensions["callcard.redis"].client
    names = queues or [DEFAULT_QUEUE]
    worker = Worker([Queue(name, connection=client) for name in names], connection=client)
    log.info("Worker %s: listening on %s", worker.name, ", ".join(names))
    return worker.work(burst=burst, with_scheduler=True)
