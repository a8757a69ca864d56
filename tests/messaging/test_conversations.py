"""Threading messages into conversations, and one timeline across calls and messages."""

from __future__ import annotations

import sqlalchemy as sa

from app.models import Conversation
from tests.conftest import create_agent, interactions, mark_online, stream_events, voice_params
from tests.messaging.conftest import MESSAGING, conversation_ids, move_back, post_fixture, query, sign_in

WHATSAPP = "whatsapp_incoming"


def whatsapp(twilio, sid_digit: str, body: str = "Still there?"):
    from tests.conftest import load_fixture

    params = dict(load_fixture(f"twilio/{WHATSAPP}.json"), MessageSid="SM" + sid_digit * 32, Body=body)
    return twilio.post(MESSAGING, params)


def conversations(app) -> list[Conversation]:
    return query(app, sa.select(Conversation).order_by(Conversation.id))


def test_messages_within_window_share_conversation(app, twilio):
    whatsapp(twilio, "1")
    whatsapp(twilio, "2")

    first, second = conversation_ids(app)
    assert first is not None
    assert first == second
    assert len(conversations(app)) == 1


def test_idle_window_opens_new_conversation(app, twilio):
    whatsapp(twilio, "1")
    [old] = conversations(app)
    move_back(app, Conversation, old.id, 25, "last_message_at")

    whatsapp(twilio, "2")

    first, second = conversation_ids(app)
    assert first != second
    old, new = conversations(app)
    assert old.status == "closed"
    assert new.status == "open"


def test_idle_window_follows_setting(make_app, twilio_api):
    from tests.conftest import Twilio
    from tests.messaging.conftest import ACCOUNT_SID

    app = make_app(CONVERSATION_IDLE_HOURS=1, TWILIO_ACCOUNT_SID=ACCOUNT_SID)
    twilio = Twilio(app.test_client())
    whatsapp(twilio, "1")
    [old] = conversations(app)
    move_back(app, Conversation, old.id, 2, "last_message_at")

    whatsapp(twilio, "2")

    first, second = conversation_ids(app)
    assert first != second


def test_closed_by_agent_then_new_conversation(app, twilio, client):
    agent_id = create_agent(app)
    headers = sign_in(client, agent_id)
    whatsapp(twilio, "1")
    [conversation] = conversations(app)

    closed = client.post(f"/api/conversations/{conversation.id}/close", headers=headers)
    whatsapp(twilio, "2")

    assert closed.status_code == 200
    assert closed.get_json()["conversation"]["status"] == "closed"
    first, second = conversation_ids(app)
    assert first != second


def test_channels_have_separate_conversations(app, twilio):
    post_fixture(twilio, "sms_incoming")
    post_fixture(twilio, WHATSAPP)

    sms, chat = interactions(app)
    assert sms.customer_id == chat.customer_id is not None
    assert sms.conversation_id != chat.conversation_id


def test_assigned_agent_gets_card(app, twilio):
    alice = create_agent(app)
    bob = create_agent(app, name="Bob Agent", email="bob@example.com", client_identity="bob")
    mark_online(app, alice)
    mark_online(app, bob)
    whatsapp(twilio, "1")
    [conversation] = conversations(app)
    from app.db import get_db

    with app.app_context():
        with get_db().new_session() as session:
            session.get(Conversation, conversation.id).assigned_agent_id = bob
            session.commit()

    whatsapp(twilio, "2")

    alice_cards = [data for _, event, data in stream_events(app, alice) if event == "card"]
    bob_cards = [data for _, event, data in stream_events(app, bob) if event == "card"]
    assert len(alice_cards) == 1
    assert len(bob_cards) == 2
    assert bob_cards[1]["routing"]["notified"] == [bob]


def test_call_timeline_shows_whatsapp_message(app, twilio):
    agent_id = create_agent(app)
    mark_online(app, agent_id)
    whatsapp(twilio, "1", body="Is my repair ready? 🔧")

    call = twilio.post("/webhooks/twilio/voice", voice_params(from_="+14155550123"))

    assert call.status_code == 200
    [call_card] = [data for _, event, data in stream_events(app, agent_id) if event == "card" and data["interaction"]["channel"] == "voice"]
    channels = [(entry["channel"], entry["body"]) for entry in call_card["timeline"]]
    assert ("whatsapp", "Is my repair ready? 🔧") in channels
    assert "whatsapp" in call_card["journey"]["channels"]
