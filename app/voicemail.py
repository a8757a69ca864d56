"""Recordings and transcriptions from Twilio, stored on the call they belong to.

Recording callbacks carry no From or To, so they are joined on CallSid. A recording
of a call that Callcard sent to voicemail turns the call into a voicemail: status
`voicemail`, which the CRM write-back logs as a voicemail with its recording link.
Every change is queued for write-back once; the outbox updates the same CRM record.
"""

from __future__ import annotations

import dataclasses
import logging

import sqlalchemy as sa

from app import outbox, push
from app.cards import interaction_summary
from app.db import get_db
from app.models import Interaction, utcnow

log = logging.getLogger(__name__)

VOICEMAIL = "voicemail"
# The rank of final call statuses in app.calls; a voicemail is final too.
FINAL_RANK = 3
# Twilio serves a recording as MP3 when `.mp3` is added to its URL; without it, as WAV.
RECORDING_LINK_SUFFIX = ".mp3"


@dataclasses.dataclass
class Recording:
    call_sid: str
    recording_sid: str | None
    url: str
    status: str
    duration_s: int | None


def recording_link(url: str | None) -> str | None:
    """Return the link a person opens to listen: the stored recording URL with `.mp3`."""
    return url + RECORDING_LINK_SUFFIX if url else None


def store_recording(recording: Recording) -> Interaction | None:
    """Store a finished recording on its call; a repeated callback changes nothing."""
    session = get_db().session()
    interaction = _locked(session, recording.call_sid)
    if interaction is None:
        log.warning("Call %s: recording %s for an unknown call ignored", recording.call_sid, recording.recording_sid)
        return None
    if recording.status != "completed":
        log.warning("Call %s: recording %s ended %s, nothing stored",
                    recording.call_sid, recording.recording_sid, recording.status)
        session.rollback()
        return None
    if interaction.recording_url == recording.url and interaction.recording_duration == recording.duration_s:
        session.rollback()
        return interaction

    interaction.recording_url = recording.url
    interaction.recording_duration = recording.duration_s
    routing = dict(interaction.routing or {})
    if VOICEMAIL in routing:
        _mark_voicemail(interaction, routing, recording)
    session.commit()
    log.info("Call %s: recording %s stored (%s s)", recording.call_sid, recording.recording_sid, recording.duration_s)

    _publish_and_log(session, interaction)
    return interaction


def store_transcription(call_sid: str, status: str, text: str | None) -> Interaction | None:
    """Store the transcription of a call's voicemail; a failed or repeated one changes nothing."""
    session = get_db().session()
    interaction = _locked(session, call_sid)
    if interaction is None:
        log.warning("Call %s: transcription for an unknown call ignored", call_sid)
        return None
    if status != "completed" or not text:
        log.warning("Call %s: transcription ended %s, nothing stored", call_sid, status)
        session.rollback()
        return None
    if interaction.transcription == text:
        session.rollback()
        return interaction

    interaction.transcription = text
    session.commit()
    log.info("Call %s: transcription stored (%d characters)", call_sid, len(text))

    _publish_and_log(session, interaction)
    return interaction


def _mark_voicemail(interaction: Interaction, routing: dict, recording: Recording) -> None:
    """Make the call a voicemail that later status callbacks keep (see app.calls)."""
    routing[VOICEMAIL] = {
        **routing[VOICEMAIL],
        "recording_sid": recording.recording_sid,
        "recording_link": recording_link(recording.url),
        "duration_s": recording.duration_s,
    }
    interaction.routing = routing
    interaction.status = VOICEMAIL
    interaction.status_rank = FINAL_RANK
    if interaction.ended_at is None:
        interaction.ended_at = utcnow()


def _publish_and_log(session, interaction: Interaction) -> None:
    notify = (interaction.routing or {}).get("notified", [])
    push.publish(notify, "call.status", {"interaction": interaction_summary(interaction)}, interaction.provider_sid)
    try:
        outbox.interaction_finished(session, interaction)
    except Exception:
        log.warning("Call %s: queueing the CRM write-back failed", interaction.provider_sid, exc_info=True)


def _locked(session, call_sid: str) -> Interaction | None:
    return session.scalar(
        sa.select(Interaction).where(Interaction.provider_sid == call_sid).with_for_update()
    )
