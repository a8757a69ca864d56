"""Fixtures for write-back tests: an application whose connectors use the CRM stubs, and a real RQ worker."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
import sqlalchemy as sa
from rq import Queue, SimpleWorker
from rq.job import Job
from rq.registry import ScheduledJobRegistry

from app import outbox
from app.db import get_db
from app.jobs import DEFAULT_QUEUE, bind_worker_app
from app.models import Conversation, Interaction, OutboxEntry
from app.phone import parse_caller
from tests.conftest import create_agent, redis_client
from tests.integrations.conftest import (  # noqa: F401  (fixtures used by this folder's tests)
    ca_bundle,
    certificate_authority,
    salesforce_config,
    salesforce_stub,
    stub_ssl_context,
    trust_stubs,
    zendesk_config,
    zendesk_stub,
)

KNOWN = "+14155550100"
UNKNOWN = "+14155550177"
SUPPORT_LINE = "+14155550199"
WITHHELD = "+266696687"
ZENDESK_APP_ID = 1000001


@pytest.fixture
def crm_app(make_app, salesforce_config, zendesk_config):
    """An application with Salesforce and Zendesk on the stubs, short timeouts and fast backoff."""
    app = make_app(
        CONNECTORS="salesforce,zendesk",
        **{**salesforce_config, **zendesk_config},
        SALESFORCE_LOGIN_RETRY_S=0,
        SALESFORCE_LOG_TIMEOUT_S=1,
        ZENDESK_LOG_TIMEOUT_S=1,
        ZENDESK_APP_ID=ZENDESK_APP_ID,
        OUTBOX_BACKOFF_BASE_S=1,
        OUTBOX_BACKOFF_MAX_S=2,
        OUTBOX_MAX_ATTEMPTS=4,
    )
    redis_client(app).flushdb()
    bind_worker_app(app)
    return app


@pytest.fixture
def people(salesforce_stub, zendesk_stub):
    """Seed the known caller in both systems."""
    account = salesforce_stub.add_account(Name="Example Corp", Phone="+1 415 555 0999")
    contact = salesforce_stub.add_contact(Name="Ada Example", Phone="(415) 555-0100", AccountId=account["Id"])
    user = zendesk_stub.add_user(name="Ada Example", phone="+1 415-555-0100")
    return {"account": account, "contact": contact, "zendesk_user": user}


def card_matches(app, number: str) -> list[dict[str, Any]]:
    """Look `number` up with the application's connectors, as the webhook does, and return the card matches."""
    caller = parse_caller(number, "US")
    matches = []
    for connector in app.extensions["callcard.connectors"].values():
        matches += [match.to_dict() for match in connector.lookup(caller, 5)]
    return matches


def store_interaction(app, number: str = KNOWN, **fields: Any) -> int:
    """Store a finished inbound call (or message, with `channel`) and return its id."""
    caller = parse_caller(number, "US")
    now = datetime(2026, 1, 15, 17, 1, 40, tzinfo=timezone.utc)
    values: dict[str, Any] = {
        "provider_sid": "CA" + uuid.uuid4().hex,
        "channel": "voice",
        "direction": "inbound",
        "from_address": number,
        "to_address": SUPPORT_LINE,
        "caller_kind": caller.kind,
        "caller_e164": caller.e164,
        "status": "completed",
        "started_at": now,
        "answered_at": now + timedelta(seconds=5),
        "ended_at": now + timedelta(seconds=67),
        "duration_seconds": 67,
        "card": {"matches": card_matches(app, number)},
    }
    values.update(fields)
    with app.app_context():
        with get_db().new_session() as session:
            interaction = Interaction(**values)
            session.add(interaction)
            session.commit()
            return interaction.id


def store_conversation(app, number: str = KNOWN, channel: str = "sms") -> int:
    with app.app_context():
        with get_db().new_session() as session:
            conversation = Conversation(channel=channel, address=number, business_address=SUPPORT_LINE)
            session.add(conversation)
            session.commit()
            return conversation.id


def finish(app, interaction_id: int) -> list[int]:
    """Queue the write-back of an interaction as the webhooks do, and return its outbox row ids."""
    with app.app_context():
        session = get_db().session()
        interaction = session.get(Interaction, interaction_id)
        return [entry.id for entry in outbox.interaction_finished(session, interaction)]


def update(app, interaction_id: int, **fields: Any) -> None:
    """Save fields on the interaction and queue the update, as the notes API does."""
    with app.app_context():
        session = get_db().session()
        interaction = session.get(Interaction, interaction_id)
        for name, value in fields.items():
            setattr(interaction, name, value)
        session.commit()
        outbox.interaction_updated(session, interaction)


def entries(app, interaction_id: int | None = None) -> dict[str, OutboxEntry]:
    """Return the outbox rows, by connector when `interaction_id` is given, else by id."""
    with app.app_context():
        with get_db().new_session() as session:
            query = sa.select(OutboxEntry).order_by(OutboxEntry.id)
            if interaction_id is not None:
                query = query.where(OutboxEntry.interaction_id == interaction_id)
            rows = list(session.scalars(query))
            session.expunge_all()
    if interaction_id is None:
        return {str(row.id): row for row in rows}
    return {row.connector: row for row in rows}


def queue(app) -> Queue:
    return Queue(DEFAULT_QUEUE, connection=redis_client(app))


class BurstWorker(SimpleWorker):
    """RQ's SimpleWorker without the command channel.

    The channel's listener thread polls every 60 s and the worker joins it on
    exit, so every burst run would last up to a minute. Burst runs take no
    commands, so the channel is left out.
    """

    def subscribe(self) -> None:
        self.pubsub_thread = None

    def unsubscribe(self) -> None:
        pass


def work(app) -> int:
    """Run every queued job once in a real RQ worker (burst mode); return how many ran."""
    worker = BurstWorker([queue(app)], connection=redis_client(app))
    worker.work(burst=True)
    return worker.successful_job_count + worker.failed_job_count


def scheduled_jobs(app) -> dict[str, datetime]:
    """Return the scheduled jobs and the time each is due, as stored in RQ's scheduled job registry."""
    registry = ScheduledJobRegistry(queue=queue(app))
    return {job_id: registry.get_scheduled_time(job_id) for job_id in registry.get_job_ids()}


def release_scheduled(app) -> int:
    """Move every scheduled job to the queue now, as the scheduler does once each is due."""
    registry = ScheduledJobRegistry(queue=queue(app))
    job_ids = registry.get_job_ids()
    for job_id in job_ids:
        job = Job.fetch(job_id, connection=redis_client(app))
        registry.remove(job)
        queue(app).enqueue_job(job)
    return len(job_ids)


def drain(app, rounds: int = 20) -> None:
    """Run jobs and release scheduled retries until nothing is left to run."""
    for _ in range(rounds):
        ran = work(app)
        released = release_scheduled(app)
        if not ran and not released:
            return
    raise AssertionError(f"jobs still queued after {rounds} rounds")


def make_agent(app, **crm_user_ids: Any) -> int:
    return create_agent(app, crm_user_ids=crm_user_ids)
