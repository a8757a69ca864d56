"""Inbound SMS, MMS and WhatsApp messages: store once, thread, look up, push the card."""

from __future__ import annotations

import dataclasses
import logging
from typing import Any

import sqlalchemy as sa
from flask import current_app
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app import conversations, outbox
from app.cards import build_card
from app.customers import resolve_customer
from app.db import get_db
from app.lookup import LookupResult, get_lookup
from app.models import Conversation, Customer, Identity, Interaction
from app.phone import mask, parse_caller
from app.presence import Presence
from app.push import late_update, publish
from app.routing import team_agents
from integrations.base import Caller

log = logging.getLogger(__name__)

SMS = "sms"
WHATSAPP = "whatsapp"

# A callback never moves a message to a lower or equal rank, so a `sent` that
# arrives after `delivered` is ignored, and `read` (WhatsApp only) follows
# `delivered`. Failed, undelivered and canceled are final.
MESSAGE_STATUS_RANK = {
    "accepted": 0,
    "scheduled": 0,
    "queued": 1,
    "sending": 2,
    "sent": 3,
    "receiving": 3,
    "received": 3,
    "partially_delivered": 4,
    "delivered": 4,
    "read": 5,
    "failed": 6,
    "undelivered": 6,
    "canceled": 6,
}
FINAL_RANK = 6

# The `system` of the identity that records a WhatsApp business-scoped user id.
BSUID_SYSTEM = "whatsapp"


@dataclasses.dataclass
class InboundMessage:
    """One inbound message as Twilio delivered it, with NUL already replaced in its text."""

    message_sid: str
    from_: str
    to: str
    body: str
    media: list[dict[str, Any]]
    details: dict[str, Any]

    @property
    def channel(self) -> str:
        return WHATSAPP if self.from_.lower().startswith("whatsapp:") else SMS


def record_message(session: Session, message: InboundMessage, caller: Caller) -> tuple[Interaction, bool]:
    """Store the message once per MessageSid and return (interaction, created)."""
    existing = _by_sid(session, message.message_sid)
    if existing is not None:
        return existing, False

    interaction = Interaction(
        provider_sid=message.message_sid,
        channel=message.channel,
        direction="inbound",
        from_address=message.from_,
        to_address=message.to,
        caller_kind=caller.kind,
        caller_e164=caller.e164,
        status="received",
        status_rank=MESSAGE_STATUS_RANK["received"],
        body=message.body,
        media=message.media,
        details=message.details,
    )
    session.add(interaction)
    try:
        session.commit()
    except IntegrityError:
        # A concurrent delivery of the same webhook stored it first.
        session.rollback()
        return _by_sid(session, message.message_sid), False
    return interaction, True


def receive_message(message: InboundMessage) -> Interaction:
    """Handle an inbound message webhook. A repeated delivery changes nothing."""
    session = get_db().session()
    caller = parse_caller(message.from_, current_app.config["DEFAULT_REGION"], channel=message.channel)

    interaction, created = record_message(session, message, caller)
    if not created:
        log.info("Message %s: repeated webhook, already stored", message.message_sid)
        return interaction

    log.info(
        "Message %s: inbound %s from %s (%s), %d attachment(s)",
        message.message_sid, message.channel, mask(caller.raw), caller.kind, len(message.media),
    )
    lookup = get_lookup().run(
        caller,
        on_late=late_update(current_app._get_current_object(), interaction.id, caller),
        log_id=message.message_sid,
    )

    customer = _resolve_customer(session, caller, lookup, message)
    interaction.customer_id = customer.id if customer else None
    conversation = conversations.thread_message(session, interaction, business_address=message.to)

    card = build_card(session, interaction, caller, customer, lookup)
    card["message"] = message_section(interaction, conversation)
    notify = _recipients(session, conversation)
    routing = {"rule": "conversation", "agent_id": conversation.assigned_agent_id, "notified": notify}
    card["routing"] = routing
    interaction.routing = routing
    interaction.card = card
    session.commit()

    publish(notify, "card", card, message.message_sid)
    message_finished(session, interaction)
    return interaction


def message_section(interaction: Interaction, conversation: Conversation) -> dict[str, Any]:
    """Describe the message for the card: attachments, reply address, WhatsApp extras."""
    details = interaction.details or {}
    media = interaction.media or []
    return {
        "channel": interaction.channel,
        "conversation_id": conversation.id,
        "conversation_opened_at": conversations.aware(conversation.opened_at).isoformat(),
        "reply_to": interaction.from_address,
        "reply_from": interaction.to_address,
        "body": interaction.body,
        "attachment_count": len(media),
        "attachments": media,
        "content_types": [item.get("content_type") for item in media],
        "profile_name": details.get("ProfileName"),
        "wa_id": details.get("WaId"),
        "external_user_id": details.get("ExternalUserId"),
        "message_type": details.get("MessageType"),
        "location": details.get("location"),
        "button": details.get("button"),
        "referral": details.get("referral"),
    }


def message_finished(session: Session, interaction: Interaction) -> None:
    """Queue a stored message (inbound, or an outbound reply) for logging to every CRM.

    The outbox writes one row per connector that declares `log_message`. A failure
    here is logged and not raised, so the webhook or the reply still succeeds.
    """
    try:
        outbox.interaction_finished(session, interaction)
    except Exception:
        log.exception("Message %s: queueing the log-back to the CRMs failed", interaction.provider_sid)
        session.rollback()


def _resolve_customer(session: Session, caller: Caller, lookup: LookupResult, message: InboundMessage):
    """Find the customer, through the phone number or the WhatsApp business-scoped user id."""
    bsuid = message.details.get("ExternalUserId")
    try:
        customer = resolve_customer(session, caller, lookup.matches)
        if customer is None and bsuid:
            customer = _customer_by_bsuid(session, bsuid)
        elif customer is not None and bsuid:
            _record_bsuid(session, customer, bsuid)
        session.commit()
        return customer
    except Exception:
        log.exception("Message %s: recording the customer's identities failed", message.message_sid)
        session.rollback()
        return None


def _customer_by_bsuid(session: Session, bsuid: str) -> Customer | None:
    return session.scalar(
        sa.select(Customer)
        .join(Identity, Identity.customer_id == Customer.id)
        .where(Identity.kind == "record", Identity.system == BSUID_SYSTEM, Identity.value == bsuid)
    )


def _record_bsuid(session: Session, customer: Customer, bsuid: str) -> None:
    """Remember the business-scoped user id, so a later message that carries only it still matches."""
    known = _customer_by_bsuid(session, bsuid)
    if known is not None:
        return
    try:
        with session.begin_nested():
            session.add(Identity(customer_id=customer.id, kind="record", system=BSUID_SYSTEM, value=bsuid))
    except IntegrityError:
        log.info("Customer %s: WhatsApp user id recorded concurrently", customer.id)


def _recipients(session: Session, conversation: Conversation) -> list[int]:
    """Return the conversation's agent when online, else every online agent of the team."""
    presence = Presence(current_app.extensions["callcard.redis"].client)
    assigned = conversation.assigned_agent_id
    if assigned is not None and presence.is_online(assigned):
        return [assigned]
    return team_agents(session, presence)


def _by_sid(session: Session, sid: str) -> Interaction | None:
    return session.scalar(sa.select(Interaction).where(Interaction.provider_sid == sid))
