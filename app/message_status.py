"""Status callbacks of outbound messages, applied in rank order whatever their arrival order."""

from __future__ import annotations

import dataclasses
import json
import logging

import redis
import sqlalchemy as sa
from flask import current_app
from sqlalchemy.orm import Session

from app.cards import interaction_summary
from app.db import get_db
from app.models import Interaction, utcnow
from app.messages import FINAL_RANK, MESSAGE_STATUS_RANK, message_finished
from app.push import publish

log = logging.getLogger(__name__)


# A callback can arrive before the reply that caused it is stored. Its status is
# kept in Redis this long, and applied when the reply is stored.
EARLY_STATUS_TTL_S = 3600


@dataclasses.dataclass
class MessageStatusUpdate:
    """One status callback: the message, its new status and the error code of a failure."""

    message_sid: str
    status: str
    error_code: str | None = None
    error_message: str | None = None

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def apply_message_status(update: MessageStatusUpdate) -> Interaction | None:
    """Apply a status callback unless a later status is already stored.

    Returns the interaction, or None when no message has this MessageSid yet.
    """
    session = get_db().session()
    interaction = session.scalar(
        sa.select(Interaction).where(Interaction.provider_sid == update.message_sid).with_for_update()
    )
    if interaction is None:
        log.warning(
            "Message %s: status %s for an unknown message, kept for %d s",
            update.message_sid, update.status, EARLY_STATUS_TTL_S,
        )
        _keep_early_status(update)
        return None

    changed = _apply(interaction, update)
    session.commit()
    if changed:
        _announce(interaction)
    if changed and interaction.status_rank >= FINAL_RANK:
        message_finished(session, interaction)
    return interaction


def apply_early_status(session: Session, interaction: Interaction) -> None:
    """Apply a status callback that arrived before `interaction` was stored."""
    try:
        raw = _redis().getdel(_early_key(interaction.provider_sid))
    except redis.RedisError:
        log.warning("Message %s: reading an early status failed", interaction.provider_sid, exc_info=True)
        return
    if raw is None:
        return

    update = MessageStatusUpdate(**json.loads(raw))
    if _apply(interaction, update):
        session.commit()


def _apply(interaction: Interaction, update: MessageStatusUpdate) -> bool:
    rank = MESSAGE_STATUS_RANK[update.status]
    if interaction.status_rank >= FINAL_RANK or rank <= interaction.status_rank:
        log.info(
            "Message %s: status %s ignored, %s is stored",
            interaction.provider_sid, update.status, interaction.status,
        )
        return False

    log.info("Message %s: status %s -> %s", interaction.provider_sid, interaction.status, update.status)
    interaction.status = update.status
    interaction.status_rank = rank
    interaction.status_timestamp = utcnow()
    if rank >= MESSAGE_STATUS_RANK["delivered"] and interaction.ended_at is None:
        interaction.ended_at = interaction.status_timestamp
    if update.error_code:
        interaction.error_code = update.error_code[:16]
    if update.error_message:
        interaction.details = {**(interaction.details or {}), "error_message": update.error_message}
    return True


def _announce(interaction: Interaction) -> None:
    notify = (interaction.routing or {}).get("notified", [])
    if interaction.agent_id is not None and interaction.agent_id not in notify:
        notify = [*notify, interaction.agent_id]
    publish(notify, "message.status", {"interaction": interaction_summary(interaction)}, interaction.provider_sid)


def _keep_early_status(update: MessageStatusUpdate) -> None:
    """Keep the highest-ranked early status of a MessageSid for EARLY_STATUS_TTL_S."""
    key = _early_key(update.message_sid)
    try:
        stored = _redis().get(key)
        if stored is not None:
            previous = json.loads(stored)
            if MESSAGE_STATUS_RANK[previous["status"]] >= MESSAGE_STATUS_RANK[update.status]:
                return
        _redis().set(key, json.dumps(update.to_dict()), ex=EARLY_STATUS_TTL_S)
    except redis.RedisError:
        log.warning("Message %s: keeping the early status failed", update.message_sid, exc_info=True)


def _early_key(message_sid: str) -> str:
    return f"callcard:message-status:{message_sid}"


def _redis() -> redis.Redis:
    return current_app.extensions["callcard.redis"].client
