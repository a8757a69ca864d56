"""Picking the open case or ticket a call is about, through POST /api/interactions/<id>/match."""

from __future__ import annotations

import json

import pytest

from app.api import preferred_match_key
from tests.conftest import redis_client
from tests.console.conftest import card_with_matches, load_interaction, store_interaction

CASE = {"kind": "case", "id": "500A1", "subject": "Refund not received", "status": "New", "number": "00001026"}
OPPORTUNITY = {"kind": "opportunity", "id": "006A1", "subject": "Renewal 2026", "stage": "Negotiation"}
TICKET = {"kind": "ticket", "id": "3150", "subject": "Invoice is wrong", "status": "open", "number": "3150"}
SF_CONTACT = {"system": "salesforce", "record_type": "Contact", "external_id": "003A1",
              "display_name": "Ada Example", "open_items": [CASE, OPPORTUNITY]}
ZD_USER = {"system": "zendesk", "record_type": "end-user", "external_id": "901",
           "display_name": "Ada E.", "open_items": [TICKET]}


@pytest.fixture
def alice(make_console):
    return make_console("alice@example.com", team="support")


@pytest.fixture
def bob(make_console):
    return make_console("bob@example.com", team="support")


def call_with_open_items(app, agent_id: int, sid: str = "CA" + "o" * 32) -> int:
    interaction_id = store_interaction(app, sid=sid, agent_id=agent_id, status="ringing")
    from app.db import get_db
    from app.models import Interaction

    with app.app_context():
        with get_db().new_session() as session:
            session.get(Interaction, interaction_id).card = card_with_matches(interaction_id, sid, [SF_CONTACT, ZD_USER])
            session.commit()
    return interaction_id


def choose(console, interaction_id: int, body: dict, *, csrf: bool = True):
    return console.post_json(f"/api/interactions/{interaction_id}/match", body, csrf=csrf)


def test_open_item_choice_stored(app, alice):
    interaction_id = call_with_open_items(app, alice.agent_id)

    response = choose(alice, interaction_id, {"system": "salesforce", "external_id": "003A1", "open_item_id": "500A1"})

    assert response.status_code == 200
    assert response.get_json()["chosen_match"]["open_item_id"] == "500A1"
    assert load_interaction(app, interaction_id).chosen_match["open_item_id"] == "500A1"
    view = alice.get(f"/api/interactions/{interaction_id}").get_json()
    assert view["chosen_match"]["open_item_id"] == "500A1"
    assert view["selected_match"]["open_item_id"] == "500A1"


def test_open_item_accepts_numeric_id(app, alice):
    interaction_id = call_with_open_items(app, alice.agent_id)

    response = choose(alice, interaction_id, {"system": "zendesk", "external_id": 901, "open_item_id": 3150})

    assert response.status_code == 200
    assert load_interaction(app, interaction_id).chosen_match["open_item_id"] == "3150"


def test_open_item_choice_cleared_by_null(app, alice):
    interaction_id = call_with_open_items(app, alice.agent_id)
    choose(alice, interaction_id, {"system": "salesforce", "external_id": "003A1", "open_item_id": "500A1"})

    response = choose(alice, interaction_id, {"system": "salesforce", "external_id": "003A1", "open_item_id": None})

    assert response.status_code == 200
    assert load_interaction(app, interaction_id).chosen_match["open_item_id"] is None


def test_match_without_open_item_stores_none(app, alice):
    interaction_id = call_with_open_items(app, alice.agent_id)

    response = choose(alice, interaction_id, {"system": "zendesk", "external_id": "901"})

    assert response.status_code == 200
    assert load_interaction(app, interaction_id).chosen_match["open_item_id"] is None


def test_open_item_not_remembered_for_next_call(app, alice):
    interaction_id = call_with_open_items(app, alice.agent_id)

    choose(alice, interaction_id, {"system": "zendesk", "external_id": "901", "open_item_id": "3150"})

    remembered = json.loads(redis_client(app).get(preferred_match_key("+14155550100")))
    assert remembered["external_id"] == "901"
    assert "open_item_id" not in remembered


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ({"system": "salesforce", "external_id": "003A1", "open_item_id": "500ZZ"},
         "field open_item_id: 500ZZ is not an open case or ticket of salesforce/003A1"),
        ({"system": "salesforce", "external_id": "003A1", "open_item_id": "3150"}, "field open_item_id: 3150"),
        ({"system": "zendesk", "external_id": "901", "open_item_id": "500A1"}, "field open_item_id: 500A1"),
        ({"system": "zendesk", "external_id": "901", "open_item_id": ""}, "missing field open_item_id"),
        ({"system": "zendesk", "external_id": "901", "open_item_id": ["3150"]}, "missing field open_item_id"),
        ({"system": "zendesk", "external_id": "901", "open_item_id": "3" * 256}, "longer than 255"),
    ],
)
def test_open_item_invalid_rejected(app, alice, body, problem):
    interaction_id = call_with_open_items(app, alice.agent_id)

    response = choose(alice, interaction_id, body)

    assert response.status_code == 400
    assert problem in response.get_json()["message"]
    assert load_interaction(app, interaction_id).chosen_match is None


def test_open_item_of_another_agent_forbidden(app, alice, bob):
    interaction_id = call_with_open_items(app, bob.agent_id)

    response = choose(alice, interaction_id, {"system": "zendesk", "external_id": "901", "open_item_id": "3150"})

    assert response.status_code == 403
    assert load_interaction(app, interaction_id).chosen_match is None


def test_open_item_without_csrf_rejected(app, alice):
    interaction_id = call_with_open_items(app, alice.agent_id)

    response = choose(alice, interaction_id, {"system": "zendesk", "external_id": "901", "open_item_id": "3150"},
                      csrf=False)

    assert response.status_code == 400
    assert load_interaction(app, interaction_id).chosen_match is None


def test_open_item_choice_queues_write_back(app, alice, monkeypatch):
    from app import outbox

    queued = []
    monkeypatch.setattr(outbox, "interaction_updated",
                        lambda session, interaction: queued.append(dict(interaction.chosen_match)))
    interaction_id = call_with_open_items(app, alice.agent_id)

    choose(alice, interaction_id, {"system": "salesforce", "external_id": "003A1", "open_item_id": "006A1"})

    assert [choice["open_item_id"] for choice in queued] == ["006A1"]
