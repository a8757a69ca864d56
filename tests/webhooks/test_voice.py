"""The inbound voice webhook: card, idempotency, withheld callers, bad input and TwiML."""

from __future__ import annotations

import threading
import xml.etree.ElementTree as ET
from urllib.parse import urlencode

import pytest

from tests.conftest import (
    Twilio,
    add_contact,
    create_agent,
    interactions,
    load_fixture,
    mark_online,
    redis_client,
    stream_events,
    voice_params,
)

VOICE = "/webhooks/twilio/voice"
DIAL = "/webhooks/twilio/voice/dial"
WITHHELD = [
    "anonymous",
    "restricted",
    "unknown",
    "unavailable",
    "blocked",
    "Restricted",
    "+266696687",
    "+7378742833",
    "+2562533",
    "+8656696",
    "+86282452253",
    "",
]


@pytest.fixture
def agent_id(app):
    agent_id = create_agent(app)
    mark_online(app, agent_id)
    return agent_id


def cards(app, agent_id):
    return [data for _, event, data in stream_events(app, agent_id) if event == "card"]


def parse_twiml(response) -> ET.Element:
    assert response.mimetype == "text/xml"
    root = ET.fromstring(response.data)
    assert root.tag == "Response"
    return root


def store_junk_contacts(app):
    """Store the rows an earlier integration left behind for withheld callers."""
    from app.db import get_db
    from app.models import DirectoryContact

    junk = [("Imported Junk Row", "266696687", "266696687"), ("+266696687", "+266696687", "+266696687")]
    with app.app_context():
        with get_db().new_session() as session:
            for name, phone, e164 in junk:
                session.add(DirectoryContact(name=name, phone=phone, phone_e164=e164))
            session.add(DirectoryContact(name="No Number", phone="", phone_e164=""))
            session.commit()


# The card


def test_voice_pushes_card_to_agent(app, twilio, agent_id):
    add_contact(app, "Ada Example", "(415) 555-0100", company="Example Analytics")

    response = twilio.post(VOICE, voice_params())

    assert response.status_code == 200
    [card] = cards(app, agent_id)
    assert card["customer"]["name"] == "Ada Example"
    assert card["systems"]["directory"]["status"] == "found"


def test_voice_matches_formatted_directory_phone(app, twilio, agent_id):
    add_contact(app, "Ada Example", "(415) 555-0100")

    twilio.post(VOICE, voice_params(from_="+14155550100"))

    [card] = cards(app, agent_id)
    assert [m["display_name"] for m in card["matches"]] == ["Ada Example"]


def test_voice_matches_national_number_of_region(app, twilio, agent_id):
    add_contact(app, "Chloé Exemple", "06 12 34 56 78", region="FR")

    twilio.post(VOICE, voice_params(from_="+33612345678"))

    [card] = cards(app, agent_id)
    assert [m["display_name"] for m in card["matches"]] == ["Chloé Exemple"]


def test_voice_ignores_other_area_code(app, twilio, agent_id):
    add_contact(app, "Eve Example", "+1 (650) 555-0100")

    twilio.post(VOICE, voice_params(from_="+14155550100"))

    [card] = cards(app, agent_id)
    assert card["matches"] == []
    assert card["caller"]["e164"] == "+14155550100"


# Idempotency on CallSid


def test_voice_repeat_stores_one_interaction(app, twilio, agent_id):
    twilio.post(VOICE, voice_params())
    twilio.post(VOICE, voice_params())

    assert len(interactions(app)) == 1


def test_voice_repeat_answers_same_twiml(app, twilio, agent_id):
    first = twilio.post(VOICE, voice_params())
    second = twilio.post(VOICE, voice_params())

    assert second.status_code == 200
    assert second.data == first.data


def test_voice_repeat_publishes_one_card(app, twilio, agent_id):
    twilio.post(VOICE, voice_params())
    twilio.post(VOICE, voice_params())

    assert len(cards(app, agent_id)) == 1


def test_voice_concurrent_deliveries_store_one_call(app, agent_id):
    add_contact(app, "Ada Example", "(415) 555-0100")
    barrier = threading.Barrier(2)
    responses = []

    def deliver():
        twilio = Twilio(app.test_client())
        barrier.wait()
        responses.append(twilio.post(VOICE, voice_params()))

    threads = [threading.Thread(target=deliver) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=20)

    assert [r.status_code for r in responses] == [200, 200]
    assert responses[0].data == responses[1].data
    assert b"<Dial" in responses[0].data
    assert len(interactions(app)) == 1
    assert len(cards(app, agent_id)) == 1


# Withheld caller IDs


@pytest.mark.parametrize("from_", WITHHELD)
def test_withheld_caller_matches_nobody(app, twilio, agent_id, from_):
    store_junk_contacts(app)

    response = twilio.post(VOICE, voice_params(from_=from_))

    assert response.status_code == 200
    [card] = cards(app, agent_id)
    assert card["matches"] == []
    assert card["customer"]["id"] is None


@pytest.mark.parametrize("from_", WITHHELD)
def test_withheld_caller_card_says_withheld(app, twilio, agent_id, from_):
    twilio.post(VOICE, voice_params(from_=from_))

    [card] = cards(app, agent_id)
    assert card["caller"]["kind"] == "withheld"
    assert card["caller"]["label"] == "Caller ID withheld"
    assert card["caller"]["e164"] is None


@pytest.mark.parametrize("from_", WITHHELD)
def test_withheld_caller_reaches_agent(app, twilio, agent_id, from_):
    response = twilio.post(VOICE, voice_params(from_=from_))

    client = parse_twiml(response).find("./Dial/Client")
    assert client is not None
    assert client.text == "alice"


# Bad input: a 4xx naming the problem, nothing stored


