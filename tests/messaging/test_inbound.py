"""The inbound messaging webhook on recorded SMS, MMS and WhatsApp payloads."""

from __future__ import annotations

import threading

import pytest
import sqlalchemy as sa

from app.message_content import text_for_log_back
from app.models import Customer, Identity, Interaction
from tests.conftest import Twilio, add_contact, create_agent, interaction, interactions, load_fixture, mark_online, stream_events
from tests.messaging.conftest import MESSAGING, post_fixture, query

EMPTY_TWIML = b'<?xml version="1.0" encoding="UTF-8"?><Response />'


@pytest.fixture
def agent_id(app) -> int:
    agent_id = create_agent(app)
    mark_online(app, agent_id)
    return agent_id


def card_events(app, agent_id: int) -> list[dict]:
    return [data for _, event, data in stream_events(app, agent_id) if event == "card"]


def test_sms_stored_and_card_pushed(app, twilio, agent_id):
    add_contact(app, "Jane Example", "(415) 555-0123", company="Example Repairs")

    response = post_fixture(twilio, "sms_incoming")

    assert response.status_code == 200
    assert response.mimetype == "text/xml"
    assert response.data == EMPTY_TWIML
    stored = interaction(app, "SMb40530815e110fbfea48f324e99d818b")
    assert stored.channel == "sms"
    assert stored.direction == "inbound"
    assert stored.body == "Hi, I missed your call. Can you ring me back after 3pm? Ref #4821"
    assert stored.caller_e164 == "+14155550123"
    assert stored.details["MessagingServiceSid"] == "MG0123456789abcdef0123456789abcdef"
    [card] = card_events(app, agent_id)
    assert card["customer"]["name"] == "Jane Example"
    assert card["systems"]["directory"]["status"] == "found"
    assert card["message"]["channel"] == "sms"
    assert card["message"]["reply_to"] == "+14155550123"
    assert card["message"]["conversation_id"] == stored.conversation_id
    assert card["interaction"]["body"] == stored.body


def test_mms_keeps_media_in_index_order(app, twilio, agent_id):
    response = post_fixture(twilio, "mms_incoming")

    assert response.status_code == 200
    stored = interaction(app, "MMeb30da4ccfe2443f07154753e9fb08f6")
    assert stored.channel == "sms"
    assert [item["url"][-34:] for item in stored.media] == [
        "ME669083058790fe061ffc206ec78069b1",
        "MEd138c022b7490cfd339678b78ace1729",
    ]
    assert [item["content_type"] for item in stored.media] == ["image/jpeg", "image/jpeg"]
    [card] = card_events(app, agent_id)
    assert card["message"]["attachment_count"] == 2


def test_mms_without_body_shows_two_attachments(app, twilio, agent_id):
    response = post_fixture(twilio, "mms_incoming", Body="", MediaContentType1="application/pdf")

    assert response.status_code == 200
    stored = interaction(app, "MMeb30da4ccfe2443f07154753e9fb08f6")
    assert stored.body == ""
    assert len(stored.media) == 2
    assert {item["url"] for item in stored.media} == {
        load_fixture("twilio/mms_incoming.json")["MediaUrl0"],
        load_fixture("twilio/mms_incoming.json")["MediaUrl1"],
    }
    assert text_for_log_back(stored.body, stored.media) == "[2 attachments]"
    [card] = card_events(app, agent_id)
    assert card["message"]["attachment_count"] == 2
    assert card["message"]["content_types"] == ["image/jpeg", "application/pdf"]
    assert [item["url"] for item in card["message"]["attachments"]] == [item["url"] for item in stored.media]


def test_whatsapp_text_card_shows_reply_address(app, twilio, agent_id):
    response = post_fixture(twilio, "whatsapp_incoming")

    assert response.status_code == 200
    stored = interaction(app, "SM86ef327f23a8204706d0ab431a0b5688")
    assert stored.channel == "whatsapp"
    assert stored.caller_e164 == "+14155550123"
    assert stored.details["WaId"] == "14155550123"
    assert stored.details["channel_metadata"]["data"]["context"]["ProfileName"] == "Jane"
    assert "referral" not in stored.details
    [card] = card_events(app, agent_id)
    assert card["message"]["reply_to"] == "whatsapp:+14155550123"
    assert card["message"]["reply_from"] == "whatsapp:+14155550100"
    assert card["message"]["profile_name"] == "Jane"
    assert card["caller"]["channel"] == "whatsapp"


