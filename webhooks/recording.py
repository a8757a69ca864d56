"""Recording webhook: `POST /webhooks/twilio/recording` takes recording status and transcription callbacks.

Point a `<Record>` verb's `recordingStatusCallback` and `transcribeCallback` here.
A request with a `TranscriptionSid` is a transcription callback.
"""

from __future__ import annotations

import logging

from flask import Response, abort

from app import voicemail
from webhooks import bp
from webhooks.params import CALL_SID, optional_int, read_form, require
from webhooks.signature import twilio_signed

log = logging.getLogger(__name__)

MAX_URL_LENGTH = 1024


@bp.post("/recording")
@twilio_signed
def recording():
    form = read_form()
    call_sid = require(form, "CallSid", CALL_SID)

    if form.get("TranscriptionSid"):
        status = require(form, "TranscriptionStatus")
        voicemail.store_transcription(call_sid, status, form.get("TranscriptionText"))
        return Response(status=204)

    url = require(form, "RecordingUrl")
    if not url.startswith("https://") or len(url) > MAX_URL_LENGTH:
        abort(400, description=f"field RecordingUrl must be an https URL of at most {MAX_URL_LENGTH} characters")
    voicemail.store_recording(
        voicemail.Recording(
            call_sid=call_sid,
            recording_sid=form.get("RecordingSid"),
            url=url,
            status=require(form, "RecordingStatus"),
            duration_s=optional_int(form, "RecordingDuration"),
        )
    )
    return Response(status=204)
