"""Queued calls end to end with signed webhooks: every eligible console sees the card, the first
accept wins, and a call nobody takes ends as a voicemail logged to the CRM."""

from __future__ import annotations

import threading

import pytest

from app.presence import Presence
from tests.conftest import Twilio, create_agent, interaction, load_fixture, redis_client, stream_events, voice_params
from tests.console.conftest import Console, sign_in
from tests.integrations.conftest import (  # noqa: F401  (fixtures of the CRM stub)
    ca_bundle,
    certificate_authority,
    salesforce_config,
    salesforce_stub,
    stub_ssl_context,
    trust_stubs,
)
from tests.routing.conftest import ACCOUNT_SID, SUPPORT_LINE, online_agent, parse

VOICE = "/webhooks/twilio/voice"
STATUS = "/webhooks/twilio/voice/status"
QUEUE_RESULT = "/webhooks/twilio/voice/queue"
RECORDING = "/webhooks/twilio/recording"
CALL_SID = "CA" + "a" * 32
CALLER = "+14155550100"
BUSY_WITH = "CA" + "b" * 32


@pytest.fixture
def queue_app(make_app, numbers_file, twilio_calls):
    return make_app(NUMBERS_FILE=numbers_file, TWILIO_ACCOUNT_SID=ACCOUNT_SID, TWILIO_API_BASE_URL=twilio_calls.url)


def console_for(app, email: str) -> Console:
    client = app.test_client()
    assert sign_in(client, email).status_code == 302
    agent_id = next(a for a in _agent_ids(app) if a[1] == email)[0]
    return Console(client, agent_id)


def _agent_ids(app):
    import sqlalchemy as sa

    from app.db import get_db
    from app.models import Agent

    with app.app_context():
        with get_db().new_session() as session:
            return list(session.execute(sa.select(Agent.id, Agent.email)))


def cards_for(app, agent_id: int, call_sid: str) -> list[dict]:
    return [data for _, event, data in stream_events(app, agent_id)
            if event == "card" and data["interaction"]["sid"] == call_sid]


@pytest.fixture
def busy_team(queue_app):
    """Three support agents online but each taking another call, one offline, one of another team online."""
    presence = Presence(redis_client(queue_app))
    team = [online_agent(queue_app, f"{name}@example.com") for name in ("ana", "ben", "cleo")]
    for agent_id in team:
        assert presence.offer(agent_id, BUSY_WITH + str(agent_id), 300)
    offline = create_agent(queue_app, email="otto@example.com", client_identity="otto")
    other_team = online_agent(queue_app, "sam@example.com", team="ventes")
    return {"team": team, "offline": offline, "other_team": other_team, "presence": presence}


def free(busy_team, agent_id: int) -> None:
    busy_team["presence"].release(agent_id, BUSY_WITH + str(agent_id))


def test_busy_team_queues_and_shows_card(queue_app, busy_team):
    twilio = Twilio(queue_app.test_client())

    root = parse(twilio.post(VOICE, voice_params(call_sid=CALL_SID, To=SUPPORT_LINE)))

    assert root.find("./Enqueue").text == "support"
    for agent_id in busy_team["team"]:
        assert len(cards_for(queue_app, agent_id, CALL_SID)) == 1, f"agent {agent_id} did not get the card"
    assert cards_for(queue_app, busy_team["offline"], CALL_SID) == []
    assert cards_for(queue_app, busy_team["other_team"], CALL_SID) == []
    assert sorted(interaction(queue_app, CALL_SID).routing["notified"]) == sorted(busy_team["team"])


def test_first_accept_wins_second_gets_409(queue_app, busy_team, twilio_calls):
    twilio = Twilio(queue_app.test_client())
    twilio.post(VOICE, voice_params(call_sid=CALL_SID, To=SUPPORT_LINE))
    ana, ben, _ = busy_team["team"]
    free(busy_team, ana)
    free(busy_team, ben)
    interaction_id = interaction(queue_app, CALL_SID).id

    first = console_for(queue_app, "ana@example.com").post_json(f"/api/calls/{interaction_id}/accept", {})
    second = console_for(queue_app, "ben@example.com").post_json(f"/api/calls/{interaction_id}/accept", {})

    assert first.status_code == 200, first.json
    assert first.json["dial"] == {"answer_mode": "client", "client": "ana"}
    assert second.status_code == 409
    assert "already accepted" in second.json["message"]
    assert twilio_calls.redirects == [
        (CALL_SID, {"Url": f"http://localhost/webhooks/twilio/voice/connect?agent={ana}", "Method": "POST"})
    ]
    assert Presence(redis_client(queue_app)).offered_call(ben) is None