def test_whatsapp_media_with_emoji(app, twilio, agent_id):
    response = post_fixture(twilio, "whatsapp_incoming_emoji_media")

    assert response.status_code == 200
    stored = interaction(app, "MMbcf68c91a9923399898622845f63af74")
    assert stored.body == "Here's the receipt 🧾👍 — café on 3rd St"
    assert stored.details["ProfileName"] == "Jane 🌻"
    assert stored.details["MessageType"] == "image"
    [card] = card_events(app, agent_id)
    assert card["message"]["body"] == "Here's the receipt 🧾👍 — café on 3rd St"
    assert card["message"]["profile_name"] == "Jane 🌻"
    assert card["message"]["content_types"] == ["image/jpeg"]


def test_whatsapp_location(app, twilio, agent_id):
    response = post_fixture(twilio, "whatsapp_incoming_location")

    assert response.status_code == 200
    stored = interaction(app, "SMc7b370bfcd8119007e8b53b87ca9b11b")
    assert stored.body == ""
    assert stored.details["location"] == {
        "latitude": "37.7749295",
        "longitude": "-122.4194155",
        "address": "1 Example Plaza, San Francisco, CA 94103",
        "label": "Example Coffee",
    }
    [card] = card_events(app, agent_id)
    assert card["message"]["location"]["label"] == "Example Coffee"


def test_whatsapp_button_reply(app, twilio, agent_id):
    response = post_fixture(twilio, "whatsapp_incoming_button")

    assert response.status_code == 200
    stored = interaction(app, "SMc14b9c1ea35b785d12f890949a4f9ec2")
    assert stored.details["button"] == {
        "text": "Call me back",
        "payload": "callback_request:ticket_4821",
        "replied_to_sid": "MM7a08dbc53d8a95037d075fb7527a87f6",
        "replied_to_sender": "whatsapp:+14155550100",
    }
    [card] = card_events(app, agent_id)
    assert card["message"]["button"]["payload"] == "callback_request:ticket_4821"


def test_whatsapp_ad_referral(app, twilio, agent_id):
    response = post_fixture(twilio, "whatsapp_incoming_ctwa_referral")

    assert response.status_code == 200
    referral = interaction(app, "SMab27ed1f4af152336628134c4ef13f92").details["referral"]
    assert referral["source_url"] == "https://fb.me/example-ad-0001"
    assert referral["source_type"] == "ad"
    assert referral["headline"] == "Same-day screen repair"
    assert referral["ctwa_clid"] == "ARAkExampleCtwaClickId0001"
    assert referral["num_media"] == "1"
    [card] = card_events(app, agent_id)
    assert card["message"]["referral"]["source_id"] == "120210000000000001"


def test_whatsapp_user_id_links_later_messages(app, twilio, agent_id):
    first = post_fixture(twilio, "whatsapp_incoming_bsuid")
    later = dict(
        load_fixture("twilio/whatsapp_incoming_bsuid.json"),
        MessageSid="SM" + "b" * 32,
        From="whatsapp:US.1234567890123456",
        WaId="",
    )
    second = twilio.post(MESSAGING, later)

    assert first.status_code == 200
    assert second.status_code == 200
    bsuid = query(app, sa.select(Identity).where(Identity.system == "whatsapp"))
    assert [identity.value for identity in bsuid] == ["whatsapp:US.1234567890123456"]
    stored = interactions(app)
    assert stored[0].details["ExternalUserId"] == "whatsapp:US.1234567890123456"
    assert stored[1].customer_id == stored[0].customer_id is not None
    assert stored[1].conversation_id == stored[0].conversation_id


def test_duplicate_delivery_stored_once(app, twilio, agent_id):
    responses = [post_fixture(twilio, "sms_incoming") for _ in range(3)]

    assert [r.status_code for r in responses] == [200, 200, 200]
    assert all(r.data == EMPTY_TWIML for r in responses)
    assert len(interactions(app)) == 1
    assert len(card_events(app, agent_id)) == 1


