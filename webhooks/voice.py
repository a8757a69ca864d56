"""Voice webhooks: the inbound call, its status callbacks and the end of the dial."""

from __future__ import annotations

import logging

from flask import Response, abort

from app import calls
from webhooks import bp, twiml
from webhooks.params import CALL_SID, optional_int, read_form, require
from webhooks.signature import twilio_signed

log = logging.getLogger(__name__)

ANSWERED_DIAL_STATUSES = frozenset({"completed", "answered"})


@bp.post("/voice")
@twilio_signed
def voice():
    form = read_form()
    call = calls.InboundCall(
        call_sid=require(form, "CallSid", CALL_SID),
        from_=_require_present(form, "From"),
        to=require(form, "To"),
        caller_name=form.get("CallerName"),
        params=form,
    )
    return Response(calls.answer_inbound_call(call), mimetype="text/xml")


@bp.post("/voice/status")
@twilio_signed
def voice_status():
    form = read_form()
    status = require(form, "CallStatus")
    if status not in calls.CALL_STATUS_RANK:
        abort(400, description=f"field CallStatus has an unknown value {status[:32]!r}")

    parent = form.get("ParentCallSid") or None
    if parent is not None:
        require(form, "ParentCallSid", CALL_SID)
    update = calls.StatusUpdate(
        call_sid=require(form, "CallSid", CALL_SID),
        status=status,
        parent_call_sid=parent,
        sequence=optional_int(form, "SequenceNumber"),
        timestamp=calls.parse_timestamp(form.get("Timestamp")),
        duration_seconds=optional_int(form, "CallDuration"),
    )
    calls.apply_status(update)
    return Response(status=204)


@bp.post("/voice/dial")
@twilio_signed
def voice_dial_complete():
    """End the call after a bridged dial; send an unanswered caller to the queue."""
    form = read_form()
    call_sid = require(form, "CallSid", CALL_SID)
    dial_status = form.get("DialCallStatus", "")
    if dial_status in ANSWERED_DIAL_STATUSES:
        return Response(twiml.hangup(), mimetype="text/xml")

    log.info("Call %s: agent did not answer (%s), caller queued", call_sid, dial_status or "no status")
    return Response(calls.requeue_unanswered(call_sid, dial_status), mimetype="text/xml")


def _require_present(form: dict[str, str], name: str) -> str:
    """Return a field that must be sent but may be empty (a withheld From)."""
    if name not in form:
        abort(400, description=f"missing field {name}")
    return form[name]
