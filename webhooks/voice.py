"""Voice webhooks: the inbound call, its status callbacks, the dial, the queue and voicemail."""

from __future__ import annotations

import logging

from flask import Response, abort, request

from app import calls, queueing
from app.db import get_db
from app.models import Agent
from app.numbers import get_numbers
from webhooks import bp, twiml
from webhooks.params import CALL_SID, optional_int, read_form, require
from webhooks.signature import twilio_signed

log = logging.getLogger(__name__)

ANSWERED_DIAL_STATUSES = frozenset({"completed", "answered"})
# Twilio's documented `QueueResult` values of an `<Enqueue>` action request.
QUEUE_RESULTS = frozenset(
    {"bridged", "bridging-in-process", "queue-full", "error", "system-error", "hangup", "leave", "redirected",
     "redirected-from-bridged"}
)


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


@bp.post("/voice/queue/wait")
@twilio_signed
def voice_queue_wait():
    """Play the wait messages, the caller's place in the queue and music; leave after the timeout."""
    form = read_form()
    require(form, "CallSid", CALL_SID)
    settings = get_numbers().settings_for(form.get("To"))
    queue_time_s = optional_int(form, "QueueTime") or 0
    position = optional_int(form, "QueuePosition")
    return _xml(queueing.wait_twiml(settings, queue_time_s, position))


@bp.post("/voice/queue")
@twilio_signed
def voice_queue_result():
    """Handle the caller leaving the queue: voicemail after a timeout, nothing after a bridge or hang-up."""
    form = read_form()
    call_sid = require(form, "CallSid", CALL_SID)
    result = require(form, "QueueResult")
    if result not in QUEUE_RESULTS:
        abort(400, description=f"field QueueResult has an unknown value {result[:32]!r}")
    session = get_db().session()
    return _xml(queueing.leave_queue(session, call_sid, result, optional_int(form, "QueueTime")))


@bp.post("/voice/voicemail")
@twilio_signed
def voice_voicemail_done():
    """End the call once the caller has recorded a voicemail; the recording callback stores it."""
    form = read_form()
    call_sid = require(form, "CallSid", CALL_SID)
    log.info("Call %s: voicemail recorded (%s s)", call_sid, form.get("RecordingDuration") or "unknown")
    return _xml(twiml.hangup())


@bp.post("/voice/connect")
@twilio_signed
def voice_connect():
    """Dial the agent who accepted this queued call; Twilio requests it after our redirect."""
    form = read_form()
    call_sid = require(form, "CallSid", CALL_SID)
    raw_agent = request.args.get("agent", "")
    if not raw_agent.isdigit():
        abort(400, description="query parameter agent must be an agent id")
    agent = get_db().session().get(Agent, int(raw_agent))
    if agent is None:
        abort(400, description=f"query parameter agent names no agent: {raw_agent}")

    log.info("Call %s: connecting to agent %s, who accepted it", call_sid, agent.id)
    return _xml(calls.dial_twiml(agent, caller_id=form.get("To")))


def _xml(body: str) -> Response:
    return Response(body, mimetype="text/xml")


def _require_present(form: dict[str, str], name: str) -> str:
    """Return a field that must be sent but may be empty (a withheld From)."""
    if name not in form:
        abort(400, description=f"missing field {name}")
    return form[name]
