"""The outbox engine: retries, rate limits, sessions, lost jobs, dead rows and idempotency."""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone

from app import outbox
from tests.outbox.conftest import (
    drain,
    entries,
    finish,
    release_scheduled,
    scheduled_jobs,
    store_interaction,
    work,
)
from tests.conftest import redis_client


def task_count(stub) -> int:
    return len(stub.records["Task"])


def test_same_job_twice_creates_one_record(crm_app, salesforce_stub, zendesk_stub, people):
    interaction_id = store_interaction(crm_app)
    finish(crm_app, interaction_id)
    rows = entries(crm_app, interaction_id)

    with crm_app.app_context():
        for row in rows.values():
            assert outbox.deliver(crm_app, row.id) == "done"
            assert outbox.deliver(crm_app, row.id) == "done"
    for connector in crm_app.extensions["callcard.connectors"].values():
        payload, match = _payload(crm_app, interaction_id, connector.name)
        connector.log(payload, match)
    drain(crm_app)

    assert task_count(salesforce_stub) == 1
    assert len(zendesk_stub.tickets) == 1
    assert len(zendesk_stub.calls) == 1


def _payload(app, interaction_id, system):
    from app.db import get_db
    from app.models import Interaction

    with app.app_context():
        session = get_db().session()
        interaction = session.get(Interaction, interaction_id)
        return outbox.interaction_payload(session, interaction), outbox.chosen_match(interaction, system)


def test_timeout_after_crm_accepted_creates_one_record(crm_app, salesforce_stub, zendesk_stub, people):
    salesforce_stub.slow_after_effect(2.0, path=f"{salesforce_stub.data_path}sobjects/Task", method="POST")
    zendesk_stub.slow_after_effect(2.0, path="/api/v2/channels/voice/tickets.json", method="POST")
    interaction_id = store_interaction(crm_app)

    finish(crm_app, interaction_id)
    work(crm_app)
    rows = entries(crm_app, interaction_id)
    assert rows["salesforce"].state == "retrying"
    assert "TimedOut" in rows["salesforce"].last_error or "timeout" in rows["salesforce"].last_error
    assert rows["zendesk"].state == "retrying"
    drain(crm_app)

    assert task_count(salesforce_stub) == 1
    assert len(zendesk_stub.tickets) == 1
    rows = entries(crm_app, interaction_id)
    assert rows["salesforce"].state == "done"
    assert rows["salesforce"].attempts == 2
    assert rows["zendesk"].state == "done"


def test_service_unavailable_lands_on_retry(crm_app, salesforce_stub, zendesk_stub, people):
    interaction_id = store_interaction(crm_app)
    salesforce_stub.service_unavailable(times=1)
    zendesk_stub.service_unavailable(times=1, path="/api/v2/tickets.json")

    finish(crm_app, interaction_id)
    work(crm_app)
    assert {row.state for row in entries(crm_app, interaction_id).values()} == {"retrying"}
    drain(crm_app)

    rows = entries(crm_app, interaction_id)
    assert {row.state for row in rows.values()} == {"done"}
    assert {row.attempts for row in rows.values()} == {2}
    assert task_count(salesforce_stub) == 1
    assert len(zendesk_stub.tickets) == 1


def test_rate_limit_reschedules_without_sleeping(crm_app, zendesk_stub, monkeypatch, people):
    frozen = datetime(2026, 1, 15, 18, 0, tzinfo=timezone.utc)
    monkeypatch.setattr(outbox, "utcnow", lambda: frozen)
    interaction_id = store_interaction(crm_app)
    zendesk_stub.rate_limited(retry_after=7, times=1, path="/api/v2/tickets.json")

    finish(crm_app, interaction_id)
    started = time.monotonic()
    work(crm_app)
    elapsed = time.monotonic() - started

    assert elapsed < 3
    row = entries(crm_app, interaction_id)["zendesk"]
    assert row.state == "retrying"
    assert outbox._aware(row.next_attempt_at) >= frozen + timedelta(seconds=7)
    due = [when for job_id, when in scheduled_jobs(crm_app).items() if job_id.startswith(f"callcard-outbox-{row.id}-")]
    assert len(due) == 1
    assert due[0] >= datetime.now(timezone.utc) + timedelta(seconds=5)
    release_scheduled(crm_app)
    drain(crm_app)
    assert entries(crm_app, interaction_id)["zendesk"].state == "done"
    assert len(zendesk_stub.tickets) == 1


def test_salesforce_request_limit_is_retried(crm_app, salesforce_stub, people):
    interaction_id = store_interaction(crm_app)
    salesforce_stub.request_limit_exceeded(times=2)

    finish(crm_app, interaction_id)
    work(crm_app)
    row = entries(crm_app, interaction_id)["salesforce"]
    assert row.state == "retrying"
    assert "request limit" in row.last_error
    drain(crm_app)

    assert entries(crm_app, interaction_id)["salesforce"].state == "done"
    assert task_count(salesforce_stub) == 1


def test_expired_session_signs_in_again_once(crm_app, salesforce_stub, people):
    interaction_id = store_interaction(crm_app)
    logins_before = salesforce_stub.login_attempts
    salesforce_stub.invalidate_sessions()

    finish(crm_app, interaction_id)
    drain(crm_app)

    row = entries(crm_app, interaction_id)["salesforce"]
    assert row.state == "done"
    assert row.attempts == 1
    assert salesforce_stub.login_attempts == logins_before + 1
    assert task_count(salesforce_stub) == 1


def test_broken_login_goes_dead_then_admin_retry_lands(crm_app, salesforce_stub, people):
    interaction_id = store_interaction(crm_app)
    salesforce_stub.invalidate_sessions()
    salesforce_stub.login_broken = True
    logins_before = salesforce_stub.login_attempts

    finish(crm_app, interaction_id)
    drain(crm_app)

    row = entries(crm_app, interaction_id)["salesforce"]
    assert row.state == "dead"
    assert row.attempts == crm_app.config["OUTBOX_MAX_ATTEMPTS"]
    assert salesforce_stub.login_attempts - logins_before <= row.attempts
    runner = crm_app.test_cli_runner()
    listing = runner.invoke(args=["outbox", "list", "--state", "dead"])
    assert listing.exit_code == 0
    assert f"{row.id:>6}" in listing.output
    assert "salesforce" in listing.output

    salesforce_stub.login_broken = False
    retried = runner.invoke(args=["outbox", "retry", str(row.id)])
    assert retried.exit_code == 0, retried.output
    drain(crm_app)

    assert entries(crm_app, interaction_id)["salesforce"].state == "done"
    assert task_count(salesforce_stub) == 1


def test_sweeper_requeues_jobs_lost_in_redis_flush(crm_app, salesforce_stub, zendesk_stub, people):
    interaction_ids = [store_interaction(crm_app) for _ in range(5)]
    for interaction_id in interaction_ids:
        finish(crm_app, interaction_id)
    redis_client(crm_app).flushdb()
    assert work(crm_app) == 0

    requeued = outbox.sweep(crm_app, grace=timedelta(0))
    drain(crm_app)

    assert requeued == 10
    assert task_count(salesforce_stub) == 5
    assert len(zendesk_stub.tickets) == 5
    assert {row.state for row in entries(crm_app).values()} == {"done"}
    assert outbox.sweep(crm_app, grace=timedelta(0)) == 0
