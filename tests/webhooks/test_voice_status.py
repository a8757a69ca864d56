"""Call status callbacks: out of order, repeated, child legs and every final status."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from tests.conftest import create_agent, interaction, load_fixture, mark_online, redis_client, stream_events, voice_params

VOICE = "/webhooks/twilio/voice"
STATUS = "/webhooks/twilio/voice/status"
CALL_SID = "CA00000000000000000000000000000302"

COMPLETED = {"CallStatus": "completed", "SequenceNumber": "3", "CallDuration": "42", "Duration": "1",
             "Timestamp": "Tue, 02 Jan 2024 10:00:50 +0000"}
IN_PROGRESS = {"CallStatus": "in-progress", "SequenceNumber": "2", "Timestamp": "Tue, 02 Jan 2024 10:00:08 +0000"}
RINGING = {"CallStatus": "ringing", "SequenceNumber": "1", "Timestamp": "Tue, 02 Jan 2024 10:00:02 +0000"}


@pytest.fixture
def agent_id(app):
    agent_id = create_agent(app)
    mark_online(app, agent_id)
    return agent_id


@pytest.fixture
def call(app, twilio, agent_id):
    """An inbound call offered to the online agent."""
    response = twilio.post(VOICE, voice_params(call_sid=CALL_SID))
    assert response.status_code == 200
    return CALL_SID


def send(twilio, call_sid, fields):
    params = {**voice_params(call_sid=call_sid), "CallbackSource": "call-progress-events", **fields}
    response = twilio.post(STATUS, params)
    assert response.status_code == 204, response.data
    return response


def call_events(app, agent_id):
    return [(event, data["interaction"]["status"]) for _, event, data in stream_events(app, agent_id)
            if event.startswith("call.")]


def utc(value: datetime) -> str:
    """Return a stored time as naive UTC ISO text, because SQLite drops the zone and PostgreSQL keeps it."""
    if value.tzinfo is not None:
        value = value.astimezone(timezone.utc).replace(tzinfo=None)
    return value.isoformat()


def send_out_of_order(twilio, call_sid):
    for fields in (COMPLETED, IN_PROGRESS, RINGING, COMPLETED):
        send(twilio, call_sid, fields)


def test_status_out_of_order_ends_completed(app, twilio, call):
    send_out_of_order(twilio, call)

    assert interaction(app, call).status == "completed"


def test_status_out_of_order_keeps_duration(app, twilio, call):
    send_out_of_order(twilio, call)

    assert interaction(app, call).duration_seconds == 42


def test_status_late_answer_keeps_answer_time(app, twilio, call):
    send_out_of_order(twilio, call)

    answered = interaction(app, call).answered_at
    assert answered is not None
    assert utc(answered) == "2024-01-02T10:00:08"


def test_status_in_order_keeps_answer_time(app, twilio, call):
    for fields in (RINGING, IN_PROGRESS, COMPLETED, RINGING, COMPLETED):
        send(twilio, call, fields)

    stored = interaction(app, call)
    assert utc(stored.answered_at) == "2024-01-02T10:00:08"
    assert utc(stored.ended_at) == "2024-01-02T10:00:50"


def test_status_no_event_after_ended(app, twilio, call, agent_id):
    send_out_of_order(twilio, call)

    assert call_events(app, agent_id) == [("call.ended", "completed")]


def test_status_ended_event_is_last(app, twilio, call, agent_id):
    for fields in (RINGING, IN_PROGRESS, COMPLETED, RINGING, IN_PROGRESS, COMPLETED):
        send(twilio, call, fields)

    events = call_events(app, agent_id)
    assert events[-1] == ("call.ended", "completed")
    assert [event for event, _ in events].count("call.ended") == 1


def test_status_completed_frees_agent(app, twilio, call, agent_id):
    from app.presence import Presence

    send(twilio, call, IN_PROGRESS)
    send(twilio, call, COMPLETED)

    assert Presence(redis_client(app)).offered_call(agent_id) is None


def test_status_reads_call_duration_not_billed_minutes(app, twilio, agent_id):
    params = load_fixture("twilio/voice_status_completed.json")
    twilio.post(VOICE, load_fixture("twilio/voice_incoming.json"))

    twilio.post(STATUS, params)

    assert interaction(app, params["CallSid"]).duration_seconds == 67


def test_status_without_call_duration_stores_none(app, twilio, call):
    fields = {key: value for key, value in COMPLETED.items() if key != "CallDuration"}

    send(twilio, call, fields)

    assert interaction(app, call).duration_seconds is None


@pytest.mark.parametrize("status", ["busy", "no-answer", "failed", "canceled", "completed"])
def test_status_final_value_is_stored(app, twilio, call, status):
    send(twilio, call, {"CallStatus": status, "SequenceNumber": "1"})

    stored = interaction(app, call)
    assert stored.status == status
    assert stored.ended_at is not None


@pytest.mark.parametrize("status", ["ringing", "in-progress"])
def test_status_progress_value_is_stored(app, twilio, call, status):
    send(twilio, call, {"CallStatus": status, "SequenceNumber": "1"})

    assert interaction(app, call).status == status


def test_status_unknown_value_is_400(app, twilio, call):
    params = {**voice_params(call_sid=call), "CallStatus": "exploded"}

    response = twilio.post(STATUS, params)

    assert response.status_code == 400
    assert "CallStatus" in response.json["message"]


def test_status_unknown_call_is_ignored(app, twilio):
    send(twilio, "CA" + "9" * 32, COMPLETED)

    assert interaction(app, "CA" + "9" * 32) is None


CHILD = load_fixture("twilio/voice_status_child_leg_completed.json")
PARENT_SID = CHILD["ParentCallSid"]


@pytest.fixture
def parent_call(app, twilio, agent_id):
    twilio.post(VOICE, load_fixture("twilio/voice_incoming.json"))
    return PARENT_SID


def test_child_completed_keeps_parent_status(app, twilio, parent_call):
    twilio.post(STATUS, CHILD)

    assert interaction(app, parent_call).status == "ringing"


def test_child_completed_keeps_parent_duration(app, twilio, parent_call):
    twilio.post(STATUS, CHILD)

    assert interaction(app, parent_call).duration_seconds is None


def test_child_completed_stores_no_child_row(app, twilio, parent_call):
    twilio.post(STATUS, CHILD)

    assert interaction(app, CHILD["CallSid"]) is None


def test_child_answered_marks_parent_answered(app, twilio, parent_call):
    answered = {**CHILD, "CallStatus": "in-progress", "SequenceNumber": "2"}
    del answered["CallDuration"]

    twilio.post(STATUS, answered)

    stored = interaction(app, parent_call)
    assert stored.status == "in-progress"
    assert utc(stored.answered_at) == "2026-01-15T17:03:27"
