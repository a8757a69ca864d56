"""The outbox: every finished interaction is logged to each connector, exactly once.

A row per interaction and connector is the source of truth; an RQ job carries each
attempt. A failed attempt is retried with exponential backoff and jitter (or after
the `Retry-After` the system asked for) until it lands or, after
`OUTBOX_MAX_ATTEMPTS`, the row is dead and waits for an admin's retry. The sweeper
re-enqueues rows whose job was lost, e.g. when Redis was flushed.
"""

from __future__ import annotations

import contextlib
import logging
import random
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from typing import Any

import sqlalchemy as sa
from flask import Flask, current_app
from rq.exceptions import NoSuchJobError
from rq.job import Job
from sqlalchemy.orm import Session

from app.cards import interaction_summary
from app.metrics import OUTBOX_ATTEMPTS
from app.models import Agent, Interaction, OutboxEntry
from integrations.base import (
    LOG_CALL,
    LOG_MESSAGE,
    AuthenticationFailed,
    Connector,
    Match,
    RateLimited,
)

log = logging.getLogger(__name__)

PENDING = "pending"
RETRYING = "retrying"
DONE = "done"
DEAD = "dead"
STATES = (PENDING, RETRYING, DONE, DEAD)

# Seconds a message job waits for another worker writing to the same conversation,
# and the delay before it tries again when the wait was not enough.
CONVERSATION_WAIT_S = 10
CONVERSATION_RETRY_S = 5
# RQ job statuses that mean the job will still run.
LIVE_JOB_STATUSES = frozenset({"queued", "started", "scheduled", "deferred"})

# Interaction statuses after which a call or message is logged.
FINAL_STATUSES = frozenset(
    {"completed", "busy", "no-answer", "failed", "canceled", "voicemail", "missed",
     "received", "delivered", "read", "sent", "undelivered"}
)


def utcnow() -> datetime:
    """Return the current time; tests replace it to move the clock."""
    return datetime.now(timezone.utc)


def _aware(value: datetime | None) -> datetime | None:
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=timezone.utc)
    return value


def connectors_for(app: Flask, interaction: Interaction) -> list[Connector]:
    """Return the enabled connectors that log this kind of interaction."""
    capability = LOG_CALL if interaction.channel == "voice" else LOG_MESSAGE
    connectors = app.extensions.get("callcard.connectors", {})
    return [c for c in connectors.values() if capability in c.capabilities]


def interaction_finished(session: Session, interaction: Interaction) -> list[OutboxEntry]:
    """Create or refresh the outbox rows of `interaction` and enqueue their jobs.

    Called when a call or message reaches a final state and whenever an agent saves
    notes, a disposition or the record the interaction is about; a row already done
    is sent again so the CRM record is updated, never duplicated.
    """
    app = current_app._get_current_object()
    entries = []
    for connector in connectors_for(app, interaction):
        entries.append(_upsert_entry(session, interaction.id, connector.name))
    session.commit()

    for entry in entries:
        enqueue(app, entry)
    return entries


interaction_updated = interaction_finished


def _upsert_entry(session: Session, interaction_id: int, connector: str) -> OutboxEntry:
    entry = session.scalar(
        sa.select(OutboxEntry)
        .where(OutboxEntry.interaction_id == interaction_id, OutboxEntry.connector == connector)
        .with_for_update()
    )
    if entry is None:
        entry = OutboxEntry(interaction_id=interaction_id, connector=connector, kind="log")
        session.add(entry)
    else:
        entry.version += 1
        if entry.state in (DONE, DEAD):
            entry.state = PENDING
            entry.attempts = 0
    entry.next_attempt_at = utcnow()
    session.flush()
    return entry


def job_id(entry: OutboxEntry, suffix: str = "") -> str:
    """Return the RQ job id of the row's next attempt: one id per version and attempt."""
    return f"callcard-outbox-{entry.id}-{entry.version}-{entry.attempts}{suffix}"


def enqueue(app: Flask, entry: OutboxEntry, delay: timedelta | None = None, suffix: str = "") -> None:
    """Put the row's next attempt on the queue; a Redis failure leaves it to the sweeper."""
    from app.jobs import get_queue

    with app.app_context():
        try:
            queue = get_queue()
            if delay and delay.total_seconds() > 0:
                queue.enqueue_in(delay, deliver_job, entry.id, job_id=job_id(entry, suffix))
            else:
                queue.enqueue(deliver_job, entry.id, job_id=job_id(entry, suffix))
        except Exception:
            log.warning("Outbox %s: enqueue failed, the sweeper will retry", entry.id, exc_info=True)


def deliver_job(entry_id: int) -> str:
    """RQ entry point: run one delivery attempt inside the worker's application."""
    from app.jobs import worker_app

    app = worker_app()
    with app.app_context():
        return deliver(app, entry_id)


