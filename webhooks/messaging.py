"""Messaging webhooks: inbound SMS, MMS and WhatsApp messages and their status callbacks."""

from __future__ import annotations

import logging

from flask import Response, abort
from twilio.twiml.messaging_response import MessagingResponse

from app import message_content, messages
from app.message_status import MessageStatusUpdate, apply_message_status
from app.messages import MESSAGE_STATUS_RANK
from webhooks import bp
from webhooks.params import MESSAGE_SID, optional_int, read_form, require
from webhooks.signature import twilio_signed

log = logging.getLogger(__name__)

# Twilio delivers at most 10 attachments with one MMS, and WhatsApp sends one.
MAX_MEDIA = 10
COORDINATE_LIMITS = {"Latitude": 90.0, "Longitude": 180.0}


@bp.post("/messaging")
@twilio_signed
def messaging():
    """Store an inbound message, push its card and return an empty TwiML response."""
    form, originals = message_content.escape_nul(read_form())
    media_count = _media_count(form)
    _check_coordinates(form)

    message = messages.InboundMessage(
        message_sid=require(form, "MessageSid", MESSAGE_SID),
        from_=require(form, "From"),
        to=require(form, "To"),
        body=form.get("Body", ""),
        media=message_content.media_items(form, media_count),
        details=message_content.message_details(form, originals),
    )
    messages.receive_message(message)
    return Response(str(MessagingResponse()), mimetype="text/xml")


@bp.post("/messaging/status")
@twilio_signed
def messaging_status():
    """Apply a status callback of an outbound message and return 204, changed or not."""
    form, _ = message_content.escape_nul(read_form())
    status = require(form, "MessageStatus")
    if status not in MESSAGE_STATUS_RANK:
        abort(400, description=f"field MessageStatus has an unknown value {status[:32]!r}")

    update = MessageStatusUpdate(
        message_sid=require(form, "MessageSid", MESSAGE_SID),
        status=status,
        error_code=form.get("ErrorCode") or None,
        error_message=form.get("ErrorMessage") or None,
    )
    apply_message_status(update)
    return Response(status=204)


def _media_count(form: dict[str, str]) -> int:
    """Return NumMedia after checking that every announced MediaUrlN is present."""
    count = optional_int(form, "NumMedia") or 0
    if not 0 <= count <= MAX_MEDIA:
        abort(400, description=f"field NumMedia must be between 0 and {MAX_MEDIA}, got {count}")

    for index in range(count):
        require(form, f"MediaUrl{index}")
    return count


def _check_coordinates(form: dict[str, str]) -> None:
    """Reject a shared location whose Latitude or Longitude is not a number in range."""
    for name, limit in COORDINATE_LIMITS.items():
        value = form.get(name)
        if not value:
            continue
        try:
            number = float(value)
        except ValueError:
            abort(400, description=f"field {name} must be a decimal number, got {value[:32]!r}")
        if not -limit <= number <= limit:
            abort(400, description=f"field {name} must be between {-limit:g} and {limit:g}, got {value[:32]!r}")