def test_accepted_call_dials_the_agent(queue_app, busy_team, twilio_calls):
    twilio = Twilio(queue_app.test_client())
    twilio.post(VOICE, voice_params(call_sid=CALL_SID, To=SUPPORT_LINE))
    ana = busy_team["team"][0]
    free(busy_team, ana)
    interaction_id = interaction(queue_app, CALL_SID).id
    console_for(queue_app, "ana@example.com").post_json(f"/api/calls/{interaction_id}/accept", {})

    [(_, form)] = twilio_calls.redirects
    path = form["Url"].removeprefix("http://localhost")
    root = parse(twilio.post(path, voice_params(call_sid=CALL_SID, To=SUPPORT_LINE)))

    assert root.find("./Dial/Client").text == "ana"
    stored = interaction(queue_app, CALL_SID)
    assert stored.agent_id == ana
    assert stored.routing["accepted"]["agent_id"] == ana
    assert stored.routing["waited_s"] >= 0
    assert Presence(redis_client(queue_app)).offered_call(ana) == CALL_SID


def test_concurrent_accepts_reserve_once(queue_app, busy_team, twilio_calls):
    twilio = Twilio(queue_app.test_client())
    twilio.post(VOICE, voice_params(call_sid=CALL_SID, To=SUPPORT_LINE))
    for agent_id in busy_team["team"]:
        free(busy_team, agent_id)
    interaction_id = interaction(queue_app, CALL_SID).id
    consoles = [console_for(queue_app, f"{name}@example.com") for name in ("ana", "ben", "cleo")]
    barrier = threading.Barrier(len(consoles))
    statuses = []

    def accept(console):
        barrier.wait()
        statuses.append(console.post_json(f"/api/calls/{interaction_id}/accept", {}).status_code)

    threads = [threading.Thread(target=accept, args=(console,)) for console in consoles]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=20)

    assert sorted(statuses) == [200, 409, 409]
    assert len(twilio_calls.redirects) == 1


def test_accept_by_busy_agent_is_409(queue_app, busy_team, twilio_calls):
    twilio = Twilio(queue_app.test_client())
    twilio.post(VOICE, voice_params(call_sid=CALL_SID, To=SUPPORT_LINE))
    interaction_id = interaction(queue_app, CALL_SID).id

    response = console_for(queue_app, "ana@example.com").post_json(f"/api/calls/{interaction_id}/accept", {})

    assert response.status_code == 409
    assert "end it before accepting" in response.json["message"]
    assert twilio_calls.redirects == []


def test_accept_after_hang_up_is_409(queue_app, busy_team, twilio_calls):
    twilio = Twilio(queue_app.test_client())
    twilio.post(VOICE, voice_params(call_sid=CALL_SID, To=SUPPORT_LINE))
    ana, ben, _ = busy_team["team"]
    free(busy_team, ana)
    free(busy_team, ben)
    twilio_calls.ended.add(CALL_SID)
    interaction_id = interaction(queue_app, CALL_SID).id

    first = console_for(queue_app, "ana@example.com").post_json(f"/api/calls/{interaction_id}/accept", {})
    twilio_calls.ended.clear()
    second = console_for(queue_app, "ben@example.com").post_json(f"/api/calls/{interaction_id}/accept", {})

    assert first.status_code == 409
    assert "hung up" in first.json["message"]
    assert Presence(redis_client(queue_app)).offered_call(ana) is None
    assert second.status_code == 200


def test_accept_without_csrf_is_rejected(queue_app, busy_team):
    twilio = Twilio(queue_app.test_client())
    twilio.post(VOICE, voice_params(call_sid=CALL_SID, To=SUPPORT_LINE))
    free(busy_team, busy_team["team"][0])
    interaction_id = interaction(queue_app, CALL_SID).id

    response = console_for(queue_app, "ana@example.com").post_json(f"/api/calls/{interaction_id}/accept", {}, csrf=False)

    assert response.status_code == 400
    assert "CSRF" in response.json["message"]


def test_accept_by_other_team_is_403(queue_app, busy_team):
    twilio = Twilio(queue_app.test_client())
    twilio.post(VOICE, voice_params(call_sid=CALL_SID, To=SUPPORT_LINE))
    interaction_id = interaction(queue_app, CALL_SID).id

    response = console_for(queue_app, "sam@example.com").post_json(f"/api/calls/{interaction_id}/accept", {})

    assert response.status_code == 403


