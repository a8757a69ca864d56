"""The case or ticket an agent picks in the console is the record the outbox logs the call to."""

from __future__ import annotations

import pytest

from app.jobs import bind_worker_app
from tests.console.conftest import Console, sign_in
from tests.outbox.conftest import drain, entries, make_agent, store_interaction

SALESFORCE_AGENT = "005000000000001AAA"


def console_for(app, agent_id: int) -> Console:
    """Sign the agent made by make_agent in on a new client of `app`."""
    client = app.test_client()
    assert sign_in(client, "alice@example.com").status_code == 302
    return Console(client, agent_id)


def choose(console: Console, interaction_id: int, system: str, external_id: str, open_item_id: str | None):
    response = console.post_json(f"/api/interactions/{interaction_id}/match",
                                 {"system": system, "external_id": external_id, "open_item_id": open_item_id})
    assert response.status_code == 200, response.get_json()
    return response


def task_posts(stub) -> list[dict]:
    return [request.json() for request in stub.requests_to(f"{stub.data_path}sobjects/Task", "POST")]


@pytest.fixture
def case(salesforce_stub, people):
    return salesforce_stub.add_case(ContactId=people["contact"]["Id"], AccountId=people["account"]["Id"],
                                    Subject="Refund not received", Status="New", Priority="High")


def test_picked_case_is_task_what_id(crm_app, salesforce_stub, people, case):
    agent_id = make_agent(crm_app, salesforce=SALESFORCE_AGENT)
    interaction_id = store_interaction(crm_app, agent_id=agent_id)

    choose(console_for(crm_app, agent_id), interaction_id, "salesforce", people["contact"]["Id"], case["Id"])
    drain(crm_app)

    [body] = task_posts(salesforce_stub)
    assert body["WhoId"] == people["contact"]["Id"]
    assert body["WhatId"] == case["Id"]
    assert entries(crm_app, interaction_id)["salesforce"].state == "done"


def test_zendesk_ticket_pick_leaves_salesforce_account(crm_app, salesforce_stub, zendesk_stub, people, case):
    ticket = zendesk_stub.add_ticket(requester_id=people["zendesk_user"]["id"], status="open", subject="Invoice")
    agent_id = make_agent(crm_app, salesforce=SALESFORCE_AGENT)
    interaction_id = store_interaction(crm_app, agent_id=agent_id)

    choose(console_for(crm_app, agent_id), interaction_id, "zendesk", str(people["zendesk_user"]["id"]),
           str(ticket["id"]))
    drain(crm_app)

    [body] = task_posts(salesforce_stub)
    assert body["WhoId"] == people["contact"]["Id"]
    assert body["WhatId"] == people["account"]["Id"]
    assert entries(crm_app, interaction_id)["salesforce"].state == "done"


def test_picked_ticket_gets_call_note(make_app, zendesk_config, zendesk_stub, people):
    user_id = people["zendesk_user"]["id"]
    picked = zendesk_stub.add_ticket(requester_id=user_id, status="open", subject="Older ticket",
                                     updated_at="2026-01-01T10:00:00Z")
    newest = zendesk_stub.add_ticket(requester_id=user_id, status="open", subject="Newest ticket",
                                     updated_at="2026-01-14T10:00:00Z")
    app = make_app(CONNECTORS="zendesk", **zendesk_config, ZENDESK_LOG_TO_OPEN_TICKET=True)
    bind_worker_app(app)
    agent_id = make_agent(app, zendesk=7001)
    interaction_id = store_interaction(app, agent_id=agent_id)

    choose(console_for(app, agent_id), interaction_id, "zendesk", str(user_id), str(picked["id"]))
    drain(app)

    assert len(zendesk_stub.comments[picked["id"]]) == 1
    assert zendesk_stub.comments[newest["id"]] == []
    assert entries(app, interaction_id)["zendesk"].external_id == str(picked["id"])


def test_picked_ticket_wins_without_open_ticket_setting(make_app, zendesk_config, zendesk_stub, people):
    user_id = people["zendesk_user"]["id"]
    picked = zendesk_stub.add_ticket(requester_id=user_id, status="open", subject="Delivery delayed")
    app = make_app(CONNECTORS="zendesk", **zendesk_config, ZENDESK_LOG_TO_OPEN_TICKET=False)
    bind_worker_app(app)
    agent_id = make_agent(app, zendesk=7001)
    interaction_id = store_interaction(app, agent_id=agent_id)

    choose(console_for(app, agent_id), interaction_id, "zendesk", str(user_id), str(picked["id"]))
    drain(app)

    assert len(zendesk_stub.comments[picked["id"]]) == 1
    assert zendesk_stub.requests_to("/api/v2/channels/voice/tickets.json", "POST") == []
    assert entries(app, interaction_id)["zendesk"].external_id == str(picked["id"])
