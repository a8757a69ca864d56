"""Agent replies through the Twilio REST API stub, the WhatsApp 24-hour rule and errors."""

from __future__ import annotations

import base64

import pytest
import sqlalchemy as sa

from app.models import Conversation, Interaction
from tests.conftest import AUTH_TOKEN, create_agent, interaction, interactions, load_fixture, stream_events
from tests.messaging.conftest import ACCOUNT_SID, MESSAGING, STATUS, move_back, post_fixture, query, sign_in
from tests.stubs import Reply

WHATSAPP_SID = "SM86ef327f23a8204706d0ab431a0b5688"
SMS_SID = "SMb40530815e110fbfea48f324e99d818b"


@pytest.fixture
def agent_id(app) -> int:
    return create_agent(app)


@pytest.fixture
def headers(client, agent_id) -> dict[str, str]:
    return sign_in(client, agent_id)


def conversation_of(app, sid: str) -> int:
    return interaction(app, sid).conversation_id


def reply(client, conversation_id: int, headers, **payload):
    return client.post(f"/api/conversations/{conversation_id}/replies", json=payload, headers=headers)


def test_whatsapp_reply_sent_through_twilio(app, twilio, client, headers, agent_id, twilio_api):
    post_fixture(twilio, "whatsapp_incoming")
    conversation_id = conversation_of(app, WHATSAPP_SID)

    response = reply(
        client, conversation_id, headers,
        body="Yes, it's ready 👍 — à bientôt", media_url=["https://example.com/receipt.pdf"],
    )

    assert response.status_code == 201, response.get_json()
    [request] = twilio_api.requests_to("/2010-04-01/", method="POST")
    assert request.path == f"/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json"
    credentials = base64.b64encode(f"{ACCOUNT_SID}:{AUTH_TOKEN}".encode()).decode()
    assert request.headers["Authorization"] == f"Basic {credentials}"
    form = twilio_api.form(request)
    assert form["To"] == ["whatsapp:+14155550123"]
    assert form["From"] == ["whatsapp:+14155550100"]
    assert form["Body"] == ["Yes, it's ready 👍 — à bientôt"]
    assert form["MediaUrl"] == ["https://example.com/receipt.pdf"]
    assert form["StatusCallback"] == ["http://localhost/webhooks/twilio/messaging/status"]

    sid = response.get_json()["interaction"]["sid"]
    assert sid == twilio_api.messages[0]["sid"]
    stored = interaction(app, sid)
    assert stored.direction == "outbound"
    assert stored.status == "queued"
    assert stored.agent_id == agent_id
    assert stored.conversation_id == conversation_id
    assert stored.customer_id == interaction(app, WHATSAPP_SID).customer_id
    [conversation] = query(app, sa.select(Conversation))
    assert conversation.assigned_agent_id == agent_id


def test_status_callback_updates_reply(app, twilio, client, headers, agent_id):
    post_fixture(twilio, "whatsapp_incoming")
    response = reply(client, conversation_of(app, WHATSAPP_SID), headers, body="Ready for pickup")
    sid = response.get_json()["interaction"]["sid"]
    callback = {**load_fixture("twilio/message_status_whatsapp_read.json"), "MessageSid": sid, "SmsSid": sid}

    for status in ("sent", "read", "delivered"):
        twilio.post(STATUS, {**callback, "MessageStatus": status, "SmsStatus": status})

    assert interaction(app, sid).status == "read"
    events = [data["interaction"]["status"] for _, event, data in stream_events(app, agent_id) if event == "message.status"]
    assert events == ["sent", "read"]


def test_early_status_applied_to_reply(app, twilio, client, headers, twilio_api):
    post_fixture(twilio, "sms_incoming")
    sid = "SM" + "e" * 32
    twilio_api.next_sids.append(sid)
    early = twilio.post(STATUS, {**load_fixture("twilio/message_status_delivered.json"), "MessageSid": sid})

    response = reply(client, conversation_of(app, SMS_SID), headers, body="Calling you at 3pm")

    assert early.status_code == 204
    assert response.status_code == 201
    assert interaction(app, sid).status == "delivered"