def test_accept_unknown_interaction_is_404(queue_app, busy_team):
    response = console_for(queue_app, "ana@example.com").post_json("/api/calls/999999/accept", {})

    assert response.status_code == 404


def test_freed_agent_is_shown_vip_call_first(queue_app, busy_team):
    from tests.conftest import add_contact

    twilio = Twilio(queue_app.test_client())
    add_contact(queue_app, "Vera Important", "+14155550111", tier="Gold")
    add_contact(queue_app, "Olga Owned", "+14155550122", owner_email="ana@example.com")
    vip_sid, own_sid = "CA" + "c" * 32, "CA" + "d" * 32
    twilio.post(VOICE, voice_params(call_sid=CALL_SID, To=SUPPORT_LINE))
    twilio.post(VOICE, voice_params(call_sid=vip_sid, from_="+14155550111", To=SUPPORT_LINE))
    ana = busy_team["team"][0]
    free(busy_team, ana)
    # The owner rule still reaches Ana while callers wait; the longest-idle rule would not.
    assert parse(twilio.post(VOICE, voice_params(call_sid=own_sid, from_="+14155550122", To=SUPPORT_LINE))).find("./Dial")

    twilio.post(STATUS, {**voice_params(call_sid=own_sid), "CallStatus": "completed", "SequenceNumber": "1"})

    _, event, data = stream_events(queue_app, ana)[-1]
    assert event == "card"
    assert data["interaction"]["sid"] == vip_sid
    assert data["routing"]["priority"] == "vip"


# A call nobody takes


@pytest.fixture
def crm_queue_app(make_app, numbers_file, salesforce_config):
    from app.jobs import bind_worker_app

    app = make_app(NUMBERS_FILE=numbers_file, CONNECTORS="salesforce", **salesforce_config,
                   SALESFORCE_LOGIN_RETRY_S=0, SALESFORCE_LOG_TIMEOUT_S=2, OUTBOX_BACKOFF_BASE_S=1)
    bind_worker_app(app)
    return app


def salesforce_tasks(stub) -> list[dict]:
    return list(stub.records["Task"].values())


def test_unanswered_queue_call_ends_as_voicemail_in_crm(crm_queue_app, salesforce_stub):
    from tests.outbox.conftest import drain

    app = crm_queue_app
    salesforce_stub.add_contact(Name="Ada Example", Phone="(415) 555-0100")
    twilio = Twilio(app.test_client())
    recording = {**load_fixture("twilio/recording_status.json"), "CallSid": CALL_SID, "RecordingSource": "RecordVerb",
                 "RecordingTrack": "inbound", "RecordingChannels": "1", "RecordingDuration": "23"}
    transcription = {**load_fixture("twilio/transcription_callback.json"), "CallSid": CALL_SID}

    assert parse(twilio.post(VOICE, voice_params(call_sid=CALL_SID, from_=CALLER, To=SUPPORT_LINE))).find("./Enqueue") is not None
    timeout = {**voice_params(call_sid=CALL_SID, To=SUPPORT_LINE), "QueueResult": "leave", "QueueTime": "90"}
    assert parse(twilio.post(QUEUE_RESULT, timeout)).find("./Record") is not None
    completed = {**voice_params(call_sid=CALL_SID), "CallStatus": "completed", "SequenceNumber": "3", "CallDuration": "130"}
    assert twilio.post(STATUS, completed).status_code == 204
    assert twilio.post(RECORDING, recording).status_code == 204
    assert twilio.post(RECORDING, recording).status_code == 204
    drain(app)

    stored = interaction(app, CALL_SID)
    assert stored.status == "voicemail"
    assert stored.recording_url == recording["RecordingUrl"]
    assert stored.recording_duration == 23
    assert stored.duration_seconds == 130
    assert stored.routing["voicemail"]["recording_link"] == recording["RecordingUrl"] + ".mp3"
    assert stored.routing["waited_s"] == 90
    [task] = salesforce_tasks(salesforce_stub)
    assert task["Subject"] == "Voicemail from +1 415-555-0100"
    assert recording["RecordingUrl"] in task["Description"]

    assert twilio.post(RECORDING, transcription).status_code == 204
    drain(app)

    assert interaction(app, CALL_SID).transcription == transcription["TranscriptionText"]
    [task] = salesforce_tasks(salesforce_stub)
    assert transcription["TranscriptionText"] in task["Description"]


