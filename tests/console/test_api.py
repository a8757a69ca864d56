"""The console's JSON API: authorization, wrap-up, match choice, presence, timeline."""

from __future__ import annotations

import pytest

from tests.conftest import mark_online, redis_client
from tests.console.conftest import card_with_matches, load_interaction, store_customer, store_interaction

SF_CONTACT = {"system": "salesforce", "record_type": "Contact", "external_id": "003A1",
              "display_name": "Ada Example", "url": "https://example.my.salesforce.com/003A1"}
ZD_USER = {"system": "zendesk", "record_type": "user", "external_id": "901",
           "display_name": "Ada E.", "url": "https://acme.zendesk.com/agent/users/901"}


@pytest.fixture
def alice(make_console):
    return make_console("alice@example.com", team="support")


@pytest.fixture
def bob(make_console):
    return make_console("bob@example.com", team="support")


def test_stream_of_another_agent_forbidden(alice, bob):
    response = alice.get(f"/agent/events?agent={bob.agent_id}")

    assert response.status_code == 403


def test_interaction_of_another_agent_forbidden(app, alice, bob):
    interaction_id = store_interaction(app, sid="CA" + "b" * 32, agent_id=bob.agent_id)

    assert alice.get(f"/api/interactions/{interaction_id}").status_code == 403
    assert bob.get(f"/api/interactions/{interaction_id}").status_code == 200


def test_customer_of_another_agent_forbidden(app, alice, bob):
    customer_id = store_customer(app)
    store_interaction(app, sid="CA" + "b" * 32, agent_id=bob.agent_id, customer_id=customer_id)

    assert alice.get(f"/api/customers/{customer_id}").status_code == 403
    assert alice.get(f"/api/customers/{customer_id}/timeline").status_code == 403
    assert bob.get(f"/api/customers/{customer_id}").status_code == 200


def test_notified_agent_reads_queued_interaction(app, alice, bob):
    interaction_id = store_interaction(app, sid="CA" + "q" * 32, agent_id=None,
                                       notified=[alice.agent_id, bob.agent_id])

    assert alice.get(f"/api/interactions/{interaction_id}").status_code == 200


def test_supervisor_reads_own_team_only(app, make_console, bob):
    support_lead = make_console("lead@example.com", role="supervisor", team="support")
    sales_lead = make_console("sales@example.com", role="supervisor", team="sales")
    interaction_id = store_interaction(app, sid="CA" + "b" * 32, agent_id=bob.agent_id)

    assert support_lead.get(f"/api/interactions/{interaction_id}").status_code == 200
    assert sales_lead.get(f"/api/interactions/{interaction_id}").status_code == 403


def test_unknown_interaction_not_found(alice):
    response = alice.get("/api/interactions/999")

    assert response.status_code == 404
    assert "999" in response.get_json()["message"]


def test_wrap_up_saves_notes_and_disposition(app, alice):
    interaction_id = store_interaction(app, sid="CA" + "a" * 32, agent_id=alice.agent_id)

    response = alice.post_json(f"/api/interactions/{interaction_id}/wrap-up",
                               {"notes": "  Wants a callback on Monday.  ", "disposition": "callback_needed"})

    assert response.status_code == 200
    stored = load_interaction(app, interaction_id)
    assert stored.notes == "Wants a callback on Monday."
    assert stored.disposition == "callback_needed"


def test_wrap_up_without_csrf_rejected(app, alice):
    interaction_id = store_interaction(app, sid="CA" + "a" * 32, agent_id=alice.agent_id)

    response = alice.post_json(f"/api/interactions/{interaction_id}/wrap-up", {"notes": "x"}, csrf=False)

    assert response.status_code == 400
    assert "CSRF" in response.get_json()["message"]
    assert load_interaction(app, interaction_id).notes is None


def test_wrap_up_with_wrong_csrf_rejected(app, alice):
    interaction_id = store_interaction(app, sid="CA" + "a" * 32, agent_id=alice.agent_id)

    response = alice.client.post(f"/api/interactions/{interaction_id}/wrap-up", json={"notes": "x"},
                                 headers={"X-CSRF-Token": "forged"})

    assert response.status_code == 400


def test_wrap_up_of_another_agent_forbidden(app, alice, bob):
    interaction_id = store_interaction(app, sid="CA" + "b" * 32, agent_id=bob.agent_id)

    response = alice.post_json(f"/api/interactions/{interaction_id}/wrap-up", {"notes": "x"})

    assert response.status_code == 403
    assert load_interaction(app, interaction_id).notes is None


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ([1, 2], "JSON object"),
        ({"notes": 12}, "notes must be a string"),
        ({"notes": "x" * 10_001}, "longer than 10000"),
        ({"disposition": "sold"}, "disposition must be one of"),
    ],
)
def test_wrap_up_invalid_input(app, alice, body, problem):
    interaction_id = store_interaction(app, sid="CA" + "a" * 32, agent_id=alice.agent_id)

    response = alice.post_json(f"/api/interactions/{interaction_id}/wrap-up", body)

    assert response.status_code == 400
    assert problem in response.get_json()["message"]


