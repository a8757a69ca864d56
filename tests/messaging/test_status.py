"""Status callbacks of outbound messages: rank order, repeats, unknown messages."""

from __future__ import annotations

import pytest

from app.db import get_db
from app.models import Interaction
from tests.conftest import create_agent, interaction, mark_online, stream_events
from tests.messaging.conftest import STATUS, post_status

SMS_SID = "SM1b715192118381b23d1881c97f80b0d2"
WHATSAPP_SID = "SM6e36b71fd11bccd6120bb1d5cf1be319"


def store_outbound(app, sid: str, channel: str = "sms", agent_id: int | None = None) -> None:
    """Store an outbound message as a sent reply leaves it: queued."""
    prefix = "whatsapp:" if channel == "whatsapp" else ""
    with app.app_context():
        with get_db().new_session() as session:
            session.add(
                Interaction(
                    provider_sid=sid,
                    channel=channel,
                    direction="outbound",
                    from_address=prefix + "+14155550100",
                    to_address=prefix + "+14155550123",
                    status="queued",
                    status_rank=1,
                    agent_id=agent_id,
                    routing={"notified": [agent_id] if agent_id else []},
                )
            )
            session.commit()


def statuses_in_stream(app, agent_id: int) -> list[str]:
    return [data["interaction"]["status"] for _, event, data in stream_events(app, agent_id) if event == "message.status"]


@pytest.mark.parametrize(
    ("arrivals", "final"),
    [
        (["sent", "delivered"], "delivered"),
        (["delivered", "sent"], "delivered"),
        (["delivered", "sent", "delivered", "sent"], "delivered"),
        (["failed", "sent"], "failed"),
        (["undelivered", "delivered"], "undelivered"),
    ],
)
def test_sms_status_never_moves_back(app, twilio, arrivals, final):
    store_outbound(app, SMS_SID)

    responses = [post_status(twilio, f"message_status_{status}") for status in arrivals]

    assert [r.status_code for r in responses] == [204] * len(arrivals)
    assert interaction(app, SMS_SID).status == final


def test_whatsapp_read_after_delivered(app, twilio):
    store_outbound(app, WHATSAPP_SID, channel="whatsapp")
    delivered = {"MessageSid": WHATSAPP_SID, "SmsSid": WHATSAPP_SID, "To": "whatsapp:+14155550123"}

    post_status(twilio, "message_status_whatsapp_read")
    post_status(twilio, "message_status_delivered", **delivered)
    post_status(twilio, "message_status_sent", **delivered)

    assert interaction(app, WHATSAPP_SID).status == "read"


def test_failure_keeps_error_code(app, twilio):
    store_outbound(app, SMS_SID)

    post_status(twilio, "message_status_undelivered")

    stored = interaction(app, SMS_SID)
    assert stored.status == "undelivered"
    assert stored.error_code == "30003"


def test_repeated_callback_announced_once(app, twilio):
    agent_id = create_agent(app)
    mark_online(app, agent_id)
    store_outbound(app, SMS_SID, agent_id=agent_id)

    for _ in range(3):
        post_status(twilio, "message_status_delivered")
    post_status(twilio, "message_status_sent")

    assert statuses_in_stream(app, agent_id) == ["delivered"]


def test_unknown_message_answers_204(app, twilio):
    response = post_status(twilio, "message_status_delivered")

    assert response.status_code == 204
    assert interaction(app, SMS_SID) is None


def test_unknown_status_rejected(app, twilio):
    store_outbound(app, SMS_SID)

    response = post_status(twilio, "message_status_sent", MessageStatus="teleported")

    assert response.status_code == 400
    assert "MessageStatus" in response.get_json()["message"]
    assert interaction(app, SMS_SID).status == "queued"


def test_unsigned_status_rejected(app, twilio):
    store_outbound(app, SMS_SID)

    response = twilio.post(STATUS, {"MessageSid": SMS_SID, "MessageStatus": "failed"}, signature="")

    assert response.status_code == 403
    assert interaction(app, SMS_SID).status == "queued"
