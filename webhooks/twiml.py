"""TwiML answers for voice webhooks, built with the twilio library's TwiML model."""

from __future__ import annotations

from twilio.twiml.voice_response import Dial, VoiceResponse

CLIENT_EVENTS = "initiated ringing answered completed"


def dial_agent(
    agent,
    *,
    status_callback: str,
    action: str,
    timeout_s: int,
    caller_id: str | None = None,
) -> str:
    """Connect the caller to `agent`: their browser client or their phone."""
    response = VoiceResponse()
    attributes = {"action": action, "method": "POST", "timeout": timeout_s, "answer_on_bridge": True}
    if caller_id and agent.answer_mode == "phone":
        attributes["caller_id"] = caller_id
    dial = Dial(**attributes)
    if agent.answer_mode == "phone" and agent.phone_number:
        dial.number(
            agent.phone_number,
            status_callback=status_callback,
            status_callback_event=CLIENT_EVENTS,
            status_callback_method="POST",
        )
    else:
        dial.client(
            agent.client_identity or f"agent-{agent.id}",
            status_callback=status_callback,
            status_callback_event=CLIENT_EVENTS,
            status_callback_method="POST",
        )
    response.append(dial)
    return str(response)


def enqueue(queue: str, message: str | None = None, language: str | None = None) -> str:
    """Put the caller in `queue`, after an optional spoken message."""
    response = VoiceResponse()
    if message:
        response.say(message, language=language)
    response.enqueue(queue)
    return str(response)


def hangup() -> str:
    response = VoiceResponse()
    response.hangup()
    return str(response)