def deliver(app: Flask, entry_id: int) -> str:
    """Send one outbox row to its connector and record the outcome; return the new state."""
    from app.db import get_db

    lock = app.extensions["callcard.redis"].client.lock(
        f"callcard:outbox-lock:{entry_id}", timeout=300, blocking_timeout=0
    )
    if not lock.acquire(blocking=False):
        log.info("Outbox %s: another worker is delivering it", entry_id)
        return "locked"
    try:
        with get_db().new_session() as session:
            with _conversation_lock(app, session, entry_id) as acquired:
                if not acquired:
                    return _wait_for_conversation(app, session, entry_id)
                state = _deliver_locked(app, session, entry_id)
                entry = session.get(OutboxEntry, entry_id)
                if entry is not None:
                    OUTBOX_ATTEMPTS.labels(connector=entry.connector, state=state).inc()
                return state
    finally:
        try:
            lock.release()
        except Exception:
            log.warning("Outbox %s: lock already expired", entry_id)


@contextlib.contextmanager
def _conversation_lock(app: Flask, session: Session, entry_id: int) -> Iterator[bool]:
    """Hold the lock of the row's conversation, so one worker at a time writes to its ticket or Task.

    Two messages of a conversation logged at once would otherwise both find no
    ticket and create one each. Calls and unknown rows need no lock.
    """
    entry = session.get(OutboxEntry, entry_id)
    interaction = session.get(Interaction, entry.interaction_id) if entry else None
    if interaction is None or interaction.conversation_id is None:
        yield True
        return

    name = f"callcard:outbox-conversation:{entry.connector}:{interaction.conversation_id}"
    lock = app.extensions["callcard.redis"].client.lock(name, timeout=300, blocking_timeout=CONVERSATION_WAIT_S)
    acquired = lock.acquire()
    try:
        yield acquired
    finally:
        if acquired:
            try:
                lock.release()
            except Exception:
                log.warning("Outbox %s: conversation lock already expired", entry_id, exc_info=True)


def _wait_for_conversation(app: Flask, session: Session, entry_id: int) -> str:
    """Try the row again shortly, because another worker holds its conversation."""
    entry = session.get(OutboxEntry, entry_id)
    log.info("Outbox %s: conversation busy, trying again in %d s", entry_id, CONVERSATION_RETRY_S)
    enqueue(app, entry, timedelta(seconds=CONVERSATION_RETRY_S), suffix=f"-wait{int(utcnow().timestamp())}")
    return "waiting"


def _deliver_locked(app: Flask, session: Session, entry_id: int) -> str:
    entry = session.get(OutboxEntry, entry_id)
    if entry is None:
        log.warning("Outbox %s: row not found", entry_id)
        return "missing"
    if entry.state == DONE and entry.synced_version >= entry.version:
        return DONE
    if entry.state == DEAD:
        return DEAD

    connector = app.extensions.get("callcard.connectors", {}).get(entry.connector)
    interaction = session.get(Interaction, entry.interaction_id)
    if connector is None:
        return _fail(app, session, entry, f"connector {entry.connector} is not enabled", None)

    version = entry.version
    entry.attempts += 1
    session.commit()
    try:
        reference = connector.log(interaction_payload(session, interaction), chosen_match(interaction, connector.name))
    except RateLimited as error:
        return _fail(app, session, entry, str(error), error.retry_after)
    except AuthenticationFailed as error:
        return _fail(app, session, entry, f"authentication failed: {error}", None)
    except Exception as error:
        log.warning("Outbox %s: %s log of interaction %s failed", entry.id, entry.connector, entry.interaction_id, exc_info=True)
        return _fail(app, session, entry, f"{type(error).__name__}: {error}", None)

    session.refresh(entry)
    entry.external_id = reference.external_id
    entry.external_url = reference.url
    entry.last_error = None
    entry.synced_version = max(entry.synced_version, version)
    entry.state = DONE if entry.synced_version >= entry.version else PENDING
    entry.next_attempt_at = None
    session.commit()
    log.info("Outbox %s: interaction %s logged to %s as %s", entry.id, entry.interaction_id, entry.connector, reference.external_id)

    _invalidate_lookups(app, session, interaction)
    if entry.state == PENDING:
        enqueue(app, entry)
    return entry.state


def _fail(app: Flask, session: Session, entry: OutboxEntry, error: str, retry_after: float | None) -> str:
    """Schedule the next attempt, or mark the row dead after the last one."""
    config = app.config
    entry.last_error = error[:2000]
    if entry.attempts >= config["OUTBOX_MAX_ATTEMPTS"]:
        entry.state = DEAD
        entry.next_attempt_at = None
        session.commit()
        log.error("Outbox %s: dead after %d attempts to %s: %s", entry.id, entry.attempts, entry.connector, error)
        return DEAD

    delay = backoff(entry.attempts, config["OUTBOX_BACKOFF_BASE_S"], config["OUTBOX_BACKOFF_MAX_S"])
    if retry_after is not None:
        delay = max(delay, timedelta(seconds=retry_after))
    entry.state = RETRYING
    entry.next_attempt_at = utcnow() + delay
    session.commit()
    log.warning(
        "Outbox %s: attempt %d to %s failed, next in %.0f s: %s",
        entry.id, entry.attempts, entry.connector, delay.total_seconds(), error,
    )
    enqueue(app, entry, delay)
    return RETRYING