def test_voicemail_link_on_timeline(queue_app):
    twilio = Twilio(queue_app.test_client())
    agent_id = online_agent(queue_app, "ana@example.com")
    Presence(redis_client(queue_app)).offer(agent_id, BUSY_WITH, 300)
    recording = {**load_fixture("twilio/recording_status.json"), "CallSid": CALL_SID}
    twilio.post(VOICE, voice_params(call_sid=CALL_SID, To=SUPPORT_LINE))
    twilio.post(QUEUE_RESULT, {**voice_params(call_sid=CALL_SID, To=SUPPORT_LINE), "QueueResult": "leave", "QueueTime": "90"})

    twilio.post(RECORDING, recording)

    console = console_for(queue_app, "ana@example.com")
    body = console.get(f"/api/interactions/{interaction(queue_app, CALL_SID).id}").json
    assert body["interaction"]["status"] == "voicemail"
    assert body["interaction"]["recording_url"] == recording["RecordingUrl"]
    assert body["interaction"]["routing"]["voicemail"]["recording_link"] == recording["RecordingUrl"] + ".mp3"
    _, event, data = stream_events(queue_app, agent_id)[-1]
    assert event == "call.status"
    assert data["interaction"]["status"] == "voicemail"


def test_recording_of_answered_call_is_not_voicemail(queue_app):
    twilio = Twilio(queue_app.test_client())
    online_agent(queue_app, "ana@example.com")
    recording = {**load_fixture("twilio/recording_status.json"), "CallSid": CALL_SID}
    twilio.post(VOICE, voice_params(call_sid=CALL_SID, To=SUPPORT_LINE))

    twilio.post(RECORDING, recording)

    stored = interaction(queue_app, CALL_SID)
    assert stored.recording_url == recording["RecordingUrl"]
    assert stored.status == "ringing"


def test_recording_unknown_call_is_ignored(queue_app):
    twilio = Twilio(queue_app.test_client())

    response = twilio.post(RECORDING, load_fixture("twilio/recording_status.json"))

    assert response.status_code == 204


@pytest.mark.parametrize(
    "change, message",
    [({"CallSid": ""}, "missing field CallSid"), ({"RecordingUrl": ""}, "missing field RecordingUrl"),
     ({"RecordingUrl": "ftp://example.com/RE1"}, "RecordingUrl"), ({"RecordingDuration": "long"}, "RecordingDuration")],
)
def test_recording_bad_field_is_400(queue_app, change, message):
    twilio = Twilio(queue_app.test_client())

    response = twilio.post(RECORDING, {**load_fixture("twilio/recording_status.json"), **change})

    assert response.status_code == 400
    assert message in response.json["message"]


def test_recording_unsigned_is_403(queue_app):
    twilio = Twilio(queue_app.test_client())

    response = twilio.post(RECORDING, load_fixture("twilio/recording_status.json"), signature="bad")

    assert response.status_code == 403


def test_new_call_queues_behind_waiting_callers(queue_app, busy_team):
    twilio = Twilio(queue_app.test_client())
    twilio.post(VOICE, voice_params(call_sid=CALL_SID, To=SUPPORT_LINE))
    free(busy_team, busy_team["team"][0])

    later_sid = "CA" + "e" * 32
    root = parse(twilio.post(VOICE, voice_params(call_sid=later_sid, from_="+14155550133", To=SUPPORT_LINE)))

    assert root.find("./Dial") is None
    assert root.find("./Enqueue").text == "support"
    outcomes = [c["outcome"] for c in interaction(queue_app, later_sid).routing["candidates"]]
    assert "1 caller(s) waiting" in outcomes


def test_vip_call_takes_free_agent_before_waiting_callers(queue_app, busy_team):
    from tests.conftest import add_contact

    twilio = Twilio(queue_app.test_client())
    add_contact(queue_app, "Vera Important", "+14155550111", tier="Gold")
    twilio.post(VOICE, voice_params(call_sid=CALL_SID, To=SUPPORT_LINE))
    free(busy_team, busy_team["team"][0])

    vip_sid = "CA" + "f" * 32
    root = parse(twilio.post(VOICE, voice_params(call_sid=vip_sid, from_="+14155550111", To=SUPPORT_LINE)))

    assert root.find("./Dial") is not None