def test_concurrent_duplicates_one_card(app, agent_id):
    params = load_fixture("twilio/sms_incoming.json")
    barrier = threading.Barrier(4)
    statuses: list[int] = []

    def deliver():
        sender = Twilio(app.test_client())
        barrier.wait()
        statuses.append(sender.post(MESSAGING, params).status_code)

    threads = [threading.Thread(target=deliver) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert statuses == [200, 200, 200, 200]
    assert len(interactions(app)) == 1
    assert len(card_events(app, agent_id)) == 1


@pytest.mark.parametrize("signature", ["", "bm90IHRoZSByaWdodCBzaWduYXR1cmU="])
def test_unsigned_message_rejected(app, twilio, agent_id, signature):
    params = {
        "AccountSid": "AC" + "0" * 32,
        "MessageSid": "SM" + "0" * 30 + "11",
        "From": "+14155550100",
        "To": "+14155550199",
        "Body": "please refund me",
        "NumMedia": "0",
    }

    response = twilio.post(MESSAGING, params, signature=signature)

    assert response.status_code == 403
    assert interactions(app) == []
    assert query(app, sa.select(Customer)) == []
    assert stream_events(app, agent_id) == []


@pytest.mark.parametrize(("sender", "kind"), [("EXAMPLECO", "alphanumeric"), ("00000", "shortcode")])
def test_non_phone_sender_kept_verbatim(app, twilio, agent_id, sender, kind):
    response = post_fixture(twilio, "sms_incoming", From=sender)

    assert response.status_code == 200
    stored = interaction(app, "SMb40530815e110fbfea48f324e99d818b")
    assert stored.from_address == sender
    assert stored.caller_kind == kind
    assert stored.caller_e164 is None
    assert stored.customer_id is None
    assert query(app, sa.select(Identity)) == []
    [card] = card_events(app, agent_id)
    assert card["caller"]["raw"] == sender
    assert card["caller"]["kind"] == kind
    assert card["customer"]["id"] is None
    assert card["matches"] == []
    assert card["systems"]["directory"]["status"] == "none"
    assert card["message"]["reply_to"] == sender


@pytest.mark.parametrize(
    "body",
    [
        "Merci beaucoup, à bientôt ! Ça marche 👍🏽",
        "مرحبا، أين طلبي رقم ٤٨٢١؟",
        "שלום, ההזמנה שלי לא הגיעה",
        ("Línea larga 🧾 مرحبا " * 80)[:1600],
        "nul\x00 bell\x07 escape\x1b end",
    ],
    ids=["accents-emoji", "arabic", "hebrew", "1600-characters", "control-characters"],
)
def test_unicode_body_stored_and_rendered(app, twilio, agent_id, body):
    from app.message_content import original_value

    response = post_fixture(twilio, "sms_incoming", Body=body)

    assert response.status_code == 200
    stored = interaction(app, "SMb40530815e110fbfea48f324e99d818b")
    assert original_value(stored.details, "Body", stored.body) == body
    assert stored.body == body.replace("\x00", "\ufffd")
    [card] = card_events(app, agent_id)
    assert card["message"]["body"] == stored.body


def test_media_only_whatsapp_message(app, twilio, agent_id):
    response = post_fixture(twilio, "whatsapp_incoming_emoji_media", Body="")

    assert response.status_code == 200
    stored = interaction(app, "MMbcf68c91a9923399898622845f63af74")
    assert stored.body == ""
    assert text_for_log_back(stored.body, stored.media) == "[1 attachment]"


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"MessageSid": ""}, "MessageSid"),
        ({"MessageSid": "XX123"}, "MessageSid"),
        ({"From": ""}, "From"),
        ({"NumMedia": "3"}, "MediaUrl2"),
        ({"NumMedia": "eleven"}, "NumMedia"),
        ({"NumMedia": "11"}, "NumMedia"),
        ({"Latitude": "north"}, "Latitude"),
        ({"Longitude": "181"}, "Longitude"),
    ],
)
def test_invalid_message_rejected_naming_field(app, twilio, agent_id, changes, field):
    response = post_fixture(twilio, "mms_incoming", **changes)

    assert response.status_code == 400
    assert field in response.get_json()["message"]
    assert interactions(app) == []
    assert stream_events(app, agent_id) == []
