"""Calls and messages logged to Zendesk through the outbox, against the Zendesk stub."""

from __future__ import annotations

import pytest

from app.jobs import bind_worker_app
from integrations.base import ConnectorError, Match
from tests.outbox.conftest import (
    KNOWN,
    SUPPORT_LINE,
    UNKNOWN,
    WITHHELD,
    ZENDESK_APP_ID,
    drain,
    entries,
    finish,
    make_agent,
    release_scheduled,
    store_conversation,
    store_interaction,
    work,
)


def voice_posts(stub) -> list[dict]:
    return [request.json() for request in stub.requests_to("/api/v2/channels/voice/tickets.json", "POST")]


def test_completed_call_creates_voice_ticket_and_call_record(crm_app, zendesk_stub, people):
    agent_id = make_agent(crm_app, zendesk=38800000000002)
    interaction_id = store_interaction(
        crm_app, agent_id=agent_id, recording_url="https://example.com/RE1", transcription="Hello there"
    )

    finish(crm_app, interaction_id)
    drain(crm_app)

    [body] = voice_posts(zendesk_stub)
    ticket = body["ticket"]
    assert ticket["via_id"] == 45
    assert ticket["requester_id"] == people["zendesk_user"]["id"]
    assert ticket["external_id"] == f"callcard-{interaction_id}"
    assert ticket["subject"] == "Inbound call from +1 415-555-0100"
    comment = ticket["voice_comment"]
    assert comment["from"] == KNOWN
    assert comment["to"] == SUPPORT_LINE
    assert comment["started_at"] == "2026-01-15T17:01:40Z"
    assert comment["call_duration"] == 67
    assert comment["recording_url"] == "https://example.com/RE1"
    assert comment["transcription_text"] == "Hello there"
    assert comment["answered_by_id"] == 38800000000002
    [call] = [record["call"] for record in zendesk_stub.calls]
    assert call["app_id"] == ZENDESK_APP_ID
    assert call["external_id"] == f"callcard-{interaction_id}"
    assert call["agent_id"] == 38800000000002
    row = entries(crm_app, interaction_id)["zendesk"]
    assert row.state == "done"
    assert row.external_id == str(next(iter(zendesk_stub.tickets)))


def test_voicemail_uses_voicemail_via(crm_app, zendesk_stub, people):
    interaction_id = store_interaction(
        crm_app, answered_at=None, duration_seconds=23, recording_url="https://example.com/RE2"
    )

    finish(crm_app, interaction_id)
    drain(crm_app)

    [body] = voice_posts(zendesk_stub)
    assert body["ticket"]["via_id"] == 44
    assert body["ticket"]["subject"] == "Voicemail from +1 415-555-0100"
    assert "answered_by_id" not in body["ticket"]["voice_comment"]


def test_missed_call_subject(crm_app, zendesk_stub, people):
    interaction_id = store_interaction(crm_app, status="no-answer", answered_at=None, duration_seconds=0)

    finish(crm_app, interaction_id)
    drain(crm_app)

    [body] = voice_posts(zendesk_stub)
    assert body["ticket"]["subject"] == "Missed call from +1 415-555-0100"


def test_unknown_caller_gets_one_end_user(crm_app, zendesk_stub):
    first = store_interaction(crm_app, UNKNOWN)
    second = store_interaction(crm_app, UNKNOWN)

    finish(crm_app, first)
    finish(crm_app, second)
    drain(crm_app)

    created = [user for user in zendesk_stub.users.values() if user["phone"] == UNKNOWN]
    assert len(created) == 1
    assert {body["ticket"]["requester_id"] for body in voice_posts(zendesk_stub)} == {created[0]["id"]}


@pytest.mark.parametrize("number", [WITHHELD, "anonymous"])
def test_withheld_caller_writes_no_phone(crm_app, zendesk_stub, number):
    interaction_id = store_interaction(crm_app, number)

    finish(crm_app, interaction_id)
    drain(crm_app)

    assert zendesk_stub.users == {}
    [body] = voice_posts(zendesk_stub)
    assert "requester_id" not in body["ticket"]
    assert body["ticket"]["voice_comment"]["from"] == ""
    assert entries(crm_app, interaction_id)["zendesk"].state == "done"


def test_without_partner_edition_logs_internal_note(make_app, zendesk_config, zendesk_stub, people):
    app = make_app(CONNECTORS="zendesk", **zendesk_config, ZENDESK_TALK_PARTNER_EDITION=False)
    bind_worker_app(app)
    interaction_id = store_interaction(app, notes="Asked for a refund")

    finish(app, interaction_id)
    drain(app)

    assert voice_posts(zendesk_stub) == []
    assert zendesk_stub.calls == []
    [request] = zendesk_stub.requests_to("/api/v2/tickets.json", "POST")
    ticket = request.json()["ticket"]
    assert ticket["comment"]["public"] is False
    assert "Asked for a refund" in ticket["comment"]["body"]
    assert ticket["external_id"] == f"callcard-{interaction_id}"