def test_wrap_up_uses_configured_dispositions(make_app):
    app = make_app(DISPOSITIONS="sale, no_sale")
    redis_client(app).flushdb()
    from tests.console.conftest import sign_in, Console
    from tests.conftest import create_agent

    agent_id = create_agent(app)
    client = app.test_client()
    sign_in(client, "alice@example.com")
    console = Console(client, agent_id)
    interaction_id = store_interaction(app, sid="CA" + "a" * 32, agent_id=agent_id)

    assert console.post_json(f"/api/interactions/{interaction_id}/wrap-up", {"disposition": "sale"}).status_code == 200
    assert console.post_json(f"/api/interactions/{interaction_id}/wrap-up", {"disposition": "resolved"}).status_code == 400
    assert 'value="no_sale"' in client.get("/").get_data(as_text=True)


def test_wrap_up_queues_write_back(app, alice, monkeypatch):
    from app import outbox

    calls = []
    monkeypatch.setattr(outbox, "interaction_updated", lambda session, interaction: calls.append(interaction.id))
    interaction_id = store_interaction(app, sid="CA" + "a" * 32, agent_id=alice.agent_id)

    alice.post_json(f"/api/interactions/{interaction_id}/wrap-up", {"notes": "done"})

    assert calls == [interaction_id]


def test_wrap_up_saved_when_write_back_fails(app, alice, monkeypatch):
    from app import outbox

    def broken(session, interaction):
        raise RuntimeError("queue down")

    monkeypatch.setattr(outbox, "interaction_updated", broken)
    interaction_id = store_interaction(app, sid="CA" + "a" * 32, agent_id=alice.agent_id)

    response = alice.post_json(f"/api/interactions/{interaction_id}/wrap-up", {"notes": "done"})

    assert response.status_code == 200
    assert load_interaction(app, interaction_id).notes == "done"


def match_interaction(app, agent_id, sid="CA" + "m" * 32):
    interaction_id = store_interaction(app, sid=sid, agent_id=agent_id, status="ringing")
    from app.db import get_db
    from app.models import Interaction

    with app.app_context():
        with get_db().new_session() as session:
            session.get(Interaction, interaction_id).card = card_with_matches(interaction_id, sid, [SF_CONTACT, ZD_USER])
            session.commit()
    return interaction_id


def test_match_choice_stored_and_remembered(app, alice):
    first = match_interaction(app, alice.agent_id)

    response = alice.post_json(f"/api/interactions/{first}/match", {"system": "zendesk", "external_id": "901"})

    assert response.status_code == 200
    assert load_interaction(app, first).chosen_match["external_id"] == "901"
    second = match_interaction(app, alice.agent_id, sid="CA" + "n" * 32)
    view = alice.get(f"/api/interactions/{second}").get_json()
    assert view["chosen_match"] is None
    assert view["selected_match"]["system"] == "zendesk"
    assert view["selected_match"]["external_id"] == "901"


def test_match_accepts_numeric_external_id(app, alice):
    interaction_id = match_interaction(app, alice.agent_id)

    response = alice.post_json(f"/api/interactions/{interaction_id}/match", {"system": "zendesk", "external_id": 901})

    assert response.status_code == 200


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ({"system": "zendesk"}, "missing field external_id"),
        ({"external_id": "901"}, "missing field system"),
        ({"system": "zendesk", "external_id": "999"}, "no match zendesk/999"),
        ({"system": "hubspot", "external_id": "901"}, "no match hubspot/901"),
    ],
)
def test_match_not_on_card_rejected(app, alice, body, problem):
    interaction_id = match_interaction(app, alice.agent_id)

    response = alice.post_json(f"/api/interactions/{interaction_id}/match", body)

    assert response.status_code == 400
    assert problem in response.get_json()["message"]
    assert load_interaction(app, interaction_id).chosen_match is None


def test_match_without_csrf_rejected(app, alice):
    interaction_id = match_interaction(app, alice.agent_id)

    response = alice.post_json(f"/api/interactions/{interaction_id}/match",
                               {"system": "zendesk", "external_id": "901"}, csrf=False)

    assert response.status_code == 400


def test_presence_offline_without_stream(alice):
    data = alice.get("/api/me/presence").get_json()

    assert data["chosen"] == "available"
    assert data["effective"] == "offline"


def test_presence_away_stored(app, alice):
    mark_online(app, alice.agent_id)

    response = alice.post_json("/api/me/presence", {"presence": "away"})

    assert response.status_code == 200
    assert response.get_json()["effective"] == "away"
    from app.db import get_db
    from app.models import Agent

    with app.app_context():
        assert get_db().session().get(Agent, alice.agent_id).presence == "away"


