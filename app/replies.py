"""Outbound replies to a conversation, sent through the Twilio REST API."""

from __future__ import annotations

import logging
from urllib.parse import urlsplit

from flask import current_app
from flask_babel import gettext as _
from requests import RequestException
from sqlalchemy.orm import Session
from twilio.base import values
from twilio.base.exceptions import TwilioException, TwilioRestException

from app import conversations
from app.cards import interaction_summary
from app.db import get_db
from app.message_status import apply_early_status
from app.messages import MESSAGE_STATUS_RANK, message_finished
from app.models import Agent, Conversation, Interaction, utcnow
from app.phone import mask, parse_caller
from app.push import publish
from app.twilio_api import MessagingNotConfigured, rest_client

log = logging.getLogger(__name__)

# Twilio accepts a body of up to 1,600 characters and up to 10 media URLs.
MAX_BODY_LENGTH = 1600
MAX_MEDIA_URLS = 10
SUPERVISOR_ROLES = frozenset({"supervisor", "admin"})


class ReplyRejected(Exception):
    """The reply was not sent. `status` is the HTTP status and `code` a stable error name."""

    def __init__(self, status: int, code: str, message: str):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


def send_reply(conversation_id: int, agent: Agent, body: str, media_urls: list[str]) -> Interaction:
    """Send `body` and `media_urls` to the customer of a conversation, and store the reply.

    Raises:
        ReplyRejected: the input is invalid, the conversation is closed or not the
            agent's, a WhatsApp template is required, messaging is not configured,
            or Twilio rejected the message.
    """
    session = get_db().session()
    conversation = _conversation_for(session, conversation_id, agent)
    _check_content(body, media_urls)
    _check_whatsapp_session(session, conversation)

    sent = _send(conversation, body, media_urls)
    interaction = _store(session, conversation, agent, sent, body, media_urls)
    apply_early_status(session, interaction)

    publish([agent.id], "message.sent", {"interaction": interaction_summary(interaction)}, interaction.provider_sid)
    message_finished(session, interaction)
    return interaction


def _conversation_for(session: Session, conversation_id: int, agent: Agent) -> Conversation:
    conversation = session.get(Conversation, conversation_id)
    if conversation is None:
        raise ReplyRejected(404, "not_found", _("Conversation %(id)s not found.", id=conversation_id))

    if conversation.status != conversations.OPEN:
        raise ReplyRejected(
            409, "conversation_closed",
            _("Conversation %(id)s is closed. The customer's next message opens a new one.", id=conversation_id),
        )

    assigned = conversation.assigned_agent_id
    if assigned is not None and assigned != agent.id and agent.role not in SUPERVISOR_ROLES:
        raise ReplyRejected(
            403, "assigned_elsewhere", _("Conversation %(id)s is assigned to another agent.", id=conversation_id)
        )
    return conversation


def _check_content(body: str, media_urls: list[str]) -> None:
    if not body and not media_urls:
        raise ReplyRejected(400, "invalid_reply", _("Enter a message or attach at least one media URL."))

    if len(body) > MAX_BODY_LENGTH:
        raise ReplyRejected(
            400, "invalid_reply",
            _("The message has %(count)s characters, and the maximum is %(max)s.", count=len(body), max=MAX_BODY_LENGTH),
        )

    if "\x00" in body:
        raise ReplyRejected(400, "invalid_reply", _("The message contains a NUL character. Remove it and send again."))

    if len(media_urls) > MAX_MEDIA_URLS:
        raise ReplyRejected(
            400, "invalid_reply", _("At most %(max)s media URLs can be sent with one message.", max=MAX_MEDIA_URLS)
        )

    for url in media_urls:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ReplyRejected(400, "invalid_reply", _("media_url %(url)s is not an http(s) URL.", url=url[:200]))


def _check_whatsapp_session(session: Session, conversation: Conversation) -> None:
    """Reject a free-form WhatsApp reply more than 24 hours after the customer's last message."""
    if conversation.channel != "whatsapp":
        return

    last_inbound = conversations.last_inbound_at(session, conversation)
    if last_inbound is not None and utcnow() - last_inbound <= conversations.WHATSAPP_SESSION:
        return

    log.info("Conversation %s: free-form WhatsApp reply rejected, the 24-hour session has ended", conversation.id)
    raise ReplyRejected(
        422, "template_required",
        _(
            "The customer's last WhatsApp message is more than 24 hours old, so WhatsApp accepts "
            "only a pre-approved template message now. Send an approved template, or wait "
            "for the customer to write again."
        ),
    )


def _send(conversation: Conversation, body: str, media_urls: list[str]):
    """Create the message with Twilio, with its status callbacks sent to our status webhook."""
    from webhooks.urls import webhook_url

    if not conversation.business_address:
        raise ReplyRejected(
            409, "no_sender", _("Conversation %(id)s has no business number to reply from.", id=conversation.id)
        )
    try:
        client = rest_client(current_app.config)
    except MessagingNotConfigured as error:
        raise ReplyRejected(503, "messaging_not_configured", str(error)) from None

    try:
        return client.messages.create(
            to=conversation.address,
            from_=conversation.business_address,
            body=body or values.unset,
            media_url=media_urls or values.unset,
            status_callback=webhook_url("webhooks.messaging_status"),
        )
    except TwilioRestException as error:
        log.warning("Conversation %s: Twilio rejected the reply: %s %s", conversation.id, error.code, error.msg)
        raise ReplyRejected(
            502, "twilio_rejected",
            _("Twilio rejected the message (error %(code)s): %(message)s", code=error.code, message=error.msg),
        ) from None
    except (TwilioException, RequestException) as error:
        log.warning("Conversation %s: sending the reply failed: %s", conversation.id, error, exc_info=True)
        raise ReplyRejected(502, "twilio_unreachable", _("The Twilio API could not be reached. Try again.")) from None


def _store(session: Session, conversation: Conversation, agent: Agent, sent, body: str, media_urls: list[str]) -> Interaction:
    now = utcnow()
    caller = parse_caller(conversation.address, current_app.config["DEFAULT_REGION"], channel=conversation.channel)
    interaction = Interaction(
        provider_sid=sent.sid,
        channel=conversation.channel,
        direction="outbound",
        customer_id=conversation.customer_id,
        conversation_id=conversation.id,
        agent_id=agent.id,
        from_address=conversation.business_address,
        to_address=conversation.address,
        caller_kind=caller.kind,
        caller_e164=caller.e164,
        status=sent.status or "queued",
        status_rank=MESSAGE_STATUS_RANK.get(sent.status or "queued", 0),
        started_at=now,
        body=body,
        media=[{"url": url, "content_type": None} for url in media_urls],
        routing={"rule": "reply", "agent_id": agent.id, "notified": [agent.id]},
    )
    session.add(interaction)
    conversation.last_message_at = now
    if conversation.assigned_agent_id is None:
        conversation.assigned_agent_id = agent.id
    session.commit()

    log.info(
        "Message %s: reply by agent %s to %s in conversation %s",
        interaction.provider_sid, agent.id, mask(conversation.address), conversation.id,
    )
    return interaction
