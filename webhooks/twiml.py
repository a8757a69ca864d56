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


def enqueue(
    queue: str,
    message: str | None = None,
    language: str | None = None,
    *,
    wait_url: str | None = None,
    action: str | None = None,
) -> str:
    """Put the caller in `queue`, after an optional spoken message.

    Twilio fetches `wait_url` for what to play while the caller waits, and requests
    `action` when the caller leaves the queue: after a `<Leave>`, a hang-up, a bridge
    or a redirect (its `QueueResult` gives the reason).
    """
    response = VoiceResponse()
    if message:
        response.say(message, language=language)
    attributes = {}
    if wait_url:
        attributes.update(wait_url=wait_url, wait_url_method="POST")
    if action:
        attributes.update(action=action, method="POST")
    response.enqueue(queue, **attributes)
    return str(response)


def queue_wait(messages: list[str], language: str, *, music_url: str | None, pause_s: int) -> str:
    """Return the wait URL's TwiML: the messages, then music or a pause; Twilio then fetches it again."""
    response = VoiceResponse()
    for message in messages:
        response.say(message, language=language)
    if music_url:
        response.play(music_url)
    else:
        response.pause(length=max(pause_s, 1))
    return str(response)


def leave_queue() -> str:
    """Take the caller out of the queue; Twilio then requests the `<Enqueue>` action URL."""
    response = VoiceResponse()
    response.leave()
    return str(response)


def voicemail(
    messages: list[str],
    language: str,
    *,
    max_length_s: int,
    action: str,
    recording_callback: str,
    transcribe: bool,
) -> str:
    """Speak `messages` (the greeting last) and record a message of at most `max_length_s` seconds.

    `recording_callback` receives the finished recording and, with `transcribe`,
    the transcription.
    """
    response = VoiceResponse()
    for message in messages:
        response.say(message, language=language)
    attributes = {
        "action": action,
        "method": "POST",
        "max_length": max_length_s,
        "play_beep": True,
        "recording_status_callback": recording_callback,
        "recording_status_callback_method": "POST",
        "recording_status_callback_event": "completed",
    }
    if transcribe:
        attributes.update(transcribe=True, transcribe_callback=recording_callback)
    response.record(**attributes)
    return str(response)


def say_and_hang_up(messages: list[str], language: str) -> str:
    response = VoiceResponse()
    for message in messages:
        response.say(message, language=language)
    response.hangup()
    return str(response)


def empty() -> str:
    return str(VoiceResponse())


def hangup() -> str:
    response = VoiceResponse()
    response.hangup()
    return str(response)