def test_open_ticket_setting_adds_note_to_open_ticket(make_app, zendesk_config, zendesk_stub, people):
    open_ticket = zendesk_stub.add_ticket(requester_id=people["zendesk_user"]["id"], status="open")
    app = make_app(CONNECTORS="zendesk", **zendesk_config, ZENDESK_LOG_TO_OPEN_TICKET=True)
    bind_worker_app(app)
    interaction_id = store_interaction(app)

    finish(app, interaction_id)
    drain(app)
    finish(app, interaction_id)
    drain(app)

    assert list(zendesk_stub.tickets) == [open_ticket["id"]]
    assert len(zendesk_stub.comments[open_ticket["id"]]) == 1
    assert entries(app, interaction_id)["zendesk"].external_id == str(open_ticket["id"])


def test_conversation_logs_one_ticket_with_comments(crm_app, zendesk_stub, salesforce_stub, people):
    conversation_id = store_conversation(crm_app)
    messages = []
    for index, body in enumerate(["hello", "my order is late", "thanks"]):
        messages.append(store_interaction(
            crm_app, channel="sms", provider_sid=f"SM{index:032d}", conversation_id=conversation_id, body=body,
            status="received", answered_at=None, duration_seconds=None,
        ))
        finish(crm_app, messages[-1])
    drain(crm_app)
    for interaction_id in messages:
        finish(crm_app, interaction_id)
    drain(crm_app)

    [ticket] = zendesk_stub.tickets.values()
    assert ticket["external_id"] == f"callcard-conversation-{conversation_id}"
    assert ticket["requester_id"] == people["zendesk_user"]["id"]
    comments = zendesk_stub.comments[ticket["id"]]
    assert [comment["body"].split("\n")[0] for comment in comments] == ["hello", "my order is late", "thanks"]
    assert all(comment["public"] for comment in comments)
    assert all(comment["author_id"] == people["zendesk_user"]["id"] for comment in comments)
    [task] = salesforce_stub.records["Task"].values()
    assert task["CallObject"] == f"callcard-conversation-{conversation_id}"
    assert task["WhoId"] == people["contact"]["Id"]
    assert len(task["Description"].splitlines()) == 3


def test_media_only_message_gets_attachment_text(crm_app, zendesk_stub, salesforce_stub, people):
    conversation_id = store_conversation(crm_app)
    media = [
        {"url": "https://api.twilio.com/Media/ME1", "content_type": "image/jpeg"},
        {"url": "https://api.twilio.com/Media/ME2", "content_type": "application/pdf"},
    ]
    interaction_id = store_interaction(
        crm_app, channel="sms", provider_sid="MM" + "1" * 32, conversation_id=conversation_id, body="",
        media=media, status="received", answered_at=None,
    )

    finish(crm_app, interaction_id)
    drain(crm_app)

    [comment] = next(iter(zendesk_stub.comments.values()))
    assert comment["body"].startswith("[2 attachments]\n")
    assert "https://api.twilio.com/Media/ME1" in comment["body"]
    assert "https://api.twilio.com/Media/ME2" in comment["body"]
    for request in zendesk_stub.requests_to("/api/v2/tickets"):
        payload = request.json() or {}
        body = (payload.get("ticket") or {}).get("comment", {}).get("body", "x")
        assert body.strip()
    [task] = salesforce_stub.records["Task"].values()
    assert "[2 attachments]" in task["Description"]


def test_agent_reply_is_comment_by_agent(crm_app, zendesk_stub, people):
    agent_id = make_agent(crm_app, zendesk=38800000000002)
    conversation_id = store_conversation(crm_app)
    inbound = store_interaction(crm_app, channel="sms", conversation_id=conversation_id, body="hi", answered_at=None)
    reply = store_interaction(
        crm_app, channel="sms", direction="outbound-api", conversation_id=conversation_id, body="How can I help?",
        agent_id=agent_id, from_address=SUPPORT_LINE, to_address=KNOWN, answered_at=None,
    )

    finish(crm_app, inbound)
    drain(crm_app)
    finish(crm_app, reply)
    drain(crm_app)

    [ticket_id] = zendesk_stub.tickets
    agent_comment = zendesk_stub.comments[ticket_id][1]
    assert agent_comment["author_id"] == 38800000000002
    assert agent_comment["body"].startswith("How can I help?")


def test_screen_pop_displays_user(crm_app, zendesk_stub, people):
    zendesk = crm_app.extensions["callcard.connectors"]["zendesk"]
    match = Match(system="zendesk", record_type="end-user", external_id=str(people["zendesk_user"]["id"]), display_name="Ada")

    zendesk.screen_pop({"id": 1, "crm_user_ids": {"zendesk": 38800000000002}}, match)

    assert zendesk_stub.displayed == [(38800000000002, people["zendesk_user"]["id"])]


def test_screen_pop_of_unknown_user_raises(crm_app, zendesk_stub):
    zendesk = crm_app.extensions["callcard.connectors"]["zendesk"]
    match = Match(system="zendesk", record_type="end-user", external_id="12345", display_name="Nobody")

    with pytest.raises(ConnectorError, match="not found"):
        zendesk.screen_pop({"id": 1, "crm_user_ids": {"zendesk": 38800000000002}}, match)