def test_late_whatsapp_reply_needs_template(app, twilio, client, headers, twilio_api):
    post_fixture(twilio, "whatsapp_incoming")
    inbound = interaction(app, WHATSAPP_SID)
    move_back(app, Interaction, inbound.id, 25, "started_at")

    response = reply(client, inbound.conversation_id, headers, body="Are you still there?")

    assert response.status_code == 422
    body = response.get_json()
    assert body["error"] == "template_required"
    assert "template" in body["message"]
    assert "24 hours" in body["message"]
    assert twilio_api.requests == []
    assert len(interactions(app)) == 1


def test_sms_reply_has_no_24_hour_rule(app, twilio, client, headers):
    post_fixture(twilio, "sms_incoming")
    inbound = interaction(app, SMS_SID)
    move_back(app, Interaction, inbound.id, 48, "started_at")

    response = reply(client, inbound.conversation_id, headers, body="Following up on your request")

    assert response.status_code == 201


def test_reply_without_account_sid(make_app, twilio_api):
    from tests.conftest import Twilio

    app = make_app(TWILIO_ACCOUNT_SID=None, TWILIO_API_BASE_URL=twilio_api.url)
    client = app.test_client()
    headers = sign_in(client, create_agent(app))
    post_fixture(Twilio(client), "sms_incoming")

    response = reply(client, conversation_of(app, SMS_SID), headers, body="Hello")

    assert response.status_code == 503
    assert "TWILIO_ACCOUNT_SID" in response.get_json()["message"]
    assert twilio_api.requests == []


def test_twilio_error_reported(app, twilio, client, headers, twilio_api):
    post_fixture(twilio, "sms_incoming")
    error = {"code": 21610, "message": "Attempt to send to unsubscribed recipient", "status": 400}
    twilio_api.fail(Reply.json(400, error), path="/2010-04-01/")

    response = reply(client, conversation_of(app, SMS_SID), headers, body="Hello again")

    assert response.status_code == 502
    assert "21610" in response.get_json()["message"]
    assert "unsubscribed" in response.get_json()["message"]
    assert len(interactions(app)) == 1


@pytest.mark.parametrize(
    ("payload", "status", "words"),
    [
        ({"body": ""}, 400, "media URL"),
        ({"body": "x" * 1601}, 400, "1600"),
        ({"body": 42}, 400, "body"),
        ({"body": "hi", "media_url": [3]}, 400, "media_url"),
        ({"body": "", "media_url": ["ftp://example.com/a.png"]}, 400, "http"),
    ],
)
def test_invalid_reply_rejected(app, twilio, client, headers, twilio_api, payload, status, words):
    post_fixture(twilio, "sms_incoming")

    response = client.post(f"/api/conversations/{conversation_of(app, SMS_SID)}/replies", json=payload, headers=headers)

    assert response.status_code == status
    assert words in response.get_json()["message"]
    assert twilio_api.requests == []


def test_reply_requires_signed_in_agent(app, twilio, client, twilio_api):
    post_fixture(twilio, "sms_incoming")
    path = f"/api/conversations/{conversation_of(app, SMS_SID)}/replies"

    anonymous = client.post(path, json={"body": "hi"})
    agent_id = create_agent(app)
    sign_in(client, agent_id)
    without_csrf = client.post(path, json={"body": "hi"})

    assert anonymous.status_code == 401
    assert without_csrf.status_code == 400
    assert "CSRF" in without_csrf.get_json()["message"]
    assert twilio_api.requests == []


def test_reply_to_unknown_conversation(app, client, headers):
    response = reply(client, 999, headers, body="hi")

    assert response.status_code == 404


def test_reply_to_closed_conversation_rejected(app, twilio, client, headers, twilio_api):
    post_fixture(twilio, "sms_incoming")
    conversation_id = conversation_of(app, SMS_SID)
    client.post(f"/api/conversations/{conversation_id}/close", headers=headers)

    response = reply(client, conversation_id, headers, body="hi")

    assert response.status_code == 409
    assert twilio_api.requests == []


def test_reply_then_message_same_conversation(app, twilio, client, headers):
    post_fixture(twilio, "whatsapp_incoming")
    conversation_id = conversation_of(app, WHATSAPP_SID)
    reply(client, conversation_id, headers, body="Ready")

    params = dict(load_fixture("twilio/whatsapp_incoming.json"), MessageSid="SM" + "c" * 32, Body="Thanks!")
    twilio.post(MESSAGING, params)

    assert interaction(app, "SM" + "c" * 32).conversation_id == conversation_id
