from tests.conftest import add_contact, create_agent, mark_online, stream_events


def voice_params(call_sid="CA" + "1" * 32, from_="+14155550100"):
    return {
        "AccountSid": "AC" + "0" * 32,
        "CallSid": call_sid,
        "From": from_,
        "To": "+14155550199",
        "CallStatus": "ringing",
        "Direction": "inbound",
    }


def test_voice_webhook_pushes_card_to_agent(app, twilio):
    add_contact(app, "Ada Example", "(415) 555-0100", company="Example Analytics")
    agent_id = create_agent(app)
    mark_online(app, agent_id)

    response = twilio.post("/webhooks/twilio/voice", voice_params())

    assert response.status_code == 200
    assert b"<Client" in response.data
    events = stream_events(app, agent_id)
    assert [event for _, event, _ in events] == ["card"]
    card = events[0][2]
    assert card["customer"]["name"] == "Ada Example"
    assert card["systems"]["directory"]["status"] == "found"
