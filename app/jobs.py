"""Background jobs: the RQ queues of this installation and the worker that runs them."""

from __future__ import annotations

import logging
import threading
import time

from flask import Flask, current_app
from rq import Queue, SimpleWorker

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


def bind_worker_app(app: Flask) -> None:
    """Make jobs run in `app`, the application of the worker that runs them."""
    global _worker_app
    _worker_app = app


def run_worker(app: Flask, burst: bool = False, queues: list[str] | None = None) -> bool:
    """Work on `queues` (default: the main queue) until stopped, or until empty with `burst`."""
    bind_worker_app(app)
    client = app.extensions["callcard.redis"].client
    names = queues or [DEFAULT_QUEUE]
    # SimpleWorker runs each job in this process instead of a forked child, so the
    # CRM sessions signed in by one job serve the next. A forked child's sign-in
    # is lost when it exits, which made every job sign in to Salesforce again.
    worker = SimpleWorker([Queue(name, connection=client) for name in names], connection=client)
    log.info("Worker %s: listening on %s", worker.name, ", ".join(names))

    from app import outbox

    outbox.sweep(app)
    if not burst:
        start_sweeper(app, app.config["OUTBOX_SWEEP_S"])
    return worker.work(burst=burst, with_scheduler=True)


def start_sweeper(app: Flask, interval_s: float) -> threading.Thread:
    """Run the outbox sweeper every `interval_s` seconds in a daemon thread.

    A Redis lock lets one worker of the installation sweep per interval.
    """
    from app import outbox

    client = app.extensions["callcard.redis"].client

    def loop() -> None:
        while True:
            time.sleep(interval_s)
            try:
                if client.set("callcard:outbox-sweeper", 1, nx=True, ex=max(int(interval_s) - 1, 1)):
                    outbox.sweep(app)
            except Exception:
                log.warning("Outbox sweeper failed; retrying in %s s", interval_s, exc_info=True)

    thread = threading.Thread(target=loop, name="outbox-sweeper", daemon=True)
    thread.start()
    return thread