def post_raw(app, body: bytes, content_type="application/x-www-form-urlencoded", signature="unchecked"):
    return app.test_client().post(
        VOICE, data=body, content_type=content_type, headers={"X-Twilio-Signature": signature}
    )


def test_voice_missing_from_is_400(app, twilio, agent_id):
    params = voice_params()
    del params["From"]

    response = twilio.post(VOICE, params)

    assert response.status_code == 400
    assert response.json["message"] == "missing field From"
    assert interactions(app) == []


def test_voice_missing_call_sid_is_400(app, twilio, agent_id):
    params = voice_params()
    del params["CallSid"]

    response = twilio.post(VOICE, params)

    assert response.status_code == 400
    assert response.json["message"] == "missing field CallSid"
    assert interactions(app) == []


def test_voice_malformed_call_sid_is_400(app, twilio, agent_id):
    response = twilio.post(VOICE, voice_params(call_sid="SM" + "1" * 32))

    assert response.status_code == 400
    assert "CallSid" in response.json["message"]
    assert interactions(app) == []
    assert stream_events(app, agent_id) == []


def test_voice_json_body_is_415(app):
    response = post_raw(app, b'{"CallSid": "CA00000000000000000000000000000001"}', "application/json")

    assert response.status_code == 415
    assert "application/x-www-form-urlencoded" in response.json["message"]
    assert interactions(app) == []


def test_voice_large_body_is_413(app):
    body = urlencode({"CallSid": "CA" + "1" * 32, "Pad": "x" * (2 * 1024 * 1024)}).encode()

    response = post_raw(app, body)

    assert response.status_code == 413
    assert response.json["error"] == "Request Entity Too Large"
    assert "limit" in response.json["message"]
    assert interactions(app) == []


def test_voice_raw_non_ascii_body_is_400(app):
    response = post_raw(app, b"CallSid=CA" + b"1" * 32 + b"&From=\xff\xfe")

    assert response.status_code == 400
    assert "non-ASCII" in response.json["message"]
    assert interactions(app) == []


def test_voice_non_utf8_escape_is_400(app):
    response = post_raw(app, b"CallSid=CA" + b"1" * 32 + b"&CallerName=%FF%FE")

    assert response.status_code == 400
    assert "UTF-8" in response.json["message"]
    assert interactions(app) == []


def test_voice_too_many_fields_is_400(app):
    body = urlencode({f"Field{i}": "x" for i in range(500)}).encode()

    response = post_raw(app, body)

    assert response.status_code == 400
    assert "fields" in response.json["message"]
    assert interactions(app) == []


def test_voice_checks_signature_before_fields(app, agent_id):
    params = voice_params()
    del params["From"]

    response = post_raw(app, urlencode(params).encode(), signature="")

    assert response.status_code == 403


# TwiML


def test_twiml_dials_browser_agent(make_app):
    app = make_app(PUBLIC_BASE_URL="https://cti.example.com")
    agent_id = create_agent(app)
    mark_online(app, agent_id)
    twilio = Twilio(app.test_client(), base_url="https://cti.example.com")

    dial = parse_twiml(twilio.post(VOICE, voice_params())).find("./Dial")

    assert dial.get("action") == "https://cti.example.com/webhooks/twilio/voice/dial"
    assert dial.get("method") == "POST"
    client = dial.find("./Client")
    assert client.text == "alice"
    assert client.get("statusCallback") == "https://cti.example.com/webhooks/twilio/voice/status"
    assert client.get("statusCallbackEvent") == "initiated ringing answered completed"
    assert dial.find("./Number") is None


def test_twiml_dials_phone_agent(app, twilio):
    agent_id = create_agent(app, answer_mode="phone", phone_number="+14155550150", client_identity=None)
    mark_online(app, agent_id)

    dial = parse_twiml(twilio.post(VOICE, voice_params())).find("./Dial")

    number = dial.find("./Number")
    assert number.text == "+14155550150"
    assert number.get("statusCallback") == "http://localhost/webhooks/twilio/voice/status"
    assert dial.find("./Client") is None


def test_twiml_enqueues_without_agent(app, twilio):
    create_agent(app)

    root = parse_twiml(twilio.post(VOICE, voice_params()))

    assert root.find("./Enqueue").text == "support"
    assert root.find("./Dial") is None


def test_twiml_enqueues_when_agent_busy(app, twilio, agent_id):
    twilio.post(VOICE, voice_params(call_sid="CA" + "1" * 32))

    root = parse_twiml(twilio.post(VOICE, voice_params(call_sid="CA" + "2" * 32)))

    assert root.find("./Enqueue") is not None


def test_dial_no_answer_enqueues_caller(app, twilio, agent_id):
    twilio.post(VOICE, load_fixture("twilio/voice_incoming.json"))

    response = twilio.post(DIAL, load_fixture("twilio/voice_dial_action_no_answer.json"))

    root = parse_twiml(response)
    assert root.find("./Enqueue").text == "support"


def test_dial_no_answer_frees_agent(app, twilio, agent_id):
    from app.presence import Presence

    twilio.post(VOICE, load_fixture("twilio/voice_incoming.json"))
    presence = Presence(redis_client(app))
    assert presence.offered_call(agent_id) == "CA7b810266248bdfda6ab66f956c264d20"

    twilio.post(DIAL, load_fixture("twilio/voice_dial_action_no_answer.json"))

    assert presence.offered_call(agent_id) is None


def test_dial_completed_hangs_up(app, twilio, agent_id):
    twilio.post(VOICE, load_fixture("twilio/voice_incoming.json"))

    root = parse_twiml(twilio.post(DIAL, load_fixture("twilio/voice_dial_action.json")))

    assert [child.tag for child in root] == ["Hangup"]
