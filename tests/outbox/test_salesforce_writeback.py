"""Calls logged to Salesforce as Tasks through the outbox, against the Salesforce stub."""

from __future__ import annotations

import pytest

from tests.outbox.conftest import (
    KNOWN,
    UNKNOWN,
    WITHHELD,
    drain,
    entries,
    finish,
    make_agent,
    store_interaction,
    update,
)


def task_posts(stub) -> list[dict]:
    return [request.json() for request in stub.requests_to(f"{stub.data_path}sobjects/Task", "POST")]


def tasks(stub) -> list[dict]:
    return list(stub.records["Task"].values())


def test_completed_call_creates_documented_task(crm_app, salesforce_stub, people):
    agent_id = make_agent(crm_app, salesforce="005000000000001AAA")
    interaction_id = store_interaction(
        crm_app, agent_id=agent_id, disposition="Resolved", notes="Refund approved",
        recording_url="https://api.twilio.com/2010-04-01/Accounts/AC0/Recordings/RE1",
    )

    finish(crm_app, interaction_id)
    drain(crm_app)

    [body] = task_posts(salesforce_stub)
    assert body["Subject"] == "Inbound call from +1 415-555-0100"
    assert body["TaskSubtype"] == "Call"
    assert body["CallType"] == "Inbound"
    assert body["CallDurationInSeconds"] == 67
    assert body["CallObject"].startswith("CA")
    assert body["CallDisposition"] == "Resolved"
    assert body["Status"] == "Completed"
    assert body["ActivityDate"] == "2026-01-15"
    assert body["WhoId"] == people["contact"]["Id"]
    assert body["WhatId"] == people["account"]["Id"]
    assert body["OwnerId"] == "005000000000001AAA"
    assert "Refund approved" in body["Description"]
    assert "Recordings/RE1" in body["Description"]
    row = entries(crm_app, interaction_id)["salesforce"]
    assert row.state == "done"
    assert row.external_id == tasks(salesforce_stub)[0]["Id"]


@pytest.mark.parametrize(
    ("fields", "subject"),
    [
        ({"status": "no-answer", "answered_at": None, "duration_seconds": 0}, "Missed call from +1 415-555-0100"),
        ({"status": "busy", "answered_at": None, "duration_seconds": 0}, "Missed call from +1 415-555-0100"),
        ({"status": "completed", "answered_at": None, "duration_seconds": 12}, "Missed call from +1 415-555-0100"),
        (
            {"status": "completed", "answered_at": None, "duration_seconds": 23, "recording_url": "https://example.com/RE2"},
            "Voicemail from +1 415-555-0100",
        ),
        ({"direction": "outbound-api", "status": "completed"}, "Outbound call to +1 415-555-0100"),
    ],
)
def test_call_outcome_sets_subject(crm_app, salesforce_stub, people, fields, subject):
    if fields.get("direction", "").startswith("outbound"):
        fields = {**fields, "from_address": "+14155550199", "to_address": KNOWN}
    interaction_id = store_interaction(crm_app, **fields)

    finish(crm_app, interaction_id)
    drain(crm_app)

    [body] = task_posts(salesforce_stub)
    assert body["Subject"] == subject
    expected_type = "Outbound" if "direction" in fields else "Inbound"
    assert body["CallType"] == expected_type


def test_unknown_caller_with_lead_setting_creates_lead(make_app, salesforce_config, salesforce_stub):
    from app.jobs import bind_worker_app

    app = make_app(CONNECTORS="salesforce", **salesforce_config, SALESFORCE_UNKNOWN_CALLER="lead")
    bind_worker_app(app)
    first = store_interaction(app, UNKNOWN)
    second = store_interaction(app, UNKNOWN)

    finish(app, first)
    finish(app, second)
    drain(app)

    leads = list(salesforce_stub.records["Lead"].values())
    assert len(leads) == 1
    assert leads[0]["LastName"] == "Unknown caller"
    assert leads[0]["Company"] == "Unknown"
    assert leads[0]["Phone"] == UNKNOWN
    assert [task["WhoId"] for task in tasks(salesforce_stub)] == [leads[0]["Id"], leads[0]["Id"]]


def test_unknown_caller_with_task_setting_logs_task_only(crm_app, salesforce_stub):
    interaction_id = store_interaction(crm_app, UNKNOWN)

    finish(crm_app, interaction_id)
    drain(crm_app)

    [body] = task_posts(salesforce_stub)
    assert "WhoId" not in body
    assert salesforce_stub.records["Lead"] == {}


@pytest.mark.parametrize("number", [WITHHELD, "anonymous"])
def test_withheld_caller_logs_task_without_who(make_app, salesforce_config, salesforce_stub, number):
    from app.jobs import bind_worker_app

    app = make_app(CONNECTORS="salesforce", **salesforce_config, SALESFORCE_UNKNOWN_CALLER="lead")
    bind_worker_app(app)
    interaction_id = store_interaction(app, number)

    finish(app, interaction_id)
    drain(app)

    [body] = task_posts(salesforce_stub)
    assert "WhoId" not in body
    assert body["Subject"] == "Inbound call from a withheld number"
    assert salesforce_stub.records["Lead"] == {}
    assert not salesforce_stub.requests_to(f"{salesforce_stub.data_path}sobjects/Lead")


def test_notes_saved_later_patch_same_task(crm_app, salesforce_stub, people):
    interaction_id = store_interaction(crm_app)
    finish(crm_app, interaction_id)
    drain(crm_app)

    update(crm_app, interaction_id, notes="Called back about order 4821", disposition="Follow-up")
    drain(crm_app)

    [task] = tasks(salesforce_stub)
    assert len(task_posts(salesforce_stub)) == 1
    patches = salesforce_stub.requests_to(f"{salesforce_stub.data_path}sobjects/Task/{task['Id']}", "PATCH")
    assert len(patches) == 1
    assert "TaskSubtype" not in patches[0].json()
    assert task["CallDisposition"] == "Follow-up"
    assert "Called back about order 4821" in task["Description"]
    row = entries(crm_app, interaction_id)["salesforce"]
    assert row.state == "done"
    assert row.synced_version == row.version