def backoff(attempts: int, base_s: float, max_s: float) -> timedelta:
    """Exponential backoff with full jitter in its upper half: base·2^(n-1), capped."""
    ceiling = min(base_s * 2 ** max(attempts - 1, 0), max_s)
    return timedelta(seconds=random.uniform(ceiling / 2, ceiling))


def chosen_match(interaction: Interaction, system: str) -> Match | None:
    """Return the record of `system` this interaction is about: the agent's pick, else the best match."""
    picked = interaction.chosen_match or {}
    if picked.get("system") == system:
        for match in (interaction.card or {}).get("matches", []):
            if match["system"] == system and match["external_id"] == picked.get("external_id"):
                return Match.from_dict(match)
    for match in (interaction.card or {}).get("matches", []):
        if match["system"] == system:
            return Match.from_dict(match)
    return None


def interaction_payload(session: Session, interaction: Interaction) -> dict[str, Any]:
    """Return what a connector's log() receives: the timeline entry plus call details."""
    payload = interaction_summary(interaction)
    agent = session.get(Agent, interaction.agent_id) if interaction.agent_id else None
    payload.update(
        {
            "caller_kind": interaction.caller_kind,
            "caller_e164": interaction.caller_e164,
            "customer_id": interaction.customer_id,
            "recording_duration": interaction.recording_duration,
            "transcription": interaction.transcription,
            "details": interaction.details or {},
            "error_code": interaction.error_code,
            "chosen_match": interaction.chosen_match,
            "agent": (
                {"id": agent.id, "name": agent.name, "email": agent.email, "crm_user_ids": agent.crm_user_ids or {}}
                if agent
                else None
            ),
        }
    )
    return payload


def _invalidate_lookups(app: Flask, session: Session, interaction: Interaction | None) -> None:
    """Drop cached lookups of the customer's numbers, so the next card shows this interaction."""
    if interaction is None or not interaction.caller_e164:
        return
    lookup = app.extensions.get("callcard.lookup")
    if lookup is None:
        return
    try:
        lookup.cache.invalidate([interaction.caller_e164], [c.name for c in lookup.connectors])
    except Exception:
        log.warning("Outbox: lookup cache invalidation failed", exc_info=True)


def sweep(app: Flask, grace: timedelta = timedelta(seconds=60)) -> int:
    """Re-enqueue due rows whose job is no longer in Redis; return how many."""
    from app.db import get_db

    client = app.extensions["callcard.redis"].client
    now = utcnow()
    requeued = 0
    # The sweeper thread of a worker has no application context of its own.
    with app.app_context(), get_db().new_session() as session:
        due = session.scalars(
            sa.select(OutboxEntry).where(
                OutboxEntry.state.in_((PENDING, RETRYING)),
                sa.or_(OutboxEntry.next_attempt_at.is_(None), OutboxEntry.next_attempt_at <= now - grace),
            )
        ).all()
        for entry in due:
            if _job_is_live(client, job_id(entry)):
                continue
            enqueue(app, entry)
            requeued += 1
    if requeued:
        log.warning("Outbox sweeper: re-enqueued %d row(s) whose job was lost", requeued)
    return requeued


def _job_is_live(client: Any, identifier: str) -> bool:
    """Tell whether the RQ job still waits or runs; a finished, failed or lost job is not live."""
    try:
        job = Job.fetch(identifier, connection=client)
    except NoSuchJobError:
        return False
    status = job.get_status(refresh=False)
    return str(getattr(status, "value", status)) in LIVE_JOB_STATUSES


def retry(app: Flask, session: Session, entry: OutboxEntry) -> OutboxEntry:
    """Give a dead or retrying row a fresh set of attempts, now."""
    entry.state = PENDING
    entry.attempts = 0
    entry.next_attempt_at = utcnow()
    session.commit()
    enqueue(app, entry)
    log.info("Outbox %s: retry requested", entry.id)
    return entry


def entry_to_dict(entry: OutboxEntry) -> dict[str, Any]:
    return {
        "id": entry.id,
        "interaction_id": entry.interaction_id,
        "connector": entry.connector,
        "state": entry.state,
        "attempts": entry.attempts,
        "next_attempt_at": _iso(entry.next_attempt_at),
        "last_error": entry.last_error,
        "external_id": entry.external_id,
        "url": entry.external_url,
        "updated_at": _iso(entry.updated_at),
    }


def _iso(value: datetime | None) -> str | None:
    value = _aware(value)
    return value.isoformat() if value else None
