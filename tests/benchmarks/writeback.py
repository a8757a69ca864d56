"""Benchmark the write-back: interactions logged per second per RQ worker process.

The Salesforce and Zendesk stubs reply to every request after 100 ms. Each
interaction is a finished inbound call from a known caller, logged to both
systems, so it makes two outbox rows ("logs"). The run starts 1, 2 and 4 worker
processes (`flask --app wsgi worker`), waits until they are listening, queues N
interactions, and times how long the workers take to deliver every row.

    python -m tests.benchmarks.writeback [--interactions N] [--workers 1,2,4]

The last line is `logs_per_second_per_worker=N`, measured with one worker.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import sqlalchemy as sa
import trustme

ROOT = Path(__file__).resolve().parents[2]
STUB_LATENCY_S = 0.1
DEADLINE_S = 600


def start_stubs(ca: trustme.CA):
    from tests.stubs import server_ssl_context
    from tests.stubs.salesforce import SalesforceStub
    from tests.stubs.zendesk import ZendeskStub

    context = server_ssl_context(ca)
    salesforce = SalesforceStub(context).start()
    zendesk = ZendeskStub(context, email="integration@example.com", api_token="FAKEZENDESKAPITOKEN0123456789").start()
    salesforce.add_contact(Name="Ada Example", Phone="(415) 555-0100")
    zendesk.add_user(name="Ada Example", phone="+1 415-555-0100")
    return salesforce, zendesk


def settings(salesforce, zendesk) -> dict[str, str]:
    return {
        "CONNECTORS": "salesforce,zendesk",
        "SALESFORCE_USERNAME": "integration@example.com",
        "SALESFORCE_PASSWORD": "p&ss-fake1",
        "SALESFORCE_SECURITY_TOKEN": "FAKESECURITYTOKEN",
        "SALESFORCE_DOMAIN": salesforce.host,
        "ZENDESK_URL": zendesk.url,
        "ZENDESK_EMAIL": "integration@example.com",
        "ZENDESK_API_TOKEN": "FAKEZENDESKAPITOKEN0123456789",
        "SECRET_KEY": "benchmark-secret-key",
        "TWILIO_AUTH_TOKEN": "benchmark-auth-token",
        "DEMO_DATA": "false",
        "LOG_LEVEL": "WARNING",
    }


def start_workers(count: int, env: dict[str, str], client) -> list[subprocess.Popen]:
    """Start `count` worker processes and wait until each is listening."""
    from rq import Worker

    workers = [
        subprocess.Popen([sys.executable, "-m", "flask", "--app", "wsgi", "worker"], cwd=ROOT, env=env,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(count)
    ]
    started = time.monotonic()
    while Worker.count(connection=client) < count:
        if time.monotonic() - started > 60:
            raise RuntimeError(f"only {Worker.count(connection=client)} of {count} workers started within 60 s")
        time.sleep(0.1)
    return workers


def stop_workers(workers: list[subprocess.Popen], client) -> None:
    from rq import Worker

    for worker in workers:
        worker.send_signal(signal.SIGTERM)
    for worker in workers:
        try:
            worker.wait(timeout=90)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait()
    for registered in Worker.all(connection=client):
        registered.register_death()


def measure(app, card: dict, interactions: int, worker_count: int, env: dict[str, str]) -> float:
    """Return the outbox rows delivered per second by `worker_count` workers."""
    from app import outbox
    from app.db import get_db
    from app.models import Interaction, OutboxEntry

    client = app.extensions["callcard.redis"].client
    workers = start_workers(worker_count, env, client)
    try:
        with app.app_context():
            session = get_db().session()
            batch = []
            for index in range(interactions):
                batch.append(Interaction(
                    provider_sid=f"CA{worker_count:04d}{index:028d}", channel="voice", direction="inbound",
                    from_address="+14155550100", to_address="+14155550199", caller_kind="phone",
                    caller_e164="+14155550100", status="completed", duration_seconds=60, card=card,
                ))
            session.add_all(batch)
            session.commit()
            ids = [interaction.id for interaction in batch]

            started = time.monotonic()
            for interaction in batch:
                outbox.interaction_finished(session, interaction)
            expected = 2 * interactions
            while True:
                done = session.scalar(
                    sa.select(sa.func.count()).select_from(OutboxEntry)
                    .where(OutboxEntry.interaction_id.in_(ids), OutboxEntry.state == "done")
                )
                session.rollback()
                if done >= expected:
                    break
                if time.monotonic() - started > DEADLINE_S:
                    raise RuntimeError(f"{done} of {expected} rows delivered within {DEADLINE_S} s")
                time.sleep(0.05)
            elapsed = time.monotonic() - started
    finally:
        stop_workers(workers, client)
    return expected / elapsed


def run(interactions: int, worker_counts: list[int]) -> dict[int, float]:
    """Run the benchmark and return the logs per second of each worker count."""
    ca = trustme.CA()
    salesforce, zendesk = start_stubs(ca)
    with tempfile.TemporaryDirectory() as folder:
        bundle = Path(folder) / "ca.pem"
        ca.cert_pem.write_to_path(str(bundle))
        os.environ.update({"REQUESTS_CA_BUNDLE": str(bundle), "NO_PROXY": "127.0.0.1,localhost"})
        os.environ.pop("CURL_CA_BUNDLE", None)
        os.environ.pop("DATABASE_URL", None)
        os.environ.pop("REDIS_URL", None)
        config = settings(salesforce, zendesk)

        from app import create_app
        from app.phone import parse_caller

        app = create_app({**config, "INSTANCE_PATH": folder, "DEMO_DATA": False})
        app.extensions["callcard.db"].upgrade()
        caller = parse_caller("+14155550100", "US")
        card = {"matches": [m.to_dict() for c in app.extensions["callcard.connectors"].values() for m in c.lookup(caller, 5)]}
        env = {**os.environ, **config, "CALLCARD_INSTANCE_PATH": folder,
               "REDIS_URL": app.extensions["callcard.redis"].connection_url()}

        for stub in (salesforce, zendesk):
            stub.delay(STUB_LATENCY_S)
        results = {count: measure(app, card, interactions, count, env) for count in worker_counts}
        app.extensions["callcard.lookup"].close()
    salesforce.stop()
    zendesk.stop()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--interactions", type=int, default=60, help="interactions logged per worker count")
    parser.add_argument("--workers", default="1,2,4", help="comma-separated worker process counts")
    options = parser.parse_args()
    counts = [int(value) for value in options.workers.split(",")]

    results = run(options.interactions, counts)
    baseline = results[counts[0]] / counts[0]
    print(f"stub latency {STUB_LATENCY_S * 1000:.0f} ms, {options.interactions} interactions (2 logs each) per run, "
          f"{os.cpu_count()} CPU cores")
    for count, rate in results.items():
        per_worker = rate / count
        print(f"workers={count} logs_per_second={rate:.1f} per_worker={per_worker:.1f} "
              f"speedup={rate / results[counts[0]]:.2f}x efficiency={per_worker / baseline:.2f}")
    print(f"logs_per_second_per_worker={baseline:.1f}")


if __name__ == "__main__":
    main()