def test_presence_busy_while_offer_held(app, alice):
    from app.presence import Presence

    mark_online(app, alice.agent_id)
    Presence(redis_client(app)).offer(alice.agent_id, "CA" + "o" * 32, ttl_s=30)

    data = alice.get("/api/me/presence").get_json()

    assert data["effective"] == "busy"
    assert data["chosen"] == "available"


@pytest.mark.parametrize("value", ["busy", "offline", "", None])
def test_presence_only_available_or_away(alice, value):
    response = alice.post_json("/api/me/presence", {"presence": value})

    assert response.status_code == 400
    assert "presence must be one of available, away" in response.get_json()["message"]


def test_presence_without_csrf_rejected(alice):
    assert alice.post_json("/api/me/presence", {"presence": "away"}, csrf=False).status_code == 400


def test_language_choice_changes_console(alice):
    assert alice.post_json("/api/me/language", {"language": "fr"}).status_code == 200

    page = alice.client.get("/", headers={"Accept-Language": "en-US"}).get_data(as_text=True)

    assert '<html lang="fr">' in page
    assert "Se déconnecter" in page


def test_language_unknown_rejected(alice):
    response = alice.post_json("/api/me/language", {"language": "de"})

    assert response.status_code == 400


def test_timeline_lists_all_channels_newest_first(app, alice):
    customer_id = store_customer(app)
    store_interaction(app, sid="CA" + "1" * 32, agent_id=alice.agent_id, customer_id=customer_id,
                      minutes_ago=90, duration_seconds=185, notes="Asked about invoice", disposition="resolved")
    store_interaction(app, sid="SM" + "2" * 32, agent_id=alice.agent_id, customer_id=customer_id,
                      channel="sms", status="received", body="Is my order shipped?", minutes_ago=60)
    store_interaction(app, sid="SM" + "3" * 32, agent_id=alice.agent_id, customer_id=customer_id,
                      channel="whatsapp", from_address="whatsapp:+14155550100", status="received", minutes_ago=30)

    data = alice.get(f"/api/customers/{customer_id}/timeline").get_json()

    assert [entry["channel"] for entry in data["timeline"]] == ["whatsapp", "sms", "voice"]
    call = data["timeline"][2]
    assert call["display"]["duration"] == "3 min 5 sec"
    assert call["display"]["agent"] == "Alice Agent"
    assert call["display"]["disposition"] == "Resolved"
    assert call["display"]["counterpart"] == "+1 415-555-0100"
    assert data["timeline"][0]["display"]["counterpart"] == "+1 415-555-0100"


def test_timeline_formatted_in_french(app, alice):
    customer_id = store_customer(app)
    store_interaction(app, sid="CA" + "1" * 32, agent_id=alice.agent_id, customer_id=customer_id,
                      duration_seconds=185, disposition="callback_needed")

    data = alice.client.get(f"/api/customers/{customer_id}/timeline",
                            headers={"Accept-Language": "fr-FR"}).get_json()

    entry = data["timeline"][0]
    # CLDR French puts a no-break space before "min" and a narrow one before "s".
    assert entry["display"]["duration"] == "3\u00a0min 5\u202fs"
    assert entry["display"]["channel"] == "Appel"
    assert entry["display"]["direction"] == "Entrant"
    assert entry["display"]["disposition"] == "Rappel nécessaire"


@pytest.mark.parametrize("limit", ["0", "101", "ten", "-1"])
def test_timeline_limit_validated(app, alice, limit):
    customer_id = store_customer(app)
    store_interaction(app, sid="CA" + "1" * 32, agent_id=alice.agent_id, customer_id=customer_id)

    response = alice.get(f"/api/customers/{customer_id}/timeline?limit={limit}")

    assert response.status_code == 400
    assert "limit" in response.get_json()["message"]


def test_customer_lists_identities(app, alice):
    from app.db import get_db
    from app.models import Identity

    customer_id = store_customer(app)
    store_interaction(app, sid="CA" + "1" * 32, agent_id=alice.agent_id, customer_id=customer_id)
    with app.app_context():
        with get_db().new_session() as session:
            session.add(Identity(customer_id=customer_id, kind="phone", system="", value="+33612345678"))
            session.commit()

    data = alice.get(f"/api/customers/{customer_id}").get_json()

    assert data["customer"]["name"] == "Ada Example"
    assert data["customer"]["identities"][0]["display"] == "+33 6 12 34 56 78"
    assert len(data["timeline"]) == 1


def test_stream_url_carries_fresh_token(app, alice):
    from app.auth import agent_from_stream_token
    from urllib.parse import parse_qs, urlsplit

    url = alice.get("/api/me/stream").get_json()["url"]

    token = parse_qs(urlsplit(url).query)["token"][0]
    assert urlsplit(url).path == "/agent/events"
    with app.test_request_context():
        assert agent_from_stream_token(token) == alice.agent_id
