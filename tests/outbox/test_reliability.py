"""200 calls logged while Salesforce fails for a while: a separate RQ worker process lands every Task once."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import sqlalchemy as sa

from app.db import get_db
from app.models import Interaction, OutboxEntry
from tests.conftest import redis_client
from tests.outbox.conftest import KNOWN, card_matches, finish, store_interaction
from tests.stubs import Reply

CALLS = 200
OUTAGE_S = 3.0
DEADLINE_S = 55.0
ROOT = Path(__file__).resolve().parents[2]


def worker_environment(app, salesforce_config) -> dict[str, str]:
    """Return the environment of a worker process that shares the test application's storage."""
    env = dict(os.environ)
    env["DATABASE_URL"] = app.extensions["callcard.db"].engine.url.render_as_string(hide_password=False)
    env["REDIS_URL"] = app.extensions["callcard.redis"].connection_url()
    env.update({key: str(value) for key, value in salesforce_config.items()})
    env.update(
        {
            "CALLCARD_INSTANCE_PATH": app.instance_path,
            "CONNECTORS": "salesforce",
            "SECRET_KEY": app.config["SECRET_KEY"],
            "TWILIO_AUTH_TOKEN": app.config["TWILIO_AUTH_TOKEN"],
            "DEMO_DATA": "false",
            "SALESFORCE_LOGIN_RETRY_S": "0",
            "SALESFORCE_LOG_TIMEOUT_S": "5",
            "OUTBOX_BACKOFF_BASE_S": "1",
            "OUTBOX_BACKOFF_MAX_S": "2",
            "OUTBOX_MAX_ATTEMPTS": "30",
            "OUTBOX_SWEEP_S": "5",
            "LOG_LEVEL": "WARNING",
        }
    )
    return env


def outbox_states(app) -> dict[str, int]:
    with app.app_context():
        with get_db().new_session() as session:
            rows = session.execute(sa.select(OutboxEntry.state, sa.func.count()).group_by(OutboxEntry.state))
            return dict(rows.all())


def test_outage_loses_and_duplicates_nothing(make_app, salesforce_config, salesforce_stub):
    app = make_app(CONNECTORS="salesforce", **salesforce_config)
    redis_client(app).flushdb()
    salesforce_stub.add_contact(Name="Ada Example", Phone="(415) 555-0100")
    card = {"matches": card_matches(app, KNOWN)}
    interaction_ids = [store_interaction(app, card=card) for _ in range(CALLS)]

    outage = salesforce_stub.fail(Reply.text(503, "Service Unavailable"), path="/", times=None)
    worker = subprocess.Popen(
        [sys.executable, "-m", "flask", "--app", "wsgi", "worker"],
        cwd=ROOT, env=worker_environment(app, salesforce_config),
        stdout=subprocess.DEVNULL, stderr=open(Path(app.instance_path) / "worker.log", "w"),
    )
    try:
        started = time.monotonic()
        for interaction_id in interaction_ids:
            finish(app, interaction_id)
        # The outage lasts OUTAGE_S from the worker's first failed request.
        while outage.applied == 0 and time.monotonic() - started < DEADLINE_S:
            time.sleep(0.05)
        time.sleep(OUTAGE_S)
        salesforce_stub.faults.remove(outage)
        while time.monotonic() - started < DEADLINE_S:
            if outbox_states(app).get("done") == CALLS:
                break
            time.sleep(0.5)
        elapsed = time.monotonic() - started
    finally:
        worker.send_signal(signal.SIGTERM)
        try:
            worker.wait(timeout=10)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait()

    tasks = list(salesforce_stub.records["Task"].values())
    with app.app_context():
        sids = set(get_db().session().scalars(sa.select(Interaction.provider_sid)))
    call_objects = [task["CallObject"] for task in tasks]
    print(f"\nreliability: {len(tasks)} Tasks for {CALLS} calls, {len(set(call_objects))} distinct CallObjects, "
          f"{outage.applied} requests failed during a {OUTAGE_S:.0f} s outage, {salesforce_stub.login_attempts} "
          f"sign-ins, all logged {elapsed:.1f} s after the first call; outbox states {outbox_states(app)}")
    assert outage.applied > 0
    assert salesforce_stub.login_attempts <= 3
    assert len(tasks) == CALLS
    assert len(set(call_objects)) == CALLS
    assert set(call_objects) == sids
    assert outbox_states(app) == {"done": CALLS}
