"""The console API's voicemail fields: the recording link in `routing` and the transcription."""

from __future__ import annotations

from tests.console.conftest import store_customer, store_interaction

RECORDING_URL = "https://api.twilio.com/2010-04-01/Accounts/AC00/Recordings/RE" + "2" * 32
TRANSCRIPTION = "Please call me back about my order."


def store_voicemail_and_call(app, agent_id: int) -> tuple[int, int]:
    customer_id = store_customer(app)
    voicemail = store_interaction(
        app, sid="CA" + "1" * 32, agent_id=agent_id, customer_id=customer_id, status="voicemail",
        recording_url=RECORDING_URL, transcription=TRANSCRIPTION,
        routing={"notified": [agent_id], "rule": "queue",
                 "voicemail": {"reason": "queue_timeout", "recording_link": RECORDING_URL + ".mp3"}},
    )
    call = store_interaction(app, sid="CA" + "2" * 32, agent_id=agent_id, customer_id=customer_id, minutes_ago=60)
    return voicemail, call


def test_interaction_has_transcription(app, make_console):
    console = make_console()
    voicemail, call = store_voicemail_and_call(app, console.agent_id)

    response = console.get(f"/api/interactions/{voicemail}")

    assert response.status_code == 200, response.json
    assert response.json["interaction"]["transcription"] == TRANSCRIPTION
    assert response.json["interaction"]["routing"]["voicemail"]["recording_link"] == RECORDING_URL + ".mp3"


def test_timeline_entries_have_transcription(app, make_console):
    console = make_console()
    voicemail, call = store_voicemail_and_call(app, console.agent_id)

    response = console.get(f"/api/interactions/{call}")

    assert response.status_code == 200, response.json
    entries = {entry["id"]: entry for entry in response.json["timeline"]}
    assert entries[voicemail]["transcription"] == TRANSCRIPTION
    assert entries[voicemail]["routing"]["voicemail"]["recording_link"] == RECORDING_URL + ".mp3"
    assert entries[call]["transcription"] is None
