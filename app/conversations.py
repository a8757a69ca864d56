"""Conversations: the messages of one customer on one channel, until closed or idle.

A message joins the open conversation of its customer on its channel (or, for a
sender with no identity such as `EXAMPLECO`, of its address). An agent closes a
conversation. A conversation idle longer than `CONVERSATION_IDLE_HOURS` is closed
by the next message, which opens a new one.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone

import redis
import sqlalchemy as sa
from flask import current_app
from sqlalchemy.orm import Session

from app.models import Conversation, Interaction, utcnow

log = logging.getLogger(__name__)

OPEN = "open"
CLOSED = "closed"

# WhatsApp accepts free-form business messages only within 24 hours of the
# customer's last message. After that, only a pre-approved template is accepted.
WHATSAPP_SESSION = timedelta(hours=24)

LOCK_TIMEOUT_S = 10
LOCK_WAIT_S = 5


def idle_window() -> timedelta:
    return timedelta(hours=current_app.config["CONVERSATION_IDLE_HOURS"])


def thread_message(session: Session, interaction: Interaction, business_address: str) -> Conversation:
    """Attach `interaction` to its open conversation, opening one when needed.

    A Redis lock per customer and channel keeps two messages that arrive at once
    from opening two conversations, also across processes.
    """
    address = interaction.from_address if interaction.direction == "inbound" else interaction.to_address
    lock_name = _lock_name(interaction.channel, interaction.customer_id, address)

    with _locked(lock_name, interaction.provider_sid):
        now = utcnow()
        conversation = _open_conversation(session, interaction.channel, interaction.customer_id, address)
        if conversation is not None and _is_idle(conversation, now):
            _close(conversation, now, reason="idle")
            conversation = None

        if conversation is None:
            conversation = Conversation(
                customer_id=interaction.customer_id,
                channel=interaction.channel,
                address=address,
                business_address=business_address,
                opened_at=now,
            )
            session.add(conversation)
            session.flush()
            log.info("Conversation %s: opened on %s", conversation.id, interaction.channel)

        _add_message(conversation, interaction, now)
        session.commit()
    return conversation


def close_conversation(session: Session, conversation: Conversation, agent_id: int | None) -> None:
    """Close `conversation`, so that the customer's next message opens a new one."""
    if conversation.status == CLOSED:
        return
    _close(conversation, utcnow(), reason="agent", agent_id=agent_id)
    session.commit()


def last_inbound_at(session: Session, conversation: Conversation) -> datetime | None:
    """Return when the customer last wrote from this address, in any conversation."""
    value = session.scalar(
        sa.select(sa.func.max(Interaction.started_at)).where(
            Interaction.channel == conversation.channel,
            Interaction.direction == "inbound",
            Interaction.from_address == conversation.address,
        )
    )
    return aware(value)


def aware(value: datetime | None) -> datetime | None:
    """Return `value` with UTC attached, because SQLite returns naive datetimes."""
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=timezone.utc)
    return value


def _open_conversation(session: Session, channel: str, customer_id: int | None, address: str) -> Conversation | None:
    query = sa.select(Conversation).where(Conversation.channel == channel, Conversation.status == OPEN)
    if customer_id is not None:
        query = query.where(Conversation.customer_id == customer_id)
    else:
        query = query.where(Conversation.customer_id.is_(None), Conversation.address == address)
    return session.scalars(query.order_by(Conversation.last_message_at.desc()).limit(1)).first()


def _is_idle(conversation: Conversation, now: datetime) -> bool:
    return now - aware(conversation.last_message_at) > idle_window()


def _close(conversation: Conversation, now: datetime, reason: str, agent_id: int | None = None) -> None:
    conversation.status = CLOSED
    conversation.closed_at = now
    log.info("Conversation %s: closed (%s%s)", conversation.id, reason, f" by agent {agent_id}" if agent_id else "")


def _add_message(conversation: Conversation, interaction: Interaction, now: datetime) -> None:
    interaction.conversation_id = conversation.id
    conversation.last_message_at = now
    if interaction.direction == "inbound":
        conversation.last_inbound_at = now
        # The customer may have written from a new address of the same customer.
        conversation.address = interaction.from_address


def _lock_name(channel: str, customer_id: int | None, address: str) -> str:
    subject = f"customer:{customer_id}" if customer_id is not None else f"address:{address}"
    return f"callcard:lock:conversation:{channel}:{subject}"


@contextlib.contextmanager
def _locked(name: str, sid: str) -> Iterator[None]:
    """Hold the Redis lock `name`. When Redis fails or the wait times out, continue unlocked."""
    client = current_app.extensions["callcard.redis"].client
    lock = client.lock(name, timeout=LOCK_TIMEOUT_S, blocking_timeout=LOCK_WAIT_S)
    try:
        acquired = lock.acquire()
    except redis.RedisError:
        log.warning("Message %s: conversation lock unavailable, threading unlocked", sid, exc_info=True)
        acquired = None
    if acquired is False:
        log.warning("Message %s: conversation lock not acquired in %d s, threading unlocked", sid, LOCK_WAIT_S)

    try:
        yield
    finally:
        if acquired:
            with contextlib.suppress(redis.RedisError):
                lock.release()
